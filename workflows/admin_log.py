"""The log of administrative changes: users, areas, organisations and the working-day calendar.

Append-only, like a case's trail: each row says who did what to which record, when, and what each changed
field was before and after. The command line on the server writes here too (actor: nobody).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .models import User
from .models.office import AdminEvent

SUBJECT_LABELS = {"user": "用户", "area": "行政区划", "organisation": "机构", "calendar": "工作日历"}


def plain(value) -> object:
    """A value as the log keeps it (JSON: dates as ISO text, enums by value)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def record(
    session: Session,
    actor: User | None,
    subject: str,
    subject_id,
    action: str,
    summary: str,
    *,
    changes: Mapping[str, tuple] | None = None,
    detail: Mapping | None = None,
) -> AdminEvent:
    """Append one change; `changes` is {field: (old, new)}."""
    body = dict(detail or {})
    if changes:
        body["changes"] = {key: [plain(old), plain(new)] for key, (old, new) in changes.items()}
    event = AdminEvent(
        at=clock.now(),
        actor_id=actor.id if actor is not None else None,
        subject=subject,
        subject_id=str(subject_id),
        action=action,
        summary=summary,
        detail=json.dumps(body, ensure_ascii=False, default=str),
    )
    session.add(event)
    session.flush()
    return event


@dataclass
class Entry:
    at: datetime
    actor_name: str
    subject: str
    subject_id: str
    action: str
    summary: str
    changes: dict[str, list]


def history(
    session: Session, *, subject: str | None = None, subject_id=None, limit: int = 200
) -> list[Entry]:
    """The latest changes (of one record, when given), newest first."""
    query = select(AdminEvent).order_by(AdminEvent.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AdminEvent.subject == subject)
    if subject_id is not None:
        query = query.where(AdminEvent.subject_id == str(subject_id))
    events = list(session.scalars(query))
    ids = {e.actor_id for e in events if e.actor_id is not None}
    names = (
        dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()) if ids else {}
    )
    return [
        Entry(
            at=e.at,
            actor_name=names.get(e.actor_id, "命令行（服务器）")
            if e.actor_id is not None
            else "命令行（服务器）",
            subject=e.subject,
            subject_id=e.subject_id,
            action=e.action,
            summary=e.summary,
            changes=json.loads(e.detail or "{}").get("changes", {}),
        )
        for e in events
    ]
