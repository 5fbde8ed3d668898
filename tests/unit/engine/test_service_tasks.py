"""A service task calls one of the system's own operations (an SMS through the outbox), in its step's
transaction; anything else is refused when deploying, with the element named."""

from sqlalchemy import select

from workflows import cases, tasks
from workflows.models import CaseEvent, EventKind
from workflows.models.outbox import OutboxMessage, OutboxStatus

from .conftest import TOWNSHIP


def test_a_service_task_queues_an_sms_with_the_case(session, deployed):
    case = cases.start_case(
        session,
        deployed["caseworker"],
        "remind_by_sms",
        area_code=TOWNSHIP,
        data={"phone": "13912345678", "name": "张秀英"},
    )
    [sms] = session.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id)).all()
    assert sms.recipient == "13912345678" and sms.status == OutboxStatus.QUEUED
    assert sms.body == "【温县民政局】张秀英，请于本周五前到村委会领取助餐卡。"
    assert cases.case_data(case)["reminder"] == {"accepted": True}
    trail = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert any(e.kind == EventKind.MESSAGE_SENT and "connector:send_sms" in (e.detail or "") for e in trail)
    [task] = tasks.ready_tasks(session, case.id)
    assert task.task_spec == "confirm"


def test_a_wrong_number_is_recorded_as_failed_not_a_failed_step(session, deployed):
    case = cases.start_case(
        session,
        deployed["caseworker"],
        "remind_by_sms",
        area_code=TOWNSHIP,
        data={"phone": "12345", "name": "李"},
    )
    [sms] = session.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id)).all()
    assert sms.status == OutboxStatus.FAILED and tasks.ready_tasks(session, case.id)
