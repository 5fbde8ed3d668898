"""The supervision dashboard: the figures a county (or a township) is measured by, each with the list
behind it.

Every figure is scoped to one area inside the actor's own (a township caseworker gets their township,
nothing else), counted from projections and registers (human_tasks, cases, enrolments, visits, waitlist
entries, service months, the elder register), never from a workflow state; grouped counts run on indexes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import access, clock, elders, targets, visit_rates
from .clock import LOCAL, month_end
from .elders import in_area
from .errors import PermissionDenied
from .listing import in_scope, narrowest
from .models import (
    Area,
    Case,
    CaseStatus,
    Elder,
    ElderStatus,
    HumanTask,
    ProcessVersion,
    Role,
    TaskStatus,
    User,
)
from .models.admission import (
    ACTIVE_STATUSES,
    TIER_LABELS,
    TIER_RANK,
    BedVacancy,
    EntryStatus,
    Facility,
    Tier,
    VacancyStatus,
    WaitlistEntry,
)
from .models.care import HomeCareEnrolment, HomeCareMonth
from .rules.assessment import DisabilityLevel
from .rules.care import SIX_HELPS

# Who sees the dashboard: the county's approvers, auditors and admins, and township caseworkers (their own).
READ_ROLES = frozenset({Role.APPROVER, Role.AUDITOR, Role.ADMIN, Role.CASEWORKER})
ADAPTATION_KEY = "home_adaptation"
# 生活不能自理: assessed moderately, severely or completely disabled (GB/T 42195 levels).
UNABLE_LEVELS = (DisabilityLevel.MODERATE, DisabilityLevel.SEVERE, DisabilityLevel.COMPLETE)
EXPIRING_DAYS = 30
TOWNSHIP_LENGTH = 9

_T = HumanTask.__table__
_C = Case.__table__


def require_reader(actor: User) -> None:
    if not actor.is_active:
        raise PermissionDenied("账号已停用")
    if actor.role not in READ_ROLES:
        raise PermissionDenied(
            f"您的角色（{elders.ROLE_LABELS.get(actor.role, actor.role)}）不能查看统计看板"
        )


def scope_of(actor: User, area: str | None) -> str:
    """The area the dashboard covers (refusing an area outside the actor's)."""
    require_reader(actor)
    return narrowest(actor, area)


def _areas_of(table, area: str, actor: User) -> list:
    """The area conditions to count under, one query each: the area as an index range, and, for the
    actor's own county, the work without an area apart (an OR of the two would read every row)."""
    # Cases are counted by status first (see listing.in_scope); open tasks by area (their index leads with it).
    conds = [(in_scope if table is _C else in_area)(table.c.area_code, area)]
    if area == actor.area_code and access.covers(actor, None):
        conds.append(table.c.area_code.is_(None))
    return conds


def _grouped(session: Session, statement, conds: list) -> dict:
    """Run a grouped count under each area condition and add the counts up, keyed by the group."""
    out: dict = defaultdict(int)
    for cond in conds:
        for *key, n in session.execute(statement.where(cond)).all():
            out[tuple(key)] += n
    return out


def _process_names(session: Session) -> dict[str, str]:
    rows = session.execute(
        select(ProcessVersion.process_key, ProcessVersion.name).order_by(
            ProcessVersion.process_key, ProcessVersion.version
        )
    ).all()
    return {key: name for key, name in rows}


def area_names(session: Session, codes) -> dict[str, str]:
    codes = {c for c in codes if c}
    if not codes:
        return {}
    return dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all())


# --------------------------------------------------------------------------------------------------
# Open cases by process and step


@dataclass
class StepCount:
    task_spec: str
    name: str
    open_tasks: int


@dataclass
class ProcessCount:
    process_key: str
    name: str
    running: int
    steps: list[StepCount] = field(default_factory=list)


def open_cases(session: Session, actor: User, area: str) -> list[ProcessCount]:
    """Running cases per process, and their open tasks per step (a case at two steps counts at each)."""
    running = {
        key: n
        for (key,), n in _grouped(
            session,
            select(_C.c.process_key, func.count())
            .where(_C.c.status == CaseStatus.RUNNING.value)
            .group_by(_C.c.process_key),
            _areas_of(_C, area, actor),
        ).items()
    }
    steps = [
        (key, spec, n)
        for (key, spec), n in _grouped(
            session,
            select(_T.c.process_key, _T.c.task_spec, func.count())
            .where(_T.c.status == TaskStatus.READY.value)
            .group_by(_T.c.process_key, _T.c.task_spec),
            _areas_of(_T, area, actor),
        ).items()
    ]
    names = _process_names(session)
    step_names = _step_names(session, {(p, s) for p, s, _ in steps})
    out: dict[str, ProcessCount] = {
        key: ProcessCount(key, names.get(key, key), n) for key, n in running.items()
    }
    for key, spec, n in steps:
        entry = out.setdefault(key, ProcessCount(key, names.get(key, key), 0))
        entry.steps.append(StepCount(spec, step_names.get((key, spec), spec), n))
    for entry in out.values():
        entry.steps.sort(key=lambda s: -s.open_tasks)
    return sorted(out.values(), key=lambda p: (-p.running, p.name))


def _step_names(session: Session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    keys = {k for k, _ in wanted}
    if not keys:
        return {}
    names: dict[tuple[str, str], str] = {}
    rows = session.execute(
        select(ProcessVersion.process_key, ProcessVersion.task_info)
        .where(ProcessVersion.process_key.in_(keys))
        .order_by(ProcessVersion.version)
    ).all()
    for key, info in rows:
        for spec, step in json.loads(info or "{}").items():
            names[(key, spec)] = (step or {}).get("name") or spec
    return names


# --------------------------------------------------------------------------------------------------
# Overdue tasks by township and role


@dataclass
class OverdueCount:
    township: str | None
    township_name: str
    role: str | None
    count: int


def overdue_tasks(session: Session, actor: User, area: str, now: datetime) -> list[OverdueCount]:
    township = func.substr(_T.c.area_code, 1, TOWNSHIP_LENGTH)
    counts = _grouped(
        session,
        select(township.label("township"), _T.c.role, func.count())
        .where(_T.c.status == TaskStatus.READY.value, _T.c.due_at.is_not(None), _T.c.due_at < now)
        .group_by(township, _T.c.role),
        _areas_of(_T, area, actor),
    )
    names = area_names(session, [t for t, _ in counts])
    out = [
        OverdueCount(town, names.get(town, town or "（县级）"), role, n) for (town, role), n in counts.items()
    ]
    return sorted(out, key=lambda o: (o.township or "", o.role or ""))


# --------------------------------------------------------------------------------------------------
# Waitlist


@dataclass
class TierFigure:
    tier: Tier
    label: str
    waiting: int
    average_wait_days: Decimal | None
    longest_wait_days: int | None


def waitlist_figures(session: Session, area: str, now: datetime) -> list[TierFigure]:
    """Applicants still in the queue per tier, and how long they have waited so far (days)."""
    rows = session.execute(
        select(WaitlistEntry.tier, WaitlistEntry.applied_at).where(
            WaitlistEntry.status.in_(list(ACTIVE_STATUSES)), in_area(WaitlistEntry.area_code, area)
        )
    ).all()
    waits: dict[Tier, list[int]] = defaultdict(list)
    for tier, applied_at in rows:
        waits[Tier(tier)].append(max(0, (now - applied_at).days))
    out = []
    for tier in sorted(Tier, key=lambda t: TIER_RANK[t]):
        days = waits.get(tier, [])
        average = (Decimal(sum(days)) / len(days)).quantize(Decimal("0.1")) if days else None
        out.append(TierFigure(tier, TIER_LABELS[tier], len(days), average, max(days) if days else None))
    return out


@dataclass
class QueueLine:
    entry_id: int
    case_id: int
    elder_id: int
    elder_name: str
    id_number: str
    facility: str
    tier_label: str
    applied_at: datetime
    waited_days: int
    status: str


def waitlist_lines(
    session: Session, actor: User, area: str | None, tier: Tier | None, *, limit: int, offset: int = 0
) -> tuple[list[QueueLine], int]:
    """The applicants behind a tier's figure, longest waiting first."""
    scope = scope_of(actor, area)
    conds = [WaitlistEntry.status.in_(list(ACTIVE_STATUSES)), in_area(WaitlistEntry.area_code, scope)]
    if tier is not None:
        conds.append(WaitlistEntry.tier == tier)
    total = session.scalar(select(func.count()).select_from(WaitlistEntry).where(*conds)) or 0
    now = clock.now()
    rows = session.execute(
        select(WaitlistEntry, Elder.name, Elder.id_number, Facility.name)
        .join(Elder, Elder.id == WaitlistEntry.elder_id)
        .join(Facility, Facility.id == WaitlistEntry.facility_id)
        .where(*conds)
        .order_by(WaitlistEntry.applied_at, WaitlistEntry.id)
        .limit(limit)
        .offset(offset)
    ).all()
    labels = {EntryStatus.WAITING: "轮候中", EntryStatus.OFFERED: "已通知入住评估"}
    return [
        QueueLine(
            e.id,
            e.case_id,
            e.elder_id,
            name,
            number,
            facility,
            TIER_LABELS[e.tier],
            e.applied_at,
            max(0, (now - e.applied_at).days),
            labels.get(e.status, e.status.value),
        )
        for e, name, number, facility in rows
    ], total


# --------------------------------------------------------------------------------------------------
# Services delivered (六助) per type and per provider


@dataclass
class ServiceFigure:
    key: str
    label: str
    count: int
    amount: Decimal
    elders: int = 0


@dataclass
class ServiceFigures:
    month: date
    by_type: list[ServiceFigure]
    by_provider: list[ServiceFigure]
    months_open: int  # service months of the month in the area
    months_without_services: int  # of them, with nothing recorded (each month needs one of the 六助)


@dataclass
class ServiceRecord:
    case_id: int
    elder_id: int
    elder_name: str
    id_number: str
    provider_id: int
    provider: str
    service_date: str
    service_type: str
    minutes: int | None
    amount: Decimal
    staff_name: str


def _service_months(session: Session, area: str, month: date, provider_id: int | None = None):
    query = (
        select(HomeCareMonth.case_id, HomeCareEnrolment.elder_id, HomeCareEnrolment.provider_id, Case.data)
        .join(HomeCareEnrolment, HomeCareEnrolment.id == HomeCareMonth.enrolment_id)
        .join(Case, Case.id == HomeCareMonth.case_id)
        .where(HomeCareMonth.month == month.replace(day=1), in_area(HomeCareEnrolment.area_code, area))
        .order_by(HomeCareMonth.case_id)
    )
    if provider_id is not None:
        query = query.where(HomeCareEnrolment.provider_id == provider_id)
    return session.execute(query).all()


def _records(data_text: str) -> list[dict]:
    services = orjson.loads(data_text or "{}").get("services") or []
    return [r for r in services if isinstance(r, dict) and r.get("service_type") in SIX_HELPS]


def _amount(value) -> Decimal:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except Exception:  # a record the form checked already; an unreadable amount counts as none
        return Decimal("0.00")


def service_figures(session: Session, area: str, month: date) -> ServiceFigures:
    """What providers recorded in the month: services and amounts per 六助 type and per provider."""
    months = _service_months(session, area, month)
    providers = (
        dict(
            session.execute(
                select(User.id, User.display_name).where(User.id.in_({m.provider_id for m in months}))
            ).all()
        )
        if months
        else {}
    )
    by_type = {key: ServiceFigure(key, label, 0, Decimal("0.00")) for key, label in SIX_HELPS.items()}
    type_elders: dict[str, set[int]] = defaultdict(set)
    by_provider: dict[int, ServiceFigure] = {}
    provider_elders: dict[int, set[int]] = defaultdict(set)
    empty = 0
    for m in months:
        records = _records(m.data)
        if not records:
            empty += 1
        for r in records:
            kind = r["service_type"]
            money = _amount(r.get("amount"))
            by_type[kind].count += 1
            by_type[kind].amount += money
            type_elders[kind].add(m.elder_id)
            entry = by_provider.setdefault(
                m.provider_id,
                ServiceFigure(
                    str(m.provider_id), providers.get(m.provider_id, f"#{m.provider_id}"), 0, Decimal("0.00")
                ),
            )
            entry.count += 1
            entry.amount += money
            provider_elders[m.provider_id].add(m.elder_id)
    for key, figure in by_type.items():
        figure.elders = len(type_elders[key])
    for key, figure in by_provider.items():
        figure.elders = len(provider_elders[key])
    return ServiceFigures(
        month.replace(day=1),
        list(by_type.values()),
        sorted(by_provider.values(), key=lambda f: (-f.count, f.label)),
        len(months),
        empty,
    )


def service_records(
    session: Session,
    actor: User,
    area: str | None,
    month: date,
    *,
    service_type: str | None = None,
    provider_id: int | None = None,
) -> list[ServiceRecord]:
    """The service records behind a 六助 or provider figure."""
    scope = scope_of(actor, area)
    months = _service_months(session, scope, month, provider_id)
    if not months:
        return []
    names = {
        r[0]: (r[1], r[2])
        for r in session.execute(
            select(Elder.id, Elder.name, Elder.id_number).where(Elder.id.in_({m.elder_id for m in months}))
        )
    }
    providers = dict(
        session.execute(
            select(User.id, User.display_name).where(User.id.in_({m.provider_id for m in months}))
        ).all()
    )
    out = []
    for m in months:
        for r in _records(m.data):
            if service_type and r["service_type"] != service_type:
                continue
            name, number = names.get(m.elder_id, ("", ""))
            minutes = r.get("minutes")
            out.append(
                ServiceRecord(
                    m.case_id,
                    m.elder_id,
                    name,
                    number,
                    m.provider_id,
                    providers.get(m.provider_id, ""),
                    str(r.get("service_date") or ""),
                    SIX_HELPS[r["service_type"]],
                    minutes if isinstance(minutes, int) else None,
                    _amount(r.get("amount")),
                    str(r.get("staff_name") or ""),
                )
            )
    out.sort(key=lambda s: (s.service_date, s.case_id))
    return out


# --------------------------------------------------------------------------------------------------
# Home adaptation against the county's target


@dataclass
class AdaptationFigures:
    year: int
    running: int
    done_this_year: int  # works paid out (subsidy granted) in the year
    subsidy_this_year: Decimal
    done_in_plan: int  # since the plan period began
    subsidy_in_plan: Decimal
    refused_this_year: int  # applications ended without works (not eligible, refused in review)
    yearly_target: int
    plan_target: int
    plan_first_year: int
    plan_last_year: int


@dataclass
class AdaptationHousehold:
    case_id: int
    elder_id: int | None
    elder_name: str
    id_number: str
    area_code: str | None
    ended_at: datetime
    paid_amount: Decimal
    paid_on: str


def _year_span(first_year: int, last_year: int) -> tuple[datetime, datetime]:
    return (
        datetime.combine(date(first_year, 1, 1), time(0), LOCAL),
        datetime.combine(date(last_year + 1, 1, 1), time(0), LOCAL),
    )


def completed_adaptations(session: Session, area: str, start: datetime, end: datetime):
    return session.execute(
        select(Case.id, Case.elder_id, Case.area_code, Case.ended_at, Case.data)
        .where(
            Case.process_key == ADAPTATION_KEY,
            Case.status == CaseStatus.COMPLETED,
            in_scope(Case.area_code, area),
            Case.ended_at >= start,
            Case.ended_at < end,
        )
        .order_by(Case.ended_at)
    ).all()


def paid_subsidy(data_text: str) -> Decimal | None:
    """The subsidy paid on a completed adaptation case, or None when it ended without works."""
    data = orjson.loads(data_text or "{}")
    if "paid_amount" not in data:
        return None
    return _amount(data["paid_amount"])


def adaptation_figures(
    session: Session, area: str, today: date, goals: dict[str, targets.Target]
) -> AdaptationFigures:
    first_year = int(goals["adaptation_first_year"].value)
    last_year = int(goals["adaptation_last_year"].value)
    start, end = _year_span(min(first_year, today.year), max(last_year, today.year))
    year_start, year_end = _year_span(today.year, today.year)
    plan_start, plan_end = _year_span(first_year, last_year)
    done_year = done_plan = refused_year = 0
    subsidy_year = subsidy_plan = Decimal("0.00")
    for row in completed_adaptations(session, area, start, end):
        paid = paid_subsidy(row.data)
        in_year = year_start <= row.ended_at < year_end
        if paid is None:
            refused_year += in_year
            continue
        if in_year:
            done_year += 1
            subsidy_year += paid
        if plan_start <= row.ended_at < plan_end:
            done_plan += 1
            subsidy_plan += paid
    running = (
        session.scalar(
            select(func.count())
            .select_from(Case)
            .where(
                Case.process_key == ADAPTATION_KEY,
                Case.status == CaseStatus.RUNNING,
                in_scope(Case.area_code, area),
            )
        )
        or 0
    )
    return AdaptationFigures(
        today.year,
        running,
        done_year,
        subsidy_year,
        done_plan,
        subsidy_plan,
        refused_year,
        targets.yearly_adaptation_target(goals),
        int(goals["adaptation_households"].value),
        first_year,
        last_year,
    )


def adaptation_households(
    session: Session, actor: User, area: str | None, first_year: int, last_year: int
) -> list[AdaptationHousehold]:
    """The households whose adaptation was completed and paid in the years (the list behind the figure)."""
    scope = scope_of(actor, area)
    start, end = _year_span(first_year, last_year)
    rows = completed_adaptations(session, scope, start, end)
    people = (
        {
            r[0]: (r[1], r[2])
            for r in session.execute(
                select(Elder.id, Elder.name, Elder.id_number).where(
                    Elder.id.in_({r.elder_id for r in rows if r.elder_id})
                )
            )
        }
        if rows
        else {}
    )
    out = []
    for r in rows:
        paid = paid_subsidy(r.data)
        if paid is None:
            continue
        name, number = people.get(r.elder_id, ("", ""))
        out.append(
            AdaptationHousehold(
                r.id,
                r.elder_id,
                name,
                number,
                r.area_code,
                r.ended_at,
                paid,
                str(json.loads(r.data or "{}").get("paid_on") or ""),
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Assessments, institutional support, occupancy


@dataclass
class AssessmentFigures:
    by_level: dict[str, int]  # level -> elders whose current assessment says so; "none": no valid one
    expiring: int  # valid until within EXPIRING_DAYS from today
    expiring_days: int


def assessment_figures(session: Session, area: str, today: date) -> AssessmentFigures:
    valid = Elder.disability_valid_until >= today
    level = Elder.disability_level
    rows = session.execute(
        select(level, valid, func.count())
        .where(in_area(Elder.residence_area_code, area), Elder.status == ElderStatus.ACTIVE)
        .group_by(level, valid)
    ).all()
    by_level = {lv.value: 0 for lv in DisabilityLevel} | {"none": 0}
    for lv, is_valid, n in rows:
        by_level[lv.value if lv is not None and is_valid else "none"] += n
    expiring = (
        session.scalar(
            select(func.count())
            .select_from(Elder)
            .where(
                in_area(Elder.residence_area_code, area),
                Elder.status == ElderStatus.ACTIVE,
                Elder.disability_valid_until.between(today, today + timedelta(days=EXPIRING_DAYS)),
            )
        )
        or 0
    )
    return AssessmentFigures(by_level, expiring, EXPIRING_DAYS)


@dataclass
class RateFigure:
    numerator: int
    denominator: int

    @property
    def rate(self) -> Decimal | None:
        return visit_rates.rate(self.numerator, self.denominator)


def institutional_support(session: Session, area: str, today: date) -> RateFigure:
    """生活不能自理特困人员集中供养率: of the 特困 assessed as moderately disabled or worse, those in care homes."""
    rows = session.execute(
        select(Elder.institutional_support, func.count())
        .where(
            in_area(Elder.residence_area_code, area),
            Elder.status == ElderStatus.ACTIVE,
            Elder.tekun.is_(True),
            Elder.disability_level.in_(list(UNABLE_LEVELS)),
            Elder.disability_valid_until >= today,
        )
        .group_by(Elder.institutional_support)
    ).all()
    counts = {bool(k): n for k, n in rows}
    return RateFigure(counts.get(True, 0), counts.get(True, 0) + counts.get(False, 0))


@dataclass
class FacilityLine:
    id: int
    name: str
    area_code: str
    beds: int
    vacant: int

    @property
    def occupied(self) -> int:
        return max(0, self.beds - self.vacant)

    @property
    def rate(self) -> Decimal | None:
        return visit_rates.rate(self.occupied, self.beds)


def facility_lines(session: Session, area: str) -> list[FacilityLine]:
    """Public homes located in the area, their beds, and the beds they registered as vacant (空床)."""
    vacant = (
        select(BedVacancy.facility_id, func.count().label("n"))
        .where(BedVacancy.status.in_([VacancyStatus.OPEN, VacancyStatus.OFFERED]))
        .group_by(BedVacancy.facility_id)
        .subquery()
    )
    rows = session.execute(
        select(Facility.id, Facility.name, Facility.area_code, Facility.beds, func.coalesce(vacant.c.n, 0))
        .outerjoin(vacant, vacant.c.facility_id == Facility.id)
        .where(Facility.is_active.is_(True), in_area(Facility.area_code, area))
        .order_by(Facility.area_code, Facility.name)
    ).all()
    return [FacilityLine(*r) for r in rows]


def occupancy(lines: list[FacilityLine]) -> RateFigure:
    """公办养老机构入住率, from beds less the vacancies the homes registered."""
    return RateFigure(sum(f.occupied for f in lines), sum(f.beds for f in lines))


# --------------------------------------------------------------------------------------------------
# The whole dashboard


@dataclass
class Dashboard:
    area: str
    area_name: str
    today: date
    month: date
    open_cases: list[ProcessCount]
    overdue: list[OverdueCount]
    month_visits: visit_rates.PeriodRates
    week_visits: visit_rates.PeriodRates
    week_working_days_left: int | None
    waitlist: list[TierFigure]
    services: ServiceFigures
    adaptation: AdaptationFigures
    assessments: AssessmentFigures
    institutional: RateFigure
    occupancy: RateFigure
    facilities: list[FacilityLine]
    targets: dict[str, targets.Target]
    sub_areas: list[tuple[str, str]]
    counted_at: datetime = field(default_factory=clock.now)

    @property
    def overdue_total(self) -> int:
        return sum(o.count for o in self.overdue)

    @property
    def open_total(self) -> int:
        return sum(p.running for p in self.open_cases)


def build(session: Session, actor: User, area: str | None = None, month: date | None = None) -> Dashboard:
    """Every figure of the dashboard for an area inside the actor's (default: all of it)."""
    scope = scope_of(actor, area)
    now = clock.now()
    today = clock.today()
    month = (month or today).replace(day=1)
    goals = targets.targets_for(session, scope)
    week_start, week_end = visit_rates.week_of(today)
    lines = facility_lines(session, scope)
    names = area_names(session, [scope])
    return Dashboard(
        area=scope,
        area_name=elders.area_path(session, scope) if names else scope,
        today=today,
        month=month,
        open_cases=open_cases(session, actor, scope),
        overdue=overdue_tasks(session, actor, scope, now),
        month_visits=visit_rates.month_rates(session, scope, month),
        week_visits=visit_rates.week_rates(session, scope, today),
        week_working_days_left=visit_rates.working_days(today, week_end) if week_start <= today else None,
        waitlist=waitlist_figures(session, scope, now),
        services=service_figures(session, scope, month),
        adaptation=adaptation_figures(session, scope, today, goals),
        assessments=assessment_figures(session, scope, today),
        institutional=institutional_support(session, scope, today),
        occupancy=occupancy(lines),
        facilities=lines,
        targets=goals,
        sub_areas=sub_areas(session, actor, scope),
    )


# Recently built dashboards, per worker process: {key: (monotonic time, Dashboard)}.
_recent: dict[tuple, tuple[float, Dashboard]] = {}
_RECENT_MAX = 256


def build_recent(
    session: Session, actor: User, area: str | None = None, month: date | None = None, *, max_age: float = 0
) -> Dashboard:
    """The dashboard as `build` makes it, or one built for the same area, month and day less than
    `max_age` seconds ago (a county's figures take a few hundred thousand rows to count; they are shown
    with the time they were counted). The actor's right to the area is checked every time."""
    scope = scope_of(actor, area)
    if max_age <= 0:
        return build(session, actor, area, month)
    today = clock.today()
    key = (actor.area_code, scope, (month or today).replace(day=1), today)
    found = _recent.get(key)
    moment = monotonic()
    if found is not None and moment - found[0] < max_age:
        return found[1]
    board = build(session, actor, area, month)
    if len(_recent) >= _RECENT_MAX:
        _recent.clear()
    _recent[key] = (moment, board)
    return board


def forget_recent() -> None:
    _recent.clear()


def sub_areas(session: Session, actor: User, scope: str) -> list[tuple[str, str]]:
    """The areas one may narrow the dashboard to: the actor's own, and the townships/villages inside."""
    rows = session.execute(
        select(Area.code, Area.name)
        .where(in_area(Area.code, actor.area_code), func.length(Area.code) <= max(len(scope) + 3, 9))
        .order_by(Area.code)
    ).all()
    return [(code, ("　" * ((len(code) - 6) // 3)) + name) for code, name in rows]


def month_bounds(month: date) -> tuple[date, date]:
    return month.replace(day=1), month_end(month)


def months_back(today: date, n: int) -> list[date]:
    """The first days of this month and the n-1 before it, newest first (the month picker)."""
    out, current = [], today.replace(day=1)
    for _ in range(n):
        out.append(current)
        current = (current - timedelta(days=1)).replace(day=1)
    return out
