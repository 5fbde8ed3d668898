"""Administrative areas (行政区划): a county, its townships and their villages, added one by one.

Codes are the statistical codes cut to 6 / 9 / 12 digits, so a code's level and its parent follow from the
code itself (410825 温县 → 410825100 祥云镇 → 410825100201 祥云村). An administrator adds, renames and
retires areas inside their own; an area is never deleted (cases, elders and the log refer to it), it is
retired once nobody works or lives in it any more. Every change is written to the administration log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import admin_log, clock
from .errors import Conflict, NotFound, PermissionDenied, RegistryError
from .models import Case, CaseStatus, Elder, ElderStatus, User
from .models.registry import Area, AreaLevel
from .users import manages as _manages
from .users import require_admin as _require_admin

_LEVELS = {6: AreaLevel.COUNTY, 9: AreaLevel.TOWNSHIP, 12: AreaLevel.VILLAGE}
_LABELS = {
    AreaLevel.COUNTY: "县（市、区）",
    AreaLevel.TOWNSHIP: "乡镇（街道）",
    AreaLevel.VILLAGE: "村（社区）",
}


def _clean_name(name) -> tuple[str, str | None]:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 64:
        return name, "请填写区划名称（最多64个字）"
    return name, None


def add_area(session: Session, code: str, name: str, *, actor: User | None = None) -> Area:
    """Add an area under its parent (which must exist already); a county has no parent here.

    An administrator adds areas below their own only (a county's administrator adds townships and
    villages; a township's, villages); the command line on the server (no actor) adds counties too."""
    _require_admin(actor)
    code = code.strip() if isinstance(code, str) else ""
    name, name_error = _clean_name(name)
    errors: dict[str, str] = {}
    level = _LEVELS.get(len(code)) if re.fullmatch(r"\d+", code, re.ASCII) else None
    parent_code = {AreaLevel.TOWNSHIP: code[:6], AreaLevel.VILLAGE: code[:9]}.get(level)
    parent = session.get(Area, parent_code) if parent_code else None
    if level is None:
        errors["code"] = "行政区划代码应为6位（县）、9位（乡镇）或12位（村）数字"
    elif actor is not None and (code == actor.area_code or not _manages(actor, code)):
        errors["code"] = f"只能在本人管辖的区划（{actor.area_code}）下添加下级区划"
    elif session.get(Area, code) is not None:
        errors["code"] = f"行政区划代码 {code} 已存在"
    elif parent_code and parent is None:
        errors["code"] = f"上级区划 {parent_code} 不存在，请先添加"
    elif parent is not None and parent.retired_at is not None:
        errors["code"] = f"上级区划 {parent.name} 已撤销，不能再添加下级"
    if name_error:
        errors["name"] = name_error
    if errors:
        raise RegistryError("区划信息有误：" + "；".join(errors.values()), field_errors=errors)
    area = Area(code=code, name=name, level=level, parent_code=parent_code)
    try:
        with session.begin_nested():  # two administrators adding the same code at once: one wins
            session.add(area)
            session.flush()
    except IntegrityError:
        message = f"行政区划代码 {code} 已存在"
        raise RegistryError(message, field_errors={"code": message}) from None
    admin_log.record(session, actor, "area", code, "added", f"添加{_LABELS[level]} {code} {name}")
    return area


def get_area(session: Session, actor: User | None, code: str) -> Area:
    _require_admin(actor)
    area = session.get(Area, code) if isinstance(code, str) and code else None
    if area is None:
        raise NotFound("行政区划不存在")
    if not _manages(actor, area.code):
        raise PermissionDenied("无权管理其他辖区的区划")
    return area


def rename_area(session: Session, actor: User | None, code: str, name: str) -> Area:
    """Rename an area (a township becoming a street office keeps its code and history)."""
    area = get_area(session, actor, code)
    name, problem = _clean_name(name)
    if problem:
        raise RegistryError(problem, field_errors={"name": problem})
    if name != area.name:
        old = area.name
        area.name = name
        session.flush()
        admin_log.record(
            session,
            actor,
            "area",
            code,
            "renamed",
            f"{code} 更名：{old} → {name}",
            changes={"name": (old, name)},
        )
    return area


@dataclass
class InUse:
    """What still lives or works in an area (and those below it)."""

    areas: int = 0
    users: int = 0
    elders: int = 0
    cases: int = 0

    def words(self) -> list[str]:
        parts = [
            (self.areas, "个未撤销的下级区划"),
            (self.users, "个启用的用户"),
            (self.elders, "位在册老人"),
            (self.cases, "件办理中的案件"),
        ]
        return [f"{n} {what}" for n, what in parts if n]


def in_use(session: Session, code: str) -> InUse:
    inside = Area.code.startswith(code, autoescape=True)
    return InUse(
        areas=session.scalar(
            select(func.count()).select_from(Area).where(inside, Area.code != code, Area.retired_at.is_(None))
        ),
        users=session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.area_code.startswith(code, autoescape=True), User.is_active.is_(True))
        ),
        elders=session.scalar(
            select(func.count())
            .select_from(Elder)
            .where(
                Elder.residence_area_code.startswith(code, autoescape=True),
                Elder.status == ElderStatus.ACTIVE,
            )
        ),
        cases=session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.area_code.startswith(code, autoescape=True), Case.status == CaseStatus.RUNNING)
        ),
    )


def retire_area(session: Session, actor: User | None, code: str, reason: str) -> Area:
    """Retire an area nobody works or lives in any more (villages merged, say); refused while anything does."""
    area = get_area(session, actor, code)
    if actor is not None and area.code == actor.area_code:
        raise PermissionDenied("不能撤销本人所在的区划")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RegistryError("请填写撤销原因", field_errors={"reason": "请填写撤销原因"})
    if area.retired_at is not None:
        raise Conflict(f"{area.name} 已于 {clock.local_text(area.retired_at, '%Y-%m-%d')} 撤销")
    left = in_use(session, code).words()
    if left:
        message = f"{area.name} 仍有" + "、".join(left) + "，请先迁移或停用后再撤销"
        raise Conflict(message)
    area.retired_at = clock.now()
    session.flush()
    admin_log.record(session, actor, "area", code, "retired", f"撤销 {code} {area.name}：{reason}")
    return area


def restore_area(session: Session, actor: User | None, code: str) -> Area:
    """Bring a retired area back into use (its parent must be in use)."""
    area = get_area(session, actor, code)
    if area.retired_at is None:
        return area
    parent = session.get(Area, area.parent_code) if area.parent_code else None
    if parent is not None and parent.retired_at is not None:
        raise Conflict(f"上级区划 {parent.name} 已撤销，请先恢复上级")
    area.retired_at = None
    session.flush()
    admin_log.record(session, actor, "area", code, "restored", f"恢复 {code} {area.name}")
    return area


def list_areas(session: Session, actor: User | None = None, *, include_retired: bool = True) -> list[Area]:
    """The areas (inside the actor's area, when given), in code order: a tree read top-down."""
    query = select(Area).order_by(Area.code)
    if actor is not None:
        query = query.where(Area.code.startswith(actor.area_code[:6], autoescape=True))
    if not include_retired:
        query = query.where(Area.retired_at.is_(None))
    return [a for a in session.scalars(query) if actor is None or _relevant(actor, a)]


def _relevant(actor: User, area: Area) -> bool:
    # The actor's own area, those below it, and those above it (to show where it sits).
    return area.code.startswith(actor.area_code) or actor.area_code.startswith(area.code)


@dataclass
class Node:
    area: Area
    label: str
    managed: bool
    users: int = 0
    elders: int = 0
    children: list[Node] = field(default_factory=list)


def area_tree(session: Session, actor: User | None) -> list[Node]:
    """The areas as a tree with the number of users and elders of each, for the areas page."""
    _require_admin(actor)
    found = list_areas(session, actor)
    users = dict(session.execute(select(User.area_code, func.count()).group_by(User.area_code)).all())
    elders = dict(
        session.execute(
            select(Elder.residence_area_code, func.count())
            .where(Elder.status == ElderStatus.ACTIVE)
            .group_by(Elder.residence_area_code)
        ).all()
    )
    nodes = {
        a.code: Node(
            a, _LABELS[a.level], _manages(actor, a.code), users.get(a.code, 0), elders.get(a.code, 0)
        )
        for a in found
    }
    roots = []
    for area in found:
        parent = nodes.get(area.parent_code) if area.parent_code else None
        (parent.children if parent is not None else roots).append(nodes[area.code])
    return roots


def assignable_areas(session: Session, actor: User | None) -> list[Area]:
    """Areas in use an administrator may put an account in (their own and below)."""
    return [
        a
        for a in list_areas(session, actor, include_retired=False)
        if actor is None or _manages(actor, a.code)
    ]


def level_label(area: Area) -> str:
    return _LABELS[area.level]
