"""Timers fire when due by the injected clock; messages and signals reach the cases waiting for them."""

from datetime import UTC, datetime

from sqlalchemy import select

from workflows import cases, tasks
from workflows.models import Case, CaseEvent, CaseStatus, EventKind, HumanTask, TaskStatus

from .conftest import TOWNSHIP


def ready_specs(session, case_id):
    session.expire_all()
    return sorted(
        t.task_spec
        for t in session.scalars(
            select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
        )
    )


def fire(session):
    cases.forget_live_instances()  # the worker restores cases from the database
    return cases.run_due_timers(session)


def test_boundary_duration_timer_fires_when_due_and_withdraws_the_task(session, deployed, manual_clock):
    case = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-10T09:00:00+08:00"},
    )
    assert session.get(Case, case.id).next_timer_at == datetime(2025, 6, 4, 1, 0, tzinfo=UTC)
    manual_clock.advance(hours=47)
    assert fire(session) == 0 and ready_specs(session, case.id) == ["review"]
    manual_clock.advance(hours=1, seconds=1)
    assert fire(session) == 1
    assert ready_specs(session, case.id) == ["escalate"]
    review = session.scalar(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.task_spec == "review")
    )
    assert review.status == TaskStatus.CANCELLED
    kinds = [e.kind for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert EventKind.TIMER_FIRED in kinds


def test_boundary_timer_does_not_fire_when_the_task_is_done_in_time(session, deployed, manual_clock):
    case = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-10T09:00:00+08:00"},
    )
    manual_clock.advance(hours=24)
    review = session.scalar(select(HumanTask).where(HumanTask.case_id == case.id))
    tasks.complete(session, deployed["caseworker"], review.id, {})
    # Now only the date timer is pending: 2025-06-10 09:00 Beijing time.
    assert session.get(Case, case.id).next_timer_at == datetime(2025, 6, 10, 1, 0, tzinfo=UTC)
    manual_clock.advance(hours=48)
    assert fire(session) == 0 and ready_specs(session, case.id) == []
    manual_clock.set(datetime(2025, 6, 10, 1, 0, 1, tzinfo=UTC))
    assert fire(session) == 1 and ready_specs(session, case.id) == ["after_date"]


def test_timer_start_event_waits_then_starts_the_work(session, deployed, manual_clock):
    case = cases.start_case(session, deployed["process_owner"], "timer_start", area_code=TOWNSHIP)
    assert ready_specs(session, case.id) == []
    manual_clock.advance(minutes=59)
    assert fire(session) == 0
    manual_clock.advance(minutes=2)
    assert fire(session) == 1 and ready_specs(session, case.id) == ["scheduled_work"]


def test_cycle_timer_repeats_its_count_then_stops(session, deployed, manual_clock):
    case = cases.start_case(session, deployed["caseworker"], "reminders", area_code=TOWNSHIP)
    for _ in range(3):
        manual_clock.advance(hours=1, seconds=1)
        fire(session)
    # R2: two reminders, then no more timers.
    assert ready_specs(session, case.id) == ["remind", "remind", "work"]
    assert session.get(Case, case.id).next_timer_at is None


def test_worker_picks_only_due_cases_and_survives_a_restart(session, deployed, manual_clock):
    due = cases.start_case(session, deployed["caseworker"], "timer_start", area_code=TOWNSHIP)
    manual_clock.advance(minutes=30)
    later = cases.start_case(session, deployed["caseworker"], "timer_start", area_code=TOWNSHIP)
    manual_clock.advance(minutes=31)
    assert [c.id for c in cases.due_cases(session)] == [due.id]
    cases.forget_live_instances()  # as after a restart: nothing in memory
    assert fire(session) == 1
    assert ready_specs(session, due.id) == ["scheduled_work"] and ready_specs(session, later.id) == []


def test_message_with_payload_reaches_only_the_waiting_case_of_that_elder(session, deployed):
    owner = deployed["caseworker"]
    mine = cases.start_case(
        session, owner, "wait_for_bed", area_code=TOWNSHIP, elder_id=7, data={"elder_id": 7}
    )
    other = cases.start_case(
        session, owner, "wait_for_bed", area_code=TOWNSHIP, elder_id=8, data={"elder_id": 8}
    )
    cases.forget_live_instances()
    assert cases.deliver_message(session, "bed_vacated", {"bed": "A-101"}, elder_id=7) == [mine.id]
    assert ready_specs(session, mine.id) == ["confirm"] and ready_specs(session, other.id) == []
    assert cases.case_data(session.get(Case, mine.id))["offer"] == {"bed": "A-101"}
    assert cases.deliver_message(session, "no_such_message", {}) == []


def test_interrupting_message_ends_the_case(session, deployed):
    case = cases.start_case(
        session, deployed["caseworker"], "wait_for_bed", area_code=TOWNSHIP, elder_id=7, data={"elder_id": 7}
    )
    cases.deliver_message(session, "bed_vacated", {"bed": "B-2"}, elder_id=7)
    assert cases.deliver_message(session, "elder_died", {"on": "2025-06-03"}, elder_id=7) == [case.id]
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.COMPLETED
    assert ready_specs(session, case.id) == []


def test_thrown_message_is_recorded_and_signal_completes(session, deployed):
    case = cases.start_case(
        session, deployed["caseworker"], "wait_for_bed", area_code=TOWNSHIP, elder_id=7, data={"elder_id": 7}
    )
    cases.deliver_message(session, "bed_vacated", {"bed": "C-3"}, elder_id=7)
    confirm = session.scalar(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
    )
    tasks.complete(session, deployed["caseworker"], confirm.id, {})
    sent = [
        e
        for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))
        if e.kind == EventKind.MESSAGE_SENT
    ]
    assert len(sent) == 1 and '"notify_family"' in sent[0].detail and '"C-3"' in sent[0].detail
    assert cases.deliver_message(session, "policy_changed", {"rate": 2}, signal=True) == [case.id]
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.COMPLETED


def test_event_based_gateway_takes_the_message_when_it_comes_first(session, deployed, manual_clock):
    case = cases.start_case(session, deployed["caseworker"], "offer_reply", area_code=TOWNSHIP)
    assert session.get(Case, case.id).next_timer_at == datetime(2025, 6, 4, 1, 0, tzinfo=UTC)
    assert cases.deliver_message(session, "applicant_answered", {"accepts": True}) == [case.id]
    assert ready_specs(session, case.id) == ["record_answer"]
    assert session.get(Case, case.id).next_timer_at is None  # the other branch's timer is gone
    manual_clock.advance(days=3)
    assert fire(session) == 0


def test_event_based_gateway_takes_the_timer_when_nobody_answers(session, deployed, manual_clock):
    case = cases.start_case(session, deployed["caseworker"], "offer_reply", area_code=TOWNSHIP)
    manual_clock.advance(days=2, seconds=1)
    assert fire(session) == 1 and ready_specs(session, case.id) == ["chase"]
    assert cases.deliver_message(session, "applicant_answered", {}) == []


def test_waiting_steps_mark_what_the_case_waits_on(session, deployed):
    case = cases.start_case(
        session, deployed["caseworker"], "wait_for_bed", area_code=TOWNSHIP, elder_id=7, data={"elder_id": 7}
    )
    assert cases.waiting_steps(session, session.get(Case, case.id)) == ["wait_for_vacancy"]
    cases.deliver_message(session, "bed_vacated", {"bed": "A-1"}, elder_id=7)
    # Now a person works `confirm`; its boundary message event is not marked as a step of its own.
    assert cases.waiting_steps(session, session.get(Case, case.id)) == []


def test_a_diagram_failing_after_a_timer_marks_the_case_in_error_once(session, deployed, manual_clock):
    case = cases.start_case(session, deployed["caseworker"], "failing_after_timer", area_code=TOWNSHIP)
    manual_clock.advance(hours=1, seconds=1)
    assert fire(session) == 0  # nothing moved: the step failed
    failed = session.get(Case, case.id)
    assert failed.status == CaseStatus.ERROR and "broken_step" in failed.error and "price" in failed.error
    kinds = [e.kind for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert kinds.count(EventKind.FAILED) == 1
    manual_clock.advance(hours=1)
    assert cases.due_cases(session) == []  # not retried in a loop


def test_one_failing_case_never_holds_up_the_other_due_timers(session, deployed, manual_clock):
    bad = cases.start_case(session, deployed["caseworker"], "unstorable_after_timer", area_code=TOWNSHIP)
    good = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-10T09:00:00+08:00"},
    )
    manual_clock.advance(days=3)  # both are due; the bad one comes first
    assert cases.due_cases(session)[0].id == bad.id
    assert fire(session) == 1  # the good case moved in the same round
    assert ready_specs(session, good.id) == ["escalate"]
    failed = session.get(Case, bad.id)
    assert failed.status == CaseStatus.ERROR and "变量 d 是一段时长（timedelta），不能保存" in failed.error
    trail = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == bad.id)).all()
    assert trail.count(EventKind.FAILED) == 1
    assert fire(session) == 0  # marked once: it is not tried again
    assert session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == bad.id)).all() == trail
