"""The names every diagram may use besides its data: amounts, dates, durations.

`date.today()` and `datetime.now()` answer from `workflows.clock` (so tests move time instead of sleeping)
in Beijing time, whatever the server's zone: a county's "today" does not change at 08:00 UTC. They return
plain `date`/`datetime` objects, which the case data stores as ISO text. `timedelta` is offered for
arithmetic (`(date.today() + timedelta(days=7)).isoformat()`); a timedelta left in the case data is refused
by `check_storable`, naming the variable.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from ... import clock
from ...clock import LOCAL
from .guards import GuardedType


def today() -> date:
    """Today's date in Beijing."""
    return clock.today()


def now(tz=None) -> datetime:
    """The time now: in `tz` when given, else Beijing wall-clock time without a zone (as `datetime.now()`)."""
    current = clock.now()
    if tz is not None:
        return current.astimezone(tz)
    return current.astimezone(LOCAL).replace(tzinfo=None)


def utcnow() -> datetime:
    return clock.now().astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def standard_helpers() -> dict:
    """The helpers offered to every diagram (domain helpers are registered on top)."""
    return {
        "Decimal": Decimal,
        "date": GuardedType(date, date, {"today": today}),
        "datetime": GuardedType(datetime, datetime, {"today": now, "now": now, "utcnow": utcnow}),
        "timedelta": timedelta,
    }
