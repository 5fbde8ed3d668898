"""Numbered notices (审批通知书, 不予批准通知书, 入住通知, 公示名单): issued inside the step that decides them.

A diagram asks for a notice with the message `issue_notice` ({"kind": ..., "step": ...}); its handler
(`issue_from_diagram`) issues it in the same transaction as the step, so the notice exists exactly when the
decision does. Approval and refusal notices read any case; the others are the processes' own (their facts
are built by the builders the processes declare, `Process.notices`). The document number (文号) comes from one counter row per county, kind and year, incremented in
that transaction: a step that rolls back gives its number back (no gaps), and two steps issuing at once queue
on the row (no duplicates; a unique constraint on the notice row backs this up).

What the notice says is fixed at issue time as a JSON snapshot (wording from the county's settings, facts from
the case); `casefiles` renders the PDF from the snapshot and it is stored the first time, so every reprint is
the same file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import string
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import audit, cases, clock, config, elders, registry
from .clock import LOCAL
from .errors import NotFound, PermissionDenied
from .models import Area, Case, CaseEvent, Elder, EventKind, ProcessVersion, User
from .models.base import is_row_id
from .models.notices import NOTICE_KIND_LABELS, Notice, NoticeCase, NoticeCounter, NoticeKind
from .rules.idnumber import mask_id_number

DEFAULTS = Path(__file__).resolve().parent / "rules" / "data" / "notices.json"
CONFIG_ENV = "ELDERCARE_NOTICE_CONFIG"


# --------------------------------------------------------------------------------------------------
# Settings a county adjusts without code


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _override_file() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    path = config.instance_dir() / "notices.json"
    return path if path.is_file() else None


@cache
def _settings_file(path: str | None, mtime: float | None) -> dict:
    data = json.loads(DEFAULTS.read_text(encoding="utf-8"))
    if path:
        data = _merge(data, json.loads(Path(path).read_text(encoding="utf-8")))
    return data


def all_settings() -> dict:
    """The shipped defaults merged with the county's override file (re-read when that file changes)."""
    path = _override_file()
    return _settings_file(str(path) if path else None, path.stat().st_mtime if path else None)


def county_settings(county_code: str) -> dict:
    """The settings of one county: `default` with the county's own keys over it."""
    data = all_settings()
    return _merge(data["default"], (data.get("counties") or {}).get(county_code) or {})


def seal_path(relative: str | None) -> Path | None:
    """The seal image a county's settings name, if it is a file inside the instance folder."""
    if not relative:
        return None
    root = config.instance_dir().resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


class _Blank(dict):
    def __missing__(self, key):  # a placeholder the case has no value for prints as nothing
        return ""


def fill(template: str, values: dict) -> str:
    """Fill `{name}` placeholders from `values`; unknown ones become empty, stray braces stay as they are."""
    try:
        return string.Formatter().vformat(template, (), _Blank(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


# --------------------------------------------------------------------------------------------------
# Document numbers


def next_number(session: Session, county_code: str, kind: NoticeKind, year: int) -> int:
    """Take the next number of a county's sequence for a kind and year, in the caller's transaction."""
    conn = session.connection()
    table = NoticeCounter.__table__
    key = {"county_code": county_code, "kind": kind.value, "year": year}
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(pg_insert(table).values(**key, last_number=0).on_conflict_do_nothing())
    elif dialect == "sqlite":
        conn.execute(sqlite_insert(table).values(**key, last_number=0).on_conflict_do_nothing())
    else:  # pragma: no cover - the two supported databases are above
        if (
            conn.execute(select(table.c.year).where(*(table.c[k] == v for k, v in key.items()))).first()
            is None
        ):
            conn.execute(insert(table).values(**key, last_number=0))
    # On PostgreSQL a second issuer blocks here on the row until the first commits, then counts on from it.
    return conn.execute(
        update(table)
        .where(and_(*(table.c[k] == v for k, v in key.items())))
        .values(last_number=table.c.last_number + 1)
        .returning(table.c.last_number)
    ).scalar_one()


def document_number(settings: dict, county_name: str, kind: NoticeKind, year: int, number: int) -> str:
    """The 文号 as printed, e.g. 温民养〔2026〕17号."""
    prefix = fill(settings["kinds"][kind.value]["prefix"], {"short": short_name(county_name)})
    return f"{prefix}〔{year}〕{number}号"


def short_name(county_name: str) -> str:
    """The one-character short name a county's document numbers start with (温县 -> 温)."""
    return (county_name or "县")[:1]


# --------------------------------------------------------------------------------------------------
# Issuing


def county_of(case) -> str:
    return (case.area_code or "")[:6]


def issue(
    session: Session,
    case,
    kind: NoticeKind | str,
    *,
    step: str | None,
    actor: User | None,
    payload: dict | None = None,
) -> Notice:
    """Issue a notice of a case now: number it, fix what it says, link the cases it concerns."""
    kind = NoticeKind(kind)
    row = session.get(Case, case.id)
    county_code = county_of(row)
    if len(county_code) != 6:
        raise NotFound("案件没有所属县，无法编号发文")
    county = session.get(Area, county_code)
    county_name = county.name if county is not None else county_code
    settings = county_settings(county_code)
    now = clock.now()
    year = now.astimezone(LOCAL).year
    builder = _BUILDERS.get(kind) or registry.current().notice_builder(kind.value)
    if builder is None:
        raise NotFound(f"没有流程能开具{NOTICE_KIND_LABELS[kind]}")
    facts = builder(session, row, payload or {}, step)
    number = next_number(session, county_code, kind, year)
    snapshot = _snapshot(session, row, kind, settings, county_name, facts, actor, now)
    snapshot["document_number"] = document_number(settings, county_name, kind, year, number)
    notice = Notice(
        kind=kind,
        county_code=county_code,
        year=year,
        number=number,
        document_number=snapshot["document_number"],
        case_id=row.id,
        area_code=facts.get("area_code") or row.area_code,
        task_spec=step,
        snapshot=json.dumps(snapshot, ensure_ascii=False, sort_keys=True, default=plain_amount),
        issued_at=now,
        issued_by=actor.id if actor is not None else None,
    )
    session.add(notice)
    session.flush()
    linked = [row.id, *[c for c in facts.get("case_ids", []) if c != row.id]]
    session.execute(insert(NoticeCase), [{"notice_id": notice.id, "case_id": c} for c in linked])
    return notice


def plain_amount(value):
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def date_text(moment: datetime) -> str:
    local = moment.astimezone(LOCAL)
    return f"{local.year}年{local.month}月{local.day}日"


def _snapshot(session, case, kind, settings, county_name, facts, actor, now) -> dict:
    wording = settings["kinds"][kind.value]
    issuer = fill(settings.get("issuer") or "{county_name}民政局", {"county_name": county_name})
    values = {**facts.get("values", {}), "county_name": county_name, "issuer": issuer}
    paragraphs = [fill(p, values) for p in wording.get("paragraphs", [])]
    extra = (wording.get("by_process") or {}).get(case.process_key, [])
    closing = [fill(p, values) for p in wording.get("closing", [])]
    if paragraphs and paragraphs[0].endswith("："):  # the addressee line stays first
        paragraphs = [paragraphs[0], *paragraphs[1:], *[fill(p, values) for p in extra]]
    else:
        paragraphs = [*paragraphs, *[fill(p, values) for p in extra]]
    return {
        "kind": kind.value,
        "kind_label": NOTICE_KIND_LABELS[kind],
        "title": fill(wording.get("title") or NOTICE_KIND_LABELS[kind], values),
        "issuer": issuer,
        "county_code": county_of(case),
        "county_name": county_name,
        "issued_on": date_text(now),
        "issued_by": actor.display_name if actor is not None else "系统",
        "case_id": case.id,
        "process_name": values.get("process_name", ""),
        "paragraphs": paragraphs,
        "closing": closing,
        "facts": [[label, value] for label, value in facts.get("facts", []) if value not in (None, "")],
        "table": facts.get("table"),
        "seal": settings.get("seal"),
    }


def case_values(session: Session, case: Case) -> dict[str, Any]:
    """The placeholders every notice of a case may use: its data's plain values and the applicant's."""
    data = cases.case_data(case)
    values = {
        k: plain_amount(v)
        for k, v in data.items()
        if isinstance(v, str | int | float | Decimal) and k != "comment"
    }
    for key in [k for k in values if k.endswith(("phone", "id_number"))]:
        values.pop(key)  # personal numbers only as the notice chooses to print them (masked)
    elder = session.get(Elder, case.elder_id) if case.elder_id else None
    values.update(
        elder_name=elder.name if elder else data.get("elder_name", ""),
        id_number=mask_id_number(elder.id_number) if elder else "",
        address=(elders.area_path(session, elder.residence_area_code) + elder.address) if elder else "",
        applied_on=_applied_on(data, case),
        process_name=_process_name(session, case),
    )
    return values


def _applied_on(data: dict, case: Case) -> str:
    text = str(data.get("applied_on") or "")
    try:
        day = datetime.fromisoformat(text[:10])
        return f"{day.year}年{day.month}月{day.day}日"
    except ValueError:
        return date_text(case.started_at)


def _process_name(session: Session, case: Case) -> str:
    return (
        session.scalar(select(ProcessVersion.name).where(ProcessVersion.id == case.process_version_id)) or ""
    )


def _step_event(session: Session, case: Case, step: str | None) -> CaseEvent | None:
    """The latest completion of the step that issues the notice (who decided, when, with what comment)."""
    if not step:
        return None
    return session.scalar(
        select(CaseEvent)
        .where(
            CaseEvent.case_id == case.id,
            CaseEvent.task_spec == step,
            CaseEvent.kind == EventKind.TASK_COMPLETED,
        )
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )


def _decision_facts(session: Session, case: Case, payload: dict, step: str | None) -> dict:
    values = case_values(session, case)
    event = _step_event(session, case, step)
    reason = payload.get("reason") or (event.comment if event is not None else None) or ""
    values["reason"] = reason
    facts = [
        ["申请人", values["elder_name"]],
        ["身份证号", values["id_number"]],
        ["住址", values["address"]],
        ["申请事项", values["process_name"]],
        ["申请日期", values["applied_on"]],
    ]
    if event is not None:
        facts.append(["审批日期", date_text(event.at)])
    return {"values": values, "facts": facts}


def option_labels(session: Session, case: Case, step: str, field: str) -> dict[str, str]:
    form = (cases.runtime_of(session, case).steps.get(step) or {}).get("form") or {}
    prop = (form.get("properties") or {}).get(field) or {}
    return {str(o.get("const")): o.get("title", "") for o in prop.get("oneOf") or [] if "const" in o}


# Notices every process may issue from a decision step; others are the processes' own (`Process.notices`).
_BUILDERS = {
    NoticeKind.APPROVAL: _decision_facts,
    NoticeKind.REFUSAL: _decision_facts,
}


def issue_from_diagram(session: Session, case, payload: dict, actor: User | None) -> Notice:
    """What a diagram's `issue_notice` message does ({"kind", "step", ...}): issue it in the step's transaction."""
    payload = dict(payload or {})
    return issue(
        session, case, payload.pop("kind"), step=payload.pop("step", None), actor=actor, payload=payload
    )


# --------------------------------------------------------------------------------------------------
# Reading, rendering once, printing


def notices_of_case(session: Session, actor: User, case_id: int) -> list[Notice]:
    """The notices that concern a case the actor may read (its own, and 公示名单 listing it), oldest first."""
    cases.get_case(session, actor, case_id)
    return list(
        session.scalars(
            select(Notice)
            .join(NoticeCase, NoticeCase.notice_id == Notice.id)
            .where(NoticeCase.case_id == case_id)
            .order_by(Notice.issued_at, Notice.id)
        )
    )


def get_notice(session: Session, actor: User, notice_id: int) -> Notice:
    """A notice, if the actor may read one of the cases it concerns."""
    notice = session.get(Notice, notice_id) if is_row_id(notice_id) else None
    if notice is None:
        raise NotFound("通知书不存在")
    linked = session.scalars(select(NoticeCase.case_id).where(NoticeCase.notice_id == notice.id)).all()
    for case_id in [notice.case_id, *[c for c in linked if c != notice.case_id]]:
        case = session.get(Case, case_id)
        if case is not None and cases.may_read(session, actor, case):
            return notice
    raise PermissionDenied("无权查看该通知书")


def snapshot_of(notice: Notice) -> dict:
    return json.loads(notice.snapshot)


def keep_rendering(session: Session, notice: Notice, pdf: bytes) -> Notice:
    """Store a notice's first rendering; if another request stored one first, theirs stands."""
    digest = hashlib.sha256(pdf).hexdigest()
    table = Notice.__table__
    stored = session.execute(
        update(table)
        .where(table.c.id == notice.id, table.c.pdf_sha256.is_(None))
        .values(pdf=pdf, pdf_sha256=digest, rendered_at=clock.now())
    ).rowcount
    session.refresh(notice, ["pdf", "pdf_sha256", "rendered_at"])
    if stored != 1 and notice.pdf is None:  # pragma: no cover - the row was there a moment ago
        raise NotFound("通知书不存在")
    return notice


def record_print(session: Session, actor: User, case: Case, document: str, **detail) -> None:
    """Note in a case's trail that someone printed or downloaded one of its documents."""
    audit.record(session, case, EventKind.EXPORTED, actor=actor, detail={"document": document, **detail})
    session.flush()
