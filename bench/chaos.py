"""`eldercare chaos`: nothing lost, nothing doubled, under races, kills and a database outage.

For each database (SQLite, and PostgreSQL in a throw-away cluster of its own, which it stops and starts),
against `eldercare serve` (2 web workers and the background worker) that it starts on loopback with the
demo data:

1. races over HTTP: N double completions, double starts and double claims, each pair sent at once;
2. kills: clients working cases (registering elders, starting cases, claiming, completing) while a web
   worker, the background worker, or `serve` itself is killed with SIGKILL at random moments; `serve` is
   started again when it was the one killed;
3. an outage of the database for 10 s under the same load (PostgreSQL stopped; SQLite held by an
   exclusive lock, as a long maintenance job would);
4. then, with the server stopped: every acknowledged write is there (elders, cases, claims, completions),
   no task was completed twice, no elder has two running cases of one process, the inbox projection and
   the waits agree with each running case's state, and every hash chain verifies.

Prints one JSON line per database with the counts: acknowledged, lost, doubled, half_written,
chains_broken, server_errors_outside_outages, recovery_seconds, and the detail.

    python -m bench chaos [--quick] [--no-postgres]        (or: eldercare chaos)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bench import pgcluster
from bench.real_steps import answers
from workflows import audit, clock, versions
from workflows.db import make_engine, session_factory
from workflows.models import Case, CaseEvent, CaseStatus, CaseWait, EventKind, HumanTask, TaskStatus, User
from workflows.models.elders import Elder
from workflows.rules.idnumber import compute_check_char

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "chaos-password-1"
ROLES = ("caseworker", "caseworker_b", "village_assistant", "assessor", "approver")
VILLAGE = "410825100201"


class Lab:
    """One instance: its folder, its database, and `eldercare serve` started (and killed) on loopback."""

    def __init__(self, url: str | None, folder: Path):
        self.folder = folder
        self.env = dict(os.environ, ELDERCARE_INSTANCE=str(folder), ELDERCARE_DEMO_PASSWORD=PASSWORD)
        self.env.pop("DATABASE_URL", None)
        if url:
            self.env["DATABASE_URL"] = url
        self.url = url or f"sqlite:///{folder / 'eldercare.sqlite'}"
        self.serve: subprocess.Popen | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._cli("init-db", "--demo")
        self._cli(
            "user",
            "add",
            "caseworker_b",
            "--name",
            "祥云镇经办人乙",
            "--role",
            "caseworker",
            "--area",
            "410825100",
            extra={"ELDERCARE_NEW_PASSWORD": PASSWORD},
        )

    def _cli(self, *args: str, extra: dict | None = None) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env={**self.env, **(extra or {})},
            cwd=ROOT,
            capture_output=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"eldercare {' '.join(args)}: {done.stderr.decode()[-2000:]}")

    def start(self) -> None:
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "serve.log", "ab"),  # noqa: SIM115 - kept open by the child
            start_new_session=True,
        )
        self.wait_healthy()

    def wait_healthy(self, within: float = 60.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < within:
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not come up")

    def children(self) -> dict[str, list[int]]:
        """The web workers and the background worker of `serve`, by pid."""
        found: dict[str, list[int]] = {"web": [], "worker": []}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.serve.pid:
                found["worker" if " worker " in cmd + " " else "web"].append(int(entry.name))
        return found

    def stop(self, how=signal.SIGTERM) -> None:
        if self.serve is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.serve.pid, how)
        try:
            self.serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.serve.pid, signal.SIGKILL)
            self.serve.wait(timeout=30)
        self.serve = None


def request(port: int, method: str, path: str, body=None, token: str | None = None, timeout: float = 30.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    try:
        parsed = json.loads(payload) if payload else {}
    except ValueError:
        parsed = {"raw": payload[:200].decode("utf-8", "replace")}
    return response.status, parsed


class Ledger:
    """Every write the server acknowledged (2xx), and every 5xx, with when it happened."""

    def __init__(self):
        self.lock = threading.Lock()
        self.elders: list[int] = []
        self.cases: list[int] = []
        self.claims: list[tuple[str, str]] = []  # (task id, role)
        self.completions: list[tuple[str, str]] = []
        self.server_errors: list[tuple[float, int, str]] = []
        self.outages: list[tuple[float, float]] = []
        self.no_answer = 0

    def acknowledged(self) -> int:
        return len(self.elders) + len(self.cases) + len(self.claims) + len(self.completions)

    def errors_outside_outages(self) -> list:
        grace = 15.0  # the outage, and the seconds the server takes to find the database back
        return [e for e in self.server_errors if not any(a <= e[0] <= b + grace for a, b in self.outages)]


class Clients:
    """People working: register an elder, start an assessment or a visiting-care enrolment for them, claim
    and complete its steps. Answers that never came (a killed process) are not acknowledged writes."""

    def __init__(self, lab: Lab, ledger: Ledger, tokens: dict, steps: dict, seed: int):
        self.lab, self.ledger, self.tokens, self.steps = lab, ledger, tokens, steps
        self.rng = random.Random(seed)
        self.serial = seed * 100_000
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _call(self, method, path, body=None, role=None):
        try:
            status, payload = request(self.lab.port, method, path, body, self.tokens.get(role))
        except OSError:
            with self.ledger.lock:
                self.ledger.no_answer += 1
            return None, {}
        if status >= 500:
            with self.ledger.lock:
                self.ledger.server_errors.append((time.monotonic(), status, f"{method} {path}"))
        return status, payload

    def _elder(self) -> int | None:
        self.serial += 1
        n = self.serial
        first17 = f"410825{(date(1930, 1, 1) + timedelta(days=n % 9000)):%Y%m%d}{n % 1000:03d}"
        body = {
            "name": "混沌" + "甲乙丙丁戊己庚辛壬癸"[n % 10] + "老人",
            "id_number": first17 + compute_check_char(first17),
            "hukou_type": "rural",
            "residence_area_code": VILLAGE,
            "living_arrangement": "living_alone",
            "dibao": True,
            "phone": "13912345678",
        }
        status, payload = self._call("POST", "/api/elders", body, "village_assistant")
        if status == 201:
            with self.ledger.lock:
                self.ledger.elders.append(payload["id"])
            return payload["id"]
        return None

    def journey(self) -> None:
        elder = self._elder()
        if elder is None:
            return
        process = self.rng.choice(("assessment", "visiting_care"))
        data = {"reason": "initial"} if process == "assessment" else {"note": "独居"}
        status, case = self._call(
            "POST", "/api/cases", {"process": process, "elder_id": elder, "data": data}, "village_assistant"
        )
        if status != 201:
            return
        with self.ledger.lock:
            self.ledger.cases.append(case["id"])
        todo = [(t["id"], t["step"], t["role"]) for t in case.get("open_tasks", [])]
        while todo and not self.stop.is_set():
            task_id, spec, role = todo.pop(0)
            who = "caseworker_b" if role == "caseworker" and self.rng.random() < 0.5 else role
            if self.rng.random() < 0.4:
                status, _ = self._call("POST", f"/api/tasks/{task_id}/claim", None, who)
                if status == 200:
                    with self.ledger.lock:
                        self.ledger.claims.append((task_id, who))
            answer = self.steps.get(spec)
            if answer is None or callable(answer):
                return
            status, outcome = self._call("POST", f"/api/tasks/{task_id}/complete", {"data": answer}, who)
            if status != 200:
                return
            with self.ledger.lock:
                self.ledger.completions.append((task_id, who))
            todo += [(t["id"], t["step"], t["role"]) for t in outcome.get("next_tasks", [])]

    def run(self, n: int) -> None:
        def loop():
            while not self.stop.is_set():
                self.journey()

        self.threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def halt(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)


def login(lab: Lab) -> dict[str, str]:
    tokens = {}
    for role in ROLES:
        status, body = request(lab.port, "POST", "/api/login", {"username": role, "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login {role}: {status} {body}")
        tokens[role] = body["token"]
    return tokens


# --------------------------------------------------------------------------------------------------
# 1. Races


def races(lab: Lab, tokens: dict, steps: dict, pairs: int, ledger: Ledger) -> dict:
    clients = Clients(lab, ledger, tokens, steps, seed=7)
    both = Counter()

    def at_once(*calls):
        gate = threading.Barrier(len(calls))
        results = [None] * len(calls)

        def run(i, call):
            gate.wait()
            results[i] = call()

        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    for _ in range(pairs):
        _race_once(clients, steps, ledger, both, at_once)
    return {"pairs": pairs, "both_won": dict(both)}


def _race_once(clients: Clients, steps: dict, ledger: Ledger, both: Counter, at_once) -> None:
    """One double start, one double claim and one double completion, each pair sent at once."""
    elder = clients._elder()
    body = {"process": "visiting_care", "elder_id": elder, "data": {}}
    results = at_once(
        lambda: clients._call("POST", "/api/cases", body, "village_assistant"),
        lambda: clients._call("POST", "/api/cases", body, "caseworker"),
    )
    started = [payload for status, payload in results if status == 201]
    ledger.cases += [case["id"] for case in started]
    both["starts"] += len(started) == 2
    if not started:
        return
    task_id = started[0]["open_tasks"][0]["id"]
    results = at_once(
        lambda: clients._call("POST", f"/api/tasks/{task_id}/claim", None, "caseworker"),
        lambda: clients._call("POST", f"/api/tasks/{task_id}/claim", None, "caseworker_b"),
    )
    claimed = [
        who for (status, _), who in zip(results, ("caseworker", "caseworker_b"), strict=True) if status == 200
    ]
    ledger.claims += [(task_id, who) for who in claimed]
    both["claims"] += len(claimed) == 2
    holder = claimed[0] if claimed else "caseworker"
    answer = {"data": steps["confirm_enrolment"]}
    results = at_once(
        lambda: clients._call("POST", f"/api/tasks/{task_id}/complete", answer, holder),
        lambda: clients._call("POST", f"/api/tasks/{task_id}/complete", answer, holder),
    )
    done = [status for status, _ in results if status == 200]
    ledger.completions += [(task_id, holder)] * len(done)
    both["completions"] += len(done) == 2


# --------------------------------------------------------------------------------------------------
# 2. Kills, 3. an outage


def kills(lab: Lab, clients: Clients, rounds: int, rng: random.Random) -> list[dict]:
    done = []
    for _ in range(rounds):
        time.sleep(rng.uniform(1.5, 4.0))  # a random moment under load
        target = rng.choice(("web", "worker", "serve"))
        found = lab.children()
        if target == "serve" or not found[target]:
            target = "serve"
            pid = lab.serve.pid
            os.kill(pid, signal.SIGKILL)
            lab.serve.wait(30)
            # Its worker ends with it (parent-death signal); gunicorn's web workers notice their parent is
            # gone and exit. Whatever is left of the group is cleared before starting again.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            t0 = time.monotonic()
            lab.start()
            recovered = time.monotonic() - t0
        else:
            pid = rng.choice(found[target])
            os.kill(pid, signal.SIGKILL)
            t0 = time.monotonic()
            recovered = lab.wait_healthy()
        done.append({"killed": target, "recovered_s": round(recovered, 2)})
    return done


def outage(lab: Lab, pg_folder: str | None, ledger: Ledger, seconds: float = 10.0) -> float:
    """Take the database away for `seconds` under load; return how long writes took to succeed again."""
    start = time.monotonic()
    if pg_folder:
        pgcluster.stop_cluster(pg_folder)
        time.sleep(seconds)
        pgcluster.start_cluster(pg_folder)
    else:
        hold = sqlite3.connect(lab.folder / "eldercare.sqlite", timeout=30)
        hold.isolation_level = None
        hold.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        hold.execute("COMMIT")
        hold.close()
    back = time.monotonic()
    ledger.outages.append((start, back))
    # Recovered: the first write acknowledged after the database came back.
    before = ledger.acknowledged()
    while ledger.acknowledged() == before and time.monotonic() - back < 120:
        time.sleep(0.05)
    return round(time.monotonic() - back, 2)


# --------------------------------------------------------------------------------------------------
# 4. Checks


def check(url: str, ledger: Ledger) -> dict:
    engine = make_engine(url)
    lost: Counter = Counter()
    doubled: Counter = Counter()
    half: Counter = Counter()
    broken = 0
    with session_factory(engine)() as s:
        known_elders = (
            set(s.scalars(select(Elder.id).where(Elder.id.in_(ledger.elders)))) if ledger.elders else set()
        )
        lost["elders"] = len(set(ledger.elders) - known_elders)
        known_cases = (
            set(s.scalars(select(Case.id).where(Case.id.in_(ledger.cases)))) if ledger.cases else set()
        )
        lost["cases"] = len(set(ledger.cases) - known_cases)
        users = {u.username: u.id for u in s.scalars(select(User))}
        completed_events: Counter = Counter()
        claimed_events: set = set()
        for event in s.scalars(
            select(CaseEvent).where(CaseEvent.kind.in_([EventKind.TASK_COMPLETED, EventKind.CLAIMED]))
        ):
            detail = json.loads(event.detail or "{}")
            if event.kind == EventKind.TASK_COMPLETED and detail.get("task_id"):
                completed_events[detail["task_id"]] += 1
            elif event.kind == EventKind.CLAIMED:
                claimed_events.add((event.case_id, event.task_spec, event.actor_id))
        for task_id, who in set(ledger.completions):
            task = s.get(HumanTask, task_id)
            if task is None or task.status != TaskStatus.COMPLETED or task.completed_by != users[who]:
                lost["completions"] += 1
            elif completed_events[task_id] == 0:
                lost["completion_events"] += 1
        for task_id, who in set(ledger.claims):
            task = s.get(HumanTask, task_id)
            if task is None or (task.case_id, task.task_spec, users[who]) not in claimed_events:
                lost["claims"] += 1
        doubled["acknowledged_twice"] = len(ledger.completions) - len(set(ledger.completions))
        doubled["claims_acknowledged_twice"] = sum(
            1 for n in Counter(t for t, _ in ledger.claims).values() if n > 1
        )
        doubled["tasks_completed_twice"] = sum(1 for n in completed_events.values() if n > 1)
        doubled["running_twice"] = len(
            s.execute(
                select(Case.elder_id, Case.process_key)
                .where(
                    Case.status == CaseStatus.RUNNING,
                    Case.elder_id.is_not(None),
                    Case.process_key.in_(("assessment", "visiting_care", "home_care", "home_adaptation")),
                )
                .group_by(Case.elder_id, Case.process_key)
                .having(func.count() > 1)
            ).all()
        )
        for case in s.scalars(select(Case).order_by(Case.id)):
            if audit.verify_chain(s, case.id):
                broken += 1
            if case.status != CaseStatus.RUNNING:
                continue
            instance = versions.runtime(
                s, case.process_key, case.version_hash, case.process_version_id
            ).restore(case.state)
            in_state = {step.id for step in instance.human_steps()}
            in_inbox = set(
                s.scalars(
                    select(HumanTask.id).where(
                        HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY
                    )
                )
            )
            if in_state != in_inbox:
                half["inbox"] += 1
            waits = {p.name for p in instance.pending() if p.kind in ("message", "signal")}
            rows = set(s.scalars(select(CaseWait.event_name).where(CaseWait.case_id == case.id)))
            if waits != rows or set(filter(None, case.waiting_for.split("\n"))) != waits:
                half["waits"] += 1
        cases_total = s.scalar(select(func.count()).select_from(Case))
    engine.dispose()
    return {
        "lost": sum(lost.values()),
        "lost_detail": {k: v for k, v in lost.items() if v},
        "doubled": sum(doubled.values()),
        "doubled_detail": {k: v for k, v in doubled.items() if v},
        "half_written": sum(half.values()),
        "half_written_detail": {k: v for k, v in half.items() if v},
        "chains_broken": broken,
        "cases_checked": cases_total,
    }


# --------------------------------------------------------------------------------------------------


def run_database(kind: str, *, quick: bool, log=print) -> dict:
    rng = random.Random(20261203)
    with tempfile.TemporaryDirectory(prefix="eldercare-chaos-") as tmp:
        folder = Path(tmp) / "instance"
        folder.mkdir()
        pg_folder = None
        url = None
        if kind == "postgresql":
            # A folder of its own under /tmp: the server runs as `postgres`, which cannot enter `tmp`.
            pg_folder = tempfile.mkdtemp(prefix="eldercare-chaos-pg-")
            url = pgcluster.start(pg_folder)
        lab = Lab(url, folder)
        ledger = Ledger()
        try:
            lab.start()
            tokens = login(lab)
            steps = answers(clock.today(), provider_id=0)
            log(f"{kind}: races ...")
            raced = races(lab, tokens, steps, 5 if quick else 20, ledger)
            log(f"{kind}: kills under load ...")
            clients = Clients(lab, ledger, tokens, steps, seed=11)
            clients.run(6)
            killed = kills(lab, clients, 3 if quick else 8, rng)
            log(f"{kind}: the database away for 10 s under load ...")
            recovery = outage(lab, pg_folder, ledger)
            time.sleep(2)
            clients.halt()
            lab.stop()
            log(f"{kind}: checking {ledger.acknowledged()} acknowledged writes ...")
            found = check(
                lab.url if url is None else url.replace("postgresql://", "postgresql+psycopg://", 1), ledger
            )
        finally:
            lab.stop(signal.SIGKILL)
            if pg_folder:
                pgcluster.discard(pg_folder)
    return {
        "database": kind,
        "acknowledged": ledger.acknowledged(),
        "acknowledged_detail": {
            "elders": len(ledger.elders),
            "cases": len(ledger.cases),
            "claims": len(ledger.claims),
            "completions": len(ledger.completions),
        },
        **found,
        "server_errors_outside_outages": len(ledger.errors_outside_outages()),
        "server_errors_outside_outages_detail": [e[1:] for e in ledger.errors_outside_outages()][:10],
        "server_errors_total": len(ledger.server_errors),
        "requests_without_answer": ledger.no_answer,
        "recovery_seconds": recovery,
        "races": raced,
        "kills": killed,
    }


def run(*, quick: bool = False, skip_postgres: bool = False, log=print) -> dict:
    out = {"sqlite": run_database("sqlite", quick=quick, log=log)}
    if not skip_postgres:
        out["postgresql"] = run_database("postgresql", quick=quick, log=log)
    return out
