"""Whether variables can be stored as JSON case data: what the state encoder would refuse, or silently damage.

Storable: None, booleans, text, integers within ±(2**53 - 1) (what every JSON reader keeps exactly, a
browser's included), finite floats, lists and tuples (stored as lists), dicts with text keys, finite
Decimals, dates, datetimes and times (the encoder writes these as text: a restored case reads them back as
text), sets of text or of numbers (written sorted), enums of storable values.
Refused, each naming the variable and the place inside it: everything else (timedelta, bytes, range,
complex, functions, objects), non-text keys (a tuple key), NaN and infinities, integers beyond the range,
nesting deeper than `Limits.max_depth` or a value that contains itself, and data larger than
`Limits.data_bytes` as JSON (shared references count each time, as JSON repeats them).

The walk is bounded: it stops at the size limit or after `Limits.max_length` items, whichever comes first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from .limits import Limits

SAFE_INTEGER = 2**53 - 1
_DEFAULT = Limits()
_SCALAR_BYTES = {type(None): 4, bool: 5, float: 24}


@dataclass(frozen=True)
class StorageProblem:
    """One variable (or a place inside it) that cannot be stored, and why, in Chinese."""

    variable: str  # the top-level variable
    path: str  # where inside it: "items[2].due", or the variable itself
    message: str

    def __str__(self) -> str:
        return f"变量 {self.path} {self.message}"


class _TooBig(Exception):
    pass


def check_storable(data: Mapping[str, Any], limits: Limits | None = None) -> list[StorageProblem]:
    """Return why `data` (a case's variables) cannot be stored as case data; empty when it can."""
    limits = limits or _DEFAULT
    walker = _Walker(limits)
    sizes: dict[str, int] = {}
    name = None
    before = 0
    try:
        for name, value in data.items():
            before = walker.size
            if type(name) is not str:
                walker.problems.append(StorageProblem(repr(name), repr(name), "的名称不是文本，不能保存"))
                continue
            kind = type(value)
            if kind is str:
                walker.size += len(value) + 2 if value.isascii() else 3 * len(value) + 2
            elif kind is bool or value is None or (kind is int and -SAFE_INTEGER <= value <= SAFE_INTEGER):
                walker.size += 12
            elif kind in _LEAVES:
                walker.leaf(value, kind, (name, None))
            else:
                walker.walk(value, name)
            sizes[name] = walker.size - before + len(name)
        walker.check()
    except _TooBig:
        sizes[name] = walker.size - before
    if walker.size > limits.data_bytes or walker.items > limits.max_length:
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
        named = "、".join(f"{n}（约 {s / 1048576:.1f} MB）" for n, s in largest)
        culprit = largest[0][0] if largest else "?"
        if walker.items > limits.max_length:
            why = f"超过 {limits.max_length:,} 项"
        else:
            why = f"超过 {limits.data_bytes / 1048576:g} MB"
        walker.problems.append(
            StorageProblem(culprit, culprit, f"使案件数据过大（{why}），最大的变量：{named}")
        )
    return walker.problems


_LEAVES = frozenset({int, float, bool, type(None)})


class _Walker:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.problems: list[StorageProblem] = []
        self.size = 0
        self.items = 0

    def check(self) -> None:
        if self.size > self.limits.data_bytes or self.items > self.limits.max_length:
            raise _TooBig

    def problem(self, trail, message: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(StorageProblem(_root(trail), _render(trail), message))

    def leaf(self, item: Any, kind: type, trail) -> None:
        """A number, boolean or None (text is counted by the caller)."""
        if kind is int:
            if not -SAFE_INTEGER <= item <= SAFE_INTEGER:
                self.problem(trail, f"的整数超出可保存的范围（±{SAFE_INTEGER}）")
            self.size += 12
        elif kind is float:
            if item - item != 0.0:  # NaN or an infinity
                self.problem(trail, f"的值 {item} 不是有限的数，不能保存")
            self.size += 24
        else:
            self.size += 5

    def walk(self, value: Any, name: str) -> None:
        """Check one variable. Containers go on an explicit stack (no recursion limit); their text, numbers
        and booleans are checked in place, which is most of any case data."""
        max_depth = self.limits.max_depth
        stack = [(value, 1, (name, None))]
        pop, push = stack.pop, stack.append
        size = self.size
        items = self.items
        limit_size, limit_items = self.limits.data_bytes, self.limits.max_length
        try:
            while stack:
                item, depth, trail = pop()
                kind = type(item)
                if kind is dict:
                    children = item.items()
                elif kind is list or kind is tuple:
                    children = enumerate(item)
                else:
                    self.size = size
                    self._other(item, kind, depth, trail, stack)
                    size = self.size
                    continue
                if depth > max_depth:
                    cycle = _cycle(value, trail)
                    if cycle is not None:
                        self.problem(cycle, "引用了包含它的列表或字典（循环引用），不能保存")
                    else:
                        self.problem(trail, f"嵌套超过 {max_depth} 层，不能保存")
                    continue
                items += len(item) + 1
                size += 2 + len(item)
                if items > limit_items:
                    raise _TooBig
                if kind is dict:
                    for key, child in children:
                        if type(key) is not str:
                            self.problem(trail, f"的键 {_short(key)} 不是文本，不能保存")
                            continue
                        ck = type(child)
                        if ck is str:
                            size += len(key) + (len(child) + 5 if child.isascii() else 3 * len(child) + 5)
                        elif ck is bool or child is None:
                            size += len(key) + 8
                        elif ck is int and -SAFE_INTEGER <= child <= SAFE_INTEGER:
                            size += len(key) + 15
                        else:
                            size += len(key) + 3
                            push((child, depth + 1, (key, trail)))
                else:
                    for index, child in children:
                        ck = type(child)
                        if ck is str:
                            size += len(child) + 2 if child.isascii() else 3 * len(child) + 2
                        elif ck is bool or child is None:
                            size += 5
                        elif ck is int and -SAFE_INTEGER <= child <= SAFE_INTEGER:
                            size += 12
                        else:
                            push((child, depth + 1, (index, trail)))
                if size > limit_size:
                    raise _TooBig
        finally:
            self.size, self.items = size, items

    def _other(self, item, kind, depth, trail, stack) -> None:
        if kind is str:
            self.size += len(item) + 2 if item.isascii() else 3 * len(item) + 2
        elif kind in _LEAVES:
            self.leaf(item, kind, trail)
        elif kind is Decimal:
            if item.is_finite():
                self.size += len(str(item)) + 2
            else:
                self.problem(trail, f"的值 {item} 不是有限的数，不能保存")
        elif kind is timedelta:
            self.problem(trail, "是一段时长（timedelta），不能保存：请保存天数（.days）或日期文本")
        elif isinstance(item, Enum):
            stack.append((item.value, depth, trail))
        elif isinstance(item, date | time | UUID):
            self.size += 34
        elif isinstance(item, set | frozenset):
            if all(isinstance(v, str) for v in item) or all(
                isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in item
            ):
                stack.append((sorted(item), depth, trail))
            else:
                self.problem(trail, "是一个混合类型的集合（set），不能保存：请改用列表")
        elif isinstance(item, str | int | float | list | tuple | dict) and kind is not bool:
            # A subclass of a JSON type: the encoder writes it as its base.
            base = next(b for b in (str, int, float, list, tuple, dict) if isinstance(item, b))
            stack.append((base(item), depth, trail))
        else:
            self.problem(trail, f"的值是{_kind(item)}，不能保存为案件数据")


def _root(trail) -> str:
    while trail[1] is not None:
        trail = trail[1]
    return str(trail[0])


def _render(trail) -> str:
    parts = []
    while trail is not None:
        parts.append(trail[0])
        trail = trail[1]
    parts.reverse()
    text = str(parts[0])
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    if len(text) > 120:
        text = text[:60] + "…" + text[-50:]
    return text


def _cycle(root: Any, trail):
    """The trail to the first container met again on the way from `root` to `trail`, or None."""
    steps = []
    while trail is not None:
        steps.append(trail)
        trail = trail[1]
    steps.reverse()  # steps[0] is the variable itself, steps[k] the k-th key on the way down
    seen = [root]
    node = root
    for step in steps[1:]:
        try:
            node = node[step[0]]
        except (KeyError, IndexError, TypeError):
            return None
        if any(node is earlier for earlier in seen):
            return step
        seen.append(node)
    return None


_KINDS = {
    timedelta: "时长（timedelta）",
    bytes: "字节串（bytes）",
    bytearray: "字节串（bytearray）",
    range: "范围（range）",
    complex: "复数（complex）",
    tuple: "元组（tuple）",
    set: "集合（set）",
    frozenset: "集合（frozenset）",
    float: "小数",
    int: "整数",
    bool: "布尔值",
    type(None): "空值 None",
}


def _kind(value: Any) -> str:
    kind = type(value)
    if kind in _KINDS:
        return _KINDS[kind]
    if callable(value):
        return "函数或类型"
    return f"类型为 {kind.__name__} 的对象"


def _short(value: Any) -> str:
    # Never the repr of a container: it may be huge, or walk a cycle.
    if (type(value) is int and value.bit_length() < 100) or type(value) in (float, bool, type(None)):
        return f"{value!r}（{_kind(value)}）"
    return _kind(value)
