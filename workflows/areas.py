"""Administrative areas (行政区划): a county, its townships and their villages, added one by one.

Codes are the statistical codes cut to 6 / 9 / 12 digits, so a code's level and its parent follow from the
code itself (410825 温县 → 410825100 祥云镇 → 410825100201 祥云村).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import RegistryError
from .models.registry import Area, AreaLevel

_LEVELS = {6: AreaLevel.COUNTY, 9: AreaLevel.TOWNSHIP, 12: AreaLevel.VILLAGE}
_LABELS = {
    AreaLevel.COUNTY: "县（市、区）",
    AreaLevel.TOWNSHIP: "乡镇（街道）",
    AreaLevel.VILLAGE: "村（社区）",
}


def add_area(session: Session, code: str, name: str) -> Area:
    """Add an area under its parent (which must exist already); a county has no parent here."""
    code, name = (code or "").strip(), (name or "").strip()
    errors: dict[str, str] = {}
    level = _LEVELS.get(len(code)) if re.fullmatch(r"\d+", code, re.ASCII) else None
    parent_code = {AreaLevel.TOWNSHIP: code[:6], AreaLevel.VILLAGE: code[:9]}.get(level)
    if level is None:
        errors["code"] = "行政区划代码应为6位（县）、9位（乡镇）或12位（村）数字"
    elif session.get(Area, code) is not None:
        errors["code"] = f"行政区划代码 {code} 已存在"
    elif parent_code and session.get(Area, parent_code) is None:
        errors["code"] = f"上级区划 {parent_code} 不存在，请先添加"
    if not name or len(name) > 64:
        errors["name"] = "请填写区划名称（最多64个字）"
    if errors:
        raise RegistryError("区划信息有误：" + "；".join(errors.values()), field_errors=errors)
    area = Area(code=code, name=name, level=level, parent_code=parent_code)
    session.add(area)
    session.flush()
    return area


def list_areas(session: Session) -> list[Area]:
    return list(session.scalars(select(Area).order_by(Area.code)))


def level_label(area: Area) -> str:
    return _LABELS[area.level]
