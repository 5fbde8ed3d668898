"""The system's notion of "now", replaceable so that tests and replays never sleep.

Everything that asks the time (timers in the engine, due dates, audit stamps) goes through `now()`.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

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
        from datetime import timedelta

        self.current += timedelta(**delta)
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when.astimezone(UTC)
