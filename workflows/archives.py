"""Case files (案卷) and bulk archives (一户一档): who may print them, what they show unmasked, and the
archive jobs whose progress any web process can read.

`casefiles` renders; the rules it renders by live here, so the pages, the API and the command ask one place.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import access, cases, clock, elders
from .clock import LOCAL
from .errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from .models import Area, Case, CaseStatus, ProcessVersion, Role, User
from .models.base import is_row_id
from .models.notices import ArchiveJob, ArchiveStatus

# Roles whose work needs whole ID and phone numbers in a case file: the office staff who check identities,
# decide and audit. Everyone else (outside staff, assessors, process owners, village assistants) gets them masked.
FULL_NUMBER_ROLES = frozenset({Role.CASEWORKER, Role.APPROVER, Role.AUDITOR, Role.ADMIN})
# Who may make a bulk archive of an area's cases: the county's approvers and auditors (and admins).
ARCHIVE_ROLES = frozenset({Role.APPROVER, Role.AUDITOR, Role.ADMIN})
# A job that has not reported progress for this long has died (its process was stopped).
STALE_AFTER = timedelta(minutes=10)
CLOSED = (CaseStatus.COMPLETED, CaseStatus.CANCELLED)


def shows_full_numbers(actor: User | None) -> bool:
    """Whether a case file printed by `actor` shows ID and phone numbers whole (None: the system's archive)."""
    return actor is None or actor.role in FULL_NUMBER_ROLES


def casefile_case(session: Session, actor: User | None, case_id: int) -> Case:
    """The case whose file the actor asks for, if the actor may read it."""
    return cases.get_case(session, actor, case_id)


# --------------------------------------------------------------------------------------------------
# Archive jobs


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The instants a calendar year (Beijing time) starts and ends."""
    start = datetime(year, 1, 1, tzinfo=LOCAL)
    return start, datetime(year + 1, 1, 1, tzinfo=LOCAL)


def _check_request(session: Session, actor: User | None, area_code: str, year, process_key: str | None):
    area_code = (area_code or "").strip()
    errors = {}
    if not area_code.isdigit() or session.get(Area, area_code) is None:
        errors["area"] = "请选择要归档的行政区划"
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
        errors["year"] = "年份应为 2000–2100 之间的四位数字"
    if process_key:
        known = session.scalar(
            select(ProcessVersion.id).where(ProcessVersion.process_key == process_key).limit(1)
        )
        if known is None:
            errors["process"] = "没有这个业务流程"
    if errors:
        raise ValidationFailed("归档条件有误：" + "；".join(errors.values()), field_errors=errors)
    if actor is not None:
        if actor.role not in ARCHIVE_ROLES or not actor.is_active:
            raise PermissionDenied("只有县民政局审批人、监督审计人员可以批量归档")
        access.require_area(actor, area_code)
    return area_code


def request_archive(
    session: Session, actor: User | None, area_code: str, year: int, process_key: str | None = None
) -> ArchiveJob:
    """Queue an archive of the area's cases closed in `year` (optionally of one process)."""
    area_code = _check_request(session, actor, area_code, year, process_key or None)
    now = clock.now()
    job = ArchiveJob(
        area_code=area_code,
        year=year,
        process_key=process_key or None,
        status=ArchiveStatus.QUEUED,
        total=0,
        done=0,
        failed=0,
        requested_by=actor.id if actor is not None else None,
        requested_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def archive_case_ids(session: Session, job: ArchiveJob) -> list[int]:
    """The cases an archive holds: closed within its year, inside its area, of its process if it names one."""
    start, end = year_bounds(job.year)
    query = select(Case.id).where(
        Case.status.in_(CLOSED),
        Case.ended_at >= start,
        Case.ended_at < end,
        elders.in_area(Case.area_code, job.area_code),
    )
    if job.process_key:
        query = query.where(Case.process_key == job.process_key)
    return list(session.scalars(query.order_by(Case.area_code, Case.id)))


def get_job(session: Session, actor: User | None, job_id: int) -> ArchiveJob:
    job = session.get(ArchiveJob, job_id) if is_row_id(job_id) else None
    if job is None:
        raise NotFound("归档任务不存在")
    if actor is not None:
        if actor.role not in ARCHIVE_ROLES:
            raise PermissionDenied("只有县民政局审批人、监督审计人员可以查看归档任务")
        access.require_area(actor, job.area_code)
    return job


def list_jobs(session: Session, actor: User, limit: int = 20) -> list[ArchiveJob]:
    """The latest archive jobs inside the actor's area."""
    if actor.role not in ARCHIVE_ROLES:
        raise PermissionDenied("只有县民政局审批人、监督审计人员可以批量归档")
    return list(
        session.scalars(
            select(ArchiveJob)
            .where(elders.in_area(ArchiveJob.area_code, actor.area_code))
            .order_by(ArchiveJob.id.desc())
            .limit(limit)
        )
    )


def archive_areas(session: Session, actor: User) -> list[Area]:
    """The areas an actor may archive: their own and the townships inside it."""
    if actor.role not in ARCHIVE_ROLES:
        raise PermissionDenied("只有县民政局审批人、监督审计人员可以批量归档")
    own = session.get(Area, actor.area_code)
    inside = session.scalars(
        select(Area).where(Area.parent_code == actor.area_code).order_by(Area.code)
    ).all()
    return [a for a in [own, *inside] if a is not None]


def start_job(session: Session, job_id: int) -> ArchiveJob:
    """Claim a queued job for this process (exactly one process runs it)."""
    now = clock.now()
    claimed = session.execute(
        update(ArchiveJob)
        .where(ArchiveJob.id == job_id, ArchiveJob.status == ArchiveStatus.QUEUED)
        .values(status=ArchiveStatus.RUNNING, started_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise Conflict("该归档任务已在进行或已结束")
    job = session.get(ArchiveJob, job_id)
    session.refresh(job)
    return job


def report_progress(
    session: Session, job_id: int, *, total: int, done: int, failed: int, message=None
) -> None:
    session.execute(
        update(ArchiveJob)
        .where(ArchiveJob.id == job_id)
        .values(total=total, done=done, failed=failed, message=message, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )


def finish_job(
    session: Session, job_id: int, *, file_name: str | None, file_size: int | None, message=None
) -> None:
    now = clock.now()
    session.execute(
        update(ArchiveJob)
        .where(ArchiveJob.id == job_id)
        .values(
            status=ArchiveStatus.DONE if file_name else ArchiveStatus.FAILED,
            file_name=file_name,
            file_size=file_size,
            message=message,
            updated_at=now,
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def is_stale(job: ArchiveJob, now: datetime | None = None) -> bool:
    """Whether a queued or running job stopped reporting (its process died): it will not finish."""
    now = now or clock.now()
    return job.status in (ArchiveStatus.QUEUED, ArchiveStatus.RUNNING) and now - job.updated_at > STALE_AFTER


def job_json(job: ArchiveJob) -> dict:
    """A job's progress for the page's poller."""
    stale = is_stale(job)
    return {
        "id": job.id,
        "status": "stale" if stale else job.status.value,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "percent": 100
        if job.status == ArchiveStatus.DONE
        else (int(job.done * 100 / job.total) if job.total else 0),
        "message": job.message or ("任务已中断（处理进程停止），请重新发起" if stale else None),
        "file_size": job.file_size,
        "ready": job.status == ArchiveStatus.DONE and bool(job.file_name),
    }
