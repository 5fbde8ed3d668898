"""Engine benchmark: user-task completions per second, in memory and through the persisted service layer.

Workload (bench/workloads/bench_home_care.bpmn): intake, a script, a gateway, approval, parallel
dispatch/notify, a loop of 3 monthly service records, audit: 7 user-task completions per case.

- inmemory_per_s: SpiffWorkflow alone (our restricted script engine included), no persistence: the limit.
- sqlite_per_s / postgres_per_s: the same cases through `cases.start_case` and `tasks.complete`, one
  transaction per completion as a web request would do it, one process. SQLite runs with synchronous=FULL
  (the default: nothing acknowledged is lost on a power cut); sqlite_normal_per_s is the same with
  synchronous=NORMAL and sqlite_full_cost_ms what FULL adds to a completion.
- step_growth: cost of one completion for an elder whose home-care relationship has run 120 monthly periods
  over one that has run 3. A relationship is an enrolment that starts one short case per service month
  (bench_service_month.bpmn), so history lives in finished cases, not in a growing instance.
- single_instance_growth (for comparison, not a target): the same ratio when one instance loops 120 times.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from workflows import cases, engine, registry, tasks, versions
from workflows.db import make_engine, session_factory
from workflows.models import Area, AreaLevel, Base, HumanTask, Role, TaskStatus, User

WORKLOADS = Path(__file__).parent / "workloads"

ANSWERS = {
    "intake": {"age": 78, "dibao": True},
    "approval": {"decision": "approve", "comment": "同意"},
    "dispatch": {"accepted": True},
    "record_service": {"services": ["meal", "cleaning"], "hours": 6},
    "audit": {"passed": True},
    "verify": {"verified": True},
}


def bundle() -> dict[str, str]:
    return versions.read_bundle(WORKLOADS)


def _spec(key: str) -> engine.LoadedSpec:
    parsed = {p.key: p for p in registry.engine().parse_bundle(bundle())}
    return registry.engine().load_spec(parsed[key].spec_json)


def measure_inmemory(n_cases: int, months: int = 3) -> float:
    """Completions per second with SpiffWorkflow alone (time spent completing; starting is not counted)."""
    loaded = _spec("bench_home_care")
    done = 0
    spent = 0.0
    for _ in range(n_cases):
        inst = engine.Instance.start(loaded, {"months": months})
        while not inst.completed:
            step = inst.human_steps()[0]
            t0 = time.perf_counter()
            inst.complete(step.id, ANSWERS[step.spec_id])
            inst.human_steps()  # what the caller looks at next, as the persisted path does
            spent += time.perf_counter() - t0
            done += 1
    return done / spent


def _setup_db(url: str, sqlite_synchronous: str = "FULL"):
    db = make_engine(url, sqlite_synchronous=sqlite_synchronous)
    Base.metadata.drop_all(db)
    Base.metadata.create_all(db)
    make = session_factory(db)
    with make.begin() as s:
        s.add(Area(code="410825", name="温县", level=AreaLevel.COUNTY))
        s.add(Area(code="410825100", name="祥云镇", level=AreaLevel.TOWNSHIP, parent_code="410825"))
        for role in (Role.CASEWORKER, Role.APPROVER, Role.PROVIDER, Role.AUDITOR, Role.PROCESS_OWNER):
            s.add(User(username=role.value, display_name=role.value, role=role, area_code="410825"))
        s.flush()
        owner = s.scalar(select(User).where(User.role == Role.PROCESS_OWNER))
        versions.deploy(s, owner, bundle(), comment="测试部署")
    # Signed-in users, loaded once as a web session would keep them.
    users = {}
    with make() as s:
        for u in s.scalars(select(User)):
            users[u.role.value] = u
        s.expunge_all()
    return db, make, users


def _ready(make, case_id) -> list[tuple[str, str, str]]:
    # Committed like every web request (webapp's teardown commits reads too): on PostgreSQL a
    # rollback would also make the driver forget its prepared statements.
    with make.begin() as s:
        rows = s.scalars(
            select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
        )
        return [(t.id, t.role, t.task_spec) for t in rows]


def _work_case(make, users, case_id) -> tuple[int, float]:
    """Complete a case's tasks as users clicking through their inboxes would; return count and seconds."""
    todo = _ready(make, case_id)
    done = 0
    spent = 0.0
    while todo:
        task_id, role, spec_id = todo.pop(0)
        t0 = time.perf_counter()
        with make.begin() as s:  # one request: complete, commit
            outcome = tasks.complete(s, users[role], task_id, ANSWERS[spec_id])
        spent += time.perf_counter() - t0
        todo.extend((t.id, t.role, t.task_spec) for t in outcome.new_tasks)
        done += 1
    return done, spent


def measure_persisted(url: str, n_cases: int, sqlite_synchronous: str = "FULL") -> float:
    """Completions per second through `tasks.complete` with a commit per completion (starting not counted)."""
    db, make, users = _setup_db(url, sqlite_synchronous)
    try:
        done = 0
        spent = 0.0
        for _ in range(n_cases):
            with make.begin() as s:
                case_id = cases.start_case(
                    s, users["caseworker"], "bench_home_care", area_code="410825100", data={"months": 3}
                ).id
            n, seconds = _work_case(make, users, case_id)
            done += n
            spent += seconds
        return done / spent
    finally:
        db.dispose()


def _run_month(make, users, elder_id: int) -> int:
    with make.begin() as s:
        case_id = cases.start_case(
            s, users["caseworker"], "bench_service_month", area_code="410825100", elder_id=elder_id
        ).id
    _work_case(make, users, case_id)
    return case_id


def _time_current_month(make, users, elder_id: int, repeats: int) -> float:
    """Median seconds of one completion in this elder's current month case."""
    samples = []
    for _ in range(repeats):
        with make.begin() as s:
            case_id = cases.start_case(
                s, users["caseworker"], "bench_service_month", area_code="410825100", elder_id=elder_id
            ).id
        ((task_id, role, spec_id),) = _ready(make, case_id)
        t0 = time.perf_counter()
        with make.begin() as s:
            outcome = tasks.complete(s, users[role], task_id, ANSWERS[spec_id])
        samples.append(time.perf_counter() - t0)
        ((next_id, next_role, next_spec),) = [(t.id, t.role, t.task_spec) for t in outcome.new_tasks]
        with make.begin() as s:
            tasks.complete(s, users[next_role], next_id, ANSWERS[next_spec])
    return statistics.median(samples)


def measure_step_growth(url: str, long_months: int = 120, short_months: int = 3, repeats: int = 40) -> float:
    db, make, users = _setup_db(url)
    try:
        for _ in range(short_months):
            _run_month(make, users, elder_id=1)
        for _ in range(long_months):
            _run_month(make, users, elder_id=2)
        # Interleave to spread machine noise evenly over both.
        short, long = [], []
        for _ in range(4):
            short.append(_time_current_month(make, users, 1, repeats // 4))
            long.append(_time_current_month(make, users, 2, repeats // 4))
        return statistics.median(long) / statistics.median(short)
    finally:
        db.dispose()


def measure_single_instance_growth(long_months: int = 120, short_months: int = 3) -> float:
    """Per-completion cost at the end of a 120-month loop over a 3-month loop, in one persisted instance."""
    loaded = _spec("bench_home_care")

    def last_step_seconds(months: int) -> float:
        inst = engine.Instance.start(loaded, {"months": months})
        samples = []
        while not inst.completed:
            step = inst.human_steps()[0]
            t0 = time.perf_counter()
            inst = engine.Instance.restore(loaded, inst.dump())  # load
            inst.complete(step.id, ANSWERS[step.spec_id])
            inst.dump()  # save
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples[-5:])

    return last_step_seconds(long_months) / last_step_seconds(short_months)


def postgres_url() -> tuple[str, object | None]:
    """DATABASE_URL when it names PostgreSQL, else a throw-away cluster (returned for stopping)."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql")):
        return url.replace("postgresql://", "postgresql+psycopg://", 1), None
    from bench import pgcluster

    folder = tempfile.mkdtemp(prefix="eldercare-bench-pg-")
    raw = pgcluster.start(folder)
    return raw.replace("postgresql://", "postgresql+psycopg://", 1), folder


def _ratio(samples: dict[str, list[float]], key: str) -> float:
    """Median over rounds of each round's rate over that round's in-memory rate.

    The machines are shared: a neighbour's load moves whole rounds, and moves both figures of a
    round alike, so per-round ratios are steadier than a ratio of medians.
    """
    return statistics.median(p / m for p, m in zip(samples[key], samples["inmemory"], strict=True))


def run(n_cases: int = 40, rounds: int = 5, skip_postgres: bool = False, log=print) -> dict:
    """Run the whole engine benchmark and return the figures (medians over interleaved rounds)."""
    measure_inmemory(5)  # warm up imports and caches
    pg_url, pg_folder = (None, None) if skip_postgres else postgres_url()
    samples: dict[str, list[float]] = {
        "inmemory": [],
        "sqlite": [],
        "sqlite_normal": [],
        "postgres": [],
        "postgres_async": [],
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(rounds):
                # Interleaved so that machine noise falls on every figure alike.
                samples["inmemory"].append(measure_inmemory(n_cases))
                samples["sqlite"].append(measure_persisted(f"sqlite:///{tmp}/bench{i}.sqlite", n_cases))
                # What the durable default costs: the same with the log synced only at checkpoints.
                samples["sqlite_normal"].append(
                    measure_persisted(
                        f"sqlite:///{tmp}/normal{i}.sqlite", n_cases, sqlite_synchronous="NORMAL"
                    )
                )
                if pg_url:
                    samples["postgres"].append(measure_persisted(pg_url, n_cases))
                    # For the note only: the same with commits not waiting for the disk (WAL fsync).
                    sep = "&" if "?" in pg_url else "?"
                    async_url = f"{pg_url}{sep}options=-c%20synchronous_commit%3Doff"
                    samples["postgres_async"].append(measure_persisted(async_url, n_cases))
                log(
                    f"round {i + 1}/{rounds}: "
                    + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in samples.items() if v)
                )
            log("step growth: 120 monthly periods against 3 ...")
            growth = measure_step_growth(f"sqlite:///{tmp}/growth.sqlite")
    finally:
        if pg_folder:
            from bench import pgcluster

            pgcluster.discard(pg_folder)
    inmemory = statistics.median(samples["inmemory"])
    sqlite_rate = statistics.median(samples["sqlite"])
    result = {
        "workload": "bench_home_care: 7 user tasks per case; time spent completing (a commit each), starts not counted",
        "cases_per_round": n_cases,
        "rounds": rounds,
        "inmemory_per_s": round(inmemory, 1),
        # How much the machine moved during the run: the ratios are only as steady as this range.
        "inmemory_per_s_range": [round(min(samples["inmemory"])), round(max(samples["inmemory"]))],
        "sqlite_per_s": round(sqlite_rate, 1),
        "sqlite_ratio": round(_ratio(samples, "sqlite"), 3),
        # synchronous=FULL (the default) syncs the log on every commit; NORMAL could lose the last commits
        # on a power cut. The cost of durability per completion, in milliseconds:
        "sqlite_normal_per_s": round(statistics.median(samples["sqlite_normal"]), 1),
        "sqlite_full_cost_ms": round(
            statistics.median(
                1000 / f - 1000 / n for f, n in zip(samples["sqlite"], samples["sqlite_normal"], strict=True)
            ),
            3,
        ),
    }
    if samples["postgres"]:
        pg_rate = statistics.median(samples["postgres"])
        result["postgres_per_s"] = round(pg_rate, 1)
        result["postgres_ratio"] = round(_ratio(samples, "postgres"), 3)
        async_rate = statistics.median(samples["postgres_async"])
        result["postgres_async_commit_per_s"] = round(async_rate, 1)
        result["postgres_async_commit_ratio"] = round(_ratio(samples, "postgres_async"), 3)
    result["step_growth"] = round(growth, 3)
    result["single_instance_growth"] = round(measure_single_instance_growth(), 2)
    result["targets"] = {"sqlite_ratio": 0.40, "postgres_ratio": 0.25, "step_growth": 1.5}
    return result


if __name__ == "__main__":
    from workflows import processes

    processes.install()
    print(json.dumps(run(), ensure_ascii=False))
