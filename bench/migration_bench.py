"""Moving running cases to a new version: 10,000 家庭适老化改造 cases on version 1 moved to version 2 in one
batch, by the background job as it runs in production (`case_moves.run_batches`, 200 cases a call, each in
its own savepoint, a commit per call).

Version 2 is what a process owner does in the studio: the township's review renamed, a user task with its
own form added after the township's decision (its flow with a condition) and connected on. Every case can
move (the dry run is measured too, on a sample), so the figure is the cost of a move: restore the case,
SpiffWorkflow's diff and migration of the instance, run it to its next wait, write state, inbox rows and the
audited event.

Cases are started through the engine (the real diagram, run to its first wait), in the county's townships;
the time to start them is not counted.

    .venv/bin/python -m bench migration [--quick] [--no-postgres]

Figures: cases_per_s and minutes for the batch, on SQLite and PostgreSQL; dry_run_cases_per_s.
"""

from __future__ import annotations

import json
import tempfile
import time

from sqlalchemy import func, select

from bench.engine_bench import postgres_url
from workflows import case_moves, cases, demo, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Case, CaseStatus, ProcessVersion, User

TOWNSHIPS = ("410825100", "410825101")
NEW_TASK = """<bpmn:userTask id="home_check" name="入户核实">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="home_check.json" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>to_home_check</bpmn:incoming><bpmn:outgoing>home_check_done</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="to_home_check" sourceRef="township_decision" targetRef="home_check">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">decision == "verify_at_home"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="home_check_done" sourceRef="home_check" targetRef="county_review" />
    """
HOME_CHECK_FORM = {
    "title": "入户核实",
    "type": "object",
    "properties": {"findings": {"title": "核实情况", "type": "string"}},
    "required": ["findings"],
}


def version_two(files: dict[str, bytes]) -> dict[str, bytes]:
    """The shipped bundle as a process owner changes it in the studio (see the module's text)."""
    changed = dict(files)
    path = next(p for p in files if p.endswith("home_adaptation.bpmn"))
    text = files[path].decode("utf-8")
    text = text.replace('name="乡镇（街道）初审"', 'name="乡镇（街道）初审并核实材料"', 1)
    if "xmlns:xsi=" not in text:
        text = text.replace(
            "<bpmn:definitions ",
            '<bpmn:definitions xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ',
            1,
        )
    text = text.replace("</bpmn:process>", NEW_TASK + "</bpmn:process>", 1)
    text = text.replace(
        "<bpmn:flowNodeRef>township_review</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>township_review</bpmn:flowNodeRef><bpmn:flowNodeRef>home_check</bpmn:flowNodeRef>",
        1,
    )
    text = text.replace(
        "<bpmn:outgoing>township_rejected</bpmn:outgoing>",
        "<bpmn:outgoing>township_rejected</bpmn:outgoing>\n      <bpmn:outgoing>to_home_check</bpmn:outgoing>",
        1,
    )
    text = text.replace(
        "<bpmn:incoming>township_approved</bpmn:incoming>",
        "<bpmn:incoming>township_approved</bpmn:incoming>\n      <bpmn:incoming>home_check_done</bpmn:incoming>",
        1,
    )
    changed[path] = text.encode("utf-8")
    folder = path.rpartition("/")[0]
    changed[f"{folder}/forms/home_check.json" if folder else "forms/home_check.json"] = json.dumps(
        HOME_CHECK_FORM, ensure_ascii=False
    ).encode("utf-8")
    return changed


def prepare(url: str, n_cases: int, log) -> dict:
    """A database with the demo county, version 1, `n_cases` running cases on it, then version 2."""
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    shipped = versions.read_bundle(bpmn_dir())
    with make.begin() as session:
        demo.load_demo_registry(session, "bench-password-1")
        versions.deploy(session, None, shipped)
    started = time.perf_counter()
    done = 0
    while done < n_cases:
        with make.begin() as session:
            owner = session.scalar(select(User).where(User.username == "process_owner"))
            for _ in range(min(500, n_cases - done)):
                cases.start_case(
                    session, owner, "home_adaptation", area_code=TOWNSHIPS[done % 2], title="家庭适老化改造"
                )
                done += 1
        log(f"  started {done}/{n_cases} cases ({time.perf_counter() - started:.0f} s)")
    with make.begin() as session:
        owner = session.scalar(select(User).where(User.username == "process_owner"))
        [v2] = [
            d
            for d in versions.deploy(session, owner, version_two(shipped), comment="基准测试：新增入户核实")
            if d.key == "home_adaptation"
        ]
        assert v2.created and v2.version == 2
    engine.dispose()
    return {"engine_url": url}


def measure(url: str, n_cases: int, log) -> dict:
    engine = make_engine(url)
    make = session_factory(engine)
    with make() as session:
        owner = session.scalar(select(User).where(User.username == "process_owner"))
        sample = [c.id for c in case_moves.running_cases(session, owner, "home_adaptation")[:500]]
        started = time.perf_counter()
        plan = case_moves.dry_run(session, owner, "home_adaptation", 2, sample)
        dry_seconds = time.perf_counter() - started
        assert all(line.can_move for line in plan), [line.reasons for line in plan if not line.can_move][:3]
    with make.begin() as session:
        owner = session.scalar(select(User).where(User.username == "process_owner"))
        batch = case_moves.request_batch(session, owner, "home_adaptation", 2, None, comment="基准测试")
        batch_id = batch.id
    started = time.perf_counter()
    while True:
        with make.begin() as session:
            looked = case_moves.run_batches(session)
        if not looked:
            break
        with make() as session:
            progress = case_moves.batch_progress(
                session, session.scalar(select(User).where(User.username == "process_owner")), batch_id
            )
        if progress["done"] % 2000 == 0 or progress["status"] == "done":
            log(f"  moved {progress['done']}/{progress['total']} ({time.perf_counter() - started:.0f} s)")
    seconds = time.perf_counter() - started
    with make() as session:
        on_two = session.scalar(
            select(func.count())
            .select_from(Case)
            .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)
            .where(Case.status == CaseStatus.RUNNING, ProcessVersion.version == 2)
        )
    engine.dispose()
    assert on_two == n_cases, (on_two, n_cases)
    return {
        "cases": n_cases,
        "seconds": round(seconds, 1),
        "minutes": round(seconds / 60, 2),
        "cases_per_s": round(n_cases / seconds, 1),
        "dry_run_cases_per_s": round(len(sample) / dry_seconds, 1),
    }


def run(quick: bool = False, skip_postgres: bool = False, log=print) -> dict:
    n_cases = 1000 if quick else 10000
    result: dict = {
        "workload": "家庭适老化改造 v1 -> v2 (a task renamed, a user task with a form added): every running case moved in one batch",
        "cases": n_cases,
    }
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/migration.sqlite"
        log(f"SQLite: {n_cases} cases ...")
        prepare(url, n_cases, log)
        result["sqlite"] = measure(url, n_cases, log)
    if not skip_postgres:
        pg_url, pg_folder = postgres_url()
        try:
            log(f"PostgreSQL: {n_cases} cases ...")
            prepare(pg_url, n_cases, log)
            result["postgres"] = measure(pg_url, n_cases, log)
        finally:
            if pg_folder:
                from bench import pgcluster

                pgcluster.discard(pg_folder)
    return result
