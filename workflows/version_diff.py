"""What changed between two versions of a process in its forms and decision tables, in words.

The diagrams are compared in the browser (bpmn-js-differ draws the change on both diagrams); forms and
tables are files a person reads as fields and rules, so they are compared here by field and by rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lxml import etree


@dataclass
class FileChange:
    path: str
    kind: str  # "added", "removed", "changed"
    details: list[str] = field(default_factory=list)


def file_changes(old: dict[str, str], new: dict[str, str]) -> list[FileChange]:
    """The form and table files added, removed or changed between two versions' sources."""
    changes = []
    for path in sorted(set(old) | set(new)):
        if path.endswith(".bpmn") or old.get(path) == new.get(path):
            continue
        if path not in old:
            changes.append(FileChange(path, "added"))
        elif path not in new:
            changes.append(FileChange(path, "removed"))
        elif path.endswith(".json"):
            changes.append(FileChange(path, "changed", form_changes(old[path], new[path])))
        else:
            changes.append(FileChange(path, "changed", table_changes(old[path], new[path])))
    return changes


def form_changes(old_text: str, new_text: str) -> list[str]:
    """Fields added, removed or changed, and fields that became or stopped being required."""
    try:
        old, new = json.loads(old_text), json.loads(new_text)
    except json.JSONDecodeError:
        return ["内容已修改"]
    if not isinstance(old, dict) or not isinstance(new, dict):
        return ["内容已修改"]
    before, after = old.get("properties") or {}, new.get("properties") or {}
    out = [f"新增字段：{_field(k, after[k])}" for k in after if k not in before]
    out += [f"删除字段：{_field(k, before[k])}" for k in before if k not in after]
    out += [f"字段有变化：{_field(k, after[k])}" for k in after if k in before and before[k] != after[k]]
    added = sorted(set(new.get("required") or []) - set(old.get("required") or []))
    dropped = sorted(set(old.get("required") or []) - set(new.get("required") or []))
    if added:
        out.append(f"新增必填：{'、'.join(added)}")
    if dropped:
        out.append(f"不再必填：{'、'.join(dropped)}")
    return out or ["内容已修改（字段未变）"]


def _field(key: str, prop) -> str:
    title = prop.get("title") if isinstance(prop, dict) else None
    return f"{title}（{key}）" if title else key


def table_changes(old_text: str, new_text: str) -> list[str]:
    """Rules of a decision table added, removed or changed (matched by rule id), with their cells."""
    before, after = _rules(old_text), _rules(new_text)
    if before is None or after is None:
        return ["内容已修改"]
    out = [f"新增规则：{after[r]}" for r in after if r not in before]
    out += [f"删除规则：{before[r]}" for r in before if r not in after]
    out += [f"规则有变化：{before[r]} → {after[r]}" for r in after if r in before and before[r] != after[r]]
    return out or ["内容已修改（规则未变）"]


def _rules(text: str) -> dict[str, str] | None:
    try:
        root = etree.fromstring(
            text.lstrip("\ufeff").encode("utf-8"), etree.XMLParser(resolve_entities=False)
        )
    except etree.XMLSyntaxError:
        return None
    return {
        rule.get("id"): " | ".join((cell.text or "").strip() for cell in rule.iter("{*}text"))
        for rule in root.iter("{*}rule")
    }
