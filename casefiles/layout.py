"""Submitted form data laid out for reading: each value under its form's Chinese title, choices by their labels.

A step's data is laid out with the JSON Schema form of that step in the case's own process version, so a
field reads as the person who filled it in saw it ("审批意见：不予批准"), never as a raw key and code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

# Keys every step may carry that the form does not title itself.
COMMON_TITLES = {"decision": "决定", "comment": "意见"}


@dataclass
class Item:
    """One laid-out value: a label and either text, nested items, or a table."""

    label: str
    text: str | None = None
    children: list[Item] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "table" if self.columns else "group" if self.children else "text"


def _options(schema: dict) -> dict[str, str]:
    found = {}
    for option in schema.get("oneOf") or schema.get("anyOf") or []:
        if isinstance(option, dict) and "const" in option:
            found[_key(option["const"])] = str(option.get("title") or option["const"])
    for value in schema.get("enum") or []:
        found.setdefault(_key(value), str(value))
    return found


def _key(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attachment_id(value) -> int | None:
    """The attachment id a form value refers to ("attachment:12"), if it is one."""
    if isinstance(value, str) and value.startswith("attachment:") and value[11:].isdigit():
        return int(value[11:])
    return None


def text_of(value, schema: dict | None = None, attachments: dict[int, str] | None = None) -> str:
    """A scalar (or a list of scalars) as text, with its choice labels."""
    schema = schema or {}
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _options(schema).get(_key(value)) or ("是" if value else "否")
    if isinstance(value, list):
        items = schema.get("items") or {}
        return "、".join(text_of(v, items, attachments) for v in value) or "—"
    ref = attachment_id(value)
    if ref is not None:
        name = (attachments or {}).get(ref)
        return f"附件 #{ref}" + (f"（{name}）" if name else "")
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _options(schema).get(_key(value), str(value))


def lay_out(schema: dict | None, data: dict, attachments: dict[int, str] | None = None) -> list[Item]:
    """Lay out a dict of submitted values with the form that took them: schema order first, then the rest."""
    schema = schema or {}
    props = schema.get("properties") or {}
    keys = [k for k in props if k in data] + [k for k in data if k not in props]
    items = []
    for key in keys:
        sub = props.get(key) or {}
        label = str(sub.get("title") or COMMON_TITLES.get(key) or key)
        items.append(_item(label, sub, data[key], attachments))
    return items


def _item(label: str, schema: dict, value, attachments) -> Item:
    if isinstance(value, dict):
        return Item(label, children=lay_out(schema, value, attachments) or [Item("—", "—")])
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        row_schema = schema.get("items") or {}
        props = row_schema.get("properties") or {}
        keys = [k for k in props if any(k in row for row in value)]
        keys += [k for row in value for k in row if k not in props and k not in keys]
        keys = list(dict.fromkeys(keys))
        columns = [str((props.get(k) or {}).get("title") or k) for k in keys]
        rows = [[_cell(props.get(k) or {}, row.get(k), attachments) for k in keys] for row in value]
        return Item(label, columns=columns, rows=rows)
    return Item(label, text_of(value, schema, attachments))


def _cell(schema: dict, value, attachments) -> str:
    if isinstance(value, dict):
        return "；".join(f"{i.label}：{i.text or ''}" for i in lay_out(schema, value, attachments))
    return text_of(value, schema, attachments)
