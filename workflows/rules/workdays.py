"""Working days on the mainland calendar: weekends, public holidays and make-up workdays (调休).

Built on the maintained `chinese_calendar` package, which carries the State Council's yearly holiday
notices, and on the years the county enters itself from those notices (`workflows.calendars`): a year the
county entered takes precedence over the package for that whole year. A date in a year neither knows
raises CalendarRangeError rather than falling back to plain weekends: a deadline computed on a guessed
calendar could be wrong by a week around Spring Festival.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import chinese_calendar
from chinese_calendar.constants import holidays as _HOLIDAYS

FIRST_DAY = date(min(_HOLIDAYS).year, 1, 1)
LAST_DAY = date(max(_HOLIDAYS).year, 12, 31)


class CalendarRangeError(ValueError):
    """A date outside the years for which the holiday calendar is known."""


@dataclass(frozen=True)
class Year:
    """One year as the county entered it: its holidays and its worked weekend days; every other day is
    what its weekday says."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)


@dataclass(frozen=True)
class _Entered:
    years: Mapping[int, Year]
    generation: int


_entered = _Entered({}, 0)
# Generations of calendars counted with for a moment only: negative, never the same twice.
_passing = itertools.count(-1, -1)
# The calendar as a use case is about to make it (inside its transaction, before anyone else sees it).
_pending: ContextVar[_Entered | None] = ContextVar("workdays_pending", default=None)


def _current() -> _Entered:
    return _pending.get() or _entered


def use_entered_years(years: Mapping[int, Year]) -> None:
    """Make the county's entered years the calendar of this process (loaded from the database)."""
    global _entered
    if dict(years) != dict(_entered.years):
        _entered = _Entered(dict(years), _entered.generation + 1)


@contextmanager
def entered_years(years: Mapping[int, Year]) -> Iterator[None]:
    """Count with these entered years inside the block only (a change not committed yet)."""
    token = _pending.set(_Entered(dict(years), next(_passing)))
    try:
        yield
    finally:
        _pending.reset(token)


def generation() -> int:
    """A number that changes whenever the calendar in force does (for caches of computed days)."""
    return _current().generation


def entered() -> Mapping[int, Year]:
    return dict(_current().years)


def library_covers(year: int) -> bool:
    """Whether the calendar package knows the holidays of `year`."""
    return FIRST_DAY.year <= year <= LAST_DAY.year


def covers(year: int) -> bool:
    return year in _current().years or library_covers(year)


def is_workday(day: date) -> bool:
    """Tell whether `day` is a working day (make-up Saturdays and Sundays included)."""
    day = _check_in_range(day)
    year = _current().years.get(day.year)
    if year is not None:
        if day in year.holidays:
            return False
        return day in year.workdays or day.weekday() < 5
    return chinese_calendar.is_workday(day)


def holiday_name(day: date) -> str | None:
    """The library's name of a holiday (for showing a year it knows); None on other days."""
    if not library_covers(day.year):
        return None
    on_holiday, name = chinese_calendar.get_holiday_detail(day)
    return name if on_holiday and name else None


def add_workdays(start: date, n: int) -> date:
    """Return the date `n` working days after `start` (before it when `n` is negative)."""
    day = _check_in_range(start)
    step = timedelta(days=1 if n >= 0 else -1)
    remaining = abs(n)
    while remaining:
        day += step
        if is_workday(day):
            remaining -= 1
    return day


def workdays_between(a: date, b: date) -> int:
    """Count the working days after `a` up to and including `b` (negative when `b` is before `a`)."""
    a, b = _check_in_range(a), _check_in_range(b)
    if b < a:
        return -workdays_between(b, a)
    return sum(1 for offset in range(1, (b - a).days + 1) if is_workday(a + timedelta(days=offset)))


def _check_in_range(day: date) -> date:
    """Return `day` as a date, or raise CalendarRangeError if the calendar does not cover it."""
    if isinstance(day, datetime):
        day = day.date()
    if not covers(day.year):
        raise CalendarRangeError(
            f"节假日日历未包含 {day.year} 年（程序库覆盖 {FIRST_DAY.year}–{LAST_DAY.year} 年），"
            f"无法计算 {day.isoformat()} 的工作日；请系统管理员按国务院办公厅通知录入该年的放假和调休安排"
        )
    return day
