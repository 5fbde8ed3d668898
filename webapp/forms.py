"""Task forms: a step's JSON Schema turned into fields for the Jinja macros, and posted fields turned back
into data of the schema's types. Submitted values are kept as typed so a refused form comes back intact.

Field names are `f.` + the data path (`f.contacts.0.name`); what a person typed is carried as a flat
{name: [strings]} map both ways, so the same macros render a fresh form, a pre-filled one and a refused one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup

from workflows import forms as workflow_forms
from workflows import instructions

PREFIX = "f."
ATTACHMENT = "attachment:"
_ROW_INDEX = re.compile(r"^(\d+)\.")


@dataclass
class Field:
    """One field of a rendered form (kinds: text textarea integer number date select radio bool checkbox
    checkboxes file object array)."""

    kind: str
    name: str  # the HTML name
    path: str  # the data path, as errors name it
    label: str
    help: str | None = None
    required: bool = False
    values: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    children: list[Field] = field(default_factory=list)  # object members, or one array row's fields
    rows: list[list[Field]] = field(default_factory=list)
    template_row: list[Field] = field(default_factory=list)  # array rows are cloned from it (index __i__)

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


def _options(schema: dict, ui: dict) -> list[tuple[str, str]]:
    if "oneOf" in schema or "anyOf" in schema:
        choices = schema.get("oneOf") or schema.get("anyOf") or []
        if all(isinstance(c, dict) and "const" in c for c in choices):
            return [(_text(c["const"]), c.get("title") or _text(c["const"])) for c in choices]
    if "enum" in schema:
        names = ui.get("ui:enumNames") or schema.get("enumNames") or []
        return [(_text(v), names[i] if i < len(names) else _text(v)) for i, v in enumerate(schema["enum"])]
    return []


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _kind(schema: dict, ui: dict) -> str:
    widget = ui.get("ui:widget") or schema.get("x-widget")
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return "object"
    if kind == "array":
        items = schema.get("items") or {}
        if items.get("type") == "object":
            return "array"
        return "checkboxes"
    if widget in ("file", "FileWidget") or schema.get("format") == "data-url":
        return "file"
    if _options(schema, ui):
        return "radio" if widget == "radio" else "select"
    if kind == "boolean":
        # A yes/no pair by default; a single tick box (unticked: not stated) when the UI schema asks.
        return "checkbox" if widget in ("checkbox", "CheckboxWidget") else "bool"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if schema.get("format") == "date" or widget == "date":
        return "date"
    if widget == "textarea" or schema.get("format") == "textarea" or (schema.get("maxLength") or 0) > 100:
        return "textarea"
    return "text"


def build_fields(
    schema: dict | None,
    ui_schema: dict | None = None,
    values: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
) -> list[Field]:
    """The fields of a form, filled from `values` ({html name: [strings]}), with errors beside them."""
    if not schema:
        return []
    return _object_fields(schema, ui_schema or {}, "", values or {}, errors or {})


def _ordered(schema: dict, ui: dict) -> list[str]:
    names = list((schema.get("properties") or {}).keys())
    order = ui.get("ui:order")
    if order:
        head = [n for n in order if n in names]
        return head + [n for n in names if n not in head]
    return names


def _object_fields(schema, ui, base, values, errors) -> list[Field]:
    required = set(schema.get("required") or [])
    out = []
    for key in _ordered(schema, ui):
        sub = (schema.get("properties") or {})[key]
        sub_ui = ui.get(key) or {}
        if sub_ui.get("ui:widget") == "hidden":
            continue
        out.append(_field(sub, sub_ui, f"{base}{key}", key in required, values, errors))
    return out


def _field(schema, ui, path, required, values, errors) -> Field:
    kind = _kind(schema, ui)
    name = PREFIX + path
    f = Field(
        kind=kind,
        name=name,
        path=path,
        label=schema.get("title") or path.rsplit(".", 1)[-1],
        help=ui.get("ui:help") or schema.get("description"),
        required=required,
        values=list(values.get(name, [])),
        error=errors.get(path),
    )
    if kind in ("select", "radio"):
        f.options = _options(schema, ui)
    elif kind == "checkboxes":
        f.options = _options(schema.get("items") or {}, ui.get("items") or {})
    elif kind in ("integer", "number"):
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if key in schema:
                f.attrs[attr] = schema[key]
        f.attrs["step"] = schema.get("multipleOf", 1 if kind == "integer" else "any")
    elif kind == "date":
        # The browser's date picker keeps to the bounds the server checks (x-earliest / x-latest).
        for key, attr in (("x-earliest", "min"), ("x-latest", "max")):
            bound = workflow_forms.date_bound(schema.get(key))
            if bound is not None:
                f.attrs[attr] = bound.isoformat()
    elif kind in ("text", "textarea"):
        if "maxLength" in schema:
            f.attrs["maxlength"] = schema["maxLength"]
        if ui.get("ui:placeholder"):
            f.attrs["placeholder"] = ui["ui:placeholder"]
    elif kind == "object":
        f.children = _object_fields(schema, ui, path + ".", values, errors)
    elif kind == "array":
        items = schema.get("items") or {}
        items_ui = ui.get("items") or {}
        indices = sorted(
            {
                int(m.group(1))
                for n in values
                if n.startswith(name + ".") and (m := _ROW_INDEX.match(n[len(name) + 1 :]))
            }
        )
        f.rows = [_object_fields(items, items_ui, f"{path}.{i}.", values, errors) for i in indices]
        minimum = schema.get("minItems") or 0
        while len(f.rows) < max(minimum, 1 if not indices else 0):
            f.rows.append(_object_fields(items, items_ui, f"{path}.{len(f.rows)}.", {}, errors))
        f.template_row = _object_fields(items, items_ui, f"{path}.__i__.", {}, {})
        f.attrs["next_index"] = (max(indices) + 1) if indices else len(f.rows)
        f.attrs["min_items"] = minimum
        f.children = f.template_row
    return f


# --------------------------------------------------------------------------------------------------
# Data -> flat values (to pre-fill a form) and posted values -> data


# A decision and its comment belong to one step: an approver's "send back" must not come pre-selected on
# the caseworker's review form it returns to.
ACT_FIELDS = frozenset({"decision", "comment"})


def flatten(schema: dict | None, data: dict | None) -> dict[str, list[str]]:
    """Case data as the flat {html name: [strings]} map a step's form is pre-filled from."""
    out: dict[str, list[str]] = {}
    if schema and data:
        _flatten_object(schema, {k: v for k, v in data.items() if k not in ACT_FIELDS}, "", out)
    return out


def _flatten_object(schema, data, base, out):
    for key, sub in (schema.get("properties") or {}).items():
        if key in data and data[key] is not None:
            _flatten_value(sub, data[key], f"{base}{key}", out)


def _flatten_value(schema, value, path, out):
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        _flatten_object(schema, value, path + ".", out)
    elif kind == "array" and isinstance(value, list):
        if (schema.get("items") or {}).get("type") == "object":
            for i, row in enumerate(value):
                if isinstance(row, dict):
                    _flatten_object(schema["items"], row, f"{path}.{i}.", out)
        else:
            out[PREFIX + path] = [_text(v) for v in value]
    else:
        out[PREFIX + path] = [_text(value)]


def posted_values(form) -> dict[str, list[str]]:
    """The form fields of a request (a werkzeug MultiDict) as {html name: [strings]}."""
    return {k: [v for v in form.getlist(k)] for k in form if k.startswith(PREFIX)}


def compact(schema: dict | None, values: dict[str, list[str]]) -> dict[str, list[str]]:
    """Drop rows left empty in repeated sections and number the rest 0, 1, 2... as the data will be, so
    that errors (which name positions in the data) land beside the right row."""
    if not schema:
        return dict(values)
    return _compact_object(schema, dict(values), "")


def _compact_object(schema, values, base):
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{base}{key}"
        if sub.get("type") == "object":
            values = _compact_object(sub, values, path + ".")
        elif sub.get("type") == "array" and (sub.get("items") or {}).get("type") == "object":
            name = PREFIX + path
            indices = sorted(
                {
                    int(m.group(1))
                    for n in values
                    if n.startswith(name + ".") and (m := _ROW_INDEX.match(n[len(name) + 1 :]))
                }
            )
            rows = [
                {n[len(f"{name}.{i}.") :]: v for n, v in values.items() if n.startswith(f"{name}.{i}.")}
                for i in indices
            ]
            rows = [r for r in rows if any(s.strip() for vs in r.values() for s in vs)]
            values = {n: v for n, v in values.items() if not n.startswith(name + ".")}
            for j, row in enumerate(rows):
                for rest, v in row.items():
                    values[f"{name}.{j}.{rest}"] = v
            for j in range(len(rows)):
                values = _compact_object(sub["items"], values, f"{path}.{j}.")
    return values


def parse(schema: dict | None, values: dict[str, list[str]]) -> tuple[dict, dict[str, str]]:
    """Turn posted strings into data of the schema's types; return the data and {path: Chinese error}."""
    data: dict = {}
    errors: dict[str, str] = {}
    if schema:
        _parse_object(schema, values, "", data, errors)
    return data, errors


def _parse_object(schema, values, base, out, errors):
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{base}{key}"
        kind = sub.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        name = PREFIX + path
        if kind == "object":
            child: dict = {}
            _parse_object(sub, values, path + ".", child, errors)
            if child:
                out[key] = child
        elif kind == "array" and (sub.get("items") or {}).get("type") == "object":
            indices = sorted(
                {
                    int(m.group(1))
                    for n in values
                    if n.startswith(name + ".") and (m := _ROW_INDEX.match(n[len(name) + 1 :]))
                }
            )
            rows = []
            for i in indices:  # `compact` has dropped empty rows and numbered the rest
                row: dict = {}
                _parse_object(sub["items"], values, f"{path}.{i}.", row, errors)
                rows.append(row)
            if rows or name in values:  # the page's marker: the list was on the form, left empty
                out[key] = rows
        elif kind == "array":
            items = [v for v in values.get(name, []) if v != ""]
            item_type = (sub.get("items") or {}).get("type")
            converted = []
            for v in items:
                value, problem = _convert(item_type, v, sub.get("items") or {})
                if problem:
                    errors[path] = problem
                else:
                    converted.append(value)
            if converted or name in values:
                out[key] = converted
        else:
            raw = values.get(name, [""])
            text = raw[0].strip() if raw else ""
            if text == "":
                continue  # absent: `required` decides whether that is allowed
            value, problem = _convert(kind, text, sub)
            if problem:
                errors[path] = problem
            else:
                out[key] = value


def _convert(kind, text: str, schema: dict) -> tuple[Any, str | None]:
    """One posted string as a value of a JSON Schema type (or the Chinese reason it cannot be)."""
    options = _options(schema, {})
    if options and kind in (None, "string"):
        return text, None
    if kind == "integer":
        try:
            return int(text), None
        except ValueError:
            return None, "应为整数"
    if kind == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None, "应为数字"
        if not number.is_finite():
            return None, "应为数字"
        return (int(number) if number == number.to_integral_value() and "." not in text else number), None
    if kind == "boolean":
        if text in ("true", "1", "on", "yes", "是"):
            return True, None
        if text in ("false", "0", "off", "no", "否"):
            return False, None
        return None, "请选择是或否"
    if schema.get("format") == "date":
        try:
            date.fromisoformat(text)
        except ValueError:
            return text, "日期格式应为 YYYY-MM-DD"
    return text, None


def file_fields(schema: dict | None, ui_schema: dict | None = None) -> list[str]:
    """Paths of the top-level file fields of a form (uploads become attachments)."""
    if not schema:
        return []
    ui = ui_schema or {}
    return [k for k, sub in (schema.get("properties") or {}).items() if _kind(sub, ui.get(k) or {}) == "file"]


def render_instructions(template: str | None, data: dict) -> Markup:
    """A step's instructions for the page: text the process owner wrote, escaped, lightly formatted."""
    return Markup(instructions.render(template, data))


# Case data never shown on the case page (routing facts the page shows elsewhere).
HIDDEN_DATA = frozenset({"case_area_code"})


def split_data(data: dict, labels: dict) -> tuple[dict, dict]:
    """Case data as the case page lists it: the keys a form gives a title, then the process's own (raw)."""
    named, other = {}, {}
    for key, value in data.items():
        if key in HIDDEN_DATA:
            continue
        if (labels.get(key) or {}).get("title"):
            named[key] = value
        else:
            other[key] = value
    return named, other


def data_labels(schemas: list[dict]) -> dict:
    """Titles and option labels of case-data keys, from the forms that wrote them (the first form wins):
    {key: {"title": str, "options": {value: label}, "props": {...the same for nested keys}}}."""
    labels: dict = {}
    for schema in schemas:
        _merge_labels(schema, labels)
    # Every step writes its own decision and comment over the last one's: the case holds the latest.
    for key, title in ACT_TITLES.items():
        if key in labels:
            labels[key]["title"] = title
    return labels


ACT_TITLES = {"decision": "最近一次办理决定", "comment": "最近一次办理意见"}


def _merge_labels(schema: dict, into: dict) -> None:
    for key, sub in (schema.get("properties") or {}).items():
        entry = into.setdefault(key, {"title": None, "options": {}, "props": {}})
        entry["title"] = entry["title"] or sub.get("title")
        items = sub.get("items") or {}
        for value, text in _options(sub, {}) + _options(items, {}):
            entry["options"].setdefault(value, text)
        if sub.get("type") == "boolean":
            entry["options"].setdefault("true", "是")
            entry["options"].setdefault("false", "否")
        if sub.get("type") == "object":
            _merge_labels(sub, entry["props"])
        if items.get("type") == "object":
            _merge_labels(items, entry["props"])
