"""Numbered notices (审批通知书, 不予批准通知书, 入住通知, 公示名单) and the case-file archives made for a county."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, ValueEnum


class NoticeKind(StrEnum):
    APPROVAL = "approval"  # 审批通知书
    REFUSAL = "refusal"  # 不予批准通知书
    ADMISSION_OFFER = "admission_offer"  # 入住通知（轮候到位）
    PUBLIC_LIST = "public_list"  # 适老化改造公示名单（每个乡镇一份）

    @property
    def label(self) -> str:
        return NOTICE_KIND_LABELS[self]


NOTICE_KIND_LABELS = {
    NoticeKind.APPROVAL: "审批通知书",
    NoticeKind.REFUSAL: "不予批准通知书",
    NoticeKind.ADMISSION_OFFER: "入住通知",
    NoticeKind.PUBLIC_LIST: "公示名单",
}


class NoticeCounter(Base):
    """The last document number given per county, kind and year: one row, updated in the issuing transaction,
    so a rolled-back step gives its number back (no gaps) and two issuers queue on the row (no duplicates)."""

    __tablename__ = "notice_counters"

    county_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    kind: Mapped[NoticeKind] = mapped_column(ValueEnum(NoticeKind), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Notice(Base):
    """One issued notice: its document number (文号) and a JSON snapshot of what it says; the PDF made from the
    snapshot is stored the first time it is rendered, so every reprint is the same file."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("county_code", "kind", "year", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[NoticeKind] = mapped_column(ValueEnum(NoticeKind))
    county_code: Mapped[str] = mapped_column(String(6))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    document_number: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)  # the case whose step issued it
    area_code: Mapped[str] = mapped_column(String(12))  # the case's area; a 公示名单's township
    task_spec: Mapped[str | None] = mapped_column(String(100))  # the step that issued it
    snapshot: Mapped[str] = mapped_column(Text)  # JSON text
    issued_at: Mapped[datetime]
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    rendered_at: Mapped[datetime | None]


class NoticeCase(Base):
    """Which cases a notice concerns: its own case, and every household a 公示名单 lists."""

    __tablename__ = "notice_cases"

    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)


class ArchiveStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ArchiveJob(Base):
    """A bulk archive of case files (一户一档) for an area and a year, made in the background; its progress is
    kept here so any web process can show it, and the zip is written under the instance folder."""

    __tablename__ = "archive_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12))
    year: Mapped[int] = mapped_column(Integer)
    process_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[ArchiveStatus] = mapped_column(ValueEnum(ArchiveStatus), index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
