"""Forms are JSON Schema: checking submitted data against one, with errors in Chinese per field.

Process forms live beside their diagrams (bpmn/<process>/forms/) and are stored with each deployed
version; the forms of the register itself (registering an elder) live in this folder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from .. import clock

HERE = Path(__file__).parent


@cache
def _load(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def load(name: str) -> dict:
    """A form of the register, by file name (a fresh copy: callers fill in choices)."""
    return json.loads(_load(name))


def validate(schema: Mapping[str, Any] | None, data: Mapping[str, Any]) -> dict[str, str]:
    """Check submitted data against a step's JSON Schema; return {field: Chinese message}."""
    errors: dict[str, str] = {}
    _find_unstorable_numbers(data, "", errors)
    if not schema:
        return errors
    _check_date_bounds(schema, data, "", errors)
    validator = _validator_for(schema)
    for error in sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            key = ".".join(filter(None, [path, missing[0] if missing else ""]))
            errors.setdefault(key or "_", "此项为必填项")
        else:
            errors.setdefault(path or "_", _chinese_message(error, schema))
    return errors


# --------------------------------------------------------------------------------------------------
# Dates with bounds. A date field may say how early or late it may be:
#   "x-latest": "today"        a date of something that happened (a visit, a call): not after today
#   "x-earliest": "today"      a date planned ahead: not before today
# Either takes "today", "today+N" / "today-N" (days) or a fixed date (YYYY-MM-DD). Today is the office's
# day (Asia/Shanghai, from the injectable clock); the page gives the browser's date picker the same bounds.

_BOUND = re.compile(r"^today(?:([+-])(\d{1,5}))?$")


def date_bound(spec) -> date | None:
    """The day a bound names, or None when it names none."""
    if not isinstance(spec, str):
        return None
    text = spec.strip()
    match = _BOUND.match(text)
    if match:
        offset = int(match.group(2) or 0) * (-1 if match.group(1) == "-" else 1)
        return clock.today() + timedelta(days=offset)
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _check_date_bounds(schema: Mapping, data, path: str, errors: dict[str, str]) -> None:
    if not isinstance(data, Mapping):
        return
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping) or key not in data:
            continue
        where = f"{path}.{key}" if path else key
        value = data[key]
        kind = sub.get("type")
        if kind == "object":
            _check_date_bounds(sub, value, where, errors)
        elif kind == "array" and isinstance(value, list) and isinstance(sub.get("items"), Mapping):
            for index, item in enumerate(value):
                _check_date_bounds(sub["items"], item, f"{where}.{index}", errors)
        elif sub.get("format") == "date" and isinstance(value, str):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                continue  # the format check words this one
            latest, earliest = date_bound(sub.get("x-latest")), date_bound(sub.get("x-earliest"))
            title = sub.get("title") or "日期"
            if latest is not None and day > latest:
                errors.setdefault(where, f"{title}不能晚于{_bound_words(sub.get('x-latest'), latest)}")
            elif earliest is not None and day < earliest:
                errors.setdefault(where, f"{title}不能早于{_bound_words(sub.get('x-earliest'), earliest)}")


def _bound_words(spec: str, bound: date) -> str:
    return "今天" if spec.strip() == "today" else f" {bound.isoformat()}"


# The numbers a case can hold: finite, and integers no larger than JSON readers keep exactly (a browser's
# included). Anything else would be refused by the state encoder, or silently stored as null (NaN).
_SAFE_INTEGER = 2**53 - 1


def _find_unstorable_numbers(value, path: str, errors: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _find_unstorable_numbers(item, f"{path}.{key}" if path else str(key), errors)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _find_unstorable_numbers(item, f"{path}.{index}" if path else str(index), errors)
    elif _is_number(value) and (not math.isfinite(value) or abs(value) > _SAFE_INTEGER):
        errors.setdefault(path or "_", "数值超出允许范围")


def _is_number(value) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


_validators: dict[str, Any] = {}
_validators_by_id: dict[int, tuple[Mapping, Any]] = {}


def _validator_for(schema):
    # Forms come from the cached process runtimes, so the same dict returns on every step: look it up
    # by identity first (holding the dict, so its id cannot be reused), by content otherwise.
    known = _validators_by_id.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    key = orjson.dumps(schema, default=str).decode("utf-8")
    validator = _validators.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        _validators[key] = validator
    if len(_validators_by_id) < 10_000:
        _validators_by_id[id(schema)] = (schema, validator)
    return validator


def _chinese_message(error, schema) -> str:
    v = error.validator
    if v == "type":
        names = {
            "string": "文本",
            "integer": "整数",
            "number": "数字",
            "boolean": "是/否",
            "array": "列表",
            "object": "对象",
        }
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        return "应为" + "或".join(names.get(x, x) for x in expected)
    if v in ("enum", "oneOf", "anyOf"):
        return "不是允许的选项"
    if v == "const":
        return "取值不正确"
    if v == "minimum":
        return f"不能小于 {error.validator_value}"
    if v == "maximum":
        return f"不能大于 {error.validator_value}"
    if v == "exclusiveMinimum":
        return f"必须大于 {error.validator_value}"
    if v == "exclusiveMaximum":
        return f"必须小于 {error.validator_value}"
    if v == "minLength":
        return "不能为空" if error.validator_value == 1 else f"至少 {error.validator_value} 个字符"
    if v == "maxLength":
        return f"最多 {error.validator_value} 个字符"
    if v == "pattern":
        return "格式不正确"
    if v == "format":
        return {"date": "日期格式应为 YYYY-MM-DD", "date-time": "时间格式不正确"}.get(
            error.validator_value, "格式不正确"
        )
    if v == "minItems":
        return f"至少填写 {error.validator_value} 项"
    if v == "maxItems":
        return f"最多填写 {error.validator_value} 项"
    if v == "additionalProperties":
        return "包含不允许的字段"
    return "填写内容不符合要求"


# --------------------------------------------------------------------------------------------------
# What a form's choices say beyond their values. A choice (a `oneOf` entry) may carry:
#   "x-sends-back": true                  choosing it sends the case back (recorded as 退回 in the trail)
#   "x-requires-comment": "<message>"     choosing it needs a comment; the message says so


def chosen_options(schema: Mapping[str, Any] | None, data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The choice entries of the form's top-level fields that the submitted data picked."""
    picked = []
    for key, prop in ((schema or {}).get("properties") or {}).items():
        if key not in data:
            continue
        for option in prop.get("oneOf") or ():
            if "const" in option and option["const"] == data[key]:
                picked.append(option)
    return picked


def offers_send_back(schema: Mapping[str, Any] | None) -> bool:
    """Whether one of the form's choices sends the case back (the page then explains the comment rule)."""
    return any(
        option.get("x-sends-back")
        for prop in ((schema or {}).get("properties") or {}).values()
        for option in prop.get("oneOf") or ()
    )
