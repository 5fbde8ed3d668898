"""Due dates for human tasks: working days on the mainland calendar, end of day in Asia/Shanghai."""

import logging
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from .clock import LOCAL
from .rules import workdays

log = logging.getLogger(__name__)


def local_date(moment: datetime):
    return moment.astimezone(LOCAL).date()


def due_at(now: datetime, workdays_n=None, days_n=None) -> datetime | None:
    """The end of the day `workdays_n` working days (or `days_n` calendar days) after `now`."""
    return _due_at(local_date(now), workdays_n, days_n, workdays.generation())


@lru_cache(maxsize=4096)  # every new task asks; the answer depends only on the day and the calendar
def _due_at(start: date, workdays_n, days_n, _calendar: int) -> datetime | None:
    if workdays_n not in (None, ""):
        n = int(workdays_n)
        try:
            day = workdays.add_workdays(start, n)
        except workdays.CalendarRangeError as exc:
            # A task must still get a deadline past the calendar's last known year: count weekdays
            # only, and say so in the log. When the county enters that year, the due dates computed
            # so are recomputed (`calendars.enter_year`).
            log.warning("%s; falling back to weekdays", exc)
            day = start
            while n:
                day += timedelta(days=1)
                if day.weekday() < 5:
                    n -= 1
    elif days_n not in (None, ""):
        day = start + timedelta(days=int(days_n))
    else:
        return None
    return datetime.combine(day, time(23, 59, 59), LOCAL)
