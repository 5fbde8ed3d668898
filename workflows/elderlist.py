"""The elder register as a list: filtered by category, area, capability level and assessment expiry,
sorted and paged with the total. Identifiers are masked on screen; exports decide by role (exports.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from . import clock, elders
from .elders import in_area
from .listing import MAX_PAGE, MAX_PER_PAGE, PER_PAGE, Args, pages, query_args, require_within
from .models import Area, Elder, ElderStatus, User
from .models.elders import SUPPORT_FLAGS
from .rules.assessment import DisabilityLevel
from .rules.idnumber import mask_id_number
from .rules.phone import mask_phone

NO_ASSESSMENT = "none"  # no valid assessment (never assessed, or expired)
MAX_EXPIRING_DAYS = 366


class ElderSort(StrEnum):
    NAME = "name"
    AREA = "area"
    NEWEST = "newest"  # registered most recently first
    EXPIRY = "expiry"  # assessment expiring soonest first


SORT_LABELS = {
    ElderSort.NAME: "按姓名",
    ElderSort.AREA: "按村（社区）",
    ElderSort.NEWEST: "最新登记在前",
    ElderSort.EXPIRY: "评估最先到期在前",
}


@dataclass
class ElderFilter:
    q: str | None = None
    area: str | None = None
    flags: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    expiring: int | None = None  # assessment valid until within this many days from today
    status: ElderStatus | None = None
    sort: ElderSort = ElderSort.NAME
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, args) -> ElderFilter:
        a = Args(args)
        flags = tuple(dict.fromkeys(a.values("flag")))
        unknown = [f for f in flags if f not in SUPPORT_FLAGS]
        if unknown:
            a.errors["flag"] = f"不是老人档案的类别：{'、'.join(unknown)[:60]}"
        levels = tuple(dict.fromkeys(a.values("level")))
        allowed = {lv.value for lv in DisabilityLevel} | {NO_ASSESSMENT}
        if any(level not in allowed for level in levels):
            a.errors["level"] = "失能等级须为能力完好、轻度、中度、重度、完全失能或无有效评估"
        q = a.text("q")
        flt = cls(
            q=re.sub(r"\s+", "", q) if q else None,
            area=a.area("area"),
            flags=tuple(f for f in flags if f in SUPPORT_FLAGS),
            levels=tuple(lv for lv in levels if lv in allowed),
            expiring=a.number("expiring", None, 0, MAX_EXPIRING_DAYS),
            status=a.choice("status", ElderStatus),
            sort=a.choice("sort", ElderSort, ElderSort.NAME),
            page=a.number("page", 1, 1, MAX_PAGE),
            per_page=a.number("per_page", PER_PAGE, 1, MAX_PER_PAGE),
        )
        a.check()
        return flt

    def as_args(self, **changes) -> dict:
        values = {
            "q": self.q,
            "area": self.area,
            "flag": list(self.flags) or None,
            "level": list(self.levels) or None,
            "expiring": self.expiring,
            "status": self.status,
            "sort": self.sort if self.sort != ElderSort.NAME else None,
            "per_page": self.per_page if self.per_page != PER_PAGE else None,
            "page": self.page if self.page != 1 else None,
        }
        values.update(changes)
        return query_args(values)

    @property
    def narrowed(self) -> bool:
        return bool(set(self.as_args(sort=None, page=None, per_page=None)))


@dataclass
class ElderRow:
    id: int
    name: str
    id_number: str  # full; pages show `id_number_masked`
    phone: str | None
    sex: str
    birth_date: date
    age: int
    area_code: str
    area_path: str
    address: str
    flags: list[str]
    disability_level: str | None  # the current (valid) level
    assessment_valid_until: date | None
    status: str

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def phone_masked(self) -> str | None:
        return mask_phone(self.phone) if self.phone else None


@dataclass
class ElderPage:
    filter: ElderFilter
    rows: list[ElderRow]
    total: int

    @property
    def pages(self) -> int:
        return pages(self.total, self.filter.per_page)


def _conditions(actor: User, flt: ElderFilter, today: date) -> list:
    require_within(actor, flt.area)
    conds = [in_area(Elder.residence_area_code, actor.area_code)]
    if flt.area:
        conds.append(in_area(Elder.residence_area_code, flt.area))
    for flag in flt.flags:
        conds.append(getattr(Elder, flag).is_(True))
    if flt.levels:
        valid = Elder.disability_valid_until >= today
        wanted = [lv for lv in flt.levels if lv != NO_ASSESSMENT]
        options = []
        if wanted:
            options.append(and_(Elder.disability_level.in_([DisabilityLevel(lv) for lv in wanted]), valid))
        if NO_ASSESSMENT in flt.levels:
            options.append(
                or_(
                    Elder.disability_level.is_(None),
                    Elder.disability_valid_until.is_(None),
                    Elder.disability_valid_until < today,
                )
            )
        conds.append(or_(*options))
    if flt.expiring is not None:
        conds.append(Elder.disability_valid_until.between(today, today + timedelta(days=flt.expiring)))
    if flt.status is not None:
        conds.append(Elder.status == flt.status)
    if flt.q:
        conds.append(
            or_(
                Elder.name.contains(flt.q, autoescape=True),
                Elder.id_number.contains(flt.q.upper(), autoescape=True),
            )
        )
    return conds


def _order(flt: ElderFilter):
    if flt.sort == ElderSort.AREA:
        return [Elder.residence_area_code, Elder.name, Elder.id]
    if flt.sort == ElderSort.NEWEST:
        return [Elder.created_at.desc(), Elder.id.desc()]
    if flt.sort == ElderSort.EXPIRY:
        return [Elder.disability_valid_until.asc().nulls_last(), Elder.id]
    if flt.q:  # exact matches first, as the register's search does
        first = case(
            (Elder.id_number == flt.q.upper(), 0),
            (Elder.name == flt.q, 1),
            (Elder.name.startswith(flt.q, autoescape=True), 2),
            else_=3,
        )
        return [first, Elder.name, Elder.id]
    return [Elder.name, Elder.id]


def list_elders(session: Session, actor: User, flt: ElderFilter) -> ElderPage:
    """One page of the register in the actor's area, and how many match in all."""
    elders.require_role(actor, elders.READ_ROLES, "查看老人档案")
    today = clock.today()
    conds = _conditions(actor, flt, today)
    total = session.scalar(select(func.count()).select_from(Elder).where(*conds)) or 0
    found = session.scalars(
        select(Elder)
        .where(*conds)
        .order_by(*_order(flt))
        .limit(flt.per_page)
        .offset((flt.page - 1) * flt.per_page)
    ).all()
    return ElderPage(flt, _rows(session, found, today), total)


def iter_elders(session: Session, actor: User, flt: ElderFilter, limit: int) -> tuple[list[ElderRow], int]:
    """Every matching elder up to `limit` (for an export), and how many match in all."""
    elders.require_role(actor, elders.READ_ROLES, "查看老人档案")
    today = clock.today()
    conds = _conditions(actor, flt, today)
    total = session.scalar(select(func.count()).select_from(Elder).where(*conds)) or 0
    found = session.scalars(select(Elder).where(*conds).order_by(*_order(flt)).limit(limit)).all()
    return _rows(session, found, today), total


def area_paths(session: Session, codes) -> dict[str, str]:
    """Full names (温县祥云镇祥云村) of area codes, from one read of their ancestors."""
    wanted = {c for c in codes if c}
    needed = {c[:n] for c in wanted for n in (6, 9, 12) if len(c) >= n}
    names = (
        dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(needed))).all())
        if needed
        else {}
    )
    return {c: "".join(names.get(c[:n], c[:n]) for n in (6, 9, 12) if len(c) >= n) for c in wanted}


def _rows(session: Session, found, today: date) -> list[ElderRow]:
    paths = area_paths(session, [e.residence_area_code for e in found])
    out = []
    for e in found:
        level = e.current_disability_level(today)
        out.append(
            ElderRow(
                id=e.id,
                name=e.name,
                id_number=e.id_number,
                phone=e.phone,
                sex=e.sex.value,
                birth_date=e.birth_date,
                age=e.age_on(today),
                area_code=e.residence_area_code,
                area_path=paths.get(e.residence_area_code, e.residence_area_code),
                address=e.address,
                flags=[f for f in SUPPORT_FLAGS if getattr(e, f, False)],
                disability_level=level.value if level else None,
                assessment_valid_until=e.disability_valid_until,
                status=e.status.value,
            )
        )
    return out


def village_options(session: Session, actor: User) -> list[tuple[str, str]]:
    """Townships and villages in the actor's area, for the filter form."""
    areas = session.scalars(
        select(Area)
        .where(in_area(Area.code, actor.area_code), func.length(Area.code) > 6)
        .order_by(Area.code)
    ).all()
    return [(a.code, ("　" if len(a.code) == 12 else "") + a.name) for a in areas]
