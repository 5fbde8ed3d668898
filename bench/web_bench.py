"""Web benchmark: inbox query latency on a county-sized database, and task completions per second over HTTP.

For each database (SQLite, and PostgreSQL in a throw-away cluster unless skipped):

1. Fill it with synthetic but realistic rows, in bulk: 50 townships of 4 villages, 50,000 elders,
   200,000 cases (70 % finished) and 1,000,000 `human_tasks` rows (5 per case; the last one of a running
   case READY, some claimed, due dates spread so that some are overdue). `quick=True` uses 1/20 of it.
2. inbox_p50_ms / inbox_p95_ms: `workflows.inbox.list_inbox` for township caseworkers (the page's one
   query plus its counts), over a mix of what people do: the claimable queue, their own tasks, everything
   in the township, overdue only, a search by elder name, a process filter, page 2.
3. http_complete_per_s: gunicorn with 2 workers serving the app on that database; 2, then 4, client threads complete
   the tasks of freshly started cases through POST /api/tasks/{id}/complete with bearer tokens, each
   case's tasks in order as its next task appears (the engine's bench_home_care workload, 7 per case).
   The better of the two loads is the throughput; both are reported.
4. engine_persisted_per_s: `bench.engine_bench.measure_persisted` on a separate database of the same kind
   (it recreates its schema), and http_ratio = http_complete_per_s / engine_persisted_per_s.
5. real_steps: the shipped processes' own steps (assessment, reviews, approval, dispatch, visits, service
   months) completed over HTTP by 8 clients (`bench.real_steps`): per_s, p50_ms, p95_ms, and
   ratio_to_inmemory (over the same steps replayed in memory by SpiffWorkflow alone).

6. dashboard_p95_ms / case_list_p95_ms: the supervision pages through the app (bench/supervision_bench.py),
   after adding the rows the dashboard counts besides cases and tasks.

Targets: inbox p95 <= 50 ms on PostgreSQL and <= 100 ms on SQLite; http_ratio >= 0.40; dashboard and case
list p95 <= 200 ms on both; real steps p95 <= 100 ms at >= 144 completions/s (3 x the 48/s measured when
issue 16 was filed).

    .venv/bin/python -m bench.web_bench [--quick] [--no-postgres]     (or: eldercare bench web)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from bench import engine_bench, real_steps
from workflows import cases, inbox, processes, users, versions
from workflows.db import make_engine, session_factory
from workflows.models import (
    Area,
    AreaLevel,
    Base,
    Case,
    Elder,
    HumanTask,
    Role,
    TaskStatus,
    User,
)
from workflows.rules.idnumber import compute_check_char

COUNTY = "410825"
TOWNSHIPS = 50
VILLAGES_PER_TOWNSHIP = 4
FULL = {"elders": 50_000, "cases": 200_000, "tasks_per_case": 5}
PASSWORD = "bench-password-1"
ROOT = Path(__file__).resolve().parent.parent
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
GIVEN = (
    "建国",
    "秀英",
    "桂兰",
    "玉兰",
    "德胜",
    "凤英",
    "广才",
    "长顺",
    "富贵",
    "淑珍",
    "金山",
    "振华",
    "翠花",
    "有福",
    "素芬",
    "志刚",
    "春梅",
    "秀珍",
    "保国",
    "玉珍",
)
# The bench workload's steps in order, with their lanes (bench/workloads/bench_home_care.bpmn).
STEPS = [
    ("intake", "受理申请", "caseworker"),
    ("approval", "县级审批", "approver"),
    ("dispatch", "服务机构接单", "provider"),
    ("record_service", "记录月度服务", "provider"),
    ("audit", "审计抽查", "auditor"),
]


def township_code(i: int) -> str:
    return f"{COUNTY}{i + 1:03d}"


def village_code(township: str, j: int) -> str:
    return f"{township}{201 + j:03d}"


# --------------------------------------------------------------------------------------------------
# Filling the database


def _setup(url: str) -> None:
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    with make.begin() as s:
        _setup_areas_and_users(s)
        versions.deploy(s, None, engine_bench.bundle())
    engine.dispose()


def _setup_areas_and_users(s: Session) -> None:
    """The county, its townships and villages, a caseworker per township and one user per other role."""
    now = datetime.now(UTC)
    s.add(Area(code=COUNTY, name="温县", level=AreaLevel.COUNTY))
    s.flush()
    for i in range(TOWNSHIPS):
        t = township_code(i)
        s.add(Area(code=t, name=f"第{i + 1}乡镇", level=AreaLevel.TOWNSHIP, parent_code=COUNTY))
    s.flush()
    for i in range(TOWNSHIPS):
        t = township_code(i)
        for j in range(VILLAGES_PER_TOWNSHIP):
            s.add(
                Area(
                    code=village_code(t, j),
                    name=f"第{i + 1}乡镇{j + 1}村",
                    level=AreaLevel.VILLAGE,
                    parent_code=t,
                )
            )
    s.flush()
    hashed = users.hash_password(PASSWORD)
    for i in range(TOWNSHIPS):
        s.add(
            User(
                username=f"cw{i + 1:03d}",
                display_name=f"经办人{i + 1}",
                role=Role.CASEWORKER,
                area_code=township_code(i),
                password_hash=hashed,
                created_at=now,
            )
        )
    for role in (Role.CASEWORKER, Role.APPROVER, Role.PROVIDER, Role.AUDITOR, Role.PROCESS_OWNER):
        s.add(
            User(
                username=role.value,
                display_name=role.value,
                role=role,
                area_code=COUNTY,
                password_hash=hashed,
                created_at=now,
            )
        )
    s.flush()


def _rows(scale: dict, seed: int = 20261123):
    """Yield ("elders"|"cases"|"human_tasks", [row dicts]) batches."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    villages = [
        village_code(township_code(i), j) for i in range(TOWNSHIPS) for j in range(VILLAGES_PER_TOWNSHIP)
    ]
    n_elders = scale["elders"]
    batch = []
    for k in range(n_elders):
        birth = date(1930, 1, 1) + timedelta(days=rng.randint(0, 12000))
        batch.append(
            {
                "id": k + 1,
                "id_number": _unique_id(k, birth),
                "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "sex": rng.choice(("male", "female")),
                "birth_date": birth,
                "phone": f"13{rng.randint(100000000, 999999999)}",
                "hukou_type": "rural",
                "hukou_area_code": villages[k % len(villages)],
                "residence_area_code": villages[k % len(villages)],
                "address": f"{rng.randint(1, 12)}组{rng.randint(1, 80)}号",
                "living_arrangement": "with_spouse",
                "dibao": rng.random() < 0.12,
                "near_dibao": False,
                "tekun": rng.random() < 0.05,
                "home_support": False,
                "institutional_support": False,
                "living_alone": rng.random() < 0.18,
                "empty_nest": False,
                "left_behind": False,
                "severe_handicap": False,
                "family_planning_special": False,
                "entitled_veteran_family": False,
                "three_category_household": False,
                "contacts": "[]",
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(batch) == 5000:
            yield "elders", batch
            batch = []
    if batch:
        yield "elders", batch

    case_batch, task_batch = [], []
    per_case = scale["tasks_per_case"]
    keys = ("bench_home_care", "bench_service_month")
    for c in range(scale["cases"]):
        case_id = c + 1
        elder_id = rng.randint(1, n_elders)
        area = villages[(elder_id - 1) % len(villages)]
        running = rng.random() < 0.30
        started = now - timedelta(days=rng.randint(1, 720), seconds=rng.randint(0, 86400))
        key = keys[0] if rng.random() < 0.8 else keys[1]
        case_batch.append(
            {
                "id": case_id,
                "process_version_id": 1 if key == keys[0] else 2,
                "process_key": key,
                "version_hash": "",
                "title": "基准：居家养老（简化）",
                "status": "running" if running else "completed",
                "area_code": area,
                "elder_id": elder_id,
                "parent_case_id": None,
                "state": "{}",
                "lock_version": uuid4().hex,
                "next_timer_at": None,
                "current_step": "",
                "data": "{}",
                "waiting_for": "",
                "error": None,
                "last_event_hash": "",
                "event_count": 0,
                "started_by": None,
                "started_at": started,
                "updated_at": started,
                "ended_at": None if running else started + timedelta(days=30),
            }
        )
        # A finished case has passed every step (with one or more service months); a running one stops at
        # its READY step. Finished cases carry the extra months that keep the average at `per_case` rows.
        if running:
            n_steps = rng.randint(1, per_case)
        else:
            n_steps = per_case + (rng.random() < 0.55) + (rng.random() < 0.3)
        plan = [STEPS[0], STEPS[1], STEPS[2]] + [STEPS[3]] * max(1, n_steps - 4) + [STEPS[4]]
        plan = plan[:n_steps]
        for t, (spec, name, role) in enumerate(plan):
            created = started + timedelta(days=2 * t)
            ready = running and t == n_steps - 1
            claimed = ready and rng.random() < 0.25
            task_batch.append(
                {
                    "id": str(uuid4()),
                    "case_id": case_id,
                    "process_key": key,
                    "task_spec": spec,
                    "name": name,
                    "role": role,
                    "area_code": area,
                    "elder_id": elder_id,
                    "status": "ready" if ready else "completed",
                    "assignee_id": None,
                    "_claim": claimed,
                    "due_at": now + timedelta(days=rng.randint(-10, 20))
                    if ready
                    else created + timedelta(days=5),
                    "created_at": created,
                    "claimed_at": created if claimed else None,
                    "completed_at": None if ready else created + timedelta(days=1),
                    "completed_by": None,
                }
            )
        if len(case_batch) >= 5000:
            yield "cases", case_batch
            yield "human_tasks", task_batch
            case_batch, task_batch = [], []
    if case_batch:
        yield "cases", case_batch
        yield "human_tasks", task_batch


def _unique_id(k: int, birth: date) -> str:
    """A valid 18-character ID number, unique per k (the sequence digits and the area code vary with k)."""
    area = f"4{(k // 1000) % 100000:05d}"
    first17 = f"{area}{birth:%Y%m%d}{k % 1000:03d}"
    return first17 + compute_check_char(first17)


def fill(url: str, scale: dict, log=print) -> dict:
    """Create the schema and bulk-insert the synthetic county; return row counts and seconds."""
    t0 = time.perf_counter()
    _setup(url)
    engine = make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    counts = {"elders": 0, "cases": 0, "human_tasks": 0}
    with engine.connect() as conn:
        caseworkers = dict(
            conn.execute(select(User.area_code, User.id).where(User.username.like("cw%"))).all()
        )
    tables = {"elders": Elder.__table__, "cases": Case.__table__, "human_tasks": HumanTask.__table__}
    raw = engine.raw_connection() if postgres else None
    try:
        with engine.begin() as conn:
            for table, rows in _rows(scale):
                if table == "human_tasks":
                    for r in rows:
                        if r.pop("_claim"):
                            r["assignee_id"] = caseworkers[r["area_code"][:9]]
                if postgres:
                    _copy(raw, tables[table], rows)
                else:
                    conn.execute(insert(tables[table]), rows)
                counts[table] += len(rows)
                if table == "cases" and counts["cases"] % 50_000 < 5000:
                    log(f"  {counts['cases']:,} cases, {counts['human_tasks']:,} tasks ...")
        if postgres:
            raw.commit()
            with engine.begin() as conn:
                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
                )
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence('elders', 'id'), (SELECT max(id) FROM elders))"
                    )
                )
            # Settle the bulk load before measuring: vacuum, statistics, and a checkpoint, so that the dirty
            # pages of a gigabyte of COPY are not being flushed under the measured commits.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
                conn.execute(text("CHECKPOINT"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            checkpoint = engine.raw_connection()  # outside any transaction, as the pragma requires
            try:
                checkpoint.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                checkpoint.close()
    finally:
        if raw is not None:
            raw.close()
        engine.dispose()
    return {**counts, "fill_s": round(time.perf_counter() - t0, 1)}


def _copy(raw, table, rows: list[dict]) -> None:
    """PostgreSQL COPY of row dicts into a table (the fastest bulk path)."""
    columns = [c.name for c in table.columns if c.name in rows[0]]
    cursor = raw.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row([r[c] for c in columns])


# --------------------------------------------------------------------------------------------------
# Inbox latency


def measure_inbox(url: str, samples: int = 300, seed: int = 7) -> dict:
    engine = make_engine(url)
    make = session_factory(engine)
    rng = random.Random(seed)
    with make() as s:
        caseworkers = list(s.scalars(select(User).where(User.username.like("cw%"))))
        names = [n for (n,) in s.execute(select(Elder.name).limit(200))]
        s.expunge_all()
    mixes = [
        lambda: inbox.InboxFilter(scope=inbox.Scope.GROUP),
        lambda: inbox.InboxFilter(scope=inbox.Scope.MINE),
        lambda: inbox.InboxFilter(scope=inbox.Scope.ALL),
        lambda: inbox.InboxFilter(scope=inbox.Scope.ALL, due=inbox.DueState.OVERDUE),
        lambda: inbox.InboxFilter(scope=inbox.Scope.ALL, q=rng.choice(names)[: 1 + rng.randint(0, 1)]),
        lambda: inbox.InboxFilter(scope=inbox.Scope.GROUP, process="bench_home_care", sort=inbox.Sort.NEWEST),
        lambda: inbox.InboxFilter(scope=inbox.Scope.ALL, page=2),
    ]
    timings = []
    rows_seen = []
    with make() as s:
        for i in range(samples + 20):
            actor = rng.choice(caseworkers)
            flt = mixes[i % len(mixes)]()
            t0 = time.perf_counter()
            page = inbox.list_inbox(s, actor, flt)
            elapsed = (time.perf_counter() - t0) * 1000
            s.rollback()
            if i >= 20:  # warm-up excluded
                timings.append(elapsed)
                rows_seen.append(page.total)
    engine.dispose()
    timings.sort()
    return {
        "inbox_p50_ms": round(statistics.median(timings), 2),
        "inbox_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
        "inbox_max_ms": round(timings[-1], 2),
        "inbox_rows_per_township_median": int(statistics.median(rows_seen)),
        "inbox_samples": len(timings),
    }


# --------------------------------------------------------------------------------------------------
# HTTP completions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, method: str, path: str, body: dict | None = None, token: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, json.loads(payload) if payload else {}


def _start_cases(url: str, n: int) -> list[int]:
    engine = make_engine(url)
    make = session_factory(engine)
    ids = []
    with make() as s:
        actor = s.scalar(select(User).where(User.username == "caseworker"))
        s.expunge(actor)
    for _ in range(n):
        with make.begin() as s:
            ids.append(
                cases.start_case(
                    s, actor, "bench_home_care", area_code=township_code(0) + "201", data={"months": 3}
                ).id
            )
    engine.dispose()
    return ids


def measure_http(url: str, n_cases: int, clients: int = 2, log=print, workers: int = 2) -> dict:
    """Completions per second through the API of a 2-worker gunicorn on this database."""
    case_ids = _start_cases(url, n_cases + 2 * clients)
    engine = make_engine(url)
    with Session(engine) as s:
        first = {
            cid: tid
            for cid, tid in s.execute(
                select(HumanTask.case_id, HumanTask.id).where(
                    HumanTask.case_id.in_(case_ids), HumanTask.status == TaskStatus.READY
                )
            )
        }
    engine.dispose()
    port = _free_port()
    instance = tempfile.mkdtemp(prefix="eldercare-web-bench-")
    env = dict(os.environ, DATABASE_URL=url, ELDERCARE_INSTANCE=instance)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "webapp:create_app()",
        ],
        cwd=str(ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(200):
            try:
                status, _ = _request(port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        tokens = {}
        for role in ("caseworker", "approver", "provider", "auditor"):
            status, body = _request(port, "POST", "/api/login", {"username": role, "password": PASSWORD})
            assert status == 200, body
            tokens[role] = body["token"]
        queue = list(case_ids)
        lock = threading.Lock()
        done = [0]
        failures: list[str] = []

        def work(limit=None):
            while limit is None or limit > 0:
                if limit is not None:
                    limit -= 1
                with lock:
                    if not queue:
                        return
                    case_id = queue.pop()
                todo = [(first[case_id], "intake", "caseworker")]
                while todo:
                    task_id, spec, role = todo.pop(0)
                    status, body = _request(
                        port,
                        "POST",
                        f"/api/tasks/{task_id}/complete",
                        {"data": engine_bench.ANSWERS[spec]},
                        tokens[role],
                    )
                    if status != 200:
                        failures.append(f"{status} {body}")
                        return
                    with lock:
                        done[0] += 1
                    todo.extend((t["id"], t["step"], t["role"]) for t in body["next_tasks"])

        # Warm both workers (imports, the restored process spec) on a few cases not counted.
        warm = [threading.Thread(target=work, args=(2,)) for _ in range(clients)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        done[0] = 0
        threads = [threading.Thread(target=work) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        if failures:
            raise RuntimeError("HTTP completions failed: " + "; ".join(failures[:3]))
        return {"per_s": round(done[0] / elapsed, 1), "completions": done[0], "clients": clients}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


# --------------------------------------------------------------------------------------------------


def _scaled(quick: bool) -> dict:
    if not quick:
        return dict(FULL)
    return {
        "elders": FULL["elders"] // 20,
        "cases": FULL["cases"] // 20,
        "tasks_per_case": FULL["tasks_per_case"],
    }


def bench_database(url: str, engine_url: str, *, quick: bool, log=print) -> dict:
    scale = _scaled(quick)
    log(f"filling {url.split('://')[0]}: {scale['cases']:,} cases ...")
    result = fill(url, scale, log=log)
    log(f"  filled in {result['fill_s']} s; measuring the inbox ...")
    result.update(measure_inbox(url, samples=100 if quick else 300))
    log(f"  inbox p50 {result['inbox_p50_ms']} ms, p95 {result['inbox_p95_ms']} ms")
    from bench import supervision_bench  # the dashboard and the case list, on the same county

    result.update(supervision_bench.bench_database(url, quick=quick, filled=True, log=log))
    log("  completing over HTTP ...")
    n_http = 15 if quick else 60
    n_engine = 10 if quick else 30
    # The machine is shared and noisy: the engine's rate is measured before and after the HTTP runs, and
    # the HTTP runs at two loads (as many clients as workers, then twice as many). The throughput is the
    # better of the two loads (the saturated rate); both are reported.
    engine_rates = [engine_bench.measure_persisted(engine_url, n_engine)]
    two = measure_http(url, n_http, clients=2, log=log)
    four = measure_http(url, n_http, clients=4, log=log)
    engine_rates.append(engine_bench.measure_persisted(engine_url, n_engine))
    result.update(
        http_complete_per_s=max(two["per_s"], four["per_s"]),
        http_complete_per_s_2_clients=two["per_s"],
        http_complete_per_s_4_clients=four["per_s"],
        http_completions=two["completions"] + four["completions"],
        engine_persisted_per_s=round(statistics.median(engine_rates), 1),
        engine_persisted_samples=[round(r, 1) for r in engine_rates],
    )
    result["http_ratio"] = round(result["http_complete_per_s"] / result["engine_persisted_per_s"], 3)
    log(
        f"  http {two['per_s']}/s with 2 clients, {four['per_s']}/s with 4; engine {engine_rates}; "
        f"ratio {result['http_ratio']}"
    )
    log("  the shipped processes' own steps, 8 clients over HTTP ...")
    result["real_steps"] = real_steps.measure(engine_url, journeys=20 if quick else 40, clients=8, log=log)
    return result


def run(quick: bool = False, skip_postgres: bool = False, log=print) -> dict:
    """Run the web benchmark on SQLite (and PostgreSQL) and return the figures."""
    out: dict = {"quick": quick, "scale": _scaled(quick), "townships": TOWNSHIPS}
    with tempfile.TemporaryDirectory(prefix="eldercare-web-bench-") as tmp:
        out["sqlite"] = bench_database(
            f"sqlite:///{tmp}/web.sqlite", f"sqlite:///{tmp}/engine.sqlite", quick=quick, log=log
        )
    if not skip_postgres:
        pg_url, pg_folder = engine_bench.postgres_url()
        try:
            admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for name in ("eldercare_web_bench", "eldercare_engine_bench"):
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                    conn.execute(text(f"CREATE DATABASE {name}"))
            admin.dispose()
            base = pg_url.rsplit("/", 1)[0]
            out["postgres"] = bench_database(
                f"{base}/eldercare_web_bench", f"{base}/eldercare_engine_bench", quick=quick, log=log
            )
        finally:
            if pg_folder:
                from bench import pgcluster

                pgcluster.discard(pg_folder)
    out["targets"] = {
        "postgres_inbox_p95_ms": 50,
        "sqlite_inbox_p95_ms": 100,
        "http_ratio": 0.40,
        "dashboard_p95_ms": 200,
        "case_list_p95_ms": 200,
        "real_steps_p95_ms": 100,
        "real_steps_per_s": 144,
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    processes.install()
    result = run(quick=args.quick, skip_postgres=args.no_postgres, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
