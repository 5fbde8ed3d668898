"""The system's notion of "now" and of days, replaceable so that tests and replays never sleep.

Everything that asks the time (timers in the engine, due dates, audit stamps) goes through `now()`;
everything that asks the day asks `today()`, in the one time zone the offices work in (`LOCAL`).
"""

import calendar
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Times are stored in UTC and shown, and days counted, in China's time.
LOCAL = ZoneInfo("Asia/Shanghai")

_override: ContextVar[Callable[[], datetime] | None] = ContextVar("clock_override", default=None)


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    source = _override.get()
    return source() if source is not None else datetime.now(UTC)


@contextmanager
def using(source: Callable[[], datetime]) -> Iterator[None]:
    """Make `now()` answer from `source` inside the block."""
    token = _override.set(source)
    try:
        yield
    finally:
        _override.reset(token)


class ManualClock:
    """A clock that stands still until moved: `clock.advance(days=3)`."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.current = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when.astimezone(UTC)


# --------------------------------------------------------------------------------------------------
# Days


def today() -> date:
    """Return today's date in China, from the injectable clock."""
    return now().astimezone(LOCAL).date()


def local_date(moment: datetime) -> date:
    return moment.astimezone(LOCAL).date()


def local_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as China's local time, as text ("" for none)."""
    return moment.astimezone(LOCAL).strftime(fmt) if moment else ""


def as_date(value) -> date:
    """Read a date given as a date or an ISO string (form data keeps dates as strings)."""
    if isinstance(value, datetime):
        return value.astimezone(LOCAL).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        return date.fromisoformat(value.strip()[:10])
    raise ValueError(f"不是有效的日期：{value!r}")


def month_end(day) -> date:
    """Return the last day of the month of `day`."""
    day = as_date(day)
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def first_of_next_month(day: date) -> date:
    return month_end(day) + timedelta(days=1)


def end_of_day(day) -> datetime:
    """23:59:59 China time on `day`: when a deadline that falls on that day runs out."""
    return datetime.combine(as_date(day), time(23, 59, 59), LOCAL)
