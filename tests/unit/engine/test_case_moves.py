"""Moving running cases to another version: the dry run says which can move and why not, a move keeps the
open steps (ids, deadlines) and follows the new diagram from there, and a move can be undone while the case
has not moved since. On SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select

from workflows import audit, case_moves, cases, tasks, versions
from workflows.errors import Conflict
from workflows.models import Case, CaseEvent, CaseMigration, EventKind, HumanTask, TaskStatus

from .conftest import HERE, TOWNSHIP, texts

TIMERS = texts(HERE / "bpmn")["timers.bpmn"]
RENAMED_AND_INSERTED = (
    TIMERS.replace('<bpmn:userTask id="review" name="审核">', '<bpmn:userTask id="review" name="初审">')
    .replace(
        '<bpmn:sequenceFlow id="to_after" sourceRef="wait_until_date" targetRef="after_date" />',
        '<bpmn:sequenceFlow id="to_after" sourceRef="wait_until_date" targetRef="recheck" />'
        '<bpmn:userTask id="recheck" name="复核"><bpmn:incoming>to_after</bpmn:incoming>'
        "<bpmn:outgoing>to_after_recheck</bpmn:outgoing></bpmn:userTask>"
        '<bpmn:sequenceFlow id="to_after_recheck" sourceRef="recheck" targetRef="after_date" />',
    )
    .replace(
        "<bpmn:incoming>to_after</bpmn:incoming><bpmn:outgoing>to_done</bpmn:outgoing>",
        "<bpmn:incoming>to_after_recheck</bpmn:incoming><bpmn:outgoing>to_done</bpmn:outgoing>",
        1,
    )
)
WITHOUT_REVIEW = TIMERS.replace(
    '<bpmn:sequenceFlow id="to_review" sourceRef="start" targetRef="review" />',
    '<bpmn:sequenceFlow id="to_review" sourceRef="start" targetRef="wait_until_date" />',
)


def _without_review() -> str:
    text = WITHOUT_REVIEW
    start = text.index('<bpmn:userTask id="review"')
    end = text.index("</bpmn:boundaryEvent>") + len("</bpmn:boundaryEvent>")
    text = text[:start] + text[end:]
    text = text.replace(
        '<bpmn:userTask id="escalate" name="督办"><bpmn:incoming>to_escalate</bpmn:incoming>',
        '<bpmn:userTask id="escalate" name="督办">',
    )
    text = text.replace(
        '<bpmn:sequenceFlow id="to_escalate" sourceRef="review_overdue" targetRef="escalate" />', ""
    )
    text = text.replace(
        '<bpmn:sequenceFlow id="to_wait" sourceRef="review" targetRef="wait_until_date" />', ""
    )
    return text.replace("<bpmn:incoming>to_wait</bpmn:incoming>", "<bpmn:incoming>to_review</bpmn:incoming>")


def deploy(session, users, text: str) -> int:
    [done] = [
        d
        for d in versions.deploy(session, users["process_owner"], {"timers.bpmn": text}, comment="调整")
        if d.key == "timer_paths"
    ]
    return done.version


def open_step(session, case_id):
    session.expire_all()
    return session.scalars(
        select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
    ).all()


@pytest.fixture
def two_cases(session, deployed, manual_clock):
    at_review = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-20T09:00:00+08:00"},
    )
    waiting = cases.start_case(
        session,
        deployed["caseworker"],
        "timer_paths",
        area_code=TOWNSHIP,
        data={"notice_ends": "2025-06-20T09:00:00+08:00"},
    )
    [task] = open_step(session, waiting.id)
    tasks.complete(session, deployed["caseworker"], task.id, {})
    return at_review, waiting


def test_the_dry_run_says_which_cases_can_move_and_why_the_others_cannot(session, deployed, two_cases):
    at_review, waiting = two_cases
    owner = deployed["process_owner"]
    new = deploy(session, deployed, RENAMED_AND_INSERTED)
    lines = {line.case_id: line for line in case_moves.dry_run(session, owner, "timer_paths", new)}
    assert lines[at_review.id].can_move and lines[waiting.id].can_move
    removed = deploy(session, deployed, _without_review())
    lines = {line.case_id: line for line in case_moves.dry_run(session, owner, "timer_paths", removed)}
    assert "正在办理的环节“审核”（review）在新版本中已删除" in lines[at_review.id].reasons
    assert "正在等待的环节“48小时未办”（review_overdue）在新版本中已删除" in lines[at_review.id].reasons
    assert lines[waiting.id].reasons == ["已办理的环节“审核”（review）在新版本中已删除"]
    with pytest.raises(Conflict, match="在新版本中已删除"):
        case_moves.move_case(session, owner, at_review.id, removed, comment="试")


def test_a_moved_case_keeps_its_open_step_and_deadline_and_follows_the_new_diagram(
    session, deployed, two_cases, manual_clock
):
    at_review, waiting = two_cases
    owner = deployed["process_owner"]
    [before] = open_step(session, at_review.id)
    deadline = session.get(Case, at_review.id).next_timer_at
    new = deploy(session, deployed, RENAMED_AND_INSERTED)
    case_moves.move_case(session, owner, at_review.id, new, comment="初审改名，增加复核")
    case_moves.move_case(session, owner, waiting.id, new, comment="初审改名，增加复核")
    [after] = open_step(session, at_review.id)
    assert (after.id, after.name) == (before.id, "初审")  # the same inbox row, named as the new version says
    moved = session.get(Case, at_review.id)
    assert moved.next_timer_at == deadline  # its 48-hour timer did not start again
    assert session.get(Case, waiting.id).process_version_id == moved.process_version_id
    # The waiting case goes on under the new diagram: after the date, the new step comes first.
    manual_clock.advance(days=30)
    cases.forget_live_instances()
    cases.run_due_timers(session)
    assert [t.task_spec for t in open_step(session, waiting.id)] == ["recheck"]
    for case_id in (at_review.id, waiting.id):
        trail = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)).all()
        assert [e.comment for e in trail if e.kind == EventKind.MIGRATED] == ["初审改名，增加复核"]
        assert audit.verify_chain(session, case_id) == []


def test_a_move_is_undone_only_while_the_case_has_not_moved_since(session, deployed, two_cases, manual_clock):
    at_review, waiting = two_cases
    owner = deployed["process_owner"]
    new = deploy(session, deployed, RENAMED_AND_INSERTED)
    old_version = session.get(Case, at_review.id).process_version_id
    for case in (at_review, waiting):
        case_moves.move_case(session, owner, case.id, new, comment="迁移")
    case_moves.move_back(session, owner, at_review.id, comment="撤回")
    [step] = open_step(session, at_review.id)
    assert step.name == "审核" and session.get(Case, at_review.id).process_version_id == old_version
    assert session.get(CaseMigration, case_moves.last_move(session, at_review.id).id).reverted_at is not None
    tasks.complete(session, deployed["caseworker"], step.id, {})  # the restored case works on, on version 1
    # The other moved on since (its date came, the new step opened): the undo is refused.
    manual_clock.advance(days=30)
    cases.forget_live_instances()
    cases.run_due_timers(session)
    assert [t.task_spec for t in open_step(session, waiting.id)] == ["recheck"]
    with pytest.raises(Conflict, match="已有新的办理"):
        case_moves.move_back(session, owner, waiting.id, comment="撤回")


def test_a_batch_moves_the_cases_that_can_move_and_counts_the_others(session, deployed, two_cases):
    at_review, waiting = two_cases
    owner = deployed["process_owner"]
    new = deploy(session, deployed, RENAMED_AND_INSERTED)
    batch = case_moves.request_batch(session, owner, "timer_paths", new, None, comment="批量迁移")
    assert case_moves.run_batches(session, limit=1) == 1
    assert case_moves.batch_progress(session, owner, batch.id)["percent"] == 50
    assert case_moves.run_batches(session) == 1
    progress = case_moves.batch_progress(session, owner, batch.id)
    assert (progress["status"], progress["moved"], progress["skipped"]) == ("done", 2, 0)
    assert case_moves.run_batches(session) == 0
