"""Human tasks: complete, claim, release and reassign, each checked for role, area and state."""

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from . import access, audit, cases, clock, submissions
from .driver_sql import DriverStatement
from .errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from .models import Case, EventKind, HumanTask, TaskStatus, User
from .models.base import is_row_id


@dataclass
class TaskRef:
    """The columns of a task that completing it needs, read without the ORM (the hot path)."""

    id: str
    case_id: int
    status: TaskStatus
    role: str | None
    area_code: str | None
    assignee_id: int | None
    task_spec: str
    name: str
    completed_by: int | None
    completed_at: datetime | None


_T = HumanTask.__table__
# Built once: this read starts every completion.
_TASK_WITH_CASE = DriverStatement(
    select(*[getattr(_T.c, f.name) for f in fields(TaskRef)], *cases.CASE_REF_COLUMNS)
    .join(Case.__table__, Case.__table__.c.id == _T.c.case_id)
    .where(_T.c.id == bindparam("task_id"))
)
_TASK_WIDTH = len(fields(TaskRef))


def get_task(session: Session, actor: User, task_id: str) -> HumanTask:
    task = session.get(HumanTask, str(task_id))
    if task is None:
        raise NotFound("任务不存在")
    if not access.covers(actor, task.area_code):
        raise PermissionDenied("无权访问其他辖区的任务")
    return task


def form_of(session: Session, task: HumanTask) -> dict:
    """The task's step description: name, lane, JSON Schema form, instructions."""
    case = session.get(Case, task.case_id)
    return cases.runtime_of(session, case).steps.get(task.task_spec, {})


def _refuse_if_done(session: Session, task: HumanTask) -> None:
    if task.status == TaskStatus.COMPLETED:
        who = session.get(User, task.completed_by) if task.completed_by else None
        when = clock.local_text(task.completed_at)
        name = who.display_name if who else "系统"
        raise Conflict(f"该任务已由{name}于{when}办理完成，无需重复提交")
    if task.status == TaskStatus.CANCELLED:
        raise Conflict("该任务已撤销（流程已转到其他环节）")


def complete(
    session: Session,
    actor: User,
    task_id: str,
    data: dict,
    *,
    comment: str | None = None,
    case_id: int | None = None,
    input_errors: dict[str, str] | None = None,
) -> cases.Outcome:
    """Complete a READY task with form data: check, run the case to its next wait state, audit.

    `case_id`, when the caller addresses the task through its case, must be the task's case;
    `input_errors`, what the caller found reading the input, are reported with the form's own.
    """
    row = _TASK_WITH_CASE.first(session.connection(), {"task_id": str(task_id)})
    if row is None:
        raise NotFound("任务不存在")
    task, case = TaskRef(*row[:_TASK_WIDTH]), cases.case_ref(row[_TASK_WIDTH:])
    if case_id is not None and case.id != case_id:
        raise NotFound("该任务不属于此案件")
    if not access.covers(actor, task.area_code):
        raise PermissionDenied("无权访问其他辖区的任务")
    _refuse_if_done(session, task)
    access.require_task(actor, task)
    cases.require_organisation(session, actor, case)
    step = cases.runtime_of(session, case).steps.get(task.task_spec, {})
    data = dict(data or {})
    checked = submissions.check_step(
        session, actor, task, case, data, step=step, comment=comment, input_errors=input_errors
    )
    event = {
        "kind": EventKind.SENT_BACK if checked.sends_back else EventKind.TASK_COMPLETED,
        "task_spec": task.task_spec,
        "task_name": task.name,
        "comment": checked.comment,
        "detail": {"task_id": task.id, "data": data},
    }
    return cases.advance(
        session,
        case,
        lambda inst: inst.complete(task.id, data),
        actor=actor,
        events=[event],
        completed_task=task,
    )


def _hand_over(session: Session, task: HumanTask, assignee_id: int | None) -> None:
    """Give the task to `assignee_id` (None: back to the group) if it is still open and still with whoever
    it was with when read; else someone moved first (claimed, released or completed it): a conflict.

    The condition is in the UPDATE itself, so of two people claiming at once exactly one gets the task,
    and a claim never lands on a task completed meanwhile.
    """
    seen = task.assignee_id
    at = clock.now() if assignee_id is not None else None
    moved = session.execute(
        update(HumanTask)
        .where(
            HumanTask.id == task.id,
            HumanTask.status == TaskStatus.READY,
            HumanTask.assignee_id.is_not_distinct_from(seen),
        )
        .values(assignee_id=assignee_id, claimed_at=at)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        session.refresh(task)
        _refuse_if_done(session, task)
        _refuse_if_held(session, task, None, "该任务刚被{name}认领，请刷新后查看")
        raise Conflict("该任务刚被其他人改动，请刷新后重试")
    set_committed_value(task, "assignee_id", assignee_id)
    set_committed_value(task, "claimed_at", at)


def _refuse_if_held(session: Session, task: HumanTask, actor: User | None, message: str) -> None:
    """A task someone else holds is theirs: say who (the same answer whether it was seen before or lost
    in a race)."""
    if task.assignee_id is not None and (actor is None or task.assignee_id != actor.id):
        holder = session.get(User, task.assignee_id)
        raise Conflict(message.format(name=holder.display_name if holder else "他人"))


def claim(session: Session, actor: User, task_id: str) -> HumanTask:
    """Take a task for oneself so that colleagues see it is being worked."""
    task = get_task(session, actor, task_id)
    _refuse_if_done(session, task)
    if task.assignee_id == actor.id:
        return task
    _refuse_if_held(session, task, actor, "该任务已由{name}认领")
    access.require_task(actor, task)
    cases.require_organisation(session, actor, task.case_id)
    _hand_over(session, task, actor.id)
    _audit_task(session, task, EventKind.CLAIMED, actor)
    return task


def release(session: Session, actor: User, task_id: str) -> HumanTask:
    """Give a claimed task back to the group."""
    task = get_task(session, actor, task_id)
    _refuse_if_done(session, task)
    if task.assignee_id != actor.id and not access.is_supervisor(actor):
        raise PermissionDenied("只能退回自己认领的任务")
    _hand_over(session, task, None)
    _audit_task(session, task, EventKind.RELEASED, actor)
    return task


def assign(session: Session, actor: User, task_id: str, assignee_id: int) -> HumanTask:
    """Reassign a task to a colleague (supervisors only); the colleague must be able to work it."""
    if not access.is_supervisor(actor):
        raise PermissionDenied("只有审批人或管理员可以改派任务")
    task = get_task(session, actor, task_id)
    _refuse_if_done(session, task)
    assignee = session.get(User, assignee_id) if is_row_id(assignee_id) else None
    if assignee is None:
        raise NotFound("用户不存在")
    if not access.can_work_task(assignee, _unassigned(task)) or not cases.works_for_organisation(
        session, assignee, task.case_id
    ):
        raise ValidationFailed(f"{assignee.display_name}的角色、辖区或所属机构不能办理此任务")
    _hand_over(session, task, assignee.id)
    _audit_task(session, task, EventKind.ASSIGNED, actor, {"assignee": assignee.username})
    return task


def _unassigned(task: HumanTask) -> TaskRef:
    """The task as if nobody held it (whether someone could work it, whoever holds it now)."""
    return TaskRef(**{f.name: getattr(task, f.name) for f in fields(TaskRef)} | {"assignee_id": None})


def _audit_task(session: Session, task: HumanTask, kind: EventKind, actor: User, detail: dict | None = None):
    case = session.get(Case, task.case_id)
    try:
        audit.record(
            session, case, kind, actor=actor, task_spec=task.task_spec, task_name=task.name, detail=detail
        )
        # The case's trail head moved: writing it (with its lock token) makes a concurrent mover notice.
        session.flush()
    except (IntegrityError, StaleDataError) as exc:  # a step of the case was written meanwhile
        raise Conflict("案件刚被其他人更新，请刷新后重试") from exc


def ready_tasks(session: Session, case_id: int) -> list[HumanTask]:
    return list(
        session.scalars(
            select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
        )
    )
