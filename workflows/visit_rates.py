"""Visit rates (探访率) per township and village, and who has not been visited yet this period.

- Monthly (月探访率, seeds 001/003/004): of the elders enrolled in visiting care at any time in the month,
  the share visited at least once in it.
- Weekly for 分散供养特困 (周探访率, seed 000 #7): of the enrolled elders who are 特困 supported at home, the
  share visited at least once in the week. A week is Monday–Sunday, the period the visiting-care job opens
  weekly visits for (visiting.period_of); a month's weekly figure counts the weeks that end in that month
  (elder-weeks visited over elder-weeks due), so every week is counted once, in the month it is complete.

A visit counts on the day it was made, holiday or not; the holiday calendar (rules/workdays) says how many
working days a period had and has left, which is what a village assistant plans by (a Spring Festival week
has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.orm import Session

from .clock import month_end
from .elders import in_area
from .models import Area, Elder
from .models.care import Visit, VisitingEnrolment
from .rules import workdays

TOWNSHIP_LENGTH = 9


def week_of(day: date) -> tuple[date, date]:
    """The Monday–Sunday week containing `day`."""
    start = day - timedelta(days=day.weekday())
    return start, start + timedelta(days=6)


def weeks_ending_in(month: date) -> list[tuple[date, date]]:
    """The Monday–Sunday weeks whose Sunday falls in the month of `month`."""
    first, last = month.replace(day=1), month_end(month)
    sunday = first + timedelta(days=(6 - first.weekday()))
    weeks = []
    while sunday <= last:
        weeks.append((sunday - timedelta(days=6), sunday))
        sunday += timedelta(days=7)
    return weeks


def working_days(start: date, end: date) -> int | None:
    """Working days from `start` to `end` inclusive (None outside the calendar's years)."""
    if end < start:
        return 0
    try:
        return workdays.workdays_between(start - timedelta(days=1), end)
    except workdays.CalendarRangeError:
        return None


def rate(visited: int, due: int) -> Decimal | None:
    return (Decimal(visited) / Decimal(due)).quantize(Decimal("0.0001")) if due else None


@dataclass
class AreaRate:
    area_code: str
    area_name: str
    due: int
    visited: int

    @property
    def rate(self) -> Decimal | None:
        return rate(self.visited, self.due)

    @property
    def unvisited(self) -> int:
        return self.due - self.visited


@dataclass
class PeriodRates:
    """One period's rate over an area, and the same split by its townships (or villages)."""

    kind: str  # month / week
    start: date
    end: date
    total: AreaRate
    parts: list[AreaRate]
    working_days: int | None


def _enrolled(area_code: str, first: date, last: date, *, home_support_only: bool):
    """(area code, elder id) of everyone enrolled at some time in [first, last] (each elder once per area)."""
    query = select(VisitingEnrolment.area_code, VisitingEnrolment.elder_id).where(
        in_area(VisitingEnrolment.area_code, area_code),
        VisitingEnrolment.started_on <= last,
        or_(VisitingEnrolment.ended_on.is_(None), VisitingEnrolment.ended_on >= first),
    )
    if home_support_only:
        query = query.join(Elder, Elder.id == VisitingEnrolment.elder_id).where(
            Elder.tekun.is_(True), Elder.home_support.is_(True)
        )
    return query.distinct().subquery("enrolled")


def _visited(first: date, last: date):
    return (
        select(Visit.elder_id)
        .where(Visit.visited_on >= first, Visit.visited_on <= last)
        .distinct()
        .subquery("seen")
    )


@dataclass
class _Part:
    part: str
    due: int
    visited: int


def period_rates(
    session: Session, area_code: str, first: date, last: date, *, kind: str, home_support_only: bool
) -> PeriodRates:
    """The rate over [first, last] in an area, split one level down (county → townships → villages)."""
    enrolled = _enrolled(area_code, first, last, home_support_only=home_support_only)
    seen = _visited(first, last)
    part_length = TOWNSHIP_LENGTH if len(area_code) <= 6 else 12
    # One row per enrolled elder and area (a few thousand in a county), counted here: the parts and the
    # total (each elder once, even one who moved between villages in the period) from one read.
    rows = session.execute(
        select(enrolled.c.area_code, enrolled.c.elder_id, seen.c.elder_id.is_not(None)).select_from(
            enrolled.outerjoin(seen, seen.c.elder_id == enrolled.c.elder_id)
        )
    ).all()
    due: dict[str, set[int]] = {}
    visited: dict[str, set[int]] = {}
    for code, elder_id, was_seen in rows:
        key = code[:part_length]
        due.setdefault(key, set()).add(elder_id)
        if was_seen:
            visited.setdefault(key, set()).add(elder_id)
    total_due = len({elder_id for _, elder_id, _ in rows})
    total_seen = len({elder_id for _, elder_id, was_seen in rows if was_seen})
    rows = [_Part(key, len(ids), len(visited.get(key, ()))) for key, ids in due.items()]
    names = _names(session, [r.part for r in rows] + [area_code])
    parts = [AreaRate(r.part, names.get(r.part, r.part), r.due, r.visited) for r in rows]
    parts.sort(key=lambda p: p.area_code)
    total = AreaRate(area_code, names.get(area_code, area_code), total_due, total_seen)
    return PeriodRates(kind, first, last, total, parts, working_days(first, last))


def month_rates(session: Session, area_code: str, month: date) -> PeriodRates:
    """月探访率 for every enrolled elder in the month of `month`."""
    first = month.replace(day=1)
    return period_rates(session, area_code, first, month_end(first), kind="month", home_support_only=False)


def week_rates(session: Session, area_code: str, day: date) -> PeriodRates:
    """周探访率 for 分散供养特困 elders in the week containing `day`."""
    start, end = week_of(day)
    return period_rates(session, area_code, start, end, kind="week", home_support_only=True)


@dataclass
class MonthOfWeeks:
    """A month's weekly figure: each week that ends in it, and elder-weeks visited over elder-weeks due."""

    month: date
    weeks: list[PeriodRates]

    @property
    def due(self) -> int:
        return sum(w.total.due for w in self.weeks)

    @property
    def visited(self) -> int:
        return sum(w.total.visited for w in self.weeks)

    @property
    def rate(self) -> Decimal | None:
        return rate(self.visited, self.due)


def weekly_rates_of_month(session: Session, area_code: str, month: date) -> MonthOfWeeks:
    return MonthOfWeeks(
        month.replace(day=1), [week_rates(session, area_code, start) for start, _ in weeks_ending_in(month)]
    )


def _names(session: Session, codes) -> dict[str, str]:
    codes = {c for c in codes if c}
    if not codes:
        return {}
    return dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all())


# --------------------------------------------------------------------------------------------------
# Who has not been visited yet


@dataclass
class Unvisited:
    elder_id: int
    name: str
    id_number: str
    phone: str | None
    area_code: str
    frequency: str
    last_visited_on: date | None
    enrolment_id: int


def unvisited(
    session: Session,
    area_code: str,
    first: date,
    last: date,
    *,
    home_support_only: bool,
    limit: int,
    offset: int = 0,
) -> tuple[list[Unvisited], int]:
    """Enrolled elders with no visit in [first, last] (oldest last visit first), and how many in all."""
    seen = select(Visit.elder_id).where(Visit.visited_on >= first, Visit.visited_on <= last)
    conds = [
        in_area(VisitingEnrolment.area_code, area_code),
        VisitingEnrolment.started_on <= last,
        or_(VisitingEnrolment.ended_on.is_(None), VisitingEnrolment.ended_on >= first),
        VisitingEnrolment.elder_id.not_in(seen),
    ]
    if home_support_only:
        conds += [Elder.tekun.is_(True), Elder.home_support.is_(True)]
    joined = and_(Elder.id == VisitingEnrolment.elder_id)
    total = (
        session.scalar(
            select(func.count(distinct(VisitingEnrolment.elder_id)))
            .select_from(VisitingEnrolment)
            .join(Elder, joined)
            .where(*conds)
        )
        or 0
    )
    rows = session.execute(
        select(
            VisitingEnrolment.id,
            VisitingEnrolment.elder_id,
            VisitingEnrolment.area_code,
            VisitingEnrolment.frequency,
            VisitingEnrolment.last_visited_on,
            Elder.name,
            Elder.id_number,
            Elder.phone,
        )
        .join(Elder, joined)
        .where(*conds)
        .order_by(
            VisitingEnrolment.last_visited_on.asc().nulls_first(), VisitingEnrolment.area_code, Elder.name
        )
        .limit(limit)
        .offset(offset)
    ).all()
    found, ids = [], set()
    for r in rows:
        if r.elder_id in ids:  # an elder enrolled twice in one period (ended, then enrolled again)
            continue
        ids.add(r.elder_id)
        found.append(
            Unvisited(
                r.elder_id,
                r.name,
                r.id_number,
                r.phone,
                r.area_code,
                r.frequency.value,
                r.last_visited_on,
                r.id,
            )
        )
    return found, total
