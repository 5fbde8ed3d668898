"""The system's notion of "now" and of days, replaceable so that tests and replays never sleep.

Everything that asks the time (timers in the engine, due dates, audit stamps) goes through `now()`;
everything that asks the day asks `today()`, in the one time zone the offices work in (`LOCAL`).
"""

import calendar
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# Times are stored in UTC and shown, and days counted, in China's time.
LOCAL = ZoneInfo("Asia/Shanghai")

_override: ContextVar[Callable[[], datetime] | None] = ContextVar("clock_override", default=None)
# The process's own source when it is not the system clock (an acceptance test's shifted clock).
_process_source: list[Callable[[], datetime]] = []


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    source = _override.get()
    if source is not None:
        return source()
    return _process_source[0]() if _process_source else datetime.now(UTC)


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


class ShiftedClock:
    """Real time moved by an offset kept in a file, so that a running instance (its web workers and its
    background worker, separate processes) can be moved forward for an acceptance test: the file is read
    again whenever it changes. A missing or unreadable file means no offset."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        try:
            st = os.stat(self.path)
            seen = (st.st_mtime_ns, st.st_size)
        except OSError:
            seen = None
        if seen != self._seen:
            self._offset = self.read_offset(self.path)
            self._seen = seen
        return datetime.now(UTC) + self._offset

    @staticmethod
    def read_offset(path: Path) -> timedelta:
        try:
            return timedelta(seconds=float(Path(path).read_text().strip() or 0))
        except (OSError, ValueError):
            return timedelta(0)

    @staticmethod
    def write_offset(path: Path, offset: timedelta) -> None:
        """Replace the offset in one step (readers never see half a file)."""
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(f"{offset.total_seconds():.6f}\n")
        os.replace(temporary, path)


def use_for_process(source: Callable[[], datetime] | None) -> None:
    """Make `source` this process's clock (None: the system clock again); `using` still overrides it."""
    _process_source.clear()
    if source is not None:
        _process_source.append(source)


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
