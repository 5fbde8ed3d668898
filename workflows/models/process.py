"""Deployed process versions, cases, the inbox projection and the audit trail."""

import os
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from ..db import use_fast_compression
from .base import Base, ValueEnum


class CaseStatus(StrEnum):
    RUNNING = "running"  # has READY human tasks or is waiting for a timer/message
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"  # an engine step failed; the error is on the case and in its events


class TaskStatus(StrEnum):
    READY = "ready"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # withdrawn by the engine (a boundary event fired, the case ended)


class EventKind(StrEnum):
    STARTED = "started"
    TASK_COMPLETED = "task_completed"
    SENT_BACK = "sent_back"
    CLAIMED = "claimed"
    RELEASED = "released"
    ASSIGNED = "assigned"
    TIMER_FIRED = "timer_fired"
    MESSAGE_RECEIVED = "message_received"
    MESSAGE_SENT = "message_sent"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    MIGRATED = "migrated"
    COMMENTED = "commented"
    EXPORTED = "exported"
    DEADLINE_CHANGED = "deadline_changed"  # a due date moved because the working-day calendar changed


class ProcessVersion(Base):
    """One deployed version of a process: its sources and parsed spec, stored once for all its cases."""

    __tablename__ = "process_versions"
    __table_args__ = (
        UniqueConstraint("process_key", "version"),
        UniqueConstraint("process_key", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    # JSON text: {filename: source text} for every BPMN, DMN and form file of the bundle.
    sources: Mapped[str] = mapped_column(Text, deferred=True)
    # JSON text: the serialized process spec and the specs it calls, restored once per process and cached.
    spec: Mapped[str] = mapped_column(Text, deferred=True)
    # JSON text: {task spec id: {"form": schema, "lane": ..., "name": ..., ...}} read without the engine.
    task_info: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str | None] = mapped_column(Text)  # why this version (required when a person deploys)


class ProcessDraft(Base):
    """A process owner's unsaved edit of a process (its files), kept on the server until deployed."""

    __tablename__ = "process_drafts"
    __table_args__ = (UniqueConstraint("process_key", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("process_versions.id"))
    files: Mapped[str] = mapped_column(Text)  # JSON text: {path: source text}
    revision: Mapped[int] = mapped_column(Integer, default=1)  # each save checks and moves it on
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MigrationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MigrationBatch(Base):
    """Moving chosen running cases of a process to another version, one case at a time, with progress."""

    __tablename__ = "migration_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    case_ids: Mapped[str] = mapped_column(Text)  # JSON list, in the order they are moved
    status: Mapped[MigrationStatus] = mapped_column(
        ValueEnum(MigrationStatus), default=MigrationStatus.QUEUED
    )
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)  # looked at so far
    moved: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # could not move (they keep their version)
    comment: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class CaseMigration(Base):
    """One case moved from one version to another, with what it was, so that it can be moved back."""

    __tablename__ = "case_migrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("migration_batches.id"))
    from_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    old_state: Mapped[str] = mapped_column(Text)
    old_lock_version: Mapped[str] = mapped_column(String(32))
    new_lock_version: Mapped[str] = mapped_column(String(32))  # moved back only while the case still has it
    migrated_at: Mapped[datetime]
    migrated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reverted_at: Mapped[datetime | None]
    reverted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


def new_lock_token() -> str:
    """A case row's next lock value: random, so a cached instance matches only the row it was saved as."""
    return os.urandom(16).hex()


class Case(Base):
    """A running (or finished) process instance."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_due_timer", "next_timer_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    # The version's content hash, so the cached spec is found without reading the version row.
    version_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[CaseStatus] = mapped_column(ValueEnum(CaseStatus), index=True)
    area_code: Mapped[str | None] = mapped_column(String(12), index=True)
    elder_id: Mapped[int | None] = mapped_column(Integer, index=True)
    parent_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # Serialized workflow state *without* the spec (text, never jsonb: key order matters to the engine).
    # Deferred: the in-memory instance cache makes reading it unnecessary on most steps.
    state: Mapped[str] = mapped_column(Text, deferred=True)
    # Optimistic lock: a fresh random token on every write (a counter could repeat after a rollback,
    # and live instances are cached in memory by this token).
    lock_version: Mapped[str] = mapped_column(String(32))
    next_timer_at: Mapped[datetime | None]
    current_step: Mapped[str] = mapped_column(String(200), default="")
    # The latest case data as JSON text, so pages and the API read it without the engine.
    data: Mapped[str] = mapped_column(Text, default="{}", deferred=True)
    # Message/signal names the case waits for, "\n"-joined; case_waits rows are rewritten only when it changes.
    waiting_for: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    last_event_hash: Mapped[str] = mapped_column(String(64), default="")
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # The outside organisation working the case (the dispatched provider, the nursing home applied to):
    # its staff read the case, and no other organisation's do.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)

    __mapper_args__ = {"version_id_col": lock_version, "version_id_generator": lambda _old: new_lock_token()}


@event.listens_for(Case.__table__, "after_create")
def _compress_state_fast(table, connection, **_):
    use_fast_compression(connection, table.name)  # migration 0002 does the same for migrated databases


class HumanTask(Base):
    """The inbox projection: one row per user/manual task the engine has made READY."""

    __tablename__ = "human_tasks"
    __table_args__ = (
        Index("ix_human_tasks_inbox", "status", "area_code", "role", "due_at"),
        Index("ix_human_tasks_assignee", "assignee_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the engine's task id
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100))
    task_spec: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(32))
    area_code: Mapped[str | None] = mapped_column(String(12))
    elder_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[TaskStatus] = mapped_column(ValueEnum(TaskStatus))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CaseWait(Base):
    """What a case is waiting for (a message or signal name), so delivery finds cases without loading them."""

    __tablename__ = "case_waits"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    event_name: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class CaseEvent(Base):
    """Append-only audit trail; each row's hash covers the previous one, so edits are detectable."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[EventKind] = mapped_column(ValueEnum(EventKind))
    task_spec: Mapped[str | None] = mapped_column(String(100))
    task_name: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON text
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
