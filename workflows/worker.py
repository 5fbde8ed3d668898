"""The background worker: timers, outbound messages, and the periodic work the processes declare.

Each job run is one batch in its own transaction; the worker loops over the jobs until none has work
left, then sleeps. State lives in the database, so a worker can be stopped and restarted at any time,
and several can run at once on PostgreSQL (due rows are taken with SKIP LOCKED).
"""

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import calendars, case_moves, cases, outbox, registry
from .registry import Job

log = logging.getLogger(__name__)


# The core's own jobs; the processes add theirs (`Process.jobs`).
CORE_JOBS = (
    # Take up a year of holidays another process entered, before any deadline is counted this round.
    Job("calendar", calendars.refresh, order=1),
    # Fire BPMN timers (start, intermediate, boundary) that have come due.
    Job("timers", lambda session: cases.run_due_timers(session, limit=100), order=10),
    # Move the cases of a migration batch, some at a time, so that its progress shows.
    Job("case_migrations", case_moves.run_batches, order=80),
    # Send queued SMS, after the jobs that queue them (at least once: again after a crash mid-send).
    Job("outbox", outbox.send_due, order=90),
)


def all_jobs() -> list[Job]:
    return sorted([*CORE_JOBS, *registry.current().jobs()], key=lambda job: job.order)


def run_once(make_session: sessionmaker[Session]) -> dict[str, int]:
    """Run every job until none has anything left to do; return how much each did."""
    done: dict[str, int] = {}
    for job in all_jobs():
        while True:
            try:
                with make_session.begin() as session:
                    n = job.run(session)
            except Exception:  # one failing job must not stop the others; it is retried next round
                log.exception("background job %s failed", job.name)
                break
            done[job.name] = done.get(job.name, 0) + n
            if n == 0:
                break
    return done


@contextmanager
def sole_worker(
    engine: Engine, *, wait: bool, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[bool]:
    """On SQLite, be the only worker of the database: hold a lock on a file beside it while working.

    A second worker (a restart racing the old one, a second `serve`) waits until the lock is free, so it
    takes over when the first ends, however it ends (the system releases the lock of a killed process);
    with `wait=False` it gives up at once. Yields whether this worker holds the database. On PostgreSQL
    there is nothing to hold: workers share the due rows through SKIP LOCKED.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield True
        return
    fd = os.open(Path(database + ".worker-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or should_stop():
                    yield False
                    return
                if not told:
                    log.warning("another worker holds %s; waiting for it to stop", database)
                    told = True
                time.sleep(1.0)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)  # and with it the lock


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
