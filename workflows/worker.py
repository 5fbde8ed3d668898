"""The background worker loop: timers, outbound messages, periodic cases."""

import logging
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from .jobs import all_jobs

log = logging.getLogger(__name__)


def run_once(make_session: sessionmaker[Session]) -> dict[str, int]:
    """Run every job until none has anything left to do; return how much each did."""
    done: dict[str, int] = {}
    for job in all_jobs():
        while True:
            try:
                with make_session.begin() as session:
                    n = job.run(session)
            except Exception:  # one failing job must not stop the others; it is retried next round
                log.exception("background job %s failed", job.NAME)
                break
            done[job.NAME] = done.get(job.NAME, 0) + n
            if n == 0:
                break
    return done


def run_forever(
    make_session: sessionmaker[Session],
    interval: float = 5.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    while not should_stop():
        done = run_once(make_session)
        if any(done.values()):
            log.info("worker: %s", done)
        waited = 0.0
        while waited < interval and not should_stop():  # stop promptly when told to
            time.sleep(0.2)
            waited += 0.2
