"""Scale-out: one "host" on one core against two hosts on two cores, sharing one PostgreSQL.

A host is `eldercare serve` (2 web workers and the background worker) bound to a loopback address of its
own (127.0.0.2, 127.0.0.3) and pinned to one core with `taskset`; traffic goes only to those addresses.
Both hosts use one throw-away PostgreSQL cluster (not pinned), loaded with the demo county; both
instances share one movable clock file, moved 40 days forward in the middle of each run so that timers
and periods come due while both workers run.

Loads, each run first on one host, then on two (locust, `bench/locustfile.py`, headless):

- saturating: 200 users acting without pause (0–0.2 s between actions): the throughput (requests/s
  answered) of each set-up and their ratio (target >= 1.6);
- realistic: 200 office users thinking 2–6 s between actions: p50/p95 per page and the error rate.

After every run: no timer fired twice, no service month or visit period opened twice (two workers race
for them through SKIP LOCKED).

The machine has two cores and everything runs on them: PostgreSQL and locust are not pinned and take
their share from whichever host is busy, so the ratio understates what two real hosts would reach.

    python -m bench scaleout [--quick]        (or: eldercare bench scaleout)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from bench import pgcluster
from workflows.clock import ShiftedClock
from workflows.db import make_engine, session_factory
from workflows.models import CaseEvent, EventKind

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "scaleout-password-1"
ADDRESSES = ("127.0.0.2", "127.0.0.3")
PORT = 5800


def _healthy(base: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not come up")


class Host:
    """`eldercare serve` on one loopback address, pinned to one core."""

    def __init__(self, address: str, core: int, env: dict, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.base = f"http://{address}:{PORT}"
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(core),
                sys.executable,
                "-m",
                "cli",
                "serve",
                "--host",
                address,
                "--port",
                str(PORT),
                "--workers",
                "2",
            ],
            env={**env, "ELDERCARE_INSTANCE": str(folder)},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "serve.log", "ab"),  # noqa: SIM115 - kept open by the child
            start_new_session=True,
        )
        _healthy(self.base)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the host's processes (serve, its web workers, its worker)."""
        tick = os.sysconf("SC_CLK_TCK")
        used = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # its process group
                used += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        return used / tick

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def _locust(hosts: list[str], users: int, seconds: int, think: str, out: Path, clock_file: Path) -> dict:
    env = dict(
        os.environ,
        ELDERCARE_HOSTS=" ".join(hosts),
        ELDERCARE_PASSWORD=PASSWORD,
        ELDERCARE_THINK=think,
        ELDERCARE_CLOCK_FILE=str(clock_file),
        ELDERCARE_CONFLICTS_FILE=str(out.with_name(out.name + "_conflicts.json")),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(max(1, users // 5)),
            "-t",
            f"{seconds}s",
            "--reset-stats",
            "--csv",
            str(out),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--host",
            hosts[0],
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    stats = out.with_name(out.name + "_stats.csv")
    if not stats.exists():
        raise RuntimeError(f"locust wrote no figures: {done.stderr[-2000:]}")
    pages, total = {}, None
    with open(stats, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            figures = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "per_s": round(float(row["Requests/s"]), 1),
                "p50_ms": float(row["50%"]) if row["50%"] != "N/A" else None,
                "p95_ms": float(row["95%"]) if row["95%"] != "N/A" else None,
            }
            if row["Name"] == "Aggregated":
                total = figures
            else:
                pages[row["Name"]] = figures
    failures = out.with_name(out.name + "_failures.csv")
    kinds = []
    if failures.exists():
        with open(failures, encoding="utf-8") as f:
            kinds = [f"{r['Name']}: {r['Error'][:120]} x{r['Occurrences']}" for r in csv.DictReader(f)][:10]
    conflicts = out.with_name(out.name + "_conflicts.json")
    found = json.loads(conflicts.read_text()) if conflicts.exists() else {}
    return {"total": total, "pages": pages, "failure_kinds": kinds, "conflicts_409": found}


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _doubles(url: str) -> dict:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        fired = s.execute(
            select(CaseEvent.case_id, CaseEvent.detail, func.count())
            .where(CaseEvent.kind == EventKind.TIMER_FIRED)
            .group_by(CaseEvent.case_id, CaseEvent.detail)
            .having(func.count() > 1)
        ).all()
        months = s.execute(
            text(
                "SELECT count(*) FROM (SELECT enrolment_id, month FROM home_care_months "
                "GROUP BY enrolment_id, month HAVING count(*) > 1) d"
            )
        ).scalar()
        visits = s.execute(
            text(
                "SELECT count(*) FROM (SELECT enrolment_id, period_start FROM visits "
                "GROUP BY enrolment_id, period_start HAVING count(*) > 1) d"
            )
        ).scalar()
        timers = s.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == EventKind.TIMER_FIRED)
        )
    engine.dispose()
    return {
        "timers_fired": timers,
        "timers_fired_twice": len(fired),
        "months_opened_twice": months,
        "visits_opened_twice": visits,
    }


def run(quick: bool = False, log=print) -> dict:
    seconds = 30 if quick else 60
    users = 50 if quick else 200
    pg_folder = tempfile.mkdtemp(prefix="eldercare-scaleout-pg-")
    work = Path(tempfile.mkdtemp(prefix="eldercare-scaleout-"))
    out: dict = {"users": users, "seconds": seconds, "cores": os.cpu_count()}
    try:
        server = pgcluster.start(pg_folder)
        admin = make_engine(server, isolation_level="AUTOCOMMIT")
        base = server.rsplit("/", 1)[0]
        for setup in ("one_host", "two_hosts"):
            for load, think in (("saturating", "0,0.2"), ("realistic", "2,6")):
                name = f"eldercare_scaleout_{setup}_{load}"
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                    conn.execute(text(f"CREATE DATABASE {name}"))
                url = f"{base}/{name}"
                clock_file = work / f"{name}.clock"
                env = dict(
                    os.environ,
                    DATABASE_URL=url,
                    ELDERCARE_DEMO_PASSWORD=PASSWORD,
                    ELDERCARE_CLOCK_FILE=str(clock_file),
                )
                subprocess.run(
                    [sys.executable, "-m", "cli", "init-db", "--demo"],
                    env={**env, "ELDERCARE_INSTANCE": str(work / name / "setup")},
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                )
                count = 1 if setup == "one_host" else 2
                log(f"{setup}, {load}: {users} users for {seconds} s ...")
                hosts = [Host(ADDRESSES[i], i, env, work / name / f"host{i}") for i in range(count)]
                try:
                    busy_before = _machine_busy()
                    cpu_before = sum(h.cpu_seconds() for h in hosts)
                    figures = _locust(
                        [h.base for h in hosts], users, seconds, think, work / name / "locust", clock_file
                    )
                    hosts_cpu = sum(h.cpu_seconds() for h in hosts) - cpu_before
                    machine_cpu = _machine_busy() - busy_before
                    answered = (figures["total"] or {}).get("requests", 0)
                    # Where the two cores went: the hosts, and everything else (PostgreSQL, locust).
                    figures["cpu"] = {
                        "hosts_s": round(hosts_cpu, 1),
                        "others_s": round(machine_cpu - hosts_cpu, 1),
                        "requests_per_host_cpu_s": round(answered / hosts_cpu, 1) if hosts_cpu else None,
                    }
                    # Then 40 days pass at once: timers and periods come due for every worker together.
                    ShiftedClock.write_offset(clock_file, timedelta(days=40))
                    time.sleep(15)  # a few rounds of each worker
                finally:
                    for h in hosts:
                        h.stop()
                figures["doubles"] = _doubles(url.replace("postgresql://", "postgresql+psycopg://", 1))
                total = figures["total"] or {}
                log(
                    f"  {total.get('per_s')} requests/s, p95 {total.get('p95_ms')} ms, "
                    f"{total.get('failures')} failures; cpu {figures.get('cpu')}; {figures['doubles']}"
                )
                for kind in figures["failure_kinds"]:
                    log(f"    failure: {kind}")
                out.setdefault(setup, {})[load] = figures
        admin.dispose()
    finally:
        pgcluster.discard(pg_folder)
        shutil.rmtree(work, ignore_errors=True)
    one = out["one_host"]["saturating"]["total"]["per_s"]
    two = out["two_hosts"]["saturating"]["total"]["per_s"]
    out["throughput_ratio"] = round(two / one, 2) if one else None
    # Requests per CPU-second of the hosts themselves: equal figures mean a second host adds a whole
    # host's capacity (no contention between hosts); the wall-clock ratio is bounded by the machine.
    per_cpu = [out[s]["saturating"]["cpu"]["requests_per_host_cpu_s"] for s in ("one_host", "two_hosts")]
    out["per_host_cpu_ratio"] = round(per_cpu[1] / per_cpu[0], 2) if all(per_cpu) else None
    out["target"] = {"throughput_ratio": 1.6}
    return out


if __name__ == "__main__":
    from workflows import processes

    processes.install()
    print(json.dumps(run(), ensure_ascii=False))
