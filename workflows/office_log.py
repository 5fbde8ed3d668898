"""The office log: sign-ins (and refused ones), refused pages and calls, exports, samples drawn.

Case events are per case and hash-chained (workflows/audit.py); what a person does outside any one case is
written here, append-only, in the same transaction as what it records (a refusal after the request's own
writes were undone), so the auditor can read who signed in from where, who was refused what, who took
which data away.
"""

from __future__ import annotations

import json

from sqlalchemy import insert
from sqlalchemy.orm import Session

from . import clock
from .models import User
from .models.supervision import LogKind, OfficeLog

KIND_LABELS = {
    LogKind.SIGNED_IN: "登录成功",
    LogKind.SIGN_IN_REFUSED: "登录失败",
    LogKind.DENIED: "越权访问被拒绝",
    LogKind.EXPORTED: "导出数据",
    LogKind.SAMPLED: "抽取抽查样本",
    LogKind.VERIFIED: "校验审计链",
    LogKind.DEPLOYED: "部署流程版本",
    LogKind.MIGRATION: "迁移案件版本",
}
CHANNELS = ("web", "api", "cli")


def record(
    session: Session,
    kind: LogKind,
    *,
    user: User | None = None,
    username: str = "",
    channel: str = "web",
    address: str | None = None,
    target: str = "",
    message: str = "",
    detail: dict | None = None,
) -> None:
    """Append one entry; the person's role and area are copied so the entry reads the same later."""
    session.execute(
        insert(OfficeLog),
        [
            {
                "at": clock.now(),
                "kind": kind,
                "user_id": user.id if user is not None else None,
                "username": (user.username if user is not None else username or "")[:64],
                "role": user.role.value if user is not None else None,
                "area_code": user.area_code if user is not None else None,
                "channel": channel if channel in CHANNELS else "web",
                "address": (address or None) and address[:64],
                "target": (target or "")[:300],
                "message": message or "",
                "detail": json.dumps(detail or {}, ensure_ascii=False, default=str, sort_keys=True),
            }
        ],
    )


def sign_in(session: Session, user: User, *, channel: str, address: str | None) -> None:
    record(session, LogKind.SIGNED_IN, user=user, channel=channel, address=address)


def sign_in_refused(
    session: Session, username: str, user: User | None, message: str, *, channel: str, address: str | None
) -> None:
    """A refused sign-in: the name as typed, the account when there is one, and why (as the person was told)."""
    record(
        session,
        LogKind.SIGN_IN_REFUSED,
        user=user,
        username=username,
        channel=channel,
        address=address,
        message=message,
    )


def denied(
    session: Session, actor: User | None, target: str, message: str, *, channel: str, address: str | None
) -> None:
    """A page or API call refused for the actor's role or area."""
    record(
        session, LogKind.DENIED, user=actor, channel=channel, address=address, target=target, message=message
    )


def exported(session: Session, actor: User, target: str, detail: dict, *, channel: str = "web") -> None:
    """A workbook handed out: which list or report, with which filters, how many rows, masked or not."""
    record(session, LogKind.EXPORTED, user=actor, channel=channel, target=target, detail=detail)
