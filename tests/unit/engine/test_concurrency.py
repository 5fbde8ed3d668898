"""Two people completing the same task at once: exactly one wins, the other gets a clear conflict.

Uses real, separate database connections (not the rolled-back test session), on SQLite and PostgreSQL.
"""

import threading
import time

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from workflows import audit, cases, tasks, versions
from workflows.errors import Conflict
from workflows.models import (
    Area,
    AreaLevel,
    Case,
    CaseEvent,
    CaseStatus,
    CaseWait,
    EventKind,
    HumanTask,
    ProcessVersion,
    Role,
    TaskStatus,
    User,
)

from .conftest import COUNTY, HERE, TOWNSHIP


@pytest.fixture
def committed_world(db_engine):
    """A committed county, two caseworkers and the test processes; removed again afterwards."""
    with Session(db_engine) as s, s.begin():
        if s.get(Area, COUNTY) is None:
            s.add(Area(code=COUNTY, name="温县", level=AreaLevel.COUNTY))
            s.add(Area(code=TOWNSHIP, name="祥云镇", level=AreaLevel.TOWNSHIP, parent_code=COUNTY))
        for name in ("cw_a", "cw_b", "owner"):
            role = Role.PROCESS_OWNER if name == "owner" else Role.CASEWORKER
            s.add(
                User(
                    username=name,
                    display_name={"cw_a": "甲", "cw_b": "乙"}.get(name, name),
                    role=role,
                    area_code=TOWNSHIP if role == Role.CASEWORKER else COUNTY,
                )
            )
        s.flush()
        versions.deploy(s, None, versions.read_bundle(HERE / "bpmn"))
    yield db_engine
    with Session(db_engine) as s, s.begin():
        for model in (CaseEvent, HumanTask, CaseWait, Case, ProcessVersion):
            s.execute(delete(model))
        s.execute(delete(User).where(User.username.in_(["cw_a", "cw_b", "owner"])))
        s.execute(delete(Area).where(Area.code.in_([TOWNSHIP, COUNTY])))


def _user(s, name):
    return s.scalar(select(User).where(User.username == name))


def test_two_concurrent_completions_one_wins(committed_world):
    db = committed_world
    with Session(db) as s, s.begin():
        case = cases.start_case(
            s,
            _user(s, "cw_a"),
            "timer_paths",
            area_code=TOWNSHIP,
            data={"notice_ends": "2030-01-01T00:00:00+08:00"},
        )
        case_id = case.id
        task_id = s.scalar(select(HumanTask.id).where(HumanTask.case_id == case_id))

    outcome = {}
    b_ready = threading.Event()

    def complete_as_b():
        with Session(db) as s:
            try:
                b_ready.set()
                with s.begin():
                    tasks.complete(s, _user(s, "cw_b"), task_id, {})
                outcome["b"] = "ok"
            except Conflict as exc:
                outcome["b"] = exc.message

    first = Session(db)
    first.begin()
    tasks.complete(first, _user(first, "cw_a"), task_id, {})  # written, not yet committed
    thread = threading.Thread(target=complete_as_b)
    thread.start()
    b_ready.wait(5)
    thread.join(0.3)  # give B the chance to run into A's lock (it blocks until A commits)
    first.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive()
    assert outcome["b"] != "ok" and ("已由甲" in outcome["b"] or "刚被其他人" in outcome["b"]), outcome

    with Session(db) as s:
        task = s.get(HumanTask, task_id)
        assert task.status == TaskStatus.COMPLETED and task.completed_by == _user(s, "cw_a").id
        kinds = [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
        assert kinds.count(EventKind.TASK_COMPLETED) == 1
        assert audit.verify_chain(s, case_id) == []
        # The case moved on exactly once: the next step is the date timer, no second copy of anything.
        assert s.scalars(select(HumanTask).where(HumanTask.case_id == case_id)).all().__len__() == 1


def test_stale_case_write_is_refused_whole(committed_world):
    """A writer holding an old lock token gets a conflict and writes nothing (not even its task row)."""
    db = committed_world
    with Session(db) as s, s.begin():
        case = cases.start_case(s, _user(s, "cw_a"), "reminders", area_code=TOWNSHIP)
        case_id = case.id
    with Session(db) as s, s.begin():
        task_id = s.scalar(select(HumanTask.id).where(HumanTask.case_id == case_id))
        s.get(Case, case_id).title = "改了标题"  # bumps the lock token through the ORM
    stale = Session(db)
    stale.begin()
    ref = cases.case_ref(
        stale.connection()
        .execute(select(*cases.CASE_REF_COLUMNS).where(Case.__table__.c.id == case_id))
        .one()
    )
    ref.lock_version = "0" * 32  # as if read before the other writer's change
    with pytest.raises(Conflict):
        cases.advance(stale, ref, lambda inst: inst.fire_due_timers(), actor=None)
    stale.rollback()
    stale.close()
    with Session(db) as s:
        assert s.get(HumanTask, task_id).status == TaskStatus.READY


def test_a_runaway_step_is_stopped_while_other_work_goes_on(committed_world):
    """On both databases: the runaway step fails at the time limit and its case goes to error; meanwhile
    another person's steps complete. On PostgreSQL they never wait for it; on SQLite a writer waits for the
    write lock the runaway step holds, at most the time limit."""
    db = committed_world
    with Session(db) as s, s.begin():
        caseworker = _user(s, "cw_a")
        runaway = cases.start_case(s, caseworker, "runaway_after_review", area_code=TOWNSHIP)
        [runaway_task] = tasks.ready_tasks(s, runaway.id)
        runaway_id, runaway_task_id = runaway.id, runaway_task.id
    outcome: dict = {}

    def run_away():
        started = time.monotonic()
        with Session(db) as s:
            try:
                with s.begin():
                    tasks.complete(s, _user(s, "cw_a"), runaway_task_id, {})
            except cases.ProcessFailure as exc:
                outcome["seconds"] = time.monotonic() - started  # when the step failed, clearly
                outcome["error"] = exc
                with s.begin():
                    exc.aftermath(s)

    thread = threading.Thread(target=run_away)
    thread.start()
    latencies = []
    while thread.is_alive() or not latencies:
        t0 = time.monotonic()
        with Session(db) as s, s.begin():
            case = cases.start_case(
                s,
                _user(s, "cw_b"),
                "timer_paths",
                area_code=TOWNSHIP,
                data={"notice_ends": "2030-01-01T00:00:00+08:00"},
            )
            [task] = tasks.ready_tasks(s, case.id)
            tasks.complete(s, _user(s, "cw_b"), task.id, {})
        latencies.append(time.monotonic() - t0)
    thread.join()
    assert outcome["seconds"] < 2 + 1.5 and outcome["error"].element == "spin", outcome
    assert "运行超过 2 秒的时间上限" in outcome["error"].message
    worst = max(latencies)
    assert worst < (0.5 if db.dialect.name == "postgresql" else 2 + 2.5), latencies
    with Session(db) as s:
        failed = s.get(Case, runaway_id)
        assert failed.status == CaseStatus.ERROR and "时间上限" in failed.error
        assert s.get(HumanTask, runaway_task_id).status == TaskStatus.READY
        assert audit.verify_chain(s, runaway_id) == []
