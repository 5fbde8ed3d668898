"""The SMS outbox: queued in the caller's transaction, sent by the job through a pluggable sender, each
message with its queued and sent times; failures retried, then given up and listed for a phone call."""

from datetime import timedelta

import pytest

from tests.factories import MONDAY_MORNING, add_users
from workflows import outbox
from workflows.errors import Conflict, PermissionDenied
from workflows.models import Role, User
from workflows.models.outbox import OutboxMessage, OutboxStatus

START = MONDAY_MORNING


class GatewaySender:
    """Stands in for a county's SMS gateway client (what ELDERCARE_SMS_SENDER would name)."""

    name = "test-gateway"
    sent: list[tuple[str, str]] = []

    def send(self, to: str, body: str) -> str:
        GatewaySender.sent.append((to, body))
        return f"gw-{len(GatewaySender.sent)}"


class DownSender:
    name = "down"

    def send(self, to: str, body: str) -> str:
        raise ConnectionError("短信网关无响应")


def make_gateway() -> GatewaySender:
    return GatewaySender()


@pytest.fixture
def admin(session):
    return add_users(session, prefix="sms_")["admin"]


def queue(session, to="13900001111", body="【民政局】测试短信"):
    return outbox.queue_sms(session, None, to=to, body=body, purpose="test")


def test_default_sender_records_the_message_as_sent_with_both_times(session, manual_clock, monkeypatch):
    monkeypatch.delenv(outbox.SENDER_ENV, raising=False)
    message = queue(session)
    assert (message.status, message.queued_at, message.sent_at) == (OutboxStatus.QUEUED, START, None)
    manual_clock.advance(minutes=3)
    assert outbox.send_due(session) == 1
    assert message.status == OutboxStatus.SENT
    assert message.sent_at == START + timedelta(minutes=3)
    assert message.sender == "record" and message.attempts == 1
    assert outbox.send_due(session) == 0


@pytest.mark.parametrize(
    "spec",
    [
        "tests.unit.test_outbox:GatewaySender",
        "tests.unit.test_outbox:make_gateway",
        "tests.unit.test_outbox.GatewaySender",
    ],
)
def test_a_gateway_plugs_in_by_an_import_path_in_the_environment(session, manual_clock, monkeypatch, spec):
    monkeypatch.setenv(outbox.SENDER_ENV, spec)
    GatewaySender.sent.clear()
    message = queue(session, body="您好")
    outbox.send_due(session)
    assert GatewaySender.sent == [("13900001111", "您好")]
    assert (message.status, message.sender, message.provider_ref) == (
        OutboxStatus.SENT,
        "test-gateway",
        "gw-1",
    )


def test_a_bad_sender_path_is_a_clear_configuration_error(monkeypatch):
    with pytest.raises(outbox.SenderConfigError) as error:
        outbox.load_sender("tests.unit.test_outbox:NoSuchSender")
    assert outbox.SENDER_ENV in str(error.value)


def test_failures_are_retried_with_backoff_then_given_up(session, manual_clock):
    message = queue(session)
    with outbox.using_sender(DownSender()):
        outbox.send_due(session)
        assert (message.status, message.attempts) == (OutboxStatus.QUEUED, 1)
        assert message.last_error == "ConnectionError: 短信网关无响应"
        assert message.next_attempt_at == START + timedelta(minutes=10)
        assert outbox.send_due(session) == 0  # not due yet: the worker loop does not spin
        for _ in range(4):
            manual_clock.advance(hours=1)
            outbox.send_due(session)
    assert (message.status, message.attempts, message.sent_at) == (OutboxStatus.FAILED, 5, None)


def test_without_a_mobile_number_the_message_fails_at_once_for_a_phone_call(session, manual_clock, admin):
    landline = queue(session, to="0391-6123456")
    nothing = queue(session, to=None)
    assert landline.status == nothing.status == OutboxStatus.FAILED
    assert "请电话通知" in landline.last_error and "请电话通知" in nothing.last_error
    assert outbox.send_due(session) == 0
    assert {m.id for m in outbox.failed_messages(session, admin)} == {landline.id, nothing.id}


def test_a_failed_message_can_be_sent_again_to_a_corrected_number(session, manual_clock, admin):
    message = queue(session, to="0391-6123456")
    outbox.retry(session, admin, message.id, to="13711112222")
    assert (message.status, message.recipient) == (OutboxStatus.QUEUED, "13711112222")
    outbox.send_due(session)
    assert message.status == OutboxStatus.SENT
    with pytest.raises(Conflict):
        outbox.retry(session, admin, message.id)


def test_only_staff_read_or_retry_messages(session, manual_clock, admin):
    provider = User(username="p", display_name="服务商", role=Role.PROVIDER, area_code="410825")
    session.add(provider)
    session.flush()
    message = queue(session, to=None)
    with pytest.raises(PermissionDenied):
        outbox.failed_messages(session, provider)
    with pytest.raises(PermissionDenied):
        outbox.retry(session, provider, message.id)


def test_a_rolled_back_step_queues_nothing(session, manual_clock):
    before = session.query(OutboxMessage).count()
    with pytest.raises(RuntimeError), session.begin_nested():
        queue(session)
        raise RuntimeError("the step failed")
    assert session.query(OutboxMessage).count() == before
