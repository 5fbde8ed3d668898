"""Drafts of task forms: what a person typed into a task's form and has not submitted yet, kept on the
server so that signing out (or being signed out when idle) loses nothing. One draft per person and task;
it goes when the task is submitted, or when the person discards it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import clock, inbox, tasks
from .errors import ValidationFailed
from .models import TaskStatus, User
from .models.office import TaskDraft

MAX_BYTES = 200_000  # a form is a few kilobytes; a draft this large is not a form


@dataclass
class Draft:
    fields: dict[str, list[str]]
    comment: str
    saved_at: datetime


def _clean(fields) -> dict[str, list[str]]:
    """Only the form's own fields (`f.` names) with lists of strings; anything else is not a draft."""
    if not isinstance(fields, dict):
        raise ValidationFailed("草稿格式不正确", field_errors={"_": "草稿格式不正确"})
    out = {}
    for name, values in fields.items():
        if not isinstance(name, str) or not name.startswith("f.") or len(name) > 200:
            continue
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValidationFailed("草稿格式不正确", field_errors={name: "应为文本"})
        out[name] = values[:100]
    return out


def save(session: Session, actor: User, task_id: str, fields, comment: str = "") -> Draft:
    """Keep what the person typed into a task they may work (replacing their earlier draft of it)."""
    opened = inbox.open_task(session, actor, task_id)
    if not opened.can_work:
        raise ValidationFailed("此任务当前不能由您办理，草稿未保存", field_errors={"_": "不能办理"})
    fields = _clean(fields)
    comment = comment if isinstance(comment, str) else ""
    text = orjson.dumps(fields).decode("utf-8")
    if len(text) + len(comment) > MAX_BYTES:
        raise ValidationFailed("草稿内容过大", field_errors={"_": "草稿内容过大"})
    now = clock.now()
    key = {"user_id": actor.id, "task_id": opened.task.id}
    draft = session.get(TaskDraft, (actor.id, opened.task.id))
    if draft is None:
        try:
            with session.begin_nested():  # the same person saving from two tabs at once: the later wins
                draft = TaskDraft(**key, fields=text, comment=comment, saved_at=now)
                session.add(draft)
                session.flush()
        except IntegrityError:
            draft = session.get(TaskDraft, (actor.id, opened.task.id), populate_existing=True)
    draft.fields, draft.comment, draft.saved_at = text, comment, now
    session.flush()
    return Draft(fields, comment, now)


def load(session: Session, actor: User, task_id: str) -> Draft | None:
    """The person's draft of a task, if the task is still open (a draft of a finished task is dropped)."""
    draft = session.get(TaskDraft, (actor.id, str(task_id)))
    if draft is None:
        return None
    task = tasks.get_task(session, actor, task_id)
    if task.status != TaskStatus.READY:
        session.delete(draft)
        session.flush()
        return None
    return Draft(json.loads(draft.fields or "{}"), draft.comment or "", draft.saved_at)


def discard(session: Session, actor: User, task_id: str) -> None:
    session.execute(delete(TaskDraft).where(TaskDraft.user_id == actor.id, TaskDraft.task_id == str(task_id)))


def drafts_of(session: Session, actor: User) -> set[str]:
    """The tasks the person has a draft of (for marking them in lists)."""
    return set(session.scalars(select(TaskDraft.task_id).where(TaskDraft.user_id == actor.id)))
