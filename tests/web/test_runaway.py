"""A diagram that runs away cannot take the service down: its step is stopped at the time limit with a clear
Chinese error naming the element, nothing of the step is written, the case goes to error (in its timeline),
and another person's requests are served normally meanwhile."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import delete, select

from workflows import versions
from workflows.db import session_factory
from workflows.models import (
    Case,
    CaseEvent,
    CaseStatus,
    CaseWait,
    EventKind,
    HumanTask,
    ProcessVersion,
    TaskStatus,
)

RUNAWAY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="runaway_definitions"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="runaway_after_review" name="审核后死循环" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_caseworker" name="乡镇经办人 (caseworker)">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>spin</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>to_review</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核"><bpmn:incoming>to_review</bpmn:incoming><bpmn:outgoing>to_spin</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="spin" name="计算补贴"><bpmn:incoming>to_spin</bpmn:incoming><bpmn:outgoing>to_end</bpmn:outgoing>
      <bpmn:script>while True: pass</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="to_review" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="to_spin" sourceRef="review" targetRef="spin" />
    <bpmn:sequenceFlow id="to_end" sourceRef="spin" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def runaway_deployed(web_db):
    with session_factory(web_db[2]).begin() as session:
        versions.deploy(session, None, {"runaway.bpmn": RUNAWAY})
    yield
    # The shared test database goes back to the shipped processes only (other tests list them).
    with session_factory(web_db[2]).begin() as session:
        ids = select(Case.id).where(Case.process_key == "runaway_after_review").scalar_subquery()
        for model in (CaseEvent, HumanTask, CaseWait):
            session.execute(delete(model).where(model.case_id.in_(ids)))
        session.execute(delete(Case).where(Case.process_key == "runaway_after_review"))
        session.execute(delete(ProcessVersion).where(ProcessVersion.process_key == "runaway_after_review"))


def test_a_runaway_step_is_stopped_and_others_are_served_meanwhile(
    runaway_deployed, api, make_elder, db_session
):
    # Started by the village assistant: the first step is the caseworker's, so the start itself runs no script.
    started = api["village_assistant"].post(
        "/api/cases", {"process": "runaway_after_review", "elder_id": make_elder()}
    )
    assert started.status_code == 201, started.text
    case = started.json
    [task] = case["open_tasks"]
    outcome: dict = {}

    def complete() -> None:
        t0 = time.monotonic()
        response = api["caseworker"].post(f"/api/tasks/{task['id']}/complete", {"data": {}})
        outcome.update(status=response.status_code, body=response.json, seconds=time.monotonic() - t0)

    runner = threading.Thread(target=complete)
    runner.start()
    latencies = []
    while runner.is_alive():
        t0 = time.monotonic()
        assert api["approver"].get("/api/me").status_code == 200
        latencies.append(time.monotonic() - t0)
    runner.join()
    # Stopped at the 2 s limit (plus the rest of the request), with the element named, in Chinese.
    assert outcome["seconds"] < 6, outcome
    assert outcome["status"] == 500 and "spin" in outcome["body"]["message"]
    assert "运行超过 2 秒的时间上限" in outcome["body"]["message"]
    # Another person was served meanwhile. On SQLite every transaction takes the write lock first, so a
    # request that comes while the runaway step holds it waits for it: at most the time limit.
    assert latencies and max(latencies) < 2 + 1.5
    # Nothing of the step was written; the case went to error, once, with the reason in its timeline.
    db_session.expire_all()
    row = db_session.get(Case, case["id"])
    assert row.status == CaseStatus.ERROR and "时间上限" in row.error
    assert db_session.get(HumanTask, task["id"]).status == TaskStatus.READY
    kinds = db_session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == row.id)).all()
    assert kinds.count(EventKind.FAILED) == 1 and EventKind.TASK_COMPLETED not in kinds
