"""Fire BPMN timers (start, intermediate, boundary) that have come due."""

from sqlalchemy.orm import Session

from .. import cases

NAME = "timers"
ORDER = 10


def run(session: Session) -> int:
    return cases.run_due_timers(session, limit=100)
