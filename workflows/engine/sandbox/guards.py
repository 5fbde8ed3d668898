"""Bounds on the work diagram code can do inside one C call, where the watchdog's stop cannot reach.

The principle. A Python-level loop is stopped at its deadline, so whatever a loop builds, one linear C pass
over it costs less than building it did. What remains unbounded is (a) single C operations whose result
is much larger than their operands — repetition (`'x' * n`), padding (`ljust`, format widths), `join`,
`replace`, big-integer `**`, `*`, `<<`, `int(Decimal)`, `range` consumed by `sum`/`list`/`sorted` — and
(b) superlinear C operations — sorting, and whatever walks nested values through shared references
(`==`, `in`, hashing a tuple, `str()`/`repr()`/formatting), where a list holding a million references to
one big list is a trillion elements to walk. (a) is guarded by estimating the result before it is built,
(b) by a walk of the operands bounded by `Limits.max_length` (the walk itself is Python, so interruptible).

Everything here runs once per guarded operation; the fast paths (small numbers, short strings, plain keys)
return after a type test or two.
"""

from __future__ import annotations

import math
import operator
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from RestrictedPython import safe_builtins
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

from .errors import ScriptTooLarge
from .limits import Limits

# Values whose comparison, hashing and text are cheap whatever they hold (strings and integers are bounded).
SCALARS = frozenset({str, int, float, bool, type(None), Decimal, date, datetime, time, timedelta, bytes})
_SEQUENCES = (str, bytes, list, tuple)
_NUMBERS = (int, float, Decimal)
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
_MISSING = object()

# Widths and precisions inside a %-format or a format spec.
_PERCENT_SPEC = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_DIGITS = re.compile(r"\d+")
_MAX_SPEC = 1000  # characters of one format spec or strftime/strptime format


class Guards:
    """The guard functions for one set of limits, and the builtins offered to diagram code."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.max_length = limits.max_length
        self.max_bits = limits.max_int_bits
        self.methods = _method_guards(self)
        self.builtins = self._builtins()
        self.hooks: dict[str, Any] = {
            "_getattr_": self.getattr,
            "_getitem_": self.getitem,
            "_getiter_": iter_unchanged,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": self.write,
            "_inplacevar_": self.inplace,
            "_apply_": apply,
            "_binop_": self.binop,
            "_setop_": self.setop,
            "_format_": self.format_value,
            "_fstring_": self.fstring,
            "_deep_": self.deep,
            "_key_": self.key,
            "_starred_": self.starred,
        }

    # -- refusing

    def refuse(self, what: str) -> ScriptTooLarge:
        return ScriptTooLarge(f"结果过大：{what}，超过上限 {self.max_length:,}，已拒绝执行")

    def check_length(self, length: int, what: str) -> None:
        if length > self.max_length:
            raise self.refuse(f"{what}长度将达到 {length:,}")

    def check_bits(self, bits: float) -> None:
        if bits > self.max_bits:
            raise ScriptTooLarge(
                f"结果过大：整数将超过 {self.limits.max_int_digits} 位数字的上限（约 {int(bits * 0.30103):,} 位），已拒绝执行"
            )

    # -- measuring nested values (bounded walks)

    def measure(self, value: Any, text: bool = False) -> int:
        """Estimate the work of walking `value` in C: nodes, or characters of its text when `text`.

        Stops as soon as the estimate passes `max_length` and returns it (a value above the budget).
        Shared references count every time they are reached, as C walks them; so does a cycle.
        """
        budget = self.max_length
        total = 0
        stack = [value]
        pop, push, extend = stack.pop, stack.append, stack.extend
        while stack:
            item = pop()
            kind = type(item)
            if kind is str or kind is bytes:
                total += len(item) + 2 if text else 1 + (len(item) >> 6)
            elif kind is int or kind is bool:
                total += item.bit_length() // 3 + 2 if text else 1 + (item.bit_length() >> 9)
            elif kind is list or kind is tuple or kind is set or kind is frozenset:
                total += 2 + 2 * len(item) if text else 1 + len(item)
                if total > budget:
                    return total
                extend(item)
            elif kind is dict:
                total += 2 + 4 * len(item) if text else 1 + 2 * len(item)
                if total > budget:
                    return total
                extend(item.keys())
                extend(item.values())
            elif kind is float or item is None:
                total += 24 if text else 1
            elif kind is Decimal:
                total += _decimal_text_length(item) if text else 2
            elif kind in _VIEWS:
                total += 2 + 2 * len(item)
                if total > budget:
                    return total
                extend(list(item))
            elif isinstance(item, Enum):
                push(item.value)
            elif kind is slice:
                extend((item.start, item.stop, item.step))
            elif isinstance(item, BaseException):  # its text is that of its arguments
                total += 16
                extend(item.args)
            elif isinstance(item, str | bytes | list | tuple | dict | set | frozenset | int):
                # A subclass: walk it as its base.
                push(_as_base(item))
            else:
                # Dates, functions, generators, ranges ...: their text is short and they hold nothing to walk.
                total += 64 if text else 1
            if total > budget:
                return total
        return total

    def deep(self, value: Any) -> Any:
        """A computed side of a comparison: refuse one whose comparison could walk too much in C."""
        if type(value) in SCALARS:
            return value
        if self.measure(value) > self.max_length:
            raise self.refuse("参与比较的数据嵌套过深或过大（比较需逐项比对）")
        return value

    def key(self, value: Any) -> Any:
        """A dict key or set element: hashing a tuple walks all of it."""
        if type(value) in SCALARS:
            return value
        if isinstance(value, tuple | frozenset) and self.measure(value) > self.max_length:
            raise self.refuse("用作键的元组嵌套过深或过大（计算哈希需逐项遍历）")
        return value

    def check_keys(self, iterable: Any) -> list:
        """Materialise an iterable whose elements will be hashed, refusing elements too large to hash."""
        items = iterable if type(iterable) is list else list(iterable)
        key = self.key
        for item in items:
            if type(item) not in SCALARS:
                key(item)
        return items

    def check_walk(self, items: Any, what: str) -> None:
        if self.measure(items) > self.max_length:
            raise self.refuse(f"{what}的数据嵌套过深或过大")

    def text_size(self, value: Any) -> int:
        kind = type(value)
        if kind is str:
            return len(value)
        if kind is int:
            return value.bit_length() // 3 + 2
        return self.measure(value, text=True)

    # -- operators

    def binop(self, op: str, a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if op == "+":
            if ta in _SEQ_TYPES and tb in _SEQ_TYPES:
                self.check_length(len(a) + len(b), _NAMES.get(ta, "序列"))
            return a + b
        if op == "*":
            return self._multiply(a, b, ta, tb, operator.mul)
        if op == "**":
            self._check_power(a, b)
            return a**b
        if op == "<<":
            if isinstance(a, int) and isinstance(b, int) and b > 0:
                self.check_bits(a.bit_length() + b)
            return a << b
        if op == "%":
            if ta is str or ta is bytes:
                self._check_percent(a, b)
            return a % b
        raise ValueError(op)

    def setop(self, op: str, a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta in _VIEWS or tb in _VIEWS:
            # A view's set operators take any iterable and hash each element (an items view hashes its
            # (key, value) pairs, values included): check what will be hashed; an iterator is read once.
            if ta in _VIEWS:
                if ta is _ITEMS_VIEW:
                    self.check_keys(a)
            elif not isinstance(a, set | frozenset | dict):
                a = self.check_keys(a)
            if tb in _VIEWS:
                if tb is _ITEMS_VIEW:
                    self.check_keys(b)
            elif not isinstance(b, set | frozenset | dict):
                b = self.check_keys(b)
        return _SET_OPERATORS[op](a, b)

    def _multiply(self, a, b, ta, tb, apply: Callable) -> Any:
        if (ta is int or ta is bool) and (tb is int or tb is bool):
            if a and b:
                self.check_bits(a.bit_length() + b.bit_length())
        elif ta in _SEQ_TYPES and isinstance(b, int):
            self.check_length(len(a) * b, _NAMES.get(ta, "序列"))
        elif tb in _SEQ_TYPES and isinstance(a, int):
            self.check_length(len(b) * a, _NAMES.get(tb, "序列"))
        elif isinstance(a, int) and isinstance(b, int):  # int subclasses (IntEnum ...)
            if a and b:
                self.check_bits(int(a).bit_length() + int(b).bit_length())
        elif isinstance(a, _SEQUENCES) and isinstance(b, int):
            self.check_length(len(a) * b, "序列")
        elif isinstance(b, _SEQUENCES) and isinstance(a, int):
            self.check_length(len(b) * a, "序列")
        return apply(a, b)

    def _check_power(self, a, b) -> None:
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            self.check_bits(math.log2(abs(a)) * b)

    def _check_percent(self, template, args) -> None:
        pattern = _PERCENT_SPEC if type(template) is str else _PERCENT_SPEC_BYTES
        if type(args) is tuple:
            positional = list(args)
        elif isinstance(args, dict):
            positional = None
        else:
            positional = [args]
        total = len(template)
        index = 0
        for match in pattern.finditer(template):
            name, width, precision, conversion = match.groups()
            if conversion in ("%", b"%"):
                continue
            for number in (width, precision):
                if number in ("*", b"*"):
                    if positional is not None and index < len(positional):
                        star = positional[index]
                        total += star if isinstance(star, int) and star > 0 else 0
                    index += 1
                elif number:
                    total += int(number)
            if name is not None and isinstance(args, dict):
                key = name if type(name) is str else name.decode("latin-1", "replace")
                value = args.get(key, "")
            elif positional is not None and index < len(positional):
                value = positional[index]
                index += 1
            else:
                value = ""
            total += self.text_size(value)
            if total > self.max_length:
                break
        self.check_length(total, "格式化后的字符串")

    def inplace(self, op: str, x: Any, y: Any) -> Any:
        if op == "+=":
            tx = type(x)
            if tx in _SEQ_TYPES and hasattr(y, "__len__"):
                self.check_length(len(x) + len(y), _NAMES.get(tx, "序列"))
            return operator.iadd(x, y)
        if op == "*=":
            return self._multiply(x, y, type(x), type(y), operator.imul)
        if op == "**=":
            self._check_power(x, y)
            return operator.ipow(x, y)
        if op == "<<=":
            return self.binop("<<", x, y)
        if op == "%=":
            return self.binop("%", x, y)
        function = _INPLACE.get(op)
        if function is None:
            raise SyntaxError(f"不支持的运算 {op}")
        return function(x, y)

    # -- formatting

    def check_spec(self, spec: str) -> int:
        """The characters a format spec may add: its widths and precisions (refused when too many)."""
        if len(spec) > _MAX_SPEC:
            raise self.refuse(f"格式说明过长（{len(spec)} 个字符）")
        added = sum(int(d) for d in _DIGITS.findall(spec)) if any(c.isdigit() for c in spec) else 0
        self.check_length(added, "格式宽度或精度")
        return added

    def format_value(self, value: Any, conversion: int, spec: Any) -> str:
        """One `{value!conversion:spec}` of an f-string."""
        if conversion == 115:  # !s
            value = self.to_str(value)
        elif conversion == 114:  # !r
            value = self.to_repr(value)
        elif conversion == 97:  # !a
            value = ascii(self.to_repr(value))
        spec = spec or ""
        if type(value) is str and not spec:
            return value
        added = self.check_spec(spec) if spec else 0
        self.check_length(self.text_size(value) + added, "格式化后的字符串")
        return format(value, spec)

    def fstring(self, parts: tuple) -> str:
        total = 0
        for part in parts:
            total += len(part)
        self.check_length(total, "f-string 拼接后的字符串")
        return "".join(parts)

    def to_str(self, value: Any = "", *args, **kwargs) -> str:
        if args or kwargs:  # str(bytes, encoding): decoding is linear
            return str(value, *args, **kwargs)
        if type(value) is str:
            return value
        self.check_length(self.text_size(value), "转换成的字符串")
        return str(value)

    def to_repr(self, value: Any) -> str:
        self.check_length(self.text_size(value) + 2, "转换成的字符串")
        return repr(value)

    # -- item access and writes

    def getitem(self, obj: Any, index: Any) -> Any:
        kind = type(index)
        if kind is str or kind is int or kind is slice:
            return obj[index]
        return obj[self.key(index)]

    def write(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is list:
            return _ListWriter(obj, self)
        if kind is dict:
            return _DictWriter(obj, self)
        return full_write_guard(obj)

    def starred(self, value: Any) -> Any:
        if hasattr(value, "__len__"):
            self.check_length(len(value), "展开的序列")
        return value

    # -- attributes: the methods that can do unbounded work in one C call

    def getattr(self, obj: Any, name: str, default: Any = _MISSING) -> Any:
        guard = self.methods.get(name)
        if guard is not None:
            found = guard.bind(obj)
            if found is not None:
                return found
        if type(obj) is GuardedType:
            obj = obj.real_for(name)
        if default is _MISSING:
            return safer_getattr(obj, name)
        return safer_getattr(obj, name, default)

    # -- builtins

    def _builtins(self) -> dict[str, Any]:
        offered = {
            name: value
            for name, value in safe_builtins.items()
            if name
            not in (
                "__build_class__",
                "_getattr_",
                "BaseException",
                "GeneratorExit",
                "KeyboardInterrupt",
                "SystemExit",
                "setattr",
                "delattr",
                "complex",
            )
        }
        offered.update(
            {
                "any": any,
                "all": all,
                "enumerate": enumerate,
                "zip": guarded_zip,
                "reversed": reversed,
                "list": list,
                "tuple": tuple,
                "RecursionError": RecursionError,
                "str": GuardedType(str, self.to_str),
                "repr": self.to_repr,
                "int": GuardedType(int, self.to_int),
                "round": self.round,
                "pow": self.pow,
                "range": GuardedType(range, self.range),
                "hash": self.hash,
                "dict": GuardedType(dict, self.dict),
                "set": GuardedType(set, self.set),
                "frozenset": GuardedType(frozenset, self.frozenset),
                "sorted": self.sorted,
                "min": self.min,
                "max": self.max,
                "sum": self.sum,
                "map": guarded_map,
                "filter": guarded_filter,
                "__import__": import_preloaded,
            }
        )
        return offered

    def to_int(self, value: Any = 0, *args, **kwargs) -> int:
        if type(value) is int:
            return value
        if isinstance(value, Decimal) and value.is_finite():
            self._check_decimal_digits(value)
        elif isinstance(value, str | bytes):
            base = args[0] if args else kwargs.get("base", 10)
            if base in (0, 2, 4, 8, 16, 32):  # Python's own digit limit does not cover these bases
                self.check_bits(len(value) * (5 if base in (0, 32) else int(math.log2(base))))
        return int(value, *args, **kwargs)

    def _check_decimal_digits(self, value: Decimal) -> None:
        if value.adjusted() >= self.limits.max_int_digits:
            raise ScriptTooLarge(
                f"结果过大：转换成的整数将有 {value.adjusted() + 1:,} 位，超过 {self.limits.max_int_digits} 位的上限"
            )

    def round(self, number: Any, ndigits: Any = None) -> Any:
        if ndigits is None and isinstance(number, Decimal) and number.is_finite():
            self._check_decimal_digits(number)
        return round(number, ndigits)

    def pow(self, base: Any, exp: Any, mod: Any = None) -> Any:
        if mod is None:
            self._check_power(base, exp)
            return base**exp
        return pow(base, exp, mod)

    def range(self, *args) -> range:
        result = range(*args)
        try:
            length = len(result)
        except OverflowError:
            length = sys.maxsize
        self.check_length(length, "range ")
        return result

    def hash(self, value: Any) -> int:
        return hash(self.key(value))

    def dict(self, *args, **kwargs) -> dict:
        if args and not isinstance(args[0], dict):
            pairs = list(args[0])
            for pair in pairs:
                if type(pair) in (tuple, list) and pair:
                    self.key(pair[0])
            return dict(pairs, **kwargs)
        return dict(*args, **kwargs)

    def set(self, iterable: Any = ()) -> set:
        if isinstance(iterable, set | frozenset | dict):
            return set(iterable)
        return set(self.check_keys(iterable))

    def frozenset(self, iterable: Any = ()) -> frozenset:
        if isinstance(iterable, set | frozenset | dict):
            return frozenset(iterable)
        return frozenset(self.check_keys(iterable))

    def sorted(self, iterable: Any, /, *, key: Any = None, reverse: bool = False) -> list:
        items = list(iterable)
        self.check_walk(items, "排序")
        items.sort(key=key, reverse=reverse)
        return items

    def min(self, *args, **kwargs) -> Any:
        return min(self._compared(args, "求最小值"), **kwargs)

    def max(self, *args, **kwargs) -> Any:
        return max(self._compared(args, "求最大值"), **kwargs)

    def _compared(self, args: tuple, what: str) -> list:
        items = list(args[0]) if len(args) == 1 else list(args)
        self.check_walk(items, what)
        return items

    def sum(self, iterable: Any, /, start: Any = 0) -> Any:
        if isinstance(start, _NUMBERS):
            return sum(iterable, start)
        # Adding lists or tuples one by one copies them again at every step: do it here, in Python,
        # where each step is bounded and the deadline can stop the loop.
        total = start
        copied = False
        for item in iterable:
            if type(total) is list and type(item) is list:
                # `start + a + b ...` of lists, without copying the growing total every time.
                self.check_length(len(total) + len(item), "列表")
                if not copied:
                    total, copied = list(total), True
                total.extend(item)
            else:
                total, copied = self.binop("+", total, item), False
        return total


_SEQ_TYPES = frozenset(_SEQUENCES)
_ITEMS_VIEW = type({}.items())
_SET_OPERATORS = {"-": operator.sub, "|": operator.or_, "&": operator.and_, "^": operator.xor}
_NAMES = {str: "字符串", bytes: "字节串", list: "列表", tuple: "元组"}
_PERCENT_SPEC_BYTES = re.compile(rb"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_INPLACE = {
    "-=": operator.isub,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _decimal_text_length(value: Decimal) -> int:
    if not value.is_finite():
        return 10
    digits = len(value.as_tuple().digits)
    return digits + abs(value.as_tuple().exponent) + 4


def _as_base(value: Any) -> Any:
    for base in (str, bytes, int, list, tuple, dict, set, frozenset):
        if isinstance(value, base):
            return base(value)
    return None


def iter_unchanged(value: Any) -> Any:
    return value


def apply(function: Callable, *args, **kwargs) -> Any:
    return function(*args, **kwargs)


def guarded_map(function: Callable, *iterables):
    # A generator, so that each call of `function` passes through Python (where the deadline stops it),
    # even when `function` is C code consumed by C code (`list(map(sorted, big_lists))`).
    for args in zip(*iterables, strict=False):
        yield function(*args)


def guarded_zip(*iterables, strict: bool = False):
    # `list(zip(*[row] * n))` would build n-long tuples for every row inside one C call.
    for row in zip(*iterables, strict=strict):  # noqa: UP028 - `yield from` resumes without the check that stops it
        yield row


def guarded_filter(function: Callable | None, iterable):
    for item in iterable:
        if function(item) if function is not None else item:
            yield item


# C code inside datetime imports `time` or `_strptime` at run time through the calling frame's builtins
# (`date.today()`, `strftime`, `strptime`): without an `__import__` there it fails with KeyError:
# '__import__'. Scripts cannot name `__import__` (underscore names are refused); only C code reaches this.
_PRELOADED = ("time", "_strptime")
for _module in _PRELOADED:
    __import__(_module)


def import_preloaded(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s own signature
    if level == 0 and name in _PRELOADED:
        return sys.modules[name]
    raise ImportError(f"脚本不允许导入模块 {name}")


class GuardedType(type):
    """A built-in type offered to scripts whose constructor is guarded: `str(x)` runs the guard, while
    `isinstance(v, str)`, `str.upper` and `dict.fromkeys` still behave (the last one guarded too)."""

    def __new__(mcs, real: type, construct: Callable, overrides: dict | None = None):
        return super().__new__(mcs, real.__name__, (), dict(overrides or {}))

    def __init__(cls, real: type, construct: Callable, overrides: dict | None = None):
        super().__init__(real.__name__, (), {})
        cls.real = real
        cls.construct = construct
        cls.overrides = frozenset(overrides or ())

    def __call__(cls, *args, **kwargs):
        return cls.construct(*args, **kwargs)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, cls.real)

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub.real if type(sub) is GuardedType else sub, cls.real)

    def __getattr__(cls, name):
        return getattr(cls.real, name)

    def __repr__(cls) -> str:
        return repr(cls.real)

    def real_for(cls, name: str) -> Any:
        """Where an attribute of the offered type is read: its own override, else the real type."""
        return cls if name in cls.overrides else cls.real


# --------------------------------------------------------------------------------------------------
# Methods


class _MethodGuard:
    """The guarded forms of one method name, per receiver type (checked with isinstance, in order)."""

    def __init__(self, name: str, forms: list[tuple[type | tuple, Callable]]):
        self.name = name
        self.forms = forms
        self.on_class = name in _CLASS_METHODS  # called on the class too without an instance

    def bind(self, obj: Any) -> Callable | None:
        receiver = obj
        if type(obj) is GuardedType:
            if self.name in obj.overrides:
                return None
            receiver = obj.real
        if isinstance(receiver, type):  # `str.join`: the method unbound, guarded alike
            for kinds, guard in self.forms:
                if issubclass(receiver, kinds):
                    return _bound(guard, receiver) if self.on_class else guard
            return None
        for kinds, guard in self.forms:
            if isinstance(receiver, kinds):
                return _bound(guard, receiver)
        return None


_CLASS_METHODS = frozenset({"fromkeys", "strptime", "from_bytes"})


def _bound(guard: Callable, obj: Any) -> Callable:
    def method(*args, **kwargs):
        return guard(obj, *args, **kwargs)

    return method


def _method_guards(g: Guards) -> dict[str, _MethodGuard]:
    text = (str, bytes)

    def pad(name):
        def padded(s, width, *args):
            if isinstance(width, int):
                g.check_length(width, _NAMES.get(type(s), "字符串"))
            return getattr(_text_base(s), name)(s, width, *args)

        return padded

    def expandtabs(s, tabsize=8):
        g.check_length(
            len(s) + s.count("\t" if isinstance(s, str) else b"\t") * max(int(tabsize), 0), "字符串"
        )
        return _text_base(s).expandtabs(s, tabsize)

    def replace(s, old, new, count=-1):
        if len(new) > len(old):
            found = len(s) + 1 if not old else s.count(old)
            if isinstance(count, int) and count >= 0:
                found = min(found, count)
            g.check_length(len(s) + found * (len(new) - len(old)), _NAMES.get(type(s), "字符串"))
        return _text_base(s).replace(s, old, new, count)

    def join(separator, iterable):
        # Counted while the parts are collected: a generator of large parts is refused before it has
        # produced them all.
        items = []
        total = -len(separator)
        for item in iterable:
            items.append(item)
            total += len(separator) + (len(item) if isinstance(item, str | bytes) else 0)
            if total > g.max_length:
                g.check_length(total, "拼接后的字符串")
        return _text_base(separator).join(separator, items)

    def translate(s, table, *args):
        if isinstance(s, str) and isinstance(table, dict):
            longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
            g.check_length(len(s) * longest, "字符串")
        return _text_base(s).translate(s, table, *args)

    def strftime(moment, fmt):
        if isinstance(fmt, str) and len(fmt) > _MAX_SPEC:
            raise g.refuse(f"日期格式过长（{len(fmt)} 个字符）")
        return type(moment).strftime(moment, fmt)

    def strptime(cls, text_value, fmt):
        if len(str(fmt)) > _MAX_SPEC or len(str(text_value)) > _MAX_SPEC:
            raise g.refuse("日期文本或格式过长")
        return datetime.strptime(text_value, fmt)

    def extend(items, iterable):
        values = iterable if hasattr(iterable, "__len__") else list(iterable)
        g.check_length(len(items) + len(values), "列表")
        return items.extend(values)

    def sort(items, *, key=None, reverse=False):
        g.check_walk(items, "排序")
        return items.sort(key=key, reverse=reverse)

    def searching(name):
        # count/index/remove compare the argument with every element: deep when the argument is.
        def search(seq, value, *args):
            if type(value) not in SCALARS:
                g.check_walk(seq, "查找")
            return getattr(_seq_base(seq), name)(seq, value, *args)

        return search

    def keyed(name):
        def by_key(mapping, key, *args):
            g.key(key)
            return getattr(_map_base(mapping), name)(mapping, key, *args)

        return by_key

    def to_bytes(number, length=1, *args, **kwargs):
        if isinstance(length, int):
            g.check_length(length, "字节串")
        return int.to_bytes(number, length, *args, **kwargs)

    def from_bytes(cls, data, *args, **kwargs):
        if hasattr(data, "__len__"):
            g.check_bits(len(data) * 8)
        return int.from_bytes(data, *args, **kwargs)

    def as_integer_ratio(number):
        if number.is_finite():
            g.check_bits((len(number.as_tuple().digits) + abs(number.as_tuple().exponent)) * 3.33)
        return number.as_integer_ratio()

    def fromkeys(cls_or_obj, iterable, value=None):
        return dict.fromkeys(g.check_keys(iterable), value)

    def update(mapping, other=(), **kwargs):
        if not isinstance(other, dict) and not hasattr(other, "keys"):
            other = list(other)
            for pair in other:
                if type(pair) in (tuple, list) and pair:
                    g.key(pair[0])
        return mapping.update(other, **kwargs)

    def set_operation(name):
        def operation(s, *others):
            checked = [o if isinstance(o, set | frozenset | dict) else g.check_keys(o) for o in others]
            return getattr(_set_base(s), name)(s, *checked)

        return operation

    guards: dict[str, list[tuple[type | tuple, Callable]]] = {
        "ljust": [(text, pad("ljust"))],
        "rjust": [(text, pad("rjust"))],
        "center": [(text, pad("center"))],
        "zfill": [(text, pad("zfill"))],
        "expandtabs": [(text, expandtabs)],
        "replace": [(text, replace)],
        "join": [(text, join)],
        "translate": [(text, translate)],
        "strftime": [((date, time), strftime)],
        "strptime": [(datetime, strptime)],
        "extend": [(list, extend)],
        "sort": [(list, sort)],
        "count": [((list, tuple), searching("count"))],
        "index": [((list, tuple), searching("index"))],
        "remove": [(list, searching("remove")), ((set,), keyed("remove"))],
        "get": [(dict, keyed("get"))],
        "pop": [(dict, keyed("pop"))],
        "setdefault": [(dict, keyed("setdefault"))],
        "fromkeys": [(dict, fromkeys)],
        "update": [(dict, update), ((set,), set_operation("update"))],
        "add": [(set, keyed("add"))],
        "to_bytes": [(int, to_bytes)],
        "from_bytes": [(int, from_bytes)],
        "as_integer_ratio": [(Decimal, as_integer_ratio)],
        "discard": [(set, keyed("discard"))],
    }
    for name in (
        "union",
        "intersection",
        "difference",
        "symmetric_difference",
        "issubset",
        "issuperset",
    ):
        guards[name] = [((set, frozenset), set_operation(name))]

    def isdisjoint(s, other):
        if type(s) is _ITEMS_VIEW:
            g.check_keys(s)
        if not isinstance(other, set | frozenset | dict) and type(other) not in _VIEWS:
            other = g.check_keys(other)
        return type(s).isdisjoint(s, other)

    guards["isdisjoint"] = [((set, frozenset, *_VIEWS), isdisjoint)]
    for name in ("intersection_update", "difference_update", "symmetric_difference_update"):
        guards[name] = [(set, set_operation(name))]
    return {name: _MethodGuard(name, forms) for name, forms in guards.items()}


def _text_base(value):
    return str if isinstance(value, str) else bytes


def _seq_base(value):
    return list if isinstance(value, list) else tuple


def _map_base(value):
    return dict if isinstance(value, dict) else set


def _set_base(value):
    return set if isinstance(value, set) else frozenset


class _ListWriter:
    """`items[...] = value` on a list: a slice assignment may grow it, like `extend`."""

    __slots__ = ("_items", "_guards")

    def __init__(self, items: list, guards: Guards):
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_guards", guards)

    def __setitem__(self, index, value):
        items = self._items
        if type(index) is slice:
            values = value if hasattr(value, "__len__") else list(value)
            replaced = len(range(*index.indices(len(items))))
            self._guards.check_length(len(items) - replaced + len(values), "列表")
            items[index] = values
        else:
            items[index] = value

    def __delitem__(self, index):
        del self._items[index]

    def __setattr__(self, name, value):
        raise AttributeError(f"不能给列表设置属性 {name}")

    def __delattr__(self, name):
        raise AttributeError(f"不能删除列表的属性 {name}")


class _DictWriter:
    """`mapping[key] = value`: hashing a nested tuple key walks it."""

    __slots__ = ("_mapping", "_guards")

    def __init__(self, mapping: dict, guards: Guards):
        object.__setattr__(self, "_mapping", mapping)
        object.__setattr__(self, "_guards", guards)

    def __setitem__(self, key, value):
        kind = type(key)
        self._mapping[key if kind is str or kind is int else self._guards.key(key)] = value

    def __delitem__(self, key):
        del self._mapping[key]

    def __setattr__(self, name, value):
        raise AttributeError(f"不能给字典设置属性 {name}")

    def __delattr__(self, name):
        raise AttributeError(f"不能删除字典的属性 {name}")
