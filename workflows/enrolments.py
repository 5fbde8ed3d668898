"""What home care and visiting care share: an enrolment that a long-lived case holds, the short case opened
for each of its periods (a service month, a visit period), and its end (on request, or when the elder
leaves the register).

Each enrolment row carries the start of its next period; opening a period starts its short case and moves
that date on in the same transaction, so a restarted or second worker never opens a period twice.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from . import cases, clock, elders
from .driver_sql import DriverStatement
from .errors import NotFound, ValidationFailed
from .models import HumanTask, TaskStatus, User
from .models.care import EndReason, EnrolmentStatus
from .models.elders import Elder, ElderStatus

# What an enrolment's case waits for when its elder leaves the register.
LEAVING = {ElderStatus.DECEASED.value: "elder_died", ElderStatus.MOVED_AWAY.value: "elder_moved_away"}


def end_active(session: Session, model, case, payload: Mapping):
    """End the case's active enrolment of `model` with the payload's reason; None when there is none."""
    enrolment = session.scalar(
        select(model).where(model.case_id == case.id, model.status == EnrolmentStatus.ACTIVE)
    )
    if enrolment is None:
        return None
    enrolment.status = EnrolmentStatus.ENDED
    enrolment.end_reason = EndReason(payload["reason"])
    enrolment.ended_on = clock.today()
    enrolment.updated_at = clock.now()
    session.flush()
    return enrolment


def request_withdrawal(
    session: Session,
    actor: User,
    elder_id: int,
    reason: str,
    *,
    message: str,
    roles: Iterable,
    action: str,
    nothing_running: str,
) -> list[int]:
    """Tell the elder's enrolment case that they asked to leave; the case ends the enrolment."""
    elders.require_role(actor, roles, action)
    elder = elders.get_elder(session, actor, elder_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("请填写退出原因", field_errors={"reason": "请填写退出原因"})
    moved = cases.deliver_message(
        session,
        message,
        {"reason": reason, "by": actor.display_name, "on": clock.today().isoformat()},
        actor=actor,
        elder_id=elder.id,
    )
    if not moved:
        raise NotFound(nothing_running.format(name=elder.name))
    return moved


# --------------------------------------------------------------------------------------------------
# Periods


def open_due(
    session: Session,
    model,
    next_start,
    open_period: Callable[[Session, object], date],
    *,
    limit: int = 50,
) -> int:
    """Open the period that has begun for each active enrolment of `model` (one batch); return how many
    enrolments were handled. `next_start` is the model's column holding the next period's first day;
    `open_period(session, enrolment)` opens that period and returns the first day of the one after it."""
    query = (
        select(model)
        .where(model.status == EnrolmentStatus.ACTIVE, next_start <= clock.today())
        .order_by(next_start, model.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    batch = session.scalars(query).all()
    # Their elders, and the accounts they name (the provider), in one query each rather than one per
    # period: every period reads its elder (the register's status, the new case's title and data) and the
    # process reads the accounts. The session's identity map then answers, but it holds objects weakly:
    # `held` keeps them alive until the batch is done.
    held = session.scalars(select(Elder).where(Elder.id.in_({e.elder_id for e in batch}))).all()
    user_ids = {
        getattr(e, column.name)
        for e in batch
        for column in model.__table__.columns
        if any(fk.column.table is User.__table__ for fk in column.foreign_keys)
    }
    held += session.scalars(select(User).where(User.id.in_(user_ids - {None}))).all()
    handled = 0
    for enrolment in batch:
        handled += 1
        if close_if_off_register(session, enrolment):
            continue
        setattr(enrolment, next_start.key, open_period(session, enrolment))
        enrolment.updated_at = clock.now()
    session.flush()
    del held
    return handled


def close_if_off_register(session: Session, enrolment) -> bool:
    """End an enrolment whose elder the register shows as deceased or moved away, through its case.

    The register should have delivered `elder_died` / `elder_moved_away` already; this catches a missed
    message before a period is opened for someone no longer there. Works for both kinds of enrolment.
    """
    elder = session.get(Elder, enrolment.elder_id)
    if elder.status == ElderStatus.ACTIVE:
        return False
    if elder.status == ElderStatus.DECEASED:
        reason = EndReason.DECEASED
        payload = {"on": elder.deceased_on.isoformat() if elder.deceased_on else None, "source": "老人档案"}
    else:
        reason, payload = EndReason.MOVED_AWAY, {"source": "老人档案"}
    if not cases.deliver_message(session, LEAVING[elder.status.value], payload, case_id=enrolment.case_id):
        # The enrolment's case no longer waits for it (ended by hand): close the record itself.
        enrolment.status = EnrolmentStatus.ENDED
        enrolment.end_reason = reason
        enrolment.ended_on = clock.today()
        enrolment.updated_at = clock.now()
    session.flush()
    return True


def set_due(session: Session, case_id: int, task_spec: str, day: date) -> None:
    """Give an open step whose deadline depends on the case (a period's end) its due date: end of that day."""
    _SET_DUE.execute(
        session.connection(), {"case_id": case_id, "task_spec": task_spec, "due_at": clock.end_of_day(day)}
    )


# Run for every period opened (on the driver: see driver_sql); the ORM holds no task rows to keep in step.
_TASKS = HumanTask.__table__
_SET_DUE = DriverStatement(
    update(_TASKS)
    .where(
        _TASKS.c.case_id == bindparam("case_id"),
        _TASKS.c.task_spec == bindparam("task_spec"),
        _TASKS.c.status == TaskStatus.READY.value,
    )
    .values(due_at=bindparam("due_at"))
)


def end_of_day(day, days_after: int = 0) -> str:
    """(Script helper) 23:59:59 China time, `days_after` days after `day`, as an ISO timestamp for a timer."""
    return clock.end_of_day(clock.as_date(day) + timedelta(days=int(days_after))).isoformat()
