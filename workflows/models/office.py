"""What running the office itself leaves behind: the log of administrative changes (users, areas,
organisations, the working-day calendar), one-time password links, the county's own holiday calendar,
and the drafts of task forms a person has not submitted yet."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, ValueEnum


class AdminEvent(Base):
    """Append-only: who changed which user, area, organisation or calendar year, when, from what to what."""

    __tablename__ = "admin_events"
    __table_args__ = (Index("ix_admin_events_subject", "subject", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    subject: Mapped[str] = mapped_column(String(16))  # user, area, organisation, calendar
    subject_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)  # Chinese, as the history shows it
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON: {field: [old, new]} and more


class PasswordReset(Base):
    """A one-time link to set a new password: only the secret's hash is kept; used once, then void."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class DayKind(StrEnum):
    HOLIDAY = "holiday"  # 放假
    WORKDAY = "workday"  # 调休上班 (a weekend day worked)


class CalendarYear(Base):
    """A year of holidays and make-up workdays the county entered from the State Council's notice; it takes
    precedence over the calendar library for that whole year."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    notice: Mapped[str] = mapped_column(String(200), default="")  # e.g. 国办发明电〔2026〕x号
    entered_at: Mapped[datetime]
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime]
    revision: Mapped[int] = mapped_column(Integer, default=1)


class CalendarDay(Base):
    """One day of an entered year that is not what its weekday says: a holiday, or a worked weekend day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year"), index=True)
    kind: Mapped[DayKind] = mapped_column(ValueEnum(DayKind, 16))
    name: Mapped[str] = mapped_column(String(32), default="")


class TaskDraft(Base):
    """A task form filled in part and not submitted: kept on the server, per person and task."""

    __tablename__ = "task_drafts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_tasks.id"), primary_key=True)
    fields: Mapped[str] = mapped_column(Text, default="{}")  # JSON: {html name: [strings]} as typed
    comment: Mapped[str] = mapped_column(Text, default="")
    saved_at: Mapped[datetime]
