"""Outgoing messages (SMS) written in the same transaction as the step that causes them, sent afterwards.

A row is queued by a use case and sent by the background job through the configured sender; its queued and
sent times are kept, so a deadline such as "notify within 2 days of a bed becoming free" can be proven.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, ValueEnum


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # gave up after the configured attempts, or no number to send to


OUTBOX_STATUS_LABELS = {
    OutboxStatus.QUEUED: "待发送",
    OutboxStatus.SENT: "已发送",
    OutboxStatus.FAILED: "发送失败",
}


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    recipient: Mapped[str] = mapped_column(String(20))  # a mobile number; "" when none is known
    recipient_name: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(50))  # e.g. "bed_offer", "waitlist_joined"
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    elder_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[OutboxStatus] = mapped_column(ValueEnum(OutboxStatus, 16))
    queued_at: Mapped[datetime]
    queued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    sender: Mapped[str | None] = mapped_column(
        String(50)
    )  # which sender handled it ("record", a gateway's name)
    provider_ref: Mapped[str | None] = mapped_column(String(100))  # the gateway's message id
    last_error: Mapped[str | None] = mapped_column(Text)
