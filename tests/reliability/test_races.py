"""Two people at once, over the API, on SQLite and PostgreSQL (issue 16 #1–#3): the requests are made to
overlap (each has read and written everything before either commits) and exactly one of them wins; the
other is told so in a 409, never a 500, and nothing is doubled or half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.web.helpers import assessment_data
from workflows import audit, clock
from workflows.models import Case, CaseEvent, CaseStatus, EventKind, HumanTask, TaskStatus, User

from .conftest import at_once, meeting_at_commit

# Per process: the application over the API (each allows one case under way per elder). Two different
# people send it, as in an office: one person's two requests would also meet on their own token's row.
STARTS = {
    "assessment": {"reason": "initial"},
    "home_adaptation": {},
    "visiting_care": {"note": "独居"},
    "home_care": {"applicant_type": "self", "requested_services": ["meal"]},
}


def _running(live, process: str, elder_id: int) -> int:
    with live.read() as session:
        return session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.process_key == process, Case.elder_id == elder_id, Case.status == CaseStatus.RUNNING)
        )


@pytest.mark.parametrize("process", sorted(STARTS))
def test_two_simultaneous_starts_for_one_elder_make_one_case(live, process):
    elder_id = live.make_elder()
    body = {"process": process, "elder_id": elder_id, "data": STARTS[process]}
    with meeting_at_commit(live.app):
        first, second = at_once(
            lambda: live.call("village_assistant", "POST", "/api/cases", body),
            lambda: live.call("caseworker", "POST", "/api/cases", body),
        )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [201, 409], (first.text, second.text)
    refused = first if first.status_code == 409 else second
    assert (
        "请勿重复" in refused.json["message"]
        or "在办" in refused.json["message"]
        or "正在办理" in (refused.json["message"])
    ), refused.json
    assert _running(live, process, elder_id) == 1


def _assessment_at_notify(live) -> tuple[int, str]:
    """An assessment case whose assessor has scored it: its notify_result step is open."""
    elder_id = live.make_elder(level=None)
    started = live.call(
        "village_assistant",
        "POST",
        "/api/cases",
        {"process": "assessment", "elder_id": elder_id, "data": {"reason": "initial"}},
    )
    assert started.status_code == 201, started.text
    (conduct,) = started.json["open_tasks"]
    done = live.call(
        "assessor", "POST", f"/api/tasks/{conduct['id']}/complete", {"data": assessment_data(50)}
    )
    assert done.status_code == 200, done.text
    (notify,) = done.json["next_tasks"]
    assert notify["step"] == "notify_result"
    return started.json["id"], notify["id"]


def test_two_simultaneous_completions_of_a_step_that_changes_what_the_case_waits_for(live):
    # notify_result moves the case to a wait with message boundary events: its waits are rewritten.
    case_id, task_id = _assessment_at_notify(live)
    answer = {
        "data": {"notified_on": clock.today().isoformat(), "notify_method": "in_person", "objection": False}
    }
    with meeting_at_commit(live.app):
        first, second = at_once(
            lambda: live.call("caseworker", "POST", f"/api/tasks/{task_id}/complete", answer),
            lambda: live.call("caseworker_b", "POST", f"/api/tasks/{task_id}/complete", answer),
        )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    with live.read() as session:
        kinds = list(session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)))
        assert kinds.count(EventKind.TASK_COMPLETED) == 2  # conduct_assessment and one notify_result
        assert audit.verify_chain(session, case_id) == []
        case = session.get(Case, case_id)
        assert case.waiting_for  # the boundary events' messages, written once


def _open_task(live) -> tuple[int, str]:
    """A home-care case at the township's review (a caseworker's step)."""
    elder_id = live.make_elder()
    body = {"process": "home_care", "elder_id": elder_id, "data": STARTS["home_care"]}
    started = live.call("village_assistant", "POST", "/api/cases", body)
    assert started.status_code == 201, started.text
    (task,) = [t for t in started.json["open_tasks"] if t["step"] == "township_review"]
    return started.json["id"], task["id"]


def test_two_simultaneous_claims_give_the_task_to_one(live):
    case_id, task_id = _open_task(live)
    with meeting_at_commit(live.app):
        first, second = at_once(
            lambda: live.call("caseworker", "POST", f"/api/tasks/{task_id}/claim"),
            lambda: live.call("caseworker_b", "POST", f"/api/tasks/{task_id}/claim"),
        )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    winner = first if first.status_code == 200 else second
    loser = second if winner is first else first
    assert "认领" in loser.json["message"] or "刚被其他人" in loser.json["message"], loser.json
    with live.read() as session:
        task = session.get(HumanTask, task_id)
        assert task.assignee_id == winner.json["assignee_id"]
        kinds = list(session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)))
        assert kinds.count(EventKind.CLAIMED) == 1
        assert audit.verify_chain(session, case_id) == []


def test_a_claim_racing_a_completion_never_lands_on_the_completed_task(live):
    case_id, task_id = _open_task(live)
    review = {
        "data": {
            "decision": "pass",
            "home_visit_on": clock.today().isoformat(),
            "verification": "入户核实属实",
        }
    }
    with meeting_at_commit(live.app):
        completed, claimed = at_once(
            lambda: live.call("caseworker", "POST", f"/api/tasks/{task_id}/complete", review),
            lambda: live.call("caseworker_b", "POST", f"/api/tasks/{task_id}/claim"),
        )
    # The loser is told in a 409; a completion that finds the task already claimed (it came second on
    # SQLite, whose writers take turns) is refused as before, in a 403 naming the claim.
    statuses = sorted([completed.status_code, claimed.status_code])
    assert statuses in ([200, 409], [200, 403]), (completed.text, claimed.text)
    loser = claimed if completed.status_code == 200 else completed
    assert any(word in loser.json["message"] for word in ("认领", "办理完成", "刚被其他人")), loser.json
    with live.read() as session:
        task = session.get(HumanTask, task_id)
        events = list(
            session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq))
        )
        kinds = [e.kind for e in events]
        colleague = session.scalar(select(User).where(User.username == "caseworker_b"))
        if completed.status_code == 200:
            # The completion won: the claim was refused and left nothing.
            assert task.status == TaskStatus.COMPLETED and task.assignee_id is None
            assert EventKind.CLAIMED not in kinds
        else:
            # The claim won: the caseworker's completion was refused; the task is the colleague's, still open.
            assert task.status == TaskStatus.READY and task.assignee_id == colleague.id
            assert EventKind.TASK_COMPLETED not in kinds[1:]
        assert audit.verify_chain(session, case_id) == []
