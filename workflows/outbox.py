"""The outbox: SMS to applicants, queued with the step that causes them and sent afterwards by the worker.

Queuing writes a row in the caller's transaction (so a rolled-back step sends nothing); `send_due` (the
`housing` job) hands queued rows to the configured sender and records when each was sent, or why not.
Delivery is at least once: a worker that dies between sending and committing sends that message again.

The sender is pluggable. By default `RecordingSender` records messages as sent without contacting anyone (a
county without an SMS contract phones applicants and the outbox still proves what was due when). A real
gateway plugs in by configuration: set ELDERCARE_SMS_SENDER to an import path, `package.module:name`, where
`name` is an object with `send(to, body) -> str | None` (returning the gateway's message id and raising on
failure) and a `name` attribute, or a class or factory that makes one without arguments.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import access, cases, clock
from .errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from .models import Case, Role, User
from .models.outbox import OutboxMessage, OutboxStatus
from .rules import housing
from .rules.phone import is_mobile, mask_phone

log = logging.getLogger(__name__)

SENDER_ENV = "ELDERCARE_SMS_SENDER"
_READ_ROLES = {Role.ADMIN, Role.AUDITOR, Role.APPROVER, Role.CASEWORKER, Role.FACILITY_ADMIN}


class SmsSender(Protocol):
    name: str

    def send(self, to: str, body: str) -> str | None:
        """Send one SMS; return the gateway's message id (or None); raise on failure."""


class RecordingSender:
    """The default sender: no gateway is called; the message is recorded as sent."""

    name = "record"

    def send(self, to: str, body: str) -> str | None:
        log.info("SMS (recorded, not sent by a gateway) to %s: %s", mask_phone(to), body)
        return None


class SenderConfigError(RuntimeError):
    """ELDERCARE_SMS_SENDER names something that is not a usable sender."""


def load_sender(spec: str | None) -> SmsSender:
    """Make the sender an import path names (`pkg.module:name` or `pkg.module.name`); the default if empty."""
    if not spec:
        return RecordingSender()
    module_name, _, attr = spec.partition(":")
    if not attr:
        module_name, _, attr = spec.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SenderConfigError(f"{SENDER_ENV}={spec!r}: 无法导入短信发送器（{exc}）") from exc
    sender = target if hasattr(target, "send") and not isinstance(target, type) else target()
    if not callable(getattr(sender, "send", None)):
        raise SenderConfigError(f"{SENDER_ENV}={spec!r}: 短信发送器需要 send(to, body) 方法")
    if not getattr(sender, "name", None):
        sender.name = type(sender).__name__
    return sender


def send_for_diagram(session: Session, case, payload: dict, actor: User | None) -> OutboxMessage:
    """A service task's `send_sms` operation: queue the SMS (`to`, `body`) with the case, in its step."""
    return queue_sms(
        session,
        actor,
        to=str(payload.get("to") or ""),
        body=str(payload.get("body") or "")[:500],
        purpose="diagram",
        case_id=case.id,
        elder_id=case.elder_id,
    )


_override: list[SmsSender] = []
_loaded: dict[str, SmsSender] = {}


def current_sender() -> SmsSender:
    """The sender in use: one set with `using_sender`, else the one ELDERCARE_SMS_SENDER names (loaded once)."""
    if _override:
        return _override[-1]
    spec = os.environ.get(SENDER_ENV, "")
    if spec not in _loaded:
        _loaded[spec] = load_sender(spec)
    return _loaded[spec]


@contextmanager
def using_sender(sender: SmsSender) -> Iterator[SmsSender]:
    """Send through `sender` inside the block (tests, and an app that builds its gateway client itself)."""
    _override.append(sender)
    try:
        yield sender
    finally:
        _override.remove(sender)


# --------------------------------------------------------------------------------------------------
# Queuing and sending


def queue_sms(
    session: Session,
    actor: User | None,
    *,
    to: str | None,
    body: str,
    purpose: str,
    case_id: int | None = None,
    elder_id: int | None = None,
    recipient_name: str = "",
) -> OutboxMessage:
    """Queue one SMS in the caller's transaction; without a mobile number it is recorded as failed at once."""
    now = clock.now()
    number = (to or "").strip()
    message = OutboxMessage(
        channel="sms",
        recipient=number,
        recipient_name=recipient_name,
        body=body,
        purpose=purpose,
        case_id=case_id,
        elder_id=elder_id,
        status=OutboxStatus.QUEUED,
        queued_at=now,
        queued_by=actor.id if actor is not None else None,
        next_attempt_at=now,
        attempts=0,
    )
    if not is_mobile(number):
        message.status = OutboxStatus.FAILED
        message.last_error = (
            "没有可接收短信的手机号码，请电话通知" if not number else f"{number} 不是手机号码，请电话通知"
        )
    session.add(message)
    session.flush()
    return message


def send_due(session: Session, *, limit: int | None = None) -> int:
    """Send one batch of due messages through the current sender; return how many were attempted."""
    settings = housing.settings()["sms"]
    now = clock.now()
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit or int(settings["batch_size"]))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    messages = list(session.scalars(query))
    if not messages:
        return 0
    sender = current_sender()
    for message in messages:
        message.attempts += 1
        message.sender = sender.name
        try:
            ref = sender.send(message.recipient, message.body)
        except Exception as exc:  # noqa: BLE001 - any gateway failure is recorded and retried
            message.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            if message.attempts >= int(settings["max_attempts"]):
                message.status = OutboxStatus.FAILED
            else:
                message.next_attempt_at = clock.now() + timedelta(
                    minutes=int(settings["retry_minutes"]) * message.attempts
                )
            log.warning(
                "SMS %s to %s failed (attempt %s): %s",
                message.id,
                mask_phone(message.recipient),
                message.attempts,
                exc,
            )
            continue
        message.status = OutboxStatus.SENT
        message.sent_at = clock.now()
        message.provider_ref = str(ref) if ref is not None else None
        message.last_error = None
    session.flush()
    return len(messages)


# --------------------------------------------------------------------------------------------------
# Reading and retrying


def _require_reader(actor: User) -> None:
    if actor.role not in _READ_ROLES or not actor.is_active:
        raise PermissionDenied("您的角色不能查看短信发送记录")


def messages_for_case(session: Session, actor: User, case_id: int) -> list[OutboxMessage]:
    """The SMS a case caused, oldest first (for the case page and audits)."""
    _require_reader(actor)
    cases.get_case(session, actor, case_id)
    return list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.case_id == case_id).order_by(OutboxMessage.id)
        )
    )


def failed_messages(session: Session, actor: User, *, limit: int = 100) -> list[OutboxMessage]:
    """Messages that could not be sent (someone must phone), newest first, within the actor's area."""
    _require_reader(actor)
    query = (
        select(OutboxMessage)
        .outerjoin(Case, Case.id == OutboxMessage.case_id)
        .where(OutboxMessage.status == OutboxStatus.FAILED)
        .order_by(OutboxMessage.queued_at.desc())
        .limit(limit)
    )
    return [m for m in session.scalars(query) if m.case_id is None or _covers_case(session, actor, m.case_id)]


def _covers_case(session: Session, actor: User, case_id: int) -> bool:
    case = session.get(Case, case_id)
    return case is not None and access.covers(actor, case.area_code)


def retry(session: Session, actor: User, message_id: int, *, to: str | None = None) -> OutboxMessage:
    """Queue a failed message again (optionally to a corrected number)."""
    if actor.role not in (Role.ADMIN, Role.CASEWORKER, Role.FACILITY_ADMIN, Role.APPROVER):
        raise PermissionDenied("您的角色不能重发短信")
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("短信记录不存在")
    if message.case_id is not None and not _covers_case(session, actor, message.case_id):
        raise PermissionDenied("无权处理其他辖区的短信")
    if message.status != OutboxStatus.FAILED:
        raise Conflict("只有发送失败的短信可以重发")
    number = (to or message.recipient).strip()
    if not is_mobile(number):
        raise ValidationFailed("手机号码格式不正确", field_errors={"to": "请填写11位手机号码"})
    message.recipient = number
    message.status = OutboxStatus.QUEUED
    message.next_attempt_at = clock.now()
    message.attempts = 0
    message.last_error = None
    session.flush()
    return message
