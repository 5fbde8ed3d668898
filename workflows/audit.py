"""The append-only case trail, linked by a hash chain so that any edit or deletion shows."""

import hashlib
import json
from datetime import datetime

import orjson
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from . import clock
from .models import Case, CaseEvent, EventKind, User

# What each kind of event is called wherever a trail is shown: case pages, the audit viewer, case files.
EVENT_LABELS = {
    EventKind.STARTED: "发起",
    EventKind.TASK_COMPLETED: "办理完成",
    EventKind.SENT_BACK: "退回",
    EventKind.CLAIMED: "认领",
    EventKind.RELEASED: "释放",
    EventKind.ASSIGNED: "改派",
    EventKind.TIMER_FIRED: "定时触发",
    EventKind.MESSAGE_RECEIVED: "收到消息",
    EventKind.MESSAGE_SENT: "发出消息",
    EventKind.COMPLETED: "办结",
    EventKind.CANCELLED: "终止",
    EventKind.FAILED: "出错",
    EventKind.MIGRATED: "迁移版本",
    EventKind.COMMENTED: "意见/材料",
    EventKind.EXPORTED: "打印/导出",
    EventKind.DEADLINE_CHANGED: "期限调整",
}


def _digest(
    prev_hash: str, case_id: int, seq: int, at: datetime, actor_id, kind: str, task_spec, comment, detail
) -> str:
    body = json.dumps(
        [prev_hash, case_id, seq, at.isoformat(), actor_id, kind, task_spec, comment, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


_DETAIL_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _detail_text(detail: dict | None) -> str:
    # Every step writes one; the hash covers this text as stored, so its layout is free to choose.
    return orjson.dumps(detail or {}, default=str, option=_DETAIL_OPTIONS).decode("utf-8")


def entry(
    case: Case,
    kind: EventKind,
    *,
    head: tuple[int, str] | None = None,
    actor: User | None = None,
    task_spec: str | None = None,
    task_name: str | None = None,
    comment: str | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
) -> dict:
    """Build the next event row after `head` (count, hash; default: the case's own chain head)."""
    count, prev_hash = head if head is not None else (case.event_count, case.last_event_hash)
    at = at or clock.now()
    seq = count + 1
    detail_text = _detail_text(detail)
    actor_id = actor.id if actor is not None else None
    return {
        "case_id": case.id,
        "seq": seq,
        "at": at,
        "actor_id": actor_id,
        "kind": kind,
        "task_spec": task_spec,
        "task_name": task_name,
        "comment": comment,
        "detail": detail_text,
        "prev_hash": prev_hash,
        "hash": _digest(prev_hash, case.id, seq, at, actor_id, kind.value, task_spec, comment, detail_text),
    }


def record(session: Session, case: Case, kind: EventKind, **fields) -> dict:
    """Append one event to a case's trail now; the case row carries the new chain head."""
    row = entry(case, kind, **fields)
    session.execute(insert(CaseEvent), [row])
    case.event_count = row["seq"]
    case.last_event_hash = row["hash"]
    return row


def verify_chain(session: Session, case_id: int) -> list[str]:
    """Recompute a case's chain; return a description of every break (empty when intact)."""
    problems = []
    prev = ""
    expected_seq = 1
    case = session.get(Case, case_id)
    for event in session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    ):
        if event.seq != expected_seq:
            problems.append(f"第{expected_seq}条记录缺失")
            expected_seq = event.seq
        if event.prev_hash != prev:
            problems.append(f"第{event.seq}条记录的前序哈希不符")
        digest = _digest(
            event.prev_hash,
            event.case_id,
            event.seq,
            event.at,
            event.actor_id,
            event.kind.value,
            event.task_spec,
            event.comment,
            event.detail,
        )
        if digest != event.hash:
            problems.append(f"第{event.seq}条记录内容被改动")
        prev = event.hash
        expected_seq += 1
    if case is not None and case.last_event_hash != prev:
        problems.append("最后一条记录与案件记录的链头不符（记录可能被删除）")
    return problems
