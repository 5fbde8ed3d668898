"""The first page after signing in: one's own tasks and the tasks waiting for one's role, side by side with
their counts, and what else the role looks after (the administrator: what the calendar lacks, locked
accounts; a nursing home: its waitlist; a provider: its orders)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from workflows import calendars, drafts, inbox, users
from workflows.models import Role, User

SHOWN = 8


def start_page(session: Session, actor: User) -> dict:
    mine = inbox.list_inbox(session, actor, inbox.InboxFilter(scope=inbox.Scope.MINE, per_page=SHOWN))
    waiting = inbox.list_inbox(session, actor, inbox.InboxFilter(scope=inbox.Scope.GROUP, per_page=SHOWN))
    everything = (
        inbox.list_inbox(session, actor, inbox.InboxFilter(scope=inbox.Scope.ALL, per_page=1)).total
        if actor.role == Role.AUDITOR
        else None
    )
    extras: dict = {}
    if actor.role == Role.ADMIN:
        extras["warnings"] = calendars.warnings(session)
        extras["locked"] = sum(1 for u in users.list_users(session, actor) if users.is_locked(u))
    return {
        "mine": mine,
        "waiting": waiting,
        "everything": everything,
        "drafts": drafts.drafts_of(session, actor),
        "Scope": inbox.Scope,
        **extras,
    }
