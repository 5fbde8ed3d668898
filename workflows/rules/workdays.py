"""Working days on the mainland calendar: weekends, public holidays and make-up workdays (调休).

Built on the maintained `chinese_calendar` package, which carries the State Council's yearly holiday
notices. A date outside the years it covers raises CalendarRangeError rather than falling back to plain
weekends: a deadline computed on a guessed calendar could be wrong by a week around Spring Festival.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import chinese_calendar
from chinese_calendar.constants import holidays as _HOLIDAYS

FIRST_DAY = date(min(_HOLIDAYS).year, 1, 1)
LAST_DAY = date(max(_HOLIDAYS).year, 12, 31)


class CalendarRangeError(ValueError):
    """A date outside the years for which the holiday calendar is known."""


def is_workday(day: date) -> bool:
    """Tell whether `day` is a working day (make-up Saturdays and Sundays included)."""
    day = _check_in_range(day)
    return chinese_calendar.is_workday(day)


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
    if not FIRST_DAY <= day <= LAST_DAY:
        raise CalendarRangeError(
            f"节假日日历只覆盖 {FIRST_DAY.isoformat()} 至 {LAST_DAY.isoformat()}，"
            f"无法计算 {day.isoformat()} 的工作日；请升级 chinese_calendar 包以获取新一年的放假安排"
        )
    return day
