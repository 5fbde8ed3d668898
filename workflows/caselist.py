"""The case list: every case a person may read, filtered, sorted and paged, with the total.

One query for the page (ids first, then their rows joined with elder, area and version) and one count,
both on indexed columns; never a workflow state. Who sees what follows `cases.may_read`: the office's own
staff every case of their area, outside staff (providers, nursing homes) only the cases they work on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from . import access, clock
from .elders import in_area
from .errors import PermissionDenied, ValidationFailed
from .listing import (
    MAX_PAGE,
    MAX_PER_PAGE,
    PER_PAGE,
    Args,
    check_order,
    day_after,
    day_start,
    explain,
    in_scope,
    narrowest,
    pages,
    query_args,
    require_within,
)
from .models import Area, Case, CaseStatus, Elder, HumanTask, ProcessVersion, Role, TaskStatus, User
from .rules.idnumber import mask_id_number

STATUS_LABELS = {
    CaseStatus.RUNNING: "办理中",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.CANCELLED: "已终止",
    CaseStatus.ERROR: "出错",
}


class CaseSort(StrEnum):
    NEWEST = "newest"  # started most recently first
    OLDEST = "oldest"
    UPDATED = "updated"  # moved most recently first
    ENDED = "ended"  # ended most recently first, running ones last


SORT_LABELS = {
    CaseSort.NEWEST: "最新发起在前",
    CaseSort.OLDEST: "最早发起在前",
    CaseSort.UPDATED: "最近办理在前",
    CaseSort.ENDED: "最近办结在前",
}


@dataclass
class CaseFilter:
    """What a person asked the case list for; every field is optional."""

    process: str | None = None
    version: int | None = None
    status: CaseStatus | None = None
    step: str | None = None
    area: str | None = None
    overdue: bool = False
    overdue_role: str | None = None
    started_from: date | None = None
    started_to: date | None = None
    ended_from: date | None = None
    ended_to: date | None = None
    elder: int | None = None
    q: str | None = None
    sort: CaseSort = CaseSort.NEWEST
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, args) -> CaseFilter:
        """Build a filter from query-string arguments; refuse values that are not allowed, in Chinese."""
        a = Args(args)
        role = a.text("overdue_role")
        if role is not None and role not in {r.value for r in Role}:
            a.errors["overdue_role"] = "不是允许的角色"
            role = None
        flt = cls(
            process=a.text("process", 100),
            version=a.number("version", None, 1, 100_000),
            status=a.choice("status", CaseStatus),
            step=a.text("step", 100),
            area=a.area("area"),
            overdue=a.flag("overdue") or role is not None,
            overdue_role=role,
            started_from=a.day("started_from"),
            started_to=a.day("started_to"),
            ended_from=a.day("ended_from"),
            ended_to=a.day("ended_to"),
            elder=a.row_id("elder"),
            q=a.text("q"),
            sort=a.choice("sort", CaseSort, CaseSort.NEWEST),
            page=a.number("page", 1, 1, MAX_PAGE),
            per_page=a.number("per_page", PER_PAGE, 1, MAX_PER_PAGE),
        )
        if flt.version is not None and flt.process is None:
            a.errors["version"] = "按版本筛选时请同时选择业务"
        check_order(a, "started_from", "started_to", flt.started_from, flt.started_to)
        check_order(a, "ended_from", "ended_to", flt.ended_from, flt.ended_to)
        a.check()
        return flt

    def as_args(self, **changes) -> dict[str, str]:
        """Query-string arguments for this filter with some fields changed (for links)."""
        values = {
            "process": self.process,
            "version": self.version,
            "status": self.status,
            "step": self.step,
            "area": self.area,
            "overdue": "1" if self.overdue else None,
            "overdue_role": self.overdue_role,
            "started_from": self.started_from,
            "started_to": self.started_to,
            "ended_from": self.ended_from,
            "ended_to": self.ended_to,
            "elder": self.elder,
            "q": self.q,
            "sort": self.sort if self.sort != CaseSort.NEWEST else None,
            "per_page": self.per_page if self.per_page != PER_PAGE else None,
            "page": self.page if self.page != 1 else None,
        }
        values.update(changes)
        return query_args(values)

    @property
    def narrowed(self) -> bool:
        """Whether anything beyond sort and page was chosen."""
        return bool(set(self.as_args(sort=None, page=None, per_page=None)))


@dataclass
class CaseRow:
    id: int
    title: str
    process_key: str
    process_name: str
    version: int
    status: CaseStatus
    current_step: str
    area_code: str | None
    area_name: str | None
    elder_id: int | None
    elder_name: str | None
    elder_id_number: (
        str | None
    )  # the full number: shown masked (`elder_id_number_masked`) unless exported to a role that needs it
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    overdue: bool
    next_due_at: datetime | None

    @property
    def elder_id_number_masked(self) -> str | None:
        return mask_id_number(self.elder_id_number) if self.elder_id_number else None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass
class CasePage:
    filter: CaseFilter
    rows: list[CaseRow]
    total: int

    @property
    def pages(self) -> int:
        return pages(self.total, self.filter.per_page)


_C = Case.__table__
_T = HumanTask.__table__


def _theirs(actor: User):
    """For outside staff: the case has a task that is (or was) theirs, as `cases.may_read` asks."""
    theirs = or_(
        _T.c.assignee_id == actor.id,
        _T.c.completed_by == actor.id,
        and_(
            _T.c.status == TaskStatus.READY.value, _T.c.assignee_id.is_(None), _T.c.role == actor.role.value
        ),
    )
    return exists().where(_T.c.case_id == _C.c.id, theirs)


def scope_condition(actor: User):
    """The cases the actor may read, as SQL (the same rule as `cases.may_read`)."""
    cond = in_area(_C.c.area_code, actor.area_code)
    if access.covers(actor, None):  # county-wide people also read cases with no area
        cond = or_(cond, _C.c.area_code.is_(None))
    if access.reads_only_own_cases(actor):
        cond = and_(cond, _theirs(actor))
    return cond


def _search_condition(q: str):
    q = "".join(q.split())
    if q.startswith("#") and q[1:].isdigit() and len(q) <= 11:
        return _C.c.id == int(q[1:])
    matching = select(Elder.id).where(
        or_(Elder.name.contains(q, autoescape=True), Elder.id_number.contains(q.upper(), autoescape=True))
    )
    return _C.c.elder_id.in_(matching)


@dataclass
class _Query:
    """A list's conditions, with the area kept apart: how it is best written depends on the statement."""

    scope: str
    with_no_area: bool  # county-wide people also read cases without an area
    rest: list

    def area(self):
        cond = in_scope(_C.c.area_code, self.scope)
        return or_(cond, _C.c.area_code.is_(None)) if self.with_no_area else cond


def _conditions(session: Session, actor: User, flt: CaseFilter, now: datetime) -> _Query:
    require_within(actor, flt.area)
    scope = narrowest(actor, flt.area)
    with_no_area = flt.area is None and access.covers(actor, None)
    conds = [_theirs(actor)] if access.reads_only_own_cases(actor) else []
    # Tasks are narrowed to the same area, so the subqueries read the supervision index alone.
    task_area = in_area(_T.c.area_code, scope)
    if with_no_area:
        task_area = or_(task_area, _T.c.area_code.is_(None))
    if flt.process:
        conds.append(_C.c.process_key == flt.process)
    if flt.version is not None:
        version_ids = select(ProcessVersion.id).where(
            ProcessVersion.process_key == flt.process, ProcessVersion.version == flt.version
        )
        conds.append(_C.c.process_version_id.in_(version_ids))
    if flt.status is not None:
        conds.append(_C.c.status == CaseStatus(flt.status).value)
    if flt.step:
        at_step = select(_T.c.case_id).where(
            _T.c.status == TaskStatus.READY.value, task_area, _T.c.task_spec == flt.step
        )
        if flt.process:
            at_step = at_step.where(_T.c.process_key == flt.process)
        conds.append(_C.c.id.in_(at_step))
    if flt.overdue:
        late = select(_T.c.case_id).where(
            _T.c.status == TaskStatus.READY.value, task_area, _T.c.due_at.is_not(None), _T.c.due_at < now
        )
        if flt.overdue_role:
            late = late.where(_T.c.role == flt.overdue_role)
        conds.append(_C.c.id.in_(late))
    if flt.started_from:
        conds.append(_C.c.started_at >= day_start(flt.started_from))
    if flt.started_to:
        conds.append(_C.c.started_at < day_after(flt.started_to))
    if flt.ended_from:
        conds.append(_C.c.ended_at >= day_start(flt.ended_from))
    if flt.ended_to:
        conds.append(_C.c.ended_at < day_after(flt.ended_to))
    if flt.elder is not None:
        conds.append(_C.c.elder_id == flt.elder)
    if flt.q:
        conds.append(_search_condition(flt.q))
    return _Query(scope, with_no_area, conds)


def _count(session: Session, query: _Query) -> int:
    # The area as a plain range (an index range), and the few cases without an area counted apart:
    # an OR of the two would make the database read every row.
    total = session.scalar(
        select(func.count()).select_from(_C).where(in_scope(_C.c.area_code, query.scope), *query.rest)
    )
    if query.with_no_area:
        total += session.scalar(
            select(func.count()).select_from(_C).where(_C.c.area_code.is_(None), *query.rest)
        )
    return total or 0


def _order(sort: CaseSort, table=_C):
    return {
        CaseSort.NEWEST: [table.c.started_at.desc(), table.c.id.desc()],
        CaseSort.OLDEST: [table.c.started_at.asc(), table.c.id.asc()],
        CaseSort.UPDATED: [table.c.updated_at.desc(), table.c.id.desc()],
        CaseSort.ENDED: [table.c.ended_at.desc().nulls_last(), table.c.id.desc()],
    }[sort]


def _check_reader(actor: User) -> None:
    if not actor.is_active:
        raise PermissionDenied("账号已停用")


def list_cases(session: Session, actor: User, flt: CaseFilter) -> CasePage:
    """One page of the cases the actor may read, and how many match in all."""
    _check_reader(actor)
    now = clock.now()
    query = _conditions(session, actor, flt, now)
    rows = _rows(session, query, flt.sort, flt.per_page, (flt.page - 1) * flt.per_page, now)
    return CasePage(flt, rows, _count(session, query))


def iter_cases(session: Session, actor: User, flt: CaseFilter, limit: int) -> tuple[list[CaseRow], int]:
    """Every matching case up to `limit` (for an export), and how many match in all."""
    _check_reader(actor)
    now = clock.now()
    query = _conditions(session, actor, flt, now)
    return _rows(session, query, flt.sort, limit, 0, now), _count(session, query)


def _rows(
    session: Session, query: _Query, sort: CaseSort, limit: int, offset: int, now: datetime
) -> list[CaseRow]:
    conds = [query.area(), *query.rest]
    page = select(_C.c.id).where(*conds).order_by(*_order(sort)).limit(limit).offset(offset).subquery("page")
    version = aliased(ProcessVersion)
    area = aliased(Area)
    late = exists().where(
        _T.c.case_id == _C.c.id,
        _T.c.status == TaskStatus.READY.value,
        _T.c.due_at.is_not(None),
        _T.c.due_at < now,
    )
    next_due = (
        select(func.min(_T.c.due_at))
        .where(_T.c.case_id == _C.c.id, _T.c.status == TaskStatus.READY.value)
        .scalar_subquery()
    )
    query = (
        select(
            _C.c.id,
            _C.c.title,
            _C.c.process_key,
            version.name.label("process_name"),
            version.version,
            _C.c.status,
            _C.c.current_step,
            _C.c.area_code,
            area.name.label("area_name"),
            _C.c.elder_id,
            Elder.name.label("elder_name"),
            Elder.id_number.label("elder_id_number"),
            _C.c.started_at,
            _C.c.updated_at,
            _C.c.ended_at,
            late.label("overdue"),
            next_due.label("next_due_at"),
        )
        .select_from(page)
        .join(_C, _C.c.id == page.c.id)
        .join(version, version.id == _C.c.process_version_id)
        .outerjoin(area, area.code == _C.c.area_code)
        .outerjoin(Elder, Elder.id == _C.c.elder_id)
        .order_by(*_order(sort))
    )
    out = []
    for r in session.execute(query):
        out.append(
            CaseRow(
                id=r.id,
                title=r.title,
                process_key=r.process_key,
                process_name=r.process_name,
                version=r.version,
                status=CaseStatus(r.status),
                current_step=r.current_step or "",
                area_code=r.area_code,
                area_name=r.area_name,
                elder_id=r.elder_id,
                elder_name=r.elder_name,
                elder_id_number=r.elder_id_number,
                started_at=r.started_at,
                updated_at=r.updated_at,
                ended_at=r.ended_at,
                overdue=bool(r.overdue),
                next_due_at=r.next_due_at,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# What the filters offer


@dataclass
class Option:
    value: str
    label: str


@dataclass
class StepOption:
    process: str
    value: str
    label: str


@dataclass
class CaseListOptions:
    processes: list[Option]
    versions: dict[str, list[int]]
    steps: list[StepOption]
    areas: list[Option]
    roles: list[Option]


def options(session: Session, actor: User) -> CaseListOptions:
    """The choices the filter form offers: deployed processes and their steps, areas in scope, roles."""
    versions = session.execute(
        select(
            ProcessVersion.process_key, ProcessVersion.version, ProcessVersion.name, ProcessVersion.task_info
        ).order_by(ProcessVersion.process_key, ProcessVersion.version)
    ).all()
    names: dict[str, str] = {}
    numbers: dict[str, list[int]] = {}
    steps: dict[tuple[str, str], str] = {}
    for key, number, name, task_info in versions:
        names[key] = name  # the latest version's name wins (ordered by version)
        numbers.setdefault(key, []).append(number)
        for spec, info in json.loads(task_info or "{}").items():
            steps[(key, spec)] = (info or {}).get("name") or spec
    areas = session.scalars(
        select(Area)
        .where(in_area(Area.code, actor.area_code), func.length(Area.code) > literal(6))
        .order_by(Area.code)
    ).all()
    from .elders import ROLE_LABELS

    return CaseListOptions(
        processes=[Option(k, v) for k, v in sorted(names.items(), key=lambda kv: kv[1])],
        versions=numbers,
        # A step id may recur in several processes (township_review): the label says whose it is.
        steps=[
            StepOption(k, s, f"{label}（{names[k]}）")
            for (k, s), label in sorted(steps.items(), key=lambda kv: (names[kv[0][0]], kv[1]))
        ],
        areas=[Option(a.code, ("　" if len(a.code) == 12 else "") + a.name) for a in areas],
        roles=[Option(r.value, label) for r, label in ROLE_LABELS.items()],
    )


def check_filter_against(opts: CaseListOptions, flt: CaseFilter) -> None:
    """Refuse a process or version that was never deployed (a typo would otherwise read as 'no cases')."""
    errors = {}
    keys = {o.value for o in opts.processes}
    if flt.process and flt.process not in keys:
        errors["process"] = "没有这个业务流程"
    elif flt.version is not None and flt.version not in opts.versions.get(flt.process, []):
        errors["version"] = f"该业务没有第 {flt.version} 版"
    if errors:
        raise ValidationFailed(explain("查询条件有误", errors), field_errors=errors)
