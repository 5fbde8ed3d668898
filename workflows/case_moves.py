"""Moving running cases to another version of their process (迁移): a dry run saying which can move and why
the others cannot, moving one case or a batch (with progress), and moving a case back while it has not
moved since.

Each move is one case in one savepoint: the engine moves its instance (`engine.move`, SpiffWorkflow's own
migration helpers), the case is written as any step is (state, inbox rows, waits), and its trail records
the move (old -> new version, who, why) in the hash chain. What it was is kept (`CaseMigration`), so that
the move can be undone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from . import access, cases, clock, engine, office_log, versions
from .errors import Conflict, DomainError, NotFound, ValidationFailed
from .models import (
    Case,
    CaseMigration,
    CaseStatus,
    EventKind,
    MigrationBatch,
    MigrationStatus,
    ProcessVersion,
    User,
)
from .models.base import is_row_id
from .models.supervision import LogKind

BATCH_STEP = 200  # cases moved per run of the background job (each in its own savepoint)


@dataclass
class PlanLine:
    """One case of a dry run: whether it can move, and if not, why."""

    case_id: int
    title: str
    from_version: int
    current_step: str
    can_move: bool
    reasons: list[str]


def _version(session: Session, key: str, number: int) -> ProcessVersion:
    return versions.get_version(session, key, number)


def running_cases(session: Session, actor: User, key: str, *, not_on: int | None = None) -> list[Case]:
    """The running cases of a process in the actor's area (those not on version id `not_on`)."""
    versions.require_editor(actor)
    query = select(Case).where(Case.process_key == key, Case.status == CaseStatus.RUNNING)
    if not_on is not None:
        query = query.where(Case.process_version_id != not_on)
    if not access.reads_all(actor) or actor.area_code:
        query = query.where(Case.area_code.startswith(actor.area_code))
    return list(session.scalars(query.order_by(Case.id)))


def _cases(session: Session, actor: User, key: str, target: ProcessVersion, case_ids) -> list[Case]:
    found = running_cases(session, actor, key, not_on=target.id)
    if case_ids is None:
        return found
    wanted = {int(i) for i in case_ids if is_row_id(i)}
    return [c for c in found if c.id in wanted]


def dry_run(session: Session, actor: User, key: str, to_version: int, case_ids=None) -> list[PlanLine]:
    """For each chosen running case (all, when none are named): can it move to `to_version`, and why not."""
    target = _version(session, key, to_version)
    new_runtime = versions.runtime_of(session, target)
    numbers = {row[0]: row[1] for row in session.execute(select(ProcessVersion.id, ProcessVersion.version))}
    lines = []
    for case in _cases(session, actor, key, target, case_ids):
        plan = _plan(session, case, new_runtime)
        lines.append(
            PlanLine(
                case.id,
                case.title,
                numbers.get(case.process_version_id, 0),
                case.current_step or "",
                plan.can_move,
                plan.reasons,
            )
        )
    return lines


def _plan(session: Session, case: Case, new_runtime: versions.Runtime) -> engine.MovePlan:
    old_runtime = cases.runtime_of(session, case)
    try:
        instance = old_runtime.restore(case.state)
    except engine.EngineError as exc:
        return engine.MovePlan(reasons=[f"案件状态无法读取：{exc}"])
    return engine.plan_move(instance, new_runtime.spec, old_runtime.steps, new_runtime.steps)


def move_case(
    session: Session,
    actor: User,
    case_id: int,
    to_version: int,
    *,
    comment: str,
    batch_id: int | None = None,
) -> CaseMigration:
    """Move one running case to another version of its process; refuse, saying why, when it cannot."""
    versions.require_editor(actor)
    comment = (comment or "").strip()
    if not comment:
        raise ValidationFailed("请填写迁移说明", field_errors={"comment": "请填写迁移说明"})
    case = cases.get_case(session, actor, case_id)
    target = _version(session, case.process_key, to_version)
    if case.process_version_id == target.id:
        raise Conflict(f"案件已在第 {to_version} 版上")
    new_runtime = versions.runtime_of(session, target)
    plan = _plan(session, case, new_runtime)
    if not plan.can_move:
        raise Conflict("该案件不能迁移：" + "；".join(plan.reasons))
    source = session.get(ProcessVersion, case.process_version_id)
    old_state, old_lock = case.state, case.lock_version
    detail = {"from_version": source.version, "to_version": target.version, "batch": batch_id}
    cases.change_version(
        session,
        case,
        target,
        lambda instance, runtime: _moved(instance, runtime),
        actor=actor,
        events=[{"kind": EventKind.MIGRATED, "comment": comment, "detail": detail}],
    )
    migration = CaseMigration(
        case_id=case.id,
        batch_id=batch_id,
        from_version_id=source.id,
        to_version_id=target.id,
        old_state=old_state,
        old_lock_version=old_lock,
        new_lock_version=case.lock_version,
        migrated_at=clock.now(),
        migrated_by=actor.id,
    )
    session.add(migration)
    session.flush()
    return migration


def _moved(instance: engine.Instance, runtime: versions.Runtime) -> engine.Instance:
    engine.move(instance, runtime.spec)
    return instance


def last_move(session: Session, case_id: int) -> CaseMigration | None:
    return session.scalar(
        select(CaseMigration)
        .where(CaseMigration.case_id == case_id)
        .order_by(CaseMigration.id.desc())
        .limit(1)
    )


@dataclass
class UndoableMove:
    case_id: int
    title: str
    from_number: int
    to_number: int
    moved_at: datetime


def undoable_moves(session: Session, actor: User, key: str, *, limit: int = 200) -> list[UndoableMove]:
    """The latest moves of running cases that can still be moved back (the case has not moved since)."""
    versions.require_editor(actor)
    old, new, later = aliased(ProcessVersion), aliased(ProcessVersion), aliased(CaseMigration)
    latest = select(func.max(later.id)).where(later.case_id == Case.id).correlate(Case).scalar_subquery()
    query = (
        select(Case.id, Case.title, old.version, new.version, CaseMigration.migrated_at)
        .join(CaseMigration, CaseMigration.case_id == Case.id)
        .join(old, old.id == CaseMigration.from_version_id)
        .join(new, new.id == CaseMigration.to_version_id)
        .where(
            Case.process_key == key,
            Case.status == CaseStatus.RUNNING,
            CaseMigration.id == latest,
            CaseMigration.reverted_at.is_(None),
            Case.lock_version == CaseMigration.new_lock_version,
            Case.process_version_id == CaseMigration.to_version_id,
        )
        .order_by(CaseMigration.id.desc())
        .limit(limit)
    )
    if not access.reads_all(actor) or actor.area_code:
        query = query.where(Case.area_code.startswith(actor.area_code))
    return [UndoableMove(*row) for row in session.execute(query)]


def move_back(session: Session, actor: User, case_id: int, *, comment: str) -> CaseMigration:
    """Undo a case's last move, while the case has not moved since (no step done, no timer fired)."""
    versions.require_editor(actor)
    case = cases.get_case(session, actor, case_id)
    migration = last_move(session, case.id)
    if migration is None or migration.reverted_at is not None:
        raise NotFound("该案件没有可撤回的迁移")
    if case.lock_version != migration.new_lock_version or case.process_version_id != migration.to_version_id:
        raise Conflict("案件在迁移后已有新的办理，不能撤回迁移")
    source = session.get(ProcessVersion, migration.from_version_id)
    target = session.get(ProcessVersion, migration.to_version_id)
    detail = {"from_version": target.version, "to_version": source.version, "reverts": migration.id}
    cases.change_version(
        session,
        case,
        source,
        lambda _instance, runtime: runtime.restore(migration.old_state),
        actor=actor,
        events=[
            {"kind": EventKind.MIGRATED, "comment": (comment or "").strip() or "撤回迁移", "detail": detail}
        ],
    )
    migration.reverted_at = clock.now()
    migration.reverted_by = actor.id
    session.flush()
    return migration


# --------------------------------------------------------------------------------------------------
# Batches: many cases, moved by the background job with progress the page polls


def request_batch(
    session: Session, actor: User, key: str, to_version: int, case_ids, *, comment: str, channel: str = "web"
) -> MigrationBatch:
    """Queue moving the chosen cases (all running ones, when none are named); the job moves them."""
    versions.require_editor(actor)
    comment = (comment or "").strip()
    if not comment:
        raise ValidationFailed("请填写迁移说明", field_errors={"comment": "请填写迁移说明"})
    target = _version(session, key, to_version)
    chosen = [c.id for c in _cases(session, actor, key, target, case_ids)]
    if not chosen:
        raise ValidationFailed("没有可迁移的案件", field_errors={"cases": "没有选中不在该版本上的办理中案件"})
    batch = MigrationBatch(
        process_key=key,
        to_version_id=target.id,
        case_ids=json.dumps(chosen),
        status=MigrationStatus.QUEUED,
        total=len(chosen),
        done=0,
        moved=0,
        skipped=0,
        comment=comment,
        requested_by=actor.id,
        requested_at=clock.now(),
    )
    session.add(batch)
    session.flush()
    office_log.record(
        session,
        LogKind.MIGRATION,
        user=actor,
        channel=channel,
        target=f"{key} → 第 {target.version} 版（{len(chosen)} 个案件）",
        message=comment,
        detail={"batch": batch.id, "process": key, "to_version": target.version, "cases": len(chosen)},
    )
    return batch


def run_batches(session: Session, *, limit: int = BATCH_STEP) -> int:
    """Move the next cases of the oldest unfinished batch (the background job); return how many it looked at."""
    batch = session.scalar(
        select(MigrationBatch)
        .where(MigrationBatch.status.in_([MigrationStatus.QUEUED, MigrationStatus.RUNNING]))
        .order_by(MigrationBatch.id)
        .limit(1)
    )
    if batch is None:
        return 0
    actor = session.get(User, batch.requested_by)
    target = session.get(ProcessVersion, batch.to_version_id)
    ids = json.loads(batch.case_ids)[batch.done : batch.done + limit]
    batch.status = MigrationStatus.RUNNING
    for case_id in ids:
        try:
            with session.begin_nested():
                move_case(session, actor, case_id, target.version, comment=batch.comment, batch_id=batch.id)
            batch.moved += 1
        except DomainError:  # it cannot move (any more): it keeps its version; the dry run says why
            batch.skipped += 1
        batch.done += 1
    if batch.done >= batch.total:
        batch.status = MigrationStatus.DONE
        batch.finished_at = clock.now()
    session.flush()
    return len(ids)


def get_batch(session: Session, actor: User, batch_id: int) -> MigrationBatch:
    versions.require_editor(actor)
    batch = session.get(MigrationBatch, batch_id) if is_row_id(batch_id) else None
    if batch is None:
        raise NotFound("迁移任务不存在")
    return batch


def batch_progress(session: Session, actor: User, batch_id: int) -> dict:
    batch = get_batch(session, actor, batch_id)
    return {
        "id": batch.id,
        "status": batch.status.value,
        "total": batch.total,
        "done": batch.done,
        "moved": batch.moved,
        "skipped": batch.skipped,
        "percent": round(100 * batch.done / batch.total) if batch.total else 100,
    }


def counts_by_version(session: Session, key: str) -> dict[int, int]:
    """Running cases per version id of a process (for the versions table)."""
    return dict(
        session.execute(
            select(Case.process_version_id, func.count())
            .where(Case.process_key == key, Case.status == CaseStatus.RUNNING)
            .group_by(Case.process_version_id)
        ).all()
    )
