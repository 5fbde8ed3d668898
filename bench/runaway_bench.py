"""A runaway diagram against the web app, on SQLite and PostgreSQL: how long until the step fails with its
clear error, and what another person's requests meanwhile take.

A process whose step after a review is `while True: pass` is deployed; the approver completes the review
through the API (a real round trip through the app's WSGI stack, in a thread); meanwhile, until that
request has its answer, a caseworker reads `/api/me` (a read) and another starts cases of an unrelated
process, each start completing its first step and running its script (a write). Reported: the runaway request's time and status, and p50 / p95 / max of the
unrelated reads and writes meanwhile, against the same requests with nothing else running.

    .venv/bin/python -m bench.runaway_bench [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time

from sqlalchemy import select

from bench.engine_bench import postgres_url
from workflows import demo, processes, versions
from workflows.db import make_engine, session_factory
from workflows.models import Base, User

PASSWORD = "bench-password-1"


def _process(key: str, script: str, lane: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="{key}_defs"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="{lane}">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>work</bpmn:flowNodeRef><bpmn:flowNodeRef>again</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="work" name="计算"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="again" name="复核"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="work" />
    <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="again" />
    <bpmn:sequenceFlow id="f4" sourceRef="again" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


def _pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000, 1)


def _figures(values: list[float]) -> list[float]:
    return [_pct(values, 0.5), _pct(values, 0.95), round(max(values) * 1000, 1)] if values else []


def measure(url: str, log) -> dict:
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with session_factory(engine).begin() as session:
        demo.load_demo_registry(session, PASSWORD)
        owner = session.scalar(select(User).where(User.username == "process_owner"))
        versions.deploy(
            session,
            owner,
            {"runaway.bpmn": _process("runaway", "while True: pass", "县民政局审批人 (approver)")},
            comment="基准",
        )
        versions.deploy(
            session,
            owner,
            {"normal.bpmn": _process("normal", "total = 1 + 1", "乡镇经办人 (caseworker)")},
            comment="基准",
        )
    engine.dispose()
    from webapp import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": False})

    def caller(username: str):
        client = app.test_client()
        token = client.post("/api/login", json={"username": username, "password": PASSWORD}).json["token"]
        return client, {"Authorization": f"Bearer {token}"}

    runner, runner_auth = caller("approver")
    starter, starter_auth = caller("process_owner")
    reader, reader_auth = caller("caseworker")
    writer, writer_auth = caller("caseworker2")

    def unrelated(stop) -> tuple[list[float], list[float]]:
        reads, writes = [], []
        while not stop():
            t0 = time.perf_counter()
            assert reader.get("/api/me", headers=reader_auth).status_code == 200
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()  # a start that completes the review and runs the script (a write)
            done = writer.post("/api/cases", json={"process": "normal"}, headers=writer_auth)
            assert done.status_code == 201, done.text
            writes.append(time.perf_counter() - t0)
        return reads, writes

    quiet_end = time.perf_counter() + 3
    alone_reads, alone_writes = unrelated(lambda: time.perf_counter() > quiet_end)
    # The process owner starts it (the review is the approver's, so the start runs no script).
    case = starter.post("/api/cases", json={"process": "runaway"}, headers=starter_auth).json
    task = case["open_tasks"][0]["id"]
    outcome: dict = {}

    def runaway() -> None:
        t0 = time.perf_counter()
        answer = runner.post(f"/api/tasks/{task}/complete", json={"data": {}}, headers=runner_auth)
        outcome.update(
            seconds=time.perf_counter() - t0, status=answer.status_code, message=answer.json["message"]
        )

    thread = threading.Thread(target=runaway)
    thread.start()
    reads, writes = unrelated(lambda: not thread.is_alive())
    thread.join()
    app.extensions["db_engine"].dispose()
    result = {
        "runaway_answered_after_s": round(outcome["seconds"], 2),
        "runaway_status": outcome["status"],
        "runaway_message": outcome["message"][:120],
        "unrelated_reads_meanwhile": len(reads),
        "read_ms_p50_p95_max": _figures(reads),
        "read_ms_alone_p50_p95_max": _figures(alone_reads),
        "unrelated_writes_meanwhile": len(writes),
        "write_ms_p50_p95_max": _figures(writes),
        "write_ms_alone_p50_p95_max": _figures(alone_writes),
    }
    log(json.dumps(result, ensure_ascii=False))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    processes.install()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        log("SQLite ...")
        result["sqlite"] = measure(f"sqlite:///{tmp}/runaway.sqlite", log)
    if not args.no_postgres:
        pg_url, pg_folder = postgres_url()
        try:
            log("PostgreSQL ...")
            result["postgres"] = measure(pg_url, log)
        finally:
            if pg_folder:
                from bench import pgcluster

                pgcluster.discard(pg_folder)
    print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
