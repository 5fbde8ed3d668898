"""Bulk work: what the background jobs do to thousands of cases at once, in batched commits.

On each database, a county with `enrolments` (10,000) home-care enrolments whose service month has begun:

- months_per_s: the monthly job (`home_care_months`, as the worker runs it: one batch of 50 enrolments per
  transaction until none is left) opening one `home_care_month` case per enrolment;
- timers_per_s: the deadline of every one of those months passing at once (the clock moved past it) and
  the timer job (`timers`, batches of 100 per transaction) firing them all;
- rematch_per_s: the whole register matched against the catalogue (政策找人), elders per second.

Each case rate is also given over the in-memory rate of the same steps (SpiffWorkflow alone: starting the
month's instance from the same data; firing the same timer), target >= 0.5.

    python -m bench bulk [--quick] [--no-postgres]
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, text

from bench import engine_bench, web_bench
from workflows import cases, clock, matching, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Case, Role, User
from workflows.models.care import EnrolmentStatus, HomeCareEnrolment
from workflows.models.elders import Elder
from workflows.processes.home_care import months


def _world(url: str, n: int, first: date) -> None:
    """The county (web bench's synthetic register), a provider, and `n` enrolments due for `first`."""
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    now = datetime.now(UTC)
    with make.begin() as s:
        web_bench._setup_areas_and_users(s)
        versions.deploy(s, None, versions.read_bundle(bpmn_dir()))
    scale = {"elders": n, "cases": 0, "tasks_per_case": 0}
    with engine.begin() as conn:
        for table, rows in web_bench._rows(scale):
            if table == "elders":
                conn.execute(insert(Elder.__table__), rows)
        provider = conn.scalar(select(User.id).where(User.role == Role.PROVIDER))
        version_id, content_hash = conn.execute(
            text("SELECT id, content_hash FROM process_versions WHERE process_key = 'home_care'")
        ).one()
        # The application cases that hold the enrolments (their history is not what is measured here).
        conn.execute(
            insert(Case.__table__),
            [
                {
                    "id": k + 1,
                    "process_version_id": version_id,
                    "process_key": "home_care",
                    "version_hash": content_hash,
                    "title": "居家养老服务申请",
                    "status": "running",
                    "area_code": web_bench.village_code(web_bench.township_code(k % web_bench.TOWNSHIPS), 0),
                    "elder_id": k + 1,
                    "state": "{}",
                    "lock_version": f"{k:032x}",
                    "current_step": "",
                    "data": "{}",
                    "waiting_for": "",
                    "last_event_hash": "",
                    "event_count": 0,
                    "started_at": now,
                    "updated_at": now,
                }
                for k in range(n)
            ],
        )
        conn.execute(
            insert(HomeCareEnrolment.__table__),
            [
                {
                    "elder_id": k + 1,
                    "case_id": k + 1,
                    "area_code": web_bench.village_code(web_bench.township_code(k % web_bench.TOWNSHIPS), 0),
                    "status": EnrolmentStatus.ACTIVE.value,
                    "disability_level": "moderate",
                    "monthly_quota": Decimal("300.00"),
                    "provider_id": provider,
                    "services": '["meal", "cleaning"]',
                    "started_on": first - timedelta(days=40),
                    "next_month": first,
                    "created_at": now,
                    "updated_at": now,
                }
                for k in range(n)
            ],
        )
        if engine.dialect.name == "postgresql":
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
            )
    engine.dispose()


def _drain(make, job) -> tuple[int, float]:
    """Run a job batch after batch, one transaction each, until it has nothing left; (done, seconds)."""
    done, t0 = 0, time.perf_counter()
    while True:
        with make.begin() as session:
            n = job(session)
        if n == 0:
            return done, time.perf_counter() - t0
        done += n


def _inmemory_months(url: str, first: date, n: int) -> tuple[float, float]:
    """Starts/s of the month's instance from the same data, and timer firings/s on those instances."""
    engine = make_engine(url)
    with session_factory(engine)() as s:
        version = versions.latest(s, months.MONTH_PROCESS_KEY)
        runtime = versions.runtime_of(s, version)
        # As `cases.start_case` seeds a case: the process's data, the area and the elder.
        seeds = [
            months.month_seed(e, s.get(Elder, e.elder_id), s.get(User, e.provider_id), first)
            | {"case_area_code": e.area_code, "elder_id": e.elder_id}
            for e in s.scalars(select(HomeCareEnrolment).limit(n))
        ]
    engine.dispose()
    instances = []
    t0 = time.perf_counter()
    for seed in seeds:
        instance = runtime.start(seed)
        instance.human_steps()
        instances.append(instance)
    started = len(seeds) / (time.perf_counter() - t0)
    return started, instances


def measure(url: str, n: int, log=print) -> dict:
    today = clock.today()
    first = today.replace(day=1)
    log(f"  {n:,} enrolments ...")
    _world(url, n, first)
    engine = make_engine(url)
    make = session_factory(engine)
    cases.forget_live_instances()
    opened, seconds = _drain(make, lambda s: months.open_due_months(s, limit=50))
    months_rate = opened / seconds
    log(f"  monthly job: {opened:,} month cases in {seconds:.1f} s")
    sample = min(n, 2000)
    inmemory_start, instances = _inmemory_months(url, first, sample)
    # Every month's deadline passes: the timer job fires them, restoring each case from the database.
    later = clock.ManualClock(datetime.combine(first + timedelta(days=70), datetime.min.time(), clock.LOCAL))
    with clock.using(later):
        cases.forget_live_instances()
        fired, seconds = _drain(make, lambda s: cases.run_due_timers(s, limit=100))
        timers_rate = fired / seconds if seconds else 0.0
        log(f"  timers: {fired:,} fired in {seconds:.1f} s")
        t0 = time.perf_counter()
        for instance in instances:
            instance.fire_due_timers()
            instance.human_steps()
        inmemory_timers = len(instances) / (time.perf_counter() - t0)
    with make() as s:
        register = list(s.scalars(select(Elder)))
        t0 = time.perf_counter()
        for elder in register:
            matching.match_for_elder(s, elder, on=today)
        rematch_rate = len(register) / (time.perf_counter() - t0)
    log(f"  re-matching: {len(register):,} elders at {rematch_rate:.0f}/s")
    engine.dispose()
    return {
        "enrolments": n,
        "months_opened": opened,
        "months_per_s": round(months_rate, 1),
        "months_inmemory_per_s": round(inmemory_start, 1),
        "months_ratio": round(months_rate / inmemory_start, 3),
        "timers_fired": fired,
        "timers_per_s": round(timers_rate, 1),
        "timers_inmemory_per_s": round(inmemory_timers, 1),
        "timers_ratio": round(timers_rate / inmemory_timers, 3) if inmemory_timers else None,
        "rematch_per_s": round(rematch_rate, 1),
    }


def run(quick: bool = False, skip_postgres: bool = False, log=print) -> dict:
    n = 1000 if quick else 10_000
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="eldercare-bulk-") as tmp:
        log("sqlite:")
        out["sqlite"] = measure(f"sqlite:///{tmp}/bulk.sqlite", n, log)
    if not skip_postgres:
        pg_url, pg_folder = engine_bench.postgres_url()
        try:
            admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS eldercare_bulk_bench"))
                conn.execute(text("CREATE DATABASE eldercare_bulk_bench"))
            admin.dispose()
            log("postgresql:")
            out["postgresql"] = measure(pg_url.rsplit("/", 1)[0] + "/eldercare_bulk_bench", n, log)
        finally:
            if pg_folder:
                from bench import pgcluster

                pgcluster.discard(pg_folder)
    out["target"] = {"ratio_to_inmemory": 0.5}
    return out
