"""The auditor's tools: every case event in scope, the hash chain checked per case and for an area (the
first broken link named), the office log (sign-ins, refusals, exports), and review samples (抽查).

Auditors (and admins) read everything in their area and change nothing but their own review notes.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, aliased

from . import access, audit, clock, elders, office_log
from .audit import _digest as event_digest  # the chain's one definition of an event's hash
from .clock import month_end
from .elders import in_area
from .errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from .listing import (
    MAX_PAGE,
    MAX_PER_PAGE,
    PER_PAGE,
    Args,
    check_order,
    day_after,
    day_start,
    narrowest,
    query_args,
)
from .models import Area, Case, CaseEvent, CaseStatus, Elder, EventKind, ProcessVersion, Role, User
from .models.base import is_row_id
from .models.supervision import LogKind, OfficeLog, ReviewItem, ReviewSample, SampleItemOutcome

READ_ROLES = frozenset({Role.AUDITOR, Role.ADMIN})
SAMPLE_ROLES = frozenset({Role.AUDITOR})
MAX_SAMPLE = 200
# Counting every event of a county on each page would cost more than the page: past this, "more than".
COUNT_CAP = 10_000
CLOSED = (CaseStatus.COMPLETED, CaseStatus.CANCELLED)

OUTCOME_LABELS = {
    SampleItemOutcome.PENDING: "待核查",
    SampleItemOutcome.CONFIRMED: "核查无误",
    SampleItemOutcome.PROBLEM: "发现问题",
}


def require_auditor(actor: User, roles=READ_ROLES, doing: str = "查看审计记录") -> None:
    if not actor.is_active:
        raise PermissionDenied("账号已停用")
    if actor.role not in roles:
        raise PermissionDenied(f"您的角色（{elders.ROLE_LABELS.get(actor.role, actor.role)}）不能{doing}")


def _case_scope(actor: User, area: str | None):
    scope = narrowest(actor, area)
    cond = in_area(Case.area_code, scope)
    if scope == actor.area_code and access.covers(actor, None):
        cond = or_(cond, Case.area_code.is_(None))
    return cond


# --------------------------------------------------------------------------------------------------
# Events


@dataclass
class EventFilter:
    case: int | None = None
    elder: int | None = None
    process: str | None = None
    kind: EventKind | None = None
    actor: str | None = None  # a username
    area: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, args) -> EventFilter:
        a = Args(args)
        flt = cls(
            case=a.row_id("case"),
            elder=a.row_id("elder"),
            process=a.text("process", 100),
            kind=a.choice("kind", EventKind),
            actor=a.text("actor", 64),
            area=a.area("area"),
            date_from=a.day("date_from"),
            date_to=a.day("date_to"),
            page=a.number("page", 1, 1, MAX_PAGE),
            per_page=a.number("per_page", PER_PAGE, 1, MAX_PER_PAGE),
        )
        check_order(a, "date_from", "date_to", flt.date_from, flt.date_to)
        a.check()
        return flt

    def as_args(self, **changes) -> dict[str, str]:
        values = {
            "case": self.case,
            "elder": self.elder,
            "process": self.process,
            "kind": self.kind,
            "actor": self.actor,
            "area": self.area,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "page": self.page if self.page != 1 else None,
            "per_page": self.per_page if self.per_page != PER_PAGE else None,
        }
        values.update(changes)
        return query_args(values)


@dataclass
class EventLine:
    id: int
    case_id: int
    seq: int
    at: datetime
    kind: EventKind
    kind_label: str
    actor_name: str | None
    actor_username: str | None
    task_name: str | None
    comment: str | None
    process_key: str
    process_name: str
    area_code: str | None
    area_name: str | None
    elder_id: int | None
    elder_name: str | None
    elder_id_number: str | None
    detail: str


@dataclass
class EventPage:
    filter: EventFilter
    rows: list[EventLine]
    total: int
    capped: bool  # the total is at least COUNT_CAP

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


def _event_conditions(session: Session, actor: User, flt: EventFilter) -> list:
    conds = [_case_scope(actor, flt.area)]
    if flt.case is not None:
        conds.append(CaseEvent.case_id == flt.case)
    if flt.elder is not None:
        conds.append(Case.elder_id == flt.elder)
    if flt.process:
        conds.append(Case.process_key == flt.process)
    if flt.kind is not None:
        conds.append(CaseEvent.kind == flt.kind)
    if flt.actor:
        conds.append(CaseEvent.actor_id.in_(select(User.id).where(User.username == flt.actor)))
    if flt.date_from:
        conds.append(CaseEvent.at >= day_start(flt.date_from))
    if flt.date_to:
        conds.append(CaseEvent.at < day_after(flt.date_to))
    return conds


def list_events(session: Session, actor: User, flt: EventFilter, *, limit: int | None = None) -> EventPage:
    """One page of case events in the actor's scope, newest first (or up to `limit` for an export)."""
    require_auditor(actor)
    conds = _event_conditions(session, actor, flt)
    base = select(CaseEvent.id).join(Case, Case.id == CaseEvent.case_id).where(*conds)
    counted = session.scalar(select(func.count()).select_from(base.limit(COUNT_CAP).subquery())) or 0
    size = limit or flt.per_page
    offset = 0 if limit else (flt.page - 1) * flt.per_page
    who = aliased(User)
    version = aliased(ProcessVersion)
    area = aliased(Area)
    rows = session.execute(
        select(
            CaseEvent,
            Case.process_key,
            version.name,
            Case.area_code,
            area.name,
            Case.elder_id,
            Elder.name,
            Elder.id_number,
            who.display_name,
            who.username,
        )
        .join(Case, Case.id == CaseEvent.case_id)
        .join(version, version.id == Case.process_version_id)
        .outerjoin(area, area.code == Case.area_code)
        .outerjoin(Elder, Elder.id == Case.elder_id)
        .outerjoin(who, who.id == CaseEvent.actor_id)
        .where(*conds)
        .order_by(CaseEvent.id.desc())
        .limit(size)
        .offset(offset)
    ).all()
    lines = [
        EventLine(
            e.id,
            e.case_id,
            e.seq,
            e.at,
            e.kind,
            audit.EVENT_LABELS.get(e.kind, e.kind.value),
            actor_name,
            username,
            e.task_name,
            e.comment,
            key,
            pname,
            acode,
            aname,
            eid,
            ename,
            enumber,
            _detail_summary(e.detail),
        )
        for e, key, pname, acode, aname, eid, ename, enumber, actor_name, username in rows
    ]
    return EventPage(flt, lines, counted, counted >= COUNT_CAP)


def _detail_summary(text: str) -> str:
    """The event's detail in a line (message names, versions); payload values are not shown in lists."""
    try:
        detail = json.loads(text or "{}")
    except ValueError:
        return ""
    parts = []
    for key in ("message", "version", "due", "element", "from_version", "to_version"):
        if key in detail:
            parts.append(f"{key}={detail[key]}")
    return "，".join(parts)


# --------------------------------------------------------------------------------------------------
# The hash chain


@dataclass
class ChainCheck:
    case_id: int
    events: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_break(self) -> str | None:
        return self.problems[0] if self.problems else None


class _ChainWalker:
    """Checks one case's events in order, as `audit.verify_chain` does, and names every break."""

    def __init__(self, case_id: int):
        self.case_id = case_id
        self.prev = ""
        self.expected = 1
        self.count = 0
        self.problems: list[str] = []

    def step(self, e) -> None:
        self.count += 1
        if e.seq != self.expected:
            self.problems.append(f"第{self.expected}条记录缺失（其后为第{e.seq}条）")
            self.expected = e.seq
        if e.prev_hash != self.prev:
            self.problems.append(f"第{e.seq}条记录的前序哈希与第{e.seq - 1}条不符")
        kind = e.kind.value if hasattr(e.kind, "value") else e.kind
        digest = event_digest(
            e.prev_hash, e.case_id, e.seq, e.at, e.actor_id, kind, e.task_spec, e.comment, e.detail
        )
        if digest != e.hash:
            self.problems.append(
                f"第{e.seq}条记录（{audit.EVENT_LABELS.get(EventKind(kind), kind)}）内容被改动"
            )
        self.prev = e.hash
        self.expected += 1

    def finish(self, head_hash: str, head_count: int) -> ChainCheck:
        if head_hash != self.prev:
            self.problems.append(
                f"最后一条记录（第{self.expected - 1}条）与案件登记的链头（共{head_count}条）不符，记录可能被删除"
            )
        return ChainCheck(self.case_id, self.count, self.problems)


def verify_case(session: Session, actor: User, case_id: int) -> ChainCheck:
    """Recompute one case's chain; name the first broken link."""
    require_auditor(actor)
    case = session.get(Case, case_id) if is_row_id(case_id) else None
    if case is None:
        raise NotFound("案件不存在")
    if not access.covers(actor, case.area_code):
        raise PermissionDenied("无权查看其他辖区的案件")
    walker = _ChainWalker(case.id)
    for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)):
        walker.step(e)
    return walker.finish(case.last_event_hash, case.event_count)


@dataclass
class AreaCheck:
    area: str
    area_name: str
    cases: int
    events: int
    broken: list[ChainCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def intact(self) -> bool:
        return not self.broken


def verify_area(session: Session, actor: User, area: str | None = None, *, channel: str = "web") -> AreaCheck:
    """Recompute the chain of every case in an area (streamed in case order); list each broken case with its
    first broken link. The check itself is written to the office log."""
    require_auditor(actor)
    scope = narrowest(actor, area)
    started = time.perf_counter()
    heads = dict(
        session.execute(
            select(Case.id, Case.last_event_hash).where(_case_scope(actor, scope)).order_by(Case.id)
        ).all()
    )
    counts = dict(session.execute(select(Case.id, Case.event_count).where(_case_scope(actor, scope))).all())
    result = AreaCheck(scope, elders.area_path(session, scope), len(heads), 0)
    t = CaseEvent.__table__
    stream = session.execute(
        select(
            t.c.case_id,
            t.c.seq,
            t.c.at,
            t.c.actor_id,
            t.c.kind,
            t.c.task_spec,
            t.c.comment,
            t.c.detail,
            t.c.prev_hash,
            t.c.hash,
        )
        .join(Case.__table__, Case.__table__.c.id == t.c.case_id)
        .where(_case_scope(actor, scope))
        .order_by(t.c.case_id, t.c.seq)
        .execution_options(yield_per=5000)
    )
    walker: _ChainWalker | None = None
    seen: set[int] = set()

    def close(w: _ChainWalker) -> None:
        check = w.finish(heads.get(w.case_id, ""), counts.get(w.case_id, 0))
        if not check.intact:
            result.broken.append(check)

    for e in stream:
        result.events += 1
        if walker is None or walker.case_id != e.case_id:
            if walker is not None:
                close(walker)
            walker = _ChainWalker(e.case_id)
            seen.add(e.case_id)
        walker.step(e)
    if walker is not None:
        close(walker)
    for case_id, head in heads.items():  # a case whose every event is gone
        if case_id not in seen and (head or counts.get(case_id)):
            result.broken.append(_ChainWalker(case_id).finish(head, counts.get(case_id, 0)))
    result.broken.sort(key=lambda c: c.case_id)
    result.seconds = round(time.perf_counter() - started, 2)
    office_log.record(
        session,
        LogKind.VERIFIED,
        user=actor,
        channel=channel,
        target=f"审计链校验 {scope}",
        detail={"cases": result.cases, "events": result.events, "broken": [c.case_id for c in result.broken]},
    )
    return result


# --------------------------------------------------------------------------------------------------
# The office log


@dataclass
class LogFilter:
    kind: LogKind | None = None
    username: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, args) -> LogFilter:
        a = Args(args)
        flt = cls(
            kind=a.choice("kind", LogKind),
            username=a.text("username", 64),
            date_from=a.day("date_from"),
            date_to=a.day("date_to"),
            page=a.number("page", 1, 1, MAX_PAGE),
            per_page=a.number("per_page", PER_PAGE, 1, MAX_PER_PAGE),
        )
        check_order(a, "date_from", "date_to", flt.date_from, flt.date_to)
        a.check()
        return flt

    def as_args(self, **changes) -> dict[str, str]:
        values = {
            "kind": self.kind,
            "username": self.username,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "page": self.page if self.page != 1 else None,
        }
        values.update(changes)
        return query_args(values)


@dataclass
class LogPage:
    filter: LogFilter
    rows: list[OfficeLog]
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filter.per_page))


def list_office_log(session: Session, actor: User, flt: LogFilter, *, limit: int | None = None) -> LogPage:
    """Sign-ins, refusals, exports, samples and checks of people in the actor's area, newest first.

    Attempts under a name that matches nobody have no area: only county-wide auditors see them.
    """
    require_auditor(actor)
    conds = [in_area(OfficeLog.area_code, actor.area_code)]
    if access.covers(actor, None):
        conds = [or_(conds[0], OfficeLog.area_code.is_(None))]
    if flt.kind is not None:
        conds.append(OfficeLog.kind == flt.kind)
    if flt.username:
        conds.append(OfficeLog.username == flt.username)
    if flt.date_from:
        conds.append(OfficeLog.at >= day_start(flt.date_from))
    if flt.date_to:
        conds.append(OfficeLog.at < day_after(flt.date_to))
    total = session.scalar(select(func.count()).select_from(OfficeLog).where(*conds)) or 0
    size = limit or flt.per_page
    offset = 0 if limit else (flt.page - 1) * flt.per_page
    rows = list(
        session.scalars(
            select(OfficeLog)
            .where(*conds)
            .order_by(OfficeLog.at.desc(), OfficeLog.id.desc())
            .limit(size)
            .offset(offset)
        )
    )
    return LogPage(flt, rows, total)


# --------------------------------------------------------------------------------------------------
# Review samples (抽查)


@dataclass
class SampleView:
    sample: ReviewSample
    process_name: str
    created_by: str
    items: list[SampleLine]

    @property
    def reviewed(self) -> int:
        return sum(1 for i in self.items if i.outcome != SampleItemOutcome.PENDING)

    @property
    def problems(self) -> int:
        return sum(1 for i in self.items if i.outcome == SampleItemOutcome.PROBLEM)


@dataclass
class SampleLine:
    item_id: int
    position: int
    case_id: int
    title: str
    status: CaseStatus
    ended_at: datetime | None
    area_name: str | None
    elder_name: str | None
    elder_id_number: str | None
    outcome: SampleItemOutcome
    note: str
    reviewed_at: datetime | None
    reviewed_by: str | None


def closed_cases(session: Session, actor: User, process_key: str, month: date, area: str | None) -> list[int]:
    """The ids of the process's cases in scope that ended (completed or ended by decision) in the month."""
    first = month.replace(day=1)
    return list(
        session.scalars(
            select(Case.id)
            .where(
                _case_scope(actor, area),
                Case.process_key == process_key,
                Case.status.in_(list(CLOSED)),
                Case.ended_at >= day_start(first),
                Case.ended_at < day_after(month_end(first)),
            )
            .order_by(Case.id)
        )
    )


def draw_sample(
    session: Session,
    actor: User,
    process_key: str,
    month: date,
    size: int,
    *,
    area: str | None = None,
    note: str = "",
    seed: str | None = None,
) -> ReviewSample:
    """Pick `size` random closed cases of a process and month into a review list (all of them if fewer).

    The draw is reproducible from its stored seed, so anyone can check that the sample was not hand-picked.
    """
    require_auditor(actor, SAMPLE_ROLES, "抽取抽查样本")
    errors = {}
    if (
        not process_key
        or session.scalar(
            select(func.count()).select_from(ProcessVersion).where(ProcessVersion.process_key == process_key)
        )
        == 0
    ):
        errors["process"] = "请选择已部署的业务流程"
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SAMPLE:
        errors["size"] = f"抽取数量应为 1 到 {MAX_SAMPLE} 之间的整数"
    if month > clock.today().replace(day=1):
        errors["month"] = "不能抽取尚未到来的月份"
    if errors:
        raise ValidationFailed("抽查条件有误", field_errors=errors)
    scope = narrowest(actor, area)
    population = closed_cases(session, actor, process_key, month, scope)
    if not population:
        raise ValidationFailed(
            "该月没有已办结的此类案件，无可抽取", field_errors={"month": "该月没有已办结的此类案件"}
        )
    seed = seed or secrets.token_hex(16)
    chosen = random.Random(seed).sample(population, min(size, len(population)))
    sample = ReviewSample(
        area_code=scope,
        process_key=process_key,
        month=month.replace(day=1),
        requested=size,
        population=len(population),
        seed=seed,
        note=(note or "").strip()[:500],
        created_at=clock.now(),
        created_by=actor.id,
    )
    session.add(sample)
    session.flush()
    for position, case_id in enumerate(chosen, start=1):
        session.add(
            ReviewItem(
                sample_id=sample.id,
                case_id=case_id,
                position=position,
                outcome=SampleItemOutcome.PENDING,
                note="",
            )
        )
    session.flush()
    office_log.record(
        session,
        LogKind.SAMPLED,
        user=actor,
        target=f"抽查样本 #{sample.id}",
        detail={
            "process": process_key,
            "month": month.strftime("%Y-%m"),
            "size": len(chosen),
            "of": len(population),
        },
    )
    return sample


def list_samples(session: Session, actor: User) -> list[SampleView]:
    require_auditor(actor)
    found = session.scalars(
        select(ReviewSample)
        .where(in_area(ReviewSample.area_code, actor.area_code))
        .order_by(ReviewSample.id.desc())
    ).all()
    return [_sample_view(session, s) for s in found]


def get_sample(session: Session, actor: User, sample_id: int) -> SampleView:
    require_auditor(actor)
    sample = session.get(ReviewSample, sample_id) if is_row_id(sample_id) else None
    if sample is None:
        raise NotFound("抽查样本不存在")
    if not access.covers(actor, sample.area_code):
        raise PermissionDenied("无权查看其他辖区的抽查样本")
    return _sample_view(session, sample)


def _sample_view(session: Session, sample: ReviewSample) -> SampleView:
    reviewer = aliased(User)
    area = aliased(Area)
    rows = session.execute(
        select(
            ReviewItem,
            Case.title,
            Case.status,
            Case.ended_at,
            area.name,
            Elder.name,
            Elder.id_number,
            reviewer.display_name,
        )
        .join(Case, Case.id == ReviewItem.case_id)
        .outerjoin(area, area.code == Case.area_code)
        .outerjoin(Elder, Elder.id == Case.elder_id)
        .outerjoin(reviewer, reviewer.id == ReviewItem.reviewed_by)
        .where(ReviewItem.sample_id == sample.id)
        .order_by(ReviewItem.position)
    ).all()
    name = session.scalar(
        select(ProcessVersion.name)
        .where(ProcessVersion.process_key == sample.process_key)
        .order_by(ProcessVersion.version.desc())
        .limit(1)
    )
    creator = session.get(User, sample.created_by)
    return SampleView(
        sample,
        name or sample.process_key,
        creator.display_name if creator else "",
        [
            SampleLine(
                i.id,
                i.position,
                i.case_id,
                title,
                status,
                ended,
                aname,
                ename,
                enumber,
                i.outcome,
                i.note,
                i.reviewed_at,
                rname,
            )
            for i, title, status, ended, aname, ename, enumber, rname in rows
        ],
    )


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    PROBLEM = "problem"


def review_item(
    session: Session, actor: User, item_id: int, outcome: str, note: str, *, expected: str | None = None
) -> ReviewItem:
    """Record what the check of one sampled case found. `expected` is the outcome the reviewer saw: if
    someone recorded another meanwhile, refuse rather than overwrite it."""
    require_auditor(actor, SAMPLE_ROLES, "登记抽查结果")
    item = session.get(ReviewItem, item_id) if is_row_id(item_id) else None
    if item is None:
        raise NotFound("抽查条目不存在")
    get_sample(session, actor, item.sample_id)  # scope check
    try:
        chosen = SampleItemOutcome(Outcome(outcome).value)
    except ValueError:
        raise ValidationFailed(
            "请选择核查结果", field_errors={"outcome": "请选择核查无误或发现问题"}
        ) from None
    note = (note or "").strip()
    if chosen == SampleItemOutcome.PROBLEM and not note:
        raise ValidationFailed("发现问题时请写明问题", field_errors={"note": "请写明发现的问题"})
    if len(note) > 2000:
        raise ValidationFailed("说明过长", field_errors={"note": "最多2000字"})
    conds = [ReviewItem.id == item.id]
    if expected is not None:
        if expected not in {o.value for o in SampleItemOutcome}:
            raise ValidationFailed("页面已过期，请刷新后重试", field_errors={"expected": "不是允许的选项"})
        conds.append(ReviewItem.outcome == SampleItemOutcome(expected))
    done = session.execute(
        update(ReviewItem)
        .where(*conds)
        .values(outcome=chosen, note=note, reviewed_at=clock.now(), reviewed_by=actor.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.expire(item)
    if not done:
        who = session.get(User, item.reviewed_by) if item.reviewed_by else None
        raise Conflict(f"该条目刚由{who.display_name if who else '他人'}登记了核查结果，请刷新后查看")
    return item
