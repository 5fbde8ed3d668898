"""Open the periodic care cases that have come due: home-care service months and visiting-care periods.

Each enrolment row carries the start of its next period; opening a period starts its short case and moves
that date on in the same transaction, so a restarted or second worker never opens a period twice.
"""

from sqlalchemy.orm import Session

from .. import home_care, visiting

NAME = "care_periods"
ORDER = 20
BATCH = 50


def run(session: Session) -> int:
    """Open one batch of due service months and visit periods; return how many cases were started."""
    return home_care.open_due_months(session, limit=BATCH) + visiting.open_due_visits(session, limit=BATCH)
