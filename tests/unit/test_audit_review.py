"""The auditor's tools on real cases: the event list in scope, the hash chain checked per case and per area
(tampering, deletion and insertion found, the first broken link named), and review samples (抽查)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import delete, select, update

from tests.processes.harness import OTHER_TOWNSHIP, OTHER_VILLAGE, TOWNSHIP, VILLAGE, World
from workflows import audit, audit_review, cases, clock
from workflows.errors import Conflict, PermissionDenied, ValidationFailed
from workflows.models import CaseEvent, CaseStatus, EventKind, Role, User
from workflows.models.supervision import LogKind, OfficeLog, ReviewItem, SampleItemOutcome

from .supervision_world import id_number

LOCAL = clock.LOCAL


@pytest.fixture
def manual_clock(manual_clock):
    """These tests run on 2025-10-22, 10:00 in Beijing."""
    manual_clock.set(datetime(2025, 10, 22, 10, 0, tzinfo=LOCAL))
    return manual_clock


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


def _cases(world, n: int, village: str, *, seq0: int = 1):
    """Start `n` assessment cases (one per elder) and record a comment on each, for a few events apiece."""
    made = []
    for i in range(n):
        elder = world.elder(id_number=id_number(seq0 + i), name=f"老人{seq0 + i}", village=village)
        case = cases.start_case(
            world.session,
            world.users["admin"],
            "assessment",
            area_code=village,
            elder_id=elder.id,
            data={"assessment_reason": "initial", "schedule_reassessment": False},
        )
        audit.record(world.session, case, EventKind.COMMENTED, actor=world.users["admin"], comment=f"材料{i}")
        made.append(case)
    world.session.flush()
    return made


def test_events_in_scope_newest_first_with_filters(world):
    mine = _cases(world, 2, VILLAGE)
    other = _cases(world, 1, OTHER_VILLAGE, seq0=10)
    auditor = world.users["auditor"]
    page = audit_review.list_events(world.session, auditor, audit_review.EventFilter())
    assert page.total == sum(c.event_count for c in mine + other) and not page.capped
    assert [e.id for e in page.rows] == sorted((e.id for e in page.rows), reverse=True)
    comments = audit_review.list_events(
        world.session, auditor, audit_review.EventFilter(kind=EventKind.COMMENTED, area=TOWNSHIP)
    )
    assert sorted(e.case_id for e in comments.rows) == sorted(c.id for c in mine)
    one = audit_review.list_events(world.session, auditor, audit_review.EventFilter(case=other[0].id))
    assert {e.case_id for e in one.rows} == {other[0].id} and one.rows[0].actor_username == "t_admin"
    township_auditor = User(username="aud_t", display_name="乡镇监督", role=Role.AUDITOR, area_code=TOWNSHIP)
    world.session.add(township_auditor)
    world.session.flush()
    theirs = audit_review.list_events(world.session, township_auditor, audit_review.EventFilter())
    assert {e.case_id for e in theirs.rows} == {c.id for c in mine}
    with pytest.raises(PermissionDenied):
        audit_review.list_events(
            world.session, township_auditor, audit_review.EventFilter(area=OTHER_TOWNSHIP)
        )
    for role in ("caseworker", "approver", "provider"):
        with pytest.raises(PermissionDenied):
            audit_review.list_events(world.session, world.users[role], audit_review.EventFilter())


def test_the_chain_of_a_case_names_the_first_broken_link(world):
    case = _cases(world, 1, VILLAGE)[0]
    auditor = world.users["auditor"]
    intact = audit_review.verify_case(world.session, auditor, case.id)
    assert intact.intact and intact.events == case.event_count == 2  # started, commented
    assert audit.verify_chain(world.session, case.id) == []
    # Someone edits the comment of the 2nd event in the database, bypassing the application.
    world.session.execute(
        update(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.seq == 2).values(comment="改过的意见")
    )
    world.session.expire_all()
    broken = audit_review.verify_case(world.session, auditor, case.id)
    assert not broken.intact
    assert broken.first_break.startswith("第2条记录") and "内容被改动" in broken.first_break


def test_a_deleted_last_event_and_a_deleted_middle_event_are_found(world):
    first, second = _cases(world, 2, VILLAGE)
    auditor = world.users["auditor"]
    world.session.execute(
        delete(CaseEvent).where(CaseEvent.case_id == first.id, CaseEvent.seq == first.event_count)
    )
    world.session.execute(delete(CaseEvent).where(CaseEvent.case_id == second.id, CaseEvent.seq == 1))
    world.session.expire_all()
    tail = audit_review.verify_case(world.session, auditor, first.id)
    assert len(tail.problems) == 1 and "链头" in tail.first_break
    head = audit_review.verify_case(world.session, auditor, second.id)
    assert head.first_break == "第1条记录缺失（其后为第2条）"


def test_an_area_check_lists_each_broken_case_and_is_logged(world):
    mine = _cases(world, 3, VILLAGE)
    other = _cases(world, 1, OTHER_VILLAGE, seq0=10)
    auditor = world.users["auditor"]
    clean = audit_review.verify_area(world.session, auditor, None)
    assert clean.intact and clean.cases == 4 and clean.events == sum(c.event_count for c in mine + other)
    world.session.execute(
        update(CaseEvent).where(CaseEvent.case_id == mine[1].id, CaseEvent.seq == 1).values(actor_id=None)
    )
    world.session.execute(delete(CaseEvent).where(CaseEvent.case_id == other[0].id))
    world.session.expire_all()
    found = audit_review.verify_area(world.session, auditor, None)
    assert [c.case_id for c in found.broken] == sorted([mine[1].id, other[0].id])
    assert found.broken[0 if mine[1].id < other[0].id else 1].first_break.startswith("第1条记录")
    township = audit_review.verify_area(world.session, auditor, TOWNSHIP)
    assert [c.case_id for c in township.broken] == [mine[1].id] and township.cases == 3
    logged = list(world.session.scalars(select(OfficeLog).where(OfficeLog.kind == LogKind.VERIFIED)))
    assert len(logged) == 3 and logged[-1].target == f"审计链校验 {TOWNSHIP}"


def _close(world, case, ended: datetime, status=CaseStatus.COMPLETED):
    world.session.execute(
        update(type(case)).where(type(case).id == case.id).values(status=status, ended_at=ended)
    )


def test_a_sample_draws_closed_cases_of_a_process_and_month_reproducibly(world):
    made = _cases(world, 8, VILLAGE)
    october = datetime(2025, 10, 10, 9, tzinfo=LOCAL)
    for case in made[:5]:
        _close(world, case, october)
    _close(world, made[5], october, CaseStatus.CANCELLED)  # ended by decision: closed too
    _close(world, made[6], datetime(2025, 9, 30, 23, 30, tzinfo=LOCAL))  # September (Beijing time)
    world.session.expire_all()
    auditor = world.users["auditor"]
    population = audit_review.closed_cases(world.session, auditor, "assessment", date(2025, 10, 1), None)
    assert sorted(population) == sorted(c.id for c in made[:6])
    sample = audit_review.draw_sample(
        world.session, auditor, "assessment", date(2025, 10, 1), 3, seed="fixed"
    )
    view = audit_review.get_sample(world.session, auditor, sample.id)
    picked = [i.case_id for i in view.items]
    assert len(picked) == 3 and set(picked) <= set(population) and sample.population == 6
    again = audit_review.draw_sample(world.session, auditor, "assessment", date(2025, 10, 1), 3, seed="fixed")
    assert [i.case_id for i in audit_review.get_sample(world.session, auditor, again.id).items] == picked
    everything = audit_review.draw_sample(world.session, auditor, "assessment", date(2025, 10, 1), 50)
    assert len(audit_review.get_sample(world.session, auditor, everything.id).items) == 6
    with pytest.raises(ValidationFailed) as empty:
        audit_review.draw_sample(world.session, auditor, "assessment", date(2025, 8, 1), 3)
    assert "没有已办结" in empty.value.message
    for size in (0, 201, True):
        with pytest.raises(ValidationFailed):
            audit_review.draw_sample(world.session, auditor, "assessment", date(2025, 10, 1), size)
    with pytest.raises(ValidationFailed):
        audit_review.draw_sample(world.session, auditor, "no_such_process", date(2025, 10, 1), 3)
    with pytest.raises(PermissionDenied):
        audit_review.draw_sample(world.session, world.users["admin"], "assessment", date(2025, 10, 1), 3)
    assert world.session.scalar(select(OfficeLog).where(OfficeLog.kind == LogKind.SAMPLED)) is not None


def test_reviewing_a_sampled_case_and_two_reviewers_at_once(world):
    made = _cases(world, 2, VILLAGE)
    for case in made:
        _close(world, case, datetime(2025, 10, 10, 9, tzinfo=LOCAL))
    auditor = world.users["auditor"]
    sample = audit_review.draw_sample(world.session, auditor, "assessment", date(2025, 10, 1), 2)
    item = audit_review.get_sample(world.session, auditor, sample.id).items[0]
    with pytest.raises(ValidationFailed):
        audit_review.review_item(world.session, auditor, item.item_id, "problem", "  ", expected="pending")
    with pytest.raises(ValidationFailed):
        audit_review.review_item(world.session, auditor, item.item_id, "maybe", "", expected="pending")
    audit_review.review_item(
        world.session, auditor, item.item_id, "problem", "回访电话与档案不符", expected="pending"
    )
    # A second auditor who loaded the page before that answer is told, not allowed to overwrite it.
    colleague = User(username="aud2", display_name="第二监督员", role=Role.AUDITOR, area_code="410825")
    world.session.add(colleague)
    world.session.flush()
    with pytest.raises(Conflict) as late:
        audit_review.review_item(world.session, colleague, item.item_id, "confirmed", "", expected="pending")
    assert "t_auditor" in late.value.message or "auditor" in late.value.message
    stored = world.session.get(ReviewItem, item.item_id)
    world.session.refresh(stored)
    assert (stored.outcome, stored.note) == (SampleItemOutcome.PROBLEM, "回访电话与档案不符")
    view = audit_review.get_sample(world.session, auditor, sample.id)
    assert (view.reviewed, view.problems) == (1, 1)
