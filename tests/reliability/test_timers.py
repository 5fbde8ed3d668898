"""Timers are on the trail whichever move fires them, and an instance's clock can be moved from outside
it for an acceptance test (issue 16 #7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from tests.factories import TOWNSHIP, add_users
from workflows import audit, cases, clock, tasks, versions
from workflows.models import CaseEvent, EventKind, HumanTask, TaskStatus

HERE = Path(__file__).parent
ENGINE_BPMN = HERE.parent / "unit" / "engine" / "bpmn"


def _trail(session, case_id):
    return list(
        session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
    )


def _open(session, case_id):
    return sorted(
        t.task_spec
        for t in session.scalars(
            select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
        )
    )


def test_a_timer_already_due_when_the_case_starts_fires_on_the_trail(session, manual_clock):
    users = add_users(session)
    versions.deploy(session, None, versions.read_bundle(HERE / "bpmn"))
    # The notice period ended before the case was entered (a paper file keyed in late).
    case = cases.start_case(
        session,
        users["caseworker"],
        "notice_then_decide",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-05-30T09:00:00+08:00"},
    )
    trail = _trail(session, case.id)
    assert [e.kind for e in trail] == [EventKind.STARTED, EventKind.TIMER_FIRED]
    assert json.loads(trail[1].detail) == {"timer": "notice_ends_at", "due": "2025-05-30T01:00:00+00:00"}
    assert _open(session, case.id) == ["decide"] and case.next_timer_at is None
    assert audit.verify_chain(session, case.id) == []


def test_a_timer_reached_already_due_by_a_late_step_fires_on_that_step(session, manual_clock):
    users = add_users(session)
    versions.deploy(session, None, versions.read_bundle(ENGINE_BPMN))
    case = cases.start_case(
        session,
        users["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-03T09:00:00+08:00"},
    )
    manual_clock.advance(days=1, hours=12)  # the review is done after the notice date, inside its 48 hours
    (review,) = session.scalars(select(HumanTask).where(HumanTask.case_id == case.id))
    tasks.complete(session, users["caseworker"], review.id, {})
    kinds = [(e.kind, json.loads(e.detail).get("timer")) for e in _trail(session, case.id)]
    assert kinds[-2:] == [(EventKind.TASK_COMPLETED, None), (EventKind.TIMER_FIRED, "wait_until_date")]
    assert _open(session, case.id) == ["after_date"]


def test_the_workers_timer_round_records_which_timer_fired(session, manual_clock):
    users = add_users(session)
    versions.deploy(session, None, versions.read_bundle(ENGINE_BPMN))
    case = cases.start_case(
        session,
        users["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-30T09:00:00+08:00"},
    )
    manual_clock.advance(hours=49)
    cases.forget_live_instances()
    assert cases.run_due_timers(session) == 1
    fired = [json.loads(e.detail) for e in _trail(session, case.id) if e.kind == EventKind.TIMER_FIRED]
    assert fired == [{"timer": "review_overdue", "due": "2025-06-04T01:00:00+00:00"}]


def test_the_clock_file_moves_this_process_and_the_command_moves_the_file(tmp_path, monkeypatch):
    path = tmp_path / "clock"
    monkeypatch.setenv("ELDERCARE_CLOCK_FILE", str(path))
    shifted = clock.ShiftedClock(path)
    assert abs(shifted() - datetime.now(UTC)) < timedelta(seconds=5)  # no file: real time
    runner = CliRunner()
    try:
        moved = runner.invoke(main, ["clock", "advance", "3d"])
        assert moved.exit_code == 0, moved.output
        assert abs(shifted() - (datetime.now(UTC) + timedelta(days=3))) < timedelta(seconds=5)
        # `eldercare` itself now runs on the moved clock (as the web app and the worker do).
        assert abs(clock.now() - (datetime.now(UTC) + timedelta(days=3))) < timedelta(seconds=5)
        target = datetime(2030, 1, 1, 9, 0, tzinfo=clock.LOCAL)
        assert runner.invoke(main, ["clock", "set", "2030-01-01T09:00"]).exit_code == 0
        assert abs(shifted() - target) < timedelta(seconds=5)
        assert "2030-01-01 09:0" in runner.invoke(main, ["clock", "show"]).output
        bad = runner.invoke(main, ["clock", "advance", "soon"])
        assert bad.exit_code != 0 and "3d" in bad.output
        assert runner.invoke(main, ["clock", "reset"]).exit_code == 0
        assert abs(shifted() - datetime.now(UTC)) < timedelta(seconds=5)
    finally:
        clock.use_for_process(None)  # the command installed the file's clock in this process


def test_a_production_instance_refuses_to_move_its_clock(monkeypatch):
    monkeypatch.delenv("ELDERCARE_CLOCK_FILE", raising=False)
    refused = CliRunner().invoke(main, ["clock", "advance", "1d"])
    assert refused.exit_code != 0 and "ELDERCARE_CLOCK_FILE" in refused.output
