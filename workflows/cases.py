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
from dataclasses import dataclass, fields
from datetime import datetime

import orjson
from sqlalchemy import and_, bindparam, delete, event, exists, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached, undefer
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from . import access, audit, clock, deadlines, engine, registry, submissions, versions
from .db import hold_lock
from .driver_sql import DriverStatement
from .errors import Conflict, DomainError, NotFound, PermissionDenied
from .models import Case, CaseEvent, CaseStatus, CaseWait, EventKind, HumanTask, TaskStatus, User
from .models.base import is_row_id
from .models.process import new_lock_token

log = logging.getLogger(__name__)


class ProcessFailure(DomainError):
    """A script, expression or decision in the diagram failed; the case was left as it was."""

    status = 500

    def __init__(self, element: str | None, detail: str, *, case_id: int | None = None):
        where = f"（环节 {element}）" if element else ""
        if case_id is None:
            super().__init__(f"流程执行出错{where}：{detail}。案件保持原状，请联系流程管理员。")
        else:
            super().__init__(
                f"流程执行出错{where}：{detail}。本步骤未保存，案件已标记为出错，请联系流程管理员。"
            )
            # Past the runtime limits the diagram is at fault and would do the same again: once the step's
            # writes are rolled back, the case goes to error, with the reason in its timeline.
            self.aftermath = lambda session: mark_failed(session, case_id, self.message, element)
        self.element = element
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# Live instances, cached per process between transactions


_LIVE_MAX = 5000
_live: OrderedDict[int, tuple[str, engine.Instance]] = OrderedDict()
_TAKEN = "eldercare.taken_instances"


def runtime_of(session: Session, case: Case) -> versions.Runtime:
    return versions.runtime(session, case.process_key, case.version_hash, case.process_version_id)


@dataclass
class CaseRef:
    """The columns of a case that a move reads and writes, loaded without the ORM on the hot path.

    `advance` accepts either this or an ORM `Case`; both are kept in step with what it writes.
    """

    id: int
    process_key: str
    version_hash: str
    process_version_id: int
    status: CaseStatus
    area_code: str | None
    elder_id: int | None
    lock_version: str
    event_count: int
    last_event_hash: str
    waiting_for: str
    ended_at: datetime | None
    next_timer_at: datetime | None
    organisation_id: int | None


CASE_REF_COLUMNS = [getattr(Case.__table__.c, f.name) for f in fields(CaseRef)]


def case_ref(row) -> CaseRef:
    return CaseRef(*row)


_STATE_OF = select(Case.__table__.c.state).where(Case.__table__.c.id == bindparam("case_id"))


def _take(session: Session, case: Case | CaseRef, rt: versions.Runtime) -> engine.Instance:
    entry = _live.pop(case.id, None)
    if entry is not None and entry[0] == case.lock_version:
        instance = entry[1]
    else:
        # Read with the row's lock token by a query that undeferred it (the timer job's batch), else now.
        state = vars(case).get("state")
        if state is None:
            state = session.connection().execute(_STATE_OF, {"case_id": case.id}).scalar_one()
        instance = rt.restore(state)
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
    if elder_id is not None:
        _refuse_second_start(session, process_key, elder_id)
    pv = (
        versions.get_version(session, process_key, version)
        if version
        else versions.latest(session, process_key)
    )
    rt = versions.runtime_of(session, pv)
    now = clock.now()
    seed = dict(data or {})
    seed.setdefault("case_area_code", area_code)
    if elder_id is not None:
        seed.setdefault("elder_id", elder_id)
    try:
        instance = rt.start(seed)
    except engine.ScriptError as exc:
        raise ProcessFailure(exc.element, exc.message) from exc
    row = _NEW_CASE_DEFAULTS | {
        "process_version_id": pv.id,
        "process_key": pv.process_key,
        "version_hash": pv.content_hash,
        "title": title or pv.name,
        "status": CaseStatus.RUNNING,
        "area_code": area_code,
        "elder_id": elder_id,
        "parent_case_id": parent_case_id,
        "state": "{}",
        "lock_version": new_lock_token(),
        "started_by": actor.id if actor is not None else None,
        "started_at": now,
        "updated_at": now,
    }
    # Inserted on the driver (the ORM's unit of work costs several times the insert itself; the job that
    # opens thousands of cases runs this for each), then handed to the session as the row it now is.
    session.flush()  # what the caller added first (the rows the new case's handlers read) goes in before
    case = Case(id=_INSERT_CASE.first(session.connection(), row)[0], **row)
    make_transient_to_detached(case)
    session.add(case)
    session.info.setdefault(_TAKEN, {})[case.id] = (case, instance)
    started = {"kind": EventKind.STARTED, "detail": {"version": pv.version}}
    _write(session, case, rt, instance, before=[], actor=actor, events=[started], new_case=True)
    session.flush()
    return case


def _refuse_second_start(session: Session, process_key: str, elder_id: int) -> None:
    """Refuse a start that the process's own rule forbids (one already under way for the elder).

    The rule is a read; the lock taken before it makes every other start of this process for this elder
    wait until this transaction ends, so the read of the second start sees the first one's case.
    """
    already_running = registry.current().already_running(process_key)
    if already_running is None:
        return
    hold_lock(session, f"start:{process_key}:{elder_id}")
    reason = already_running(session, elder_id)
    if reason:
        raise Conflict(reason)


def get_case(session: Session, actor: User | None, case_id: int) -> Case:
    case = session.get(Case, case_id) if is_row_id(case_id) else None
    if case is None:
        raise NotFound("案件不存在")
    if actor is not None:
        require_read(session, actor, case)
    return case


def require_read(session: Session, actor: User, case: Case) -> None:
    if not access.can_read_case(actor, case.area_code):
        raise PermissionDenied("无权查看其他辖区的案件")
    if not may_read(session, actor, case):
        raise PermissionDenied("只能查看本机构经办的案件")


def may_read(session: Session, actor: User, case: Case) -> bool:
    """Whether the actor may read the case: by area, and for outside staff only their organisation's cases
    (those it was given); staff not linked to an organisation, and cases given to none, only where a task
    of it is (or was) theirs: assigned to them, done by them, or open to their role."""
    if not access.can_read_case(actor, case.area_code):
        return False
    if not access.reads_only_own_cases(actor):
        return True
    if actor.organisation_id is not None and case.organisation_id is not None:
        return case.organisation_id == actor.organisation_id
    if case.organisation_id is not None:
        return False
    t = HumanTask
    theirs = or_(
        t.assignee_id == actor.id,
        t.completed_by == actor.id,
        and_(t.status == TaskStatus.READY, t.assignee_id.is_(None), t.role == actor.role.value),
    )
    return bool(session.scalar(select(exists().where(t.case_id == case.id, theirs))))


def works_for_organisation(session: Session, actor: User, case: int | Case | CaseRef) -> bool:
    """Whether outside staff may work the tasks of a case: it was given to their organisation (or to no
    organisation yet). The office's own staff are not limited by organisation. `case`: its id, or the case
    as the caller read it (no second read)."""
    if not access.reads_only_own_cases(actor):
        return True
    if isinstance(case, int):
        given_to = session.scalar(select(Case.organisation_id).where(Case.id == case))
    else:
        given_to = case.organisation_id
    return given_to is None or given_to == actor.organisation_id


def require_organisation(session: Session, actor: User, case: int | Case | CaseRef) -> None:
    if not works_for_organisation(session, actor, case):
        raise PermissionDenied("该任务属于其他机构的订单")


def organisation_of(session: Session, case_id: int) -> int | None:
    return session.scalar(select(Case.organisation_id).where(Case.id == case_id))


def entrust(session: Session, case, organisation_id: int | None) -> None:
    """Give a case to an outside organisation (a dispatched provider, the nursing home applied to): its
    staff read and work it. Not the engine's state, so the lock token stays as it is (a message handler
    calls this in the middle of a step)."""
    _ENTRUST.execute(session.connection(), {"case_id": case.id, "organisation_id": organisation_id})
    _keep_in_step(session, Case, case, {"organisation_id": organisation_id})


def assign_open_steps(session: Session, case_id: int, role: str, assignee_id: int) -> int:
    """Give the case's open steps of a role to one account (the dispatched provider, by a message handler
    in the middle of a step); return how many. The ORM holds no task rows of a step under way."""
    return _ASSIGN_OPEN_STEPS.execute(
        session.connection(),
        {"case_id": case_id, "role": role, "assignee_id": assignee_id, "at": clock.now()},
    ).rowcount


_ASSIGN_OPEN_STEPS = DriverStatement(
    update(HumanTask.__table__)
    .where(
        HumanTask.__table__.c.case_id == bindparam("case_id"),
        HumanTask.__table__.c.role == bindparam("role"),
        HumanTask.__table__.c.status == TaskStatus.READY.value,
    )
    .values(assignee_id=bindparam("assignee_id"), claimed_at=bindparam("at"))
)
_ENTRUST = DriverStatement(
    update(Case.__table__)
    .where(Case.__table__.c.id == bindparam("case_id"))
    .values(organisation_id=bindparam("organisation_id"))
)


def case_data(case: Case) -> dict:
    return json.loads(case.data or "{}")


def _peek(session: Session, case: Case) -> engine.Instance:
    """The case's instance for reading only (the cached one when current, else restored)."""
    entry = _live.get(case.id)
    if entry is not None and entry[0] == case.lock_version:
        return entry[1]
    return runtime_of(session, case).restore(case.state)


def completed_steps(session: Session, case: Case) -> list[str]:
    """Element ids already passed, for marking the diagram."""
    return _peek(session, case).completed_step_ids()


def waiting_steps(session: Session, case: Case) -> list[str]:
    """Element ids under way without a person (timers, messages, sub-processes), for the diagram."""
    if case.status != CaseStatus.RUNNING:
        return []
    return _peek(session, case).waiting_step_ids()


# --------------------------------------------------------------------------------------------------
# Moving a case


@dataclass
class NewTask:
    """A task a move made READY (enough for a caller to route the user to it)."""

    id: str
    task_spec: str
    name: str
    role: str | None


@dataclass
class Outcome:
    """What one move did to a case, for the caller to report."""

    case: Case
    new_tasks: list[NewTask]
    completed: bool


_CASES = Case.__table__
_TASKS = HumanTask.__table__
_EVENTS = CaseEvent.__table__
_WAITS = CaseWait.__table__

# The hot path's statements, built once and run on the driver (see driver_sql): constructing and
# executing statements through SQLAlchemy costs more than SQLite takes to run them.
# Still open, and nobody else's: a claim by someone else that committed meanwhile makes it a conflict.
_COMPLETE_TASK = DriverStatement(
    update(_TASKS)
    .where(
        _TASKS.c.id == bindparam("task_id"),
        _TASKS.c.status == TaskStatus.READY.value,
        or_(_TASKS.c.assignee_id.is_(None), _TASKS.c.assignee_id == bindparam("by")),
    )
    .values(status=TaskStatus.COMPLETED.value, completed_at=bindparam("at"), completed_by=bindparam("by"))
)
_WITHDRAW_TASK = DriverStatement(
    update(_TASKS)
    .where(_TASKS.c.id == bindparam("task_id"), _TASKS.c.status == TaskStatus.READY.value)
    .values(status=TaskStatus.CANCELLED.value, completed_at=bindparam("at"))
)
_TASK_COLUMNS = [c.name for c in _TASKS.columns]
_EVENT_COLUMNS = [c.name for c in _EVENTS.columns if c.name != "id"]
_INSERT_TASKS = DriverStatement(insert(_TASKS), column_keys=_TASK_COLUMNS)
_INSERT_EVENTS = DriverStatement(insert(_EVENTS), column_keys=_EVENT_COLUMNS)
_DROP_WAIT = DriverStatement(
    delete(_WAITS).where(_WAITS.c.case_id == bindparam("case_id"), _WAITS.c.event_name == bindparam("name"))
)
_INSERT_WAITS = DriverStatement(insert(_WAITS), column_keys=["case_id", "event_name"])
_CASE_STATE_COLUMNS = (
    "state",
    "data",
    "next_timer_at",
    "current_step",
    "updated_at",
    "waiting_for",
    "lock_version",
    "status",
    "ended_at",
    "event_count",
    "last_event_hash",
)
_INDEXED_STATE_COLUMNS = ("status", "ended_at", "next_timer_at")


def _save_case(columns) -> DriverStatement:
    return DriverStatement(
        update(_CASES)
        .where(_CASES.c.id == bindparam("case_id"), _CASES.c.lock_version == bindparam("old_lock"))
        .values({name: bindparam(name) for name in columns})
    )


_SAVE_CASE = _save_case(_CASE_STATE_COLUMNS)
# Every column of a new case row but the id: the model's scalar default, else NULL (start_case sets the rest).
_NEW_CASE_DEFAULTS = {
    column.name: column.default.arg if column.default is not None and column.default.is_scalar else None
    for column in _CASES.columns
    if column.name != "id"
}
_INSERT_CASE = DriverStatement(
    insert(_CASES).returning(_CASES.c.id), column_keys=[c.name for c in _CASES.columns if c.name != "id"]
)
# Most steps change neither status nor timer: leaving those columns out of the SET spares SQLite the
# rewrite of their index pages (about two of the thirteen pages a step wrote).
_SAVE_CASE_STEP = _save_case([c for c in _CASE_STATE_COLUMNS if c not in _INDEXED_STATE_COLUMNS])


def advance(
    session: Session,
    case: Case,
    move: Callable[[engine.Instance], object],
    *,
    actor: User | None,
    events: Iterable[dict] = (),
    completed_task: HumanTask | None = None,
) -> Outcome:
    """Apply `move` to the case's live instance and write everything that follows from it.

    This is every case's hot path, so it writes with a handful of Core statements rather than the
    ORM's unit of work, and keeps the ORM objects it was given in step with what it wrote.
    """
    if case.status != CaseStatus.RUNNING:
        raise Conflict("案件已结束，不能再办理")
    rt = runtime_of(session, case)
    with session.no_autoflush:
        instance = _take(session, case, rt)
        before = instance.human_steps()
        try:
            move(instance)
        except engine.ScriptError as exc:
            session.info.get(_TAKEN, {}).pop(case.id, None)  # the instance is half-moved: never reuse it
            raise ProcessFailure(
                exc.element, exc.message, case_id=case.id if exc.over_limit else None
            ) from exc
        except engine.EngineError as exc:
            session.info.get(_TAKEN, {}).pop(case.id, None)
            raise Conflict(str(exc)) from exc
        new_tasks = _write(
            session,
            case,
            rt,
            instance,
            before=before,
            actor=actor,
            completed_task=completed_task,
            events=events,
        )
    return Outcome(case, new_tasks, case.status == CaseStatus.COMPLETED)


def change_version(
    session: Session,
    case: Case,
    version,
    become: Callable[[engine.Instance, versions.Runtime], engine.Instance],
    *,
    actor: User | None,
    events: Iterable[dict] = (),
) -> Outcome:
    """Put a running case on another deployed version of its process: `become(instance, runtime)` gives
    the case's instance as it is to be (moved to the new version, or restored as it was on it). The state,
    inbox rows (open steps keep their ids; their names and roles follow the version), waits and trail are
    written as any move's are."""
    if case.status != CaseStatus.RUNNING:
        raise Conflict("案件已结束，不能迁移")
    new_runtime = versions.runtime_of(session, version)
    with session.no_autoflush:
        instance = _take(session, case, runtime_of(session, case))
        before = instance.human_steps()
        try:
            instance = become(instance, new_runtime)
        except engine.ScriptError as exc:
            session.info.get(_TAKEN, {}).pop(case.id, None)
            raise ProcessFailure(exc.element, exc.message) from exc
        session.info.setdefault(_TAKEN, {})[case.id] = (case, instance)
        session.execute(
            update(Case)
            .where(Case.id == case.id, Case.lock_version == case.lock_version)
            .values(process_version_id=version.id, version_hash=version.content_hash)
            .execution_options(synchronize_session=False)
        )
        for key, value in (("process_version_id", version.id), ("version_hash", version.content_hash)):
            _keep_in_step(session, Case, case, {key: value})
        new_tasks = _write(session, case, new_runtime, instance, before=before, actor=actor, events=events)
        kept = {s.id for s in before}
        for step in instance.human_steps():
            if step.id in kept:
                session.execute(
                    update(HumanTask)
                    .where(HumanTask.id == step.id, HumanTask.status == TaskStatus.READY)
                    .values(task_spec=step.spec_id, name=step.name, role=access.role_for_lane(step.lane))
                    .execution_options(synchronize_session=False)
                )
    return Outcome(case, new_tasks, case.status == CaseStatus.COMPLETED)


def _write(
    session: Session,
    case: Case,
    rt: versions.Runtime,
    instance: engine.Instance,
    *,
    before: list[engine.HumanStep],
    actor: User | None,
    completed_task: HumanTask | None = None,
    events: Iterable[dict] = (),
    new_case: bool = False,
) -> list[NewTask]:
    """Write the instance's state and refresh the inbox rows, waits, timer, status and trail of the case."""
    now = clock.now()
    conn = session.connection()
    after = instance.human_steps()
    before_ids = {s.id for s in before}
    by = actor.id if actor is not None else None

    after_ids = {s.id for s in after}
    gone = sorted(before_ids - after_ids - ({completed_task.id} if completed_task is not None else set()))
    new_tasks = []
    rows = []
    for step in after:
        if step.id in before_ids:
            continue
        props = rt.steps.get(step.spec_id, {}).get("properties") or {}
        role = access.role_for_lane(step.lane)
        rows.append(
            {
                "id": step.id,
                "case_id": case.id,
                "process_key": case.process_key,
                "task_spec": step.spec_id,
                "name": step.name,
                "role": role,
                "area_code": case.area_code,
                "elder_id": case.elder_id,
                "status": TaskStatus.READY.value,
                "assignee_id": None,
                "due_at": deadlines.due_at(now, props.get("dueWorkdays"), props.get("dueDays")),
                "created_at": now,
                "claimed_at": None,
                "completed_at": None,
                "completed_by": None,
            }
        )
        new_tasks.append(NewTask(step.id, step.spec_id, step.name, role))

    outgoing = instance.take_outgoing()  # before the dump: they are acted on now, not stored
    fired = instance.take_fired_timers()
    pending = instance.pending()
    waits = sorted({p.name for p in pending if p.kind in ("message", "signal")})
    waiting_for = "\n".join(waits)
    # Only what changed: a name dropped and added again in one move would collide with itself.
    waited = set(filter(None, (case.waiting_for or "").split("\n")))
    wait_changes = (sorted(waited - set(waits)), sorted(set(waits) - waited))

    values = {
        "state": instance.dump(),
        "data": engine.data_json(instance.data),
        "next_timer_at": engine.Instance.next_timer_at(pending),
        "current_step": "、".join(s.name for s in after)[:200],
        "updated_at": now,
        "waiting_for": waiting_for,
        "lock_version": new_lock_token(),
        "status": case.status,
        "ended_at": case.ended_at,
    }
    trail = list(events)
    for timer in fired:  # whichever move fired it: the worker's round, a start or a step reaching it due
        due = timer.due_at.isoformat() if timer.due_at else None
        trail.append({"kind": EventKind.TIMER_FIRED, "detail": {"timer": timer.element, "due": due}})
    for message in outgoing:
        trail.append(
            {"kind": EventKind.MESSAGE_SENT, "detail": {"message": message.name, "payload": message.payload}}
        )
    if instance.completed:
        values.update(status=CaseStatus.COMPLETED, ended_at=now, next_timer_at=None)
        trail.append({"kind": EventKind.COMPLETED})
    head = (case.event_count, case.last_event_hash)
    event_rows = []
    for item in trail:
        row = audit.entry(case, head=head, actor=actor, at=now, **item)
        event_rows.append(row)
        head = (row["seq"], row["hash"])
    values.update(event_count=head[0], last_event_hash=head[1])

    if new_case:  # inserted moments ago in this transaction: it keeps the token it has (the cache keys on it)
        values["lock_version"] = case.lock_version
    # Every write of the move is in here: a concurrent mover makes one of them fail (the trail position,
    # a wait, the task, the case's lock token) and the whole move is then a conflict, never a 500.
    try:
        if conn.dialect.name == "postgresql":
            task_done, case_saved = _write_all_postgres(
                conn, case, completed_task, gone, rows, event_rows, wait_changes, values, now, by
            )
        else:
            task_done = _write_rows(
                conn, case.id, completed_task, gone, rows, event_rows, wait_changes, now, by
            )
            steady = all(values[c] == getattr(case, c) for c in _INDEXED_STATE_COLUMNS)
            case_saved = (
                (_SAVE_CASE_STEP if steady else _SAVE_CASE)
                .execute(conn, {"case_id": case.id, "old_lock": case.lock_version, **values})
                .rowcount
            )
    except IntegrityError as exc:
        # A concurrent writer took the same trail position (or task) first: the whole move is void.
        raise Conflict("案件刚被其他人更新，请刷新后查看") from exc
    if completed_task is not None and task_done != 1:
        raise Conflict("该任务刚被其他人认领或办理，请刷新后查看")
    if case_saved != 1:
        raise Conflict("案件刚被其他人更新，请刷新后重试")
    if completed_task is not None:
        _keep_in_step(
            session,
            HumanTask,
            completed_task,
            {"status": TaskStatus.COMPLETED, "completed_at": now, "completed_by": by},
        )
    _keep_in_step(session, Case, case, values)
    _act_on(session, case, outgoing, actor)
    return new_tasks


def _act_on(session: Session, case, outgoing: list[engine.Outgoing], actor: User | None) -> None:
    """Act on every message the step threw, in this same transaction: a refusal the process declares
    refuses the submission (the caller rolls the step back); a handler it declares does the work."""
    known = registry.current()
    for message in outgoing:
        submissions.refuse(message.name, message.payload)
        handler = known.handler_for(message.name)
        if handler is None:
            log.warning("case %s threw message %r that no handler takes", case.id, message.name)
            continue
        handler(session, case, message.payload, actor)


def _keep_in_step(session: Session, model, obj, values: dict) -> None:
    """Make the object we were given, and any ORM copy the session holds, show what was just written."""
    loaded = session.identity_map.get(identity_key(model, obj.id))
    for target in {id(o): o for o in (obj, loaded) if o is not None}.values():
        for key, value in values.items():
            if hasattr(target, "_sa_instance_state"):
                set_committed_value(target, key, value)
            elif hasattr(target, key):
                setattr(target, key, value)


def _write_rows(conn, case_id, completed_task, gone, rows, event_rows, wait_changes, now, by) -> int:
    """Write the task, wait and trail rows of a move, one statement each; return how many tasks completed."""
    done = 0
    if completed_task is not None:
        done = _COMPLETE_TASK.execute(conn, {"task_id": completed_task.id, "at": now, "by": by}).rowcount
    _WITHDRAW_TASK.execute_many(conn, [{"task_id": task_id, "at": now} for task_id in gone])
    _INSERT_TASKS.execute_many(conn, rows)
    dropped, added = wait_changes
    _DROP_WAIT.execute_many(conn, [{"case_id": case_id, "name": name} for name in dropped])
    _INSERT_WAITS.execute_many(conn, [{"case_id": case_id, "event_name": name} for name in added])
    _INSERT_EVENTS.execute_many(conn, event_rows)
    return done


# One round trip for every write of a move: on PostgreSQL each statement costs a network round trip,
# which is most of a step. All parts run; a lost race shows in the two counts and the caller rolls back.
_POSTGRES_WRITE_ALL = DriverStatement(
    text(
        f"""
    WITH done AS (
        UPDATE human_tasks SET status = 'completed', completed_at = :at, completed_by = :by
        WHERE id = :task_id AND status = 'ready' AND (assignee_id IS NULL OR assignee_id = :by) RETURNING 1
    ), gone AS (
        UPDATE human_tasks SET status = 'cancelled', completed_at = :at
        WHERE id = ANY(CAST(:gone AS varchar[])) AND status = 'ready' RETURNING 1
    ), new_tasks AS (
        INSERT INTO human_tasks ({", ".join(_TASK_COLUMNS)})
        SELECT {", ".join(_TASK_COLUMNS)} FROM json_populate_recordset(NULL::human_tasks, CAST(:tasks AS json))
        RETURNING 1
    ), new_events AS (
        INSERT INTO case_events ({", ".join(_EVENT_COLUMNS)})
        SELECT {", ".join(_EVENT_COLUMNS)} FROM json_populate_recordset(NULL::case_events, CAST(:events AS json))
        RETURNING 1
    ), dropped_waits AS (
        DELETE FROM case_waits
        WHERE case_id = :case_id AND event_name = ANY(CAST(:dropped_waits AS varchar[])) RETURNING 1
    ), added_waits AS (
        INSERT INTO case_waits (case_id, event_name)
        SELECT :case_id, unnest(CAST(:added_waits AS varchar[])) RETURNING 1
    ), saved AS (
        UPDATE cases SET {", ".join(f"{c} = :{c}" for c in _CASE_STATE_COLUMNS)}
        WHERE id = :case_id AND lock_version = :old_lock RETURNING 1
    )
    SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM saved),
           (SELECT count(*) FROM gone), (SELECT count(*) FROM new_tasks), (SELECT count(*) FROM new_events),
           (SELECT count(*) FROM dropped_waits), (SELECT count(*) FROM added_waits)
    """
    ).bindparams(
        bindparam("at", type_=Case.__table__.c.updated_at.type),
        bindparam("next_timer_at", type_=Case.__table__.c.next_timer_at.type),
        bindparam("ended_at", type_=Case.__table__.c.ended_at.type),
        bindparam("updated_at", type_=Case.__table__.c.updated_at.type),
        bindparam("status", type_=Case.__table__.c.status.type),
    )
)


def _json_rows(rows: list[dict]) -> str:
    # Times as ISO 8601 with their offset, enums as their values: what json_populate_recordset reads.
    return orjson.dumps(rows).decode("utf-8")


def _write_all_postgres(
    conn, case, completed_task, gone, rows, event_rows, wait_changes, values, now, by
) -> tuple[int, int]:
    params = {
        "at": now,
        "by": by,
        "task_id": completed_task.id if completed_task is not None else None,
        "gone": gone,
        "dropped_waits": wait_changes[0],
        "added_waits": wait_changes[1],
        "tasks": _json_rows(rows),
        "events": _json_rows(event_rows),
        "case_id": case.id,
        "old_lock": case.lock_version,
        **values,
    }
    done, saved, *_ = _POSTGRES_WRITE_ALL.first(conn, params)
    return done, saved


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
        .options(undefer(Case.state))  # every one of them is restored: one read for the batch
        .where(Case.status == CaseStatus.RUNNING, Case.next_timer_at.is_not(None), Case.next_timer_at < now)
        .order_by(Case.next_timer_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def fire_timers(session: Session, case: Case) -> bool:
    """Fire a case's due timers in a savepoint of its own. A case whose diagram fails is marked in error,
    once, with the reason, instead of being retried forever; other cases are not held up by it."""
    try:
        with session.begin_nested():
            advance(session, case, lambda inst: inst.fire_due_timers(), actor=None)  # trail: `_write`
        return True
    except Conflict:
        return False  # another worker or a person moved the case meanwhile: nothing to do here
    except ProcessFailure as exc:
        _mark_failed(session, case, exc.message, exc.element)
    except DomainError as exc:  # a handler of the step refused it: the diagram cannot go on by itself
        _mark_failed(session, case, f"流程执行出错：{exc.message}。请联系流程管理员。", None)
    except DBAPIError:
        raise  # the database itself failed: nothing can be recorded now; the worker retries next round
    except Exception as exc:  # a defect: say so on the case rather than block every timer after it
        log.exception("case %s failed on a timer", case.id)
        _mark_failed(session, case, f"系统处理定时事件时出错（{type(exc).__name__}: {exc}）", None)
    return False


def mark_failed(session: Session, case_id: int, message: str, element: str | None) -> None:
    """Put a running case in error, once, with the reason in its timeline (after its step was rolled back)."""
    case = session.get(Case, case_id)
    if case is None or case.status != CaseStatus.RUNNING:
        return
    _mark_failed(session, case, message, element)


def _mark_failed(session: Session, case: Case, message: str, element: str | None) -> None:
    session.info.get(_TAKEN, {}).pop(case.id, None)
    session.refresh(case)  # what the rolled-back move wrote into the object is gone from the database
    case.status = CaseStatus.ERROR
    case.error = message[:2000]
    case.next_timer_at = None
    audit.record(session, case, EventKind.FAILED, comment=message, detail={"element": element})
    session.flush()
    log.warning("case %s failed on a timer: %s", case.id, message)


def run_due_timers(session: Session, *, limit: int = 100) -> int:
    """Fire every due timer (one batch); return how many cases were moved."""
    return sum(1 for case in due_cases(session, limit=limit) if fire_timers(session, case))
