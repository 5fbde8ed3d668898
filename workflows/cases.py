"""Cases: start them, move them (tasks, timers, messages) and keep their projections true.

Every change to a case goes through `_advance`: it takes the live instance (from the in-memory cache when
the row's lock token still matches, else restored from the stored state), lets the caller move it, then
writes the state, the inbox rows, the waits and the audit events in the caller's transaction. The
instance goes back to the cache only after that transaction commits, so a rollback never leaves a
half-moved instance behind, and two threads never share one.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from . import access, audit, clock, deadlines, engine, processes
from .errors import Conflict, DomainError, NotFound, PermissionDenied
from .models import Case, CaseStatus, CaseWait, EventKind, HumanTask, ProcessVersion, TaskStatus, User

log = logging.getLogger(__name__)


class ProcessFailure(DomainError):
    """A script, expression or decision in the diagram failed; the case was left as it was."""

    status = 500

    def __init__(self, element: str | None, detail: str):
        where = f"（环节 {element}）" if element else ""
        super().__init__(f"流程执行出错{where}：{detail}。案件保持原状，请联系流程管理员。")
        self.element = element
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# Live instances, cached per process between transactions


_LIVE_MAX = 5000
_live: OrderedDict[int, tuple[str, engine.Instance]] = OrderedDict()
_TAKEN = "eldercare.taken_instances"


def _take(session: Session, case: Case, version: ProcessVersion) -> engine.Instance:
    entry = _live.pop(case.id, None)
    if entry is not None and entry[0] == case.lock_version:
        instance = entry[1]
    else:
        instance = engine.Instance.restore(processes.spec_of(version), case.state)
    session.info.setdefault(_TAKEN, {})[case.id] = (case, instance)
    return instance


@event.listens_for(Session, "after_commit")
def _return_instances(session: Session) -> None:
    for case_id, (case, instance) in session.info.pop(_TAKEN, {}).items():
        _live[case_id] = (case.lock_version, instance)
        _live.move_to_end(case_id)
    while len(_live) > _LIVE_MAX:
        _live.popitem(last=False)


@event.listens_for(Session, "after_rollback")
def _drop_instances(session: Session) -> None:
    session.info.pop(_TAKEN, None)


def forget_live_instances() -> None:
    """Empty the in-memory cache (benchmarks use it to measure the cold path)."""
    _live.clear()


# --------------------------------------------------------------------------------------------------
# Starting and reading


def start_case(
    session: Session,
    actor: User | None,
    process_key: str,
    *,
    area_code: str | None = None,
    elder_id: int | None = None,
    data: dict | None = None,
    version: int | None = None,
    title: str = "",
    parent_case_id: int | None = None,
) -> Case:
    """Start a case on the latest (or a given) version and run it to its first wait state."""
    if actor is not None:
        access.require_area(actor, area_code if area_code is not None else actor.area_code)
    pv = processes.get_version(session, process_key, version) if version else processes.latest(session, process_key)
    now = clock.now()
    seed = dict(data or {})
    seed.setdefault("case_area_code", area_code)
    if elder_id is not None:
        seed.setdefault("elder_id", elder_id)
    try:
        instance = engine.Instance.start(processes.spec_of(pv), seed)
    except engine.ScriptError as exc:
        raise ProcessFailure(exc.element, exc.message) from exc
    case = Case(
        process_version_id=pv.id,
        process_key=pv.process_key,
        title=title or pv.name,
        status=CaseStatus.RUNNING,
        area_code=area_code,
        elder_id=elder_id,
        parent_case_id=parent_case_id,
        state="{}",
        started_by=actor.id if actor is not None else None,
        started_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()  # the id is needed by the projections
    session.info.setdefault(_TAKEN, {})[case.id] = (case, instance)
    audit.record(session, case, EventKind.STARTED, actor=actor, detail={"version": pv.version})
    _write(session, case, pv, instance, before=[], actor=actor)
    return case


def get_case(session: Session, actor: User | None, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("案件不存在")
    if actor is not None and not access.can_read_case(actor, case.area_code):
        raise PermissionDenied("无权查看其他辖区的案件")
    return case


def case_data(case: Case) -> dict:
    return json.loads(case.data or "{}")


def completed_steps(session: Session, case: Case) -> list[str]:
    """Element ids already passed, for marking the diagram (restores the instance when needed)."""
    pv = session.get(ProcessVersion, case.process_version_id)
    entry = _live.get(case.id)
    if entry is not None and entry[0] == case.lock_version:
        return entry[1].completed_step_ids()
    return engine.Instance.restore(processes.spec_of(pv), case.state).completed_step_ids()


# --------------------------------------------------------------------------------------------------
# Moving a case


@dataclass
class Outcome:
    """What one move did to a case, for the caller to report."""

    case: Case
    new_tasks: list[HumanTask]
    completed: bool


def advance(
    session: Session,
    case: Case,
    move: Callable[[engine.Instance], object],
    *,
    actor: User | None,
    events: Iterable[dict] = (),
    completed_task: HumanTask | None = None,
) -> Outcome:
    """Apply `move` to the case's live instance and write everything that follows from it."""
    if case.status != CaseStatus.RUNNING:
        raise Conflict("案件已结束，不能再办理")
    pv = session.get(ProcessVersion, case.process_version_id)
    instance = _take(session, case, pv)
    before = instance.human_steps()
    try:
        move(instance)
    except engine.ScriptError as exc:
        session.info.get(_TAKEN, {}).pop(case.id, None)  # the instance is half-moved: never reuse it
        raise ProcessFailure(exc.element, exc.message) from exc
    except engine.EngineError as exc:
        session.info.get(_TAKEN, {}).pop(case.id, None)
        raise Conflict(str(exc)) from exc
    for item in events:
        audit.record(session, case, actor=actor, **item)
    new_tasks = _write(session, case, pv, instance, before=before, actor=actor, completed_task=completed_task)
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("案件刚被其他人更新，请刷新后重试") from exc
    return Outcome(case, new_tasks, case.status == CaseStatus.COMPLETED)


def _write(
    session: Session,
    case: Case,
    pv: ProcessVersion,
    instance: engine.Instance,
    *,
    before: list[engine.HumanStep],
    actor: User | None,
    completed_task: HumanTask | None = None,
) -> list[HumanTask]:
    """Write the instance's state and refresh the inbox rows, waits, timer and status of the case."""
    now = clock.now()
    after = instance.human_steps()
    before_ids = {s.id for s in before}
    after_ids = {s.id for s in after}
    steps = processes.steps_of(pv)

    gone = before_ids - after_ids - ({completed_task.id} if completed_task is not None else set())
    if gone:
        session.execute(
            update(HumanTask)
            .where(HumanTask.id.in_(gone), HumanTask.status == TaskStatus.READY)
            .values(status=TaskStatus.CANCELLED, completed_at=now)
            .execution_options(synchronize_session=False)
        )
    new_tasks = []
    for step in after:
        if step.id in before_ids:
            continue
        info = steps.get(step.spec_id, {})
        props = info.get("properties") or {}
        task = HumanTask(
            id=step.id,
            case_id=case.id,
            process_key=case.process_key,
            task_spec=step.spec_id,
            name=step.name,
            role=access.role_for_lane(step.lane),
            area_code=case.area_code,
            elder_id=case.elder_id,
            status=TaskStatus.READY,
            due_at=deadlines.due_at(now, props.get("dueWorkdays"), props.get("dueDays")),
            created_at=now,
        )
        session.add(task)
        new_tasks.append(task)

    case.state = instance.dump()
    case.data = json.dumps(instance.data, ensure_ascii=False, default=str)
    case.next_timer_at = instance.next_timer_at()
    case.current_step = "、".join(s.name for s in after)[:200]
    case.updated_at = now
    waits = sorted({p.name for p in instance.pending() if p.kind in ("message", "signal")})
    waiting_for = "\n".join(waits)
    if waiting_for != case.waiting_for:
        session.execute(delete(CaseWait).where(CaseWait.case_id == case.id))
        session.add_all(CaseWait(case_id=case.id, event_name=name) for name in waits)
        case.waiting_for = waiting_for
    if instance.completed:
        case.status = CaseStatus.COMPLETED
        case.ended_at = now
        case.next_timer_at = None
        audit.record(session, case, EventKind.COMPLETED, actor=actor)
    return new_tasks


def cancel_case(session: Session, actor: User, case_id: int, reason: str) -> Case:
    """End a running case by decision (withdrawal, duplicate); its open tasks are withdrawn."""
    case = get_case(session, actor, case_id)
    if not access.is_supervisor(actor):
        raise PermissionDenied("只有审批人或管理员可以终止案件")
    if case.status != CaseStatus.RUNNING:
        raise Conflict("案件已结束")
    now = clock.now()
    session.execute(
        update(HumanTask)
        .where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
        .values(status=TaskStatus.CANCELLED, completed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(CaseWait).where(CaseWait.case_id == case.id))
    case.status = CaseStatus.CANCELLED
    case.ended_at = now
    case.next_timer_at = None
    case.waiting_for = ""
    audit.record(session, case, EventKind.CANCELLED, actor=actor, comment=reason)
    session.flush()
    return case


# --------------------------------------------------------------------------------------------------
# Messages and timers


def deliver_message(
    session: Session,
    name: str,
    payload: dict | None = None,
    *,
    actor: User | None = None,
    elder_id: int | None = None,
    case_id: int | None = None,
    signal: bool = False,
) -> list[int]:
    """Deliver a named message (or signal) to the running cases waiting for it; return their ids.

    `elder_id` or `case_id` narrow delivery (an elder's death reaches only that elder's cases).
    """
    query = (
        select(Case)
        .join(CaseWait, CaseWait.case_id == Case.id)
        .where(CaseWait.event_name == name, Case.status == CaseStatus.RUNNING)
        .order_by(Case.id)
    )
    if elder_id is not None:
        query = query.where(Case.elder_id == elder_id)
    if case_id is not None:
        query = query.where(Case.id == case_id)
    if actor is not None and not access.reads_all(actor):
        query = query.where(Case.area_code.startswith(actor.area_code))
    delivered = []
    for case in session.scalars(query).all():
        detail = {"message": name, "payload": payload or {}}
        outcome = advance(
            session,
            case,
            lambda inst: inst.deliver(name, payload, signal=signal),
            actor=actor,
            events=[{"kind": EventKind.MESSAGE_RECEIVED, "detail": detail}],
        )
        delivered.append(outcome.case.id)
    return delivered


def due_cases(session: Session, *, limit: int = 100, now: datetime | None = None) -> list[Case]:
    """Running cases whose next timer is due, locked for this worker where the database can."""
    now = now or clock.now()
    query = (
        select(Case)
        .where(Case.status == CaseStatus.RUNNING, Case.next_timer_at.is_not(None), Case.next_timer_at < now)
        .order_by(Case.next_timer_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def fire_timers(session: Session, case: Case) -> bool:
    """Fire a case's due timers; a failing diagram marks the case as in error instead of retrying forever."""
    try:
        with session.begin_nested():
            advance(
                session,
                case,
                lambda inst: inst.fire_due_timers(),
                actor=None,
                events=[{"kind": EventKind.TIMER_FIRED, "detail": {"due": case.next_timer_at.isoformat()}}],
            )
        return True
    except ProcessFailure as exc:
        session.info.get(_TAKEN, {}).pop(case.id, None)
        case.status = CaseStatus.ERROR
        case.error = exc.message
        audit.record(session, case, EventKind.FAILED, comment=exc.message, detail={"element": exc.element})
        session.flush()
        log.warning("case %s failed on a timer: %s", case.id, exc.message)
        return False


def run_due_timers(session: Session, *, limit: int = 100) -> int:
    """Fire every due timer (one batch); return how many cases were moved."""
    return sum(1 for case in due_cases(session, limit=limit) if fire_timers(session, case))
