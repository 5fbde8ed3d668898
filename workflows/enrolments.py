"""What home care and visiting care share: an enrolment that a case ends, and withdrawal on request."""

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import cases, clock, elders
from .errors import NotFound, ValidationFailed
from .models import User
from .models.care import EndReason, EnrolmentStatus


def end_active(session: Session, model, case, payload: Mapping):
    """End the case's active enrolment of `model` with the payload's reason; None when there is none."""
    enrolment = session.scalar(
        select(model).where(model.case_id == case.id, model.status == EnrolmentStatus.ACTIVE)
    )
    if enrolment is None:
        return None
    enrolment.status = EnrolmentStatus.ENDED
    enrolment.end_reason = EndReason(payload["reason"])
    enrolment.ended_on = elders.today()
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
        {"reason": reason, "by": actor.display_name, "on": elders.today().isoformat()},
        actor=actor,
        elder_id=elder.id,
    )
    if not moved:
        raise NotFound(nothing_running.format(name=elder.name))
    return moved
