"""The shipped processes' own steps, completed over HTTP by several clients at once: what users feel.

Journeys, each for an elder of its own (started over the API before the clock runs; starts are not
counted):

- home care for an elder never assessed: the assessment it calls (conduct_assessment, notify_result), the
  township's review, the county's approval, dispatching a provider, the provider's acceptance; then the
  service month the enrolment opens: the provider's records, a call-back when sampled, the settlement;
- a capability assessment asked for by itself: conduct_assessment, notify_result;
- visiting care: the township confirms the enrolment; then the visit the enrolment opens: record_visit.

Phase A completes the applications; the periods they enrol are then opened in-process (as the worker's
job does; not timed); phase B completes the months and visits. `clients` threads work cases side by side,
each completing a case's steps in order as the next one appears (as people clicking through their inboxes
would). Reported: completions per second, p50/p95 of a completion request, and the ratio to the same
steps run in memory by SpiffWorkflow alone (each case restored from the state it had before the timed
phase, the same step data given in the same order, one thread).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from workflows import clock, demo, elders, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Case, HumanTask, TaskStatus, User
from workflows.processes.home_care import enrolment as home_care
from workflows.processes.home_care import months
from workflows.processes.visiting_care import visiting
from workflows.rules.assessment import GROUPS, ITEMS
from workflows.rules.idnumber import compute_check_char

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"
VILLAGE = "410825100201"  # 祥云村, in the demo caseworker's township
ROLES = ("caseworker", "village_assistant", "approver", "provider", "assessor")


def _scores(total: int) -> dict[str, int]:
    scores = {item.key: item.max_score for item in ITEMS}
    missing = sum(scores.values()) - total
    for item in ITEMS:
        cut = min(missing, scores[item.key])
        scores[item.key] -= cut
        missing -= cut
    return scores


def answers(today: date, provider_id: int) -> dict:
    """What each step is completed with (a function of the case's data where the step needs it)."""
    day = today.isoformat()
    scores = _scores(50)
    no_events = dict.fromkeys(("falls", "choking", "self_harm", "wandering"), 0)
    return {
        "conduct_assessment": {
            "assessed_on": day,
            "assessment_reason": "initial",
            **{g.key: {i.key: scores[i.key] for i in ITEMS if i.group is g} for g in GROUPS},
            "special_conditions": {"coma": False, "dementia": False, "psychiatric": False, **no_events},
        },
        "notify_result": {"notified_on": day, "notify_method": "in_person", "objection": False},
        "township_review": {
            "decision": "pass",
            "home_visit_on": day,
            "verification": "入户核实：低保在册，独居",
        },
        "county_approval": {"decision": "approve", "comment": "同意"},
        "dispatch_provider": {"provider_id": provider_id},
        "provider_accept": {"decision": "accept", "planned_start_on": day},
        "confirm_enrolment": {"decision": "approve", "visit_frequency": "monthly"},
        "record_visit": {
            "visited_on": day,
            "method": "home",
            "services_provided": ["health_management", "home_safety", "emotional_support"],
            "findings": {
                "health_status": "fair",
                "home_safety_risk": False,
                "emergency": False,
                "needs": [],
                "notes": "精神状况良好，叮嘱按时服药",
            },
        },
        "record_services": {
            "services": [
                {
                    "service_date": day,
                    "service_type": "meal",
                    "minutes": 60,
                    "amount": "30.00",
                    "staff_name": "陈红",
                },
                {
                    "service_date": day,
                    "service_type": "cleaning",
                    "minutes": 90,
                    "amount": "50.00",
                    "staff_name": "陈红",
                },
            ]
        },
        "callback_check": {
            "callback": {
                "callback_on": day,
                "reached": True,
                "services_confirmed": "confirmed",
                "satisfaction": "satisfied",
            }
        },
        # The amount the month's check proposes (read from the case, as the settlement page shows it).
        "township_settlement": lambda case: {
            "settlement_amount": case["data"]["month_check"]["proposed_amount"]
        },
    }


# --------------------------------------------------------------------------------------------------
# The world


def setup(url: str, journeys: int) -> dict:
    """A fresh database: the demo county's people, the shipped processes, `journeys` elders per journey."""
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    with make.begin() as session:
        demo.load_demo_registry(session, PASSWORD)
        versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
    made = {"home_care": [], "assessment": [], "visiting_care": []}
    n = 0
    with make.begin() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        for kind in made:
            for _ in range(journeys):
                n += 1
                first17 = f"410825{(date(1935, 1, 1) + timedelta(days=n * 7)):%Y%m%d}{n % 1000:03d}"
                elder = elders.register_elder(
                    session,
                    admin,
                    {
                        "name": "基准" + "甲乙丙丁戊己庚辛壬癸"[n % 10] + "老人",
                        "id_number": first17 + compute_check_char(first17),
                        "phone": "13912345678",
                        "hukou_type": "rural",
                        "residence_area_code": VILLAGE,
                        "address": f"{n % 12 + 1}组{n}号",
                        "living_arrangement": "living_alone",
                        "dibao": True,
                    },
                )
                made[kind].append(elder.id)
    engine.dispose()
    return made


def open_periods(url: str) -> int:
    """Open this month's service month and visit for every enrolment made in phase A (the job's work)."""
    engine = make_engine(url)
    opened = 0
    with session_factory(engine).begin() as session:
        today = clock.today()
        for enrolment in session.scalars(select(home_care.HomeCareEnrolment)):
            months.open_month(session, enrolment, today.replace(day=1))
            opened += 1
        opened += visiting.open_due_visits(session, limit=100_000)
    engine.dispose()
    return opened


def snapshot(url: str, case_ids: list[int]) -> dict[int, tuple[str, str, int, str]]:
    """Each case's process, version and stored state now (what the in-memory replay starts from)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Case.id, Case.process_key, Case.version_hash, Case.process_version_id, Case.state).where(
                Case.id.in_(case_ids)
            )
        ).all()
    engine.dispose()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def open_cases(url: str, process_keys: tuple[str, ...]) -> list[int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = list(
            conn.scalars(
                select(Case.id)
                .where(Case.process_key.in_(process_keys), Case.status == "running")
                .order_by(Case.id)
            )
        )
    engine.dispose()
    return found


def ready_tasks(url: str, case_ids: list[int]) -> dict[int, list[tuple[str, str, str]]]:
    engine = make_engine(url)
    found: dict[int, list] = {c: [] for c in case_ids}
    with engine.connect() as conn:
        for case_id, task_id, spec, role in conn.execute(
            select(HumanTask.case_id, HumanTask.id, HumanTask.task_spec, HumanTask.role).where(
                HumanTask.case_id.in_(case_ids), HumanTask.status == TaskStatus.READY
            )
        ):
            found[case_id].append((task_id, spec, role))
    engine.dispose()
    return found


# --------------------------------------------------------------------------------------------------
# HTTP


class Server:
    """gunicorn serving the app on the database (2 workers, as `eldercare serve` starts it)."""

    def __init__(self, url: str, workers: int = 2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.instance = tempfile.mkdtemp(prefix="eldercare-real-steps-")
        env = dict(os.environ, DATABASE_URL=url, ELDERCARE_INSTANCE=self.instance)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "webapp:create_app()",
            ],
            cwd=str(ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(300):
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        self.tokens = {}
        for role in ROLES:
            status, body = self.request("POST", "/api/login", {"username": role, "password": PASSWORD})
            if status != 200:
                raise RuntimeError(f"login {role}: {status} {body}")
            self.tokens[role] = body["token"]

    def request(self, method: str, path: str, body=None, role: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Content-Type": "application/json"}
        if role:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, json.loads(payload) if payload else {}

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def start_journeys(server: Server, made: dict) -> list[int]:
    started = []
    bodies = {
        "home_care": {"applicant_type": "self", "requested_services": ["meal", "cleaning"]},
        "assessment": {"reason": "initial"},
        "visiting_care": {"note": "独居"},
    }
    for kind, elder_ids in made.items():
        for elder_id in elder_ids:
            status, body = server.request(
                "POST",
                "/api/cases",
                {"process": kind, "elder_id": elder_id, "data": bodies[kind]},
                "village_assistant",
            )
            if status != 201:
                raise RuntimeError(f"start {kind}: {status} {body}")
            started.append(body["id"])
    return started


def run_phase(server: Server, todo: dict[int, list], steps: dict, clients: int) -> dict:
    """Complete every case's steps with `clients` threads; return timings and the steps each case took."""
    queue = list(todo)
    lock = threading.Lock()
    latencies: list[float] = []
    taken: dict[int, list[tuple[str, dict]]] = {}
    failures: list[str] = []

    def work():
        while True:
            with lock:
                if not queue or failures:
                    return
                case_id = queue.pop()
            pending = list(todo[case_id])
            done_here = []
            while pending:
                task_id, spec, role = pending.pop(0)
                answer = steps.get(spec)
                if answer is None:
                    continue  # a step outside the workload (none expected)
                if callable(answer):
                    status, case = server.request("GET", f"/api/cases/{case_id}", role=role)
                    answer = answer(case)
                t0 = time.perf_counter()
                status, body = server.request(
                    "POST", f"/api/tasks/{task_id}/complete", {"data": answer}, role
                )
                elapsed = time.perf_counter() - t0
                if status != 200:
                    failures.append(f"{spec}: {status} {body}")
                    return
                done_here.append((spec, answer))
                with lock:
                    latencies.append(elapsed)
                pending.extend((t["id"], t["step"], t["role"]) for t in body["next_tasks"])
            with lock:
                taken[case_id] = done_here

    threads = [threading.Thread(target=work) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError("completions failed: " + "; ".join(failures[:3]))
    return {"seconds": elapsed, "latencies": latencies, "taken": taken}


def replay_in_memory(url: str, states: dict, taken: dict) -> tuple[int, float]:
    """The same steps through SpiffWorkflow alone: restore each case's earlier state, complete its steps
    with the same data in the same order; return completions and seconds spent completing."""
    engine = make_engine(url)
    done, spent = 0, 0.0
    with session_factory(engine)() as session:
        for case_id, steps in taken.items():
            key, content_hash, version_id, state = states[case_id]
            instance = versions.runtime(session, key, content_hash, version_id).restore(state)
            for spec, data in steps:
                step = next(s for s in instance.human_steps() if s.spec_id == spec)
                t0 = time.perf_counter()
                instance.complete(step.id, data)
                instance.human_steps()
                spent += time.perf_counter() - t0
                done += 1
    engine.dispose()
    return done, spent


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def measure(url: str, *, journeys: int = 30, clients: int = 8, log=print) -> dict:
    """Run both phases on this database; return the figures."""
    made = setup(url, journeys)
    server = Server(url)
    try:
        provider_id = server.request("GET", "/api/me", role="provider")[1]["id"]
        steps = answers(clock.today(), provider_id)
        case_ids = start_journeys(server, made)
        phases = []
        for name, keys in (("applications", None), ("periods", ("home_care_month", "visiting_care_visit"))):
            if keys is not None:
                log(f"  opening {open_periods(url)} service months and visits (the worker's job) ...")
                case_ids = open_cases(url, keys)
            states = snapshot(url, case_ids)
            todo = ready_tasks(url, case_ids)
            result = run_phase(server, todo, steps, clients)
            result["states"] = states
            phases.append(result)
            n = len(result["latencies"])
            log(f"  {name}: {n} completions in {result['seconds']:.1f} s")
    finally:
        server.stop()
    latencies = [x for p in phases for x in p["latencies"]]
    seconds = sum(p["seconds"] for p in phases)
    replayed, spent = 0, 0.0
    for p in phases:
        n, s = replay_in_memory(url, p["states"], p["taken"])
        replayed += n
        spent += s
    rate = len(latencies) / seconds
    inmemory = replayed / spent
    by_step: dict[str, int] = {}
    for p in phases:
        for steps_of_case in p["taken"].values():
            for spec, _ in steps_of_case:
                by_step[spec] = by_step.get(spec, 0) + 1
    return {
        "clients": clients,
        "completions": len(latencies),
        "per_s": round(rate, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "inmemory_per_s": round(inmemory, 1),
        "ratio_to_inmemory": round(rate / inmemory, 3),
        "steps": dict(sorted(by_step.items())),
    }
