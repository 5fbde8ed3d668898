"""Send queued SMS, offer beds that stayed free, and close queue entries whose case ended elsewhere.

One batch of each per call, each restart-safe: state is in the outbox and waitlist tables, so a worker can
stop and start at any time (a message is sent at least once).
"""

from sqlalchemy.orm import Session

from .. import outbox, waitlist

NAME = "housing"
ORDER = 30


def run(session: Session) -> int:
    sent = outbox.send_due(session)
    offered = waitlist.offer_open_vacancies(session)
    closed = waitlist.reconcile(session)
    return sent + offered + closed
