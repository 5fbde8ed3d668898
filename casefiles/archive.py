"""Bulk archiving (一户一档): every case of an area closed in a year, as case-file PDFs (with their notices)
in a zip with one folder per township and an index spreadsheet; progress kept on the job row.

Each case is read in one short transaction, laid out outside any transaction (pure CPU: on SQLite every
transaction holds the write lock, so rendering inside one would queue the other workers behind it), and its
printing noted in a second short one. Cases are rendered by a pool of processes, one per core by default,
lowered in priority so that a web server beside it keeps answering.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import undefer

from workflows import archives, config, processes
from workflows import notices as notice_rules
from workflows.db import make_engine, session_factory
from workflows.models import Case, User
from workflows.models.notices import Notice, NoticeCase

from . import casefile, pdf
from .notices import render_notice

INDEX_COLUMNS = [
    "序号",
    "乡镇（街道）",
    "案件编号",
    "业务",
    "老人姓名",
    "身份证号",
    "发起日期",
    "办结日期",
    "办理结果",
    "页数",
    "文件",
    "SHA-256",
    "通知书文号",
]


@dataclass
class Archived:
    case_id: int
    folder: str
    files: list[tuple[str, bytes]]
    row: list


def archive_dir(instance: Path | None = None) -> Path:
    """Where archives are written: the instance folder's `archives` (the web app passes its own instance)."""
    path = Path(instance or config.instance_dir()) / "archives"
    path.mkdir(parents=True, exist_ok=True)
    return path


def zip_path(job) -> Path:
    return archive_dir() / f"archive-{job.id}-{job.area_code}-{job.year}.zip"


def _safe(text: str) -> str:
    return "".join("_" if ch in '\\/:*?"<>|\x00' else ch for ch in (text or "")).strip() or "_"


# --------------------------------------------------------------------------------------------------
# One case (runs in a pool process, or in the caller's when there is one worker)

_WORKER: dict = {}


def _init_worker(database_url: str, upload_root: str | None, actor_id: int | None, nice: int) -> None:
    if nice:
        os.nice(nice)
    processes.install()  # a new process: the processes' declarations, as every entry point installs them
    engine = make_engine(database_url)
    _WORKER.update(make=session_factory(engine), upload_root=Path(upload_root) if upload_root else None)
    _WORKER["actor_id"] = actor_id


def archive_case(case_id: int) -> Archived:
    """Render one case's file and its notices, note the printing, and return the files for the zip."""
    make, upload_root, actor_id = _WORKER["make"], _WORKER["upload_root"], _WORKER["actor_id"]
    with make.begin() as session:
        actor = session.get(User, actor_id) if actor_id is not None else None
        data = casefile.gather(session, actor, case_id, upload_root=upload_root)
        notices = list(
            session.scalars(
                select(Notice)
                .options(undefer(Notice.pdf))
                .join(NoticeCase, NoticeCase.notice_id == Notice.id)
                .where(NoticeCase.case_id == case_id)
                .order_by(Notice.id)
            )
        )
    rendered = casefile.render_gathered(data)
    fresh = {n.id: render_notice(n) for n in notices if n.pdf_sha256 is None}
    with make.begin() as session:
        actor = session.get(User, actor_id) if actor_id is not None else None
        notice_files = []
        for n in notices:
            if n.id in fresh:  # the first rendering is kept; if another process kept one first, theirs stands
                n = notice_rules.keep_rendering(session, session.get(Notice, n.id), fresh[n.id])
            notice_files.append((f"{case_id}_{_safe(n.kind.label)}_{_safe(n.document_number)}.pdf", n.pdf))
        notice_rules.record_print(
            session,
            actor,
            session.get(Case, case_id),
            "casefile",
            purpose="archive",
            pages=rendered.pages,
            masked=data.masked,
        )
    case = data.case
    elder_name = data.elder["name"] if data.elder else ""
    name = f"{case_id}_{_safe(elder_name)}_{_safe(data.process_name)}.pdf"
    folder = _safe(f"{data.township_name}（{(case.area_code or '')[:9]}）")
    row = [
        0,
        data.township_name,
        case_id,
        data.process_name,
        elder_name,
        data.elder["id_number"] if data.elder else "",
        pdf.cn_time(case.started_at)[:10],
        pdf.cn_time(case.ended_at)[:10],
        data.outcome,
        rendered.pages,
        f"{folder}/{name}",
        hashlib.sha256(rendered.pdf).hexdigest(),
        "、".join(n.document_number for n in notices),
    ]
    return Archived(case_id, folder, [(name, rendered.pdf), *notice_files], row)


# --------------------------------------------------------------------------------------------------
# A whole job


def run_job(
    database_url: str,
    job_id: int,
    *,
    upload_root: Path | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = lambda line: None,
    nice: int = 0,
) -> Path | None:
    """Claim a queued archive job and make its zip; return where it is (None when it failed)."""
    engine = make_engine(database_url)
    make = session_factory(engine)
    with make.begin() as session:
        job = archives.start_job(session, job_id)
        ids = archives.archive_case_ids(session, job)
        actor_id = job.requested_by
        archives.report_progress(session, job.id, total=len(ids), done=0, failed=0)
        target = zip_path(job)
    workers = max(1, min(workers or os.cpu_count() or 1, len(ids) or 1))
    log(
        f"归档任务 #{job_id}：{job.area_code} {job.year} 年{('（' + job.process_key + '）') if job.process_key else ''}"
        f"，共 {len(ids)} 件已办结案件，{workers} 个进程"
    )
    partial = target.with_suffix(".zip.part")
    done = failed = 0
    started = last_report = time.monotonic()
    rows, problems = [], []
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
            for result in _results(ids, database_url, upload_root, actor_id, workers, nice):
                if isinstance(result, Archived):
                    for name, content in result.files:
                        archive.writestr(f"{result.folder}/{name}", content)
                    result.row[0] = len(rows) + 1
                    rows.append(result.row)
                    done += 1
                else:
                    failed += 1
                    problems.append(result)
                now = time.monotonic()
                if now - last_report >= 1.0 or done + failed == len(ids):
                    last_report = now
                    with make.begin() as session:
                        archives.report_progress(session, job_id, total=len(ids), done=done, failed=failed)
                    rate = (done + failed) / max(now - started, 1e-6)
                    left = (len(ids) - done - failed) / rate if rate else 0
                    log(f"  已归档 {done}/{len(ids)}，失败 {failed}，{rate:.1f} 件/秒，约剩 {left:.0f} 秒")
            archive.writestr("案卷目录.xlsx", _index(rows, problems))
        partial.replace(target)
    except Exception as exc:  # the job row says what went wrong; the half-written zip is removed
        partial.unlink(missing_ok=True)
        with make.begin() as session:
            archives.finish_job(session, job_id, file_name=None, file_size=None, message=f"归档失败：{exc}")
        engine.dispose()
        log(f"归档失败：{exc}")
        return None
    message = f"共 {done} 件" + (f"，{failed} 件失败（见目录表“未能归档”页）" if failed else "")
    with make.begin() as session:
        archives.report_progress(session, job_id, total=len(ids), done=done, failed=failed)
        archives.finish_job(
            session, job_id, file_name=target.name, file_size=target.stat().st_size, message=message
        )
    engine.dispose()
    log(
        f"完成：{target}（{target.stat().st_size / 1048576:.1f} MB），{message}，用时 {time.monotonic() - started:.1f} 秒"
    )
    return target


def _results(ids, database_url, upload_root, actor_id, workers, nice):
    """Each case's Archived, or a (case id, error) pair, in case order."""
    args = (database_url, str(upload_root) if upload_root else None, actor_id, nice)
    if workers == 1:
        _init_worker(*args[:3], 0)
        for case_id in ids:
            yield _guarded(case_id)
        return
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=args
    ) as pool:
        yield from pool.map(_guarded, ids, chunksize=4)


def _guarded(case_id: int):
    try:
        return archive_case(case_id)
    except Exception as exc:  # one broken case must not stop the archive; it is listed in the index
        return (case_id, str(exc)[:300])


def _index(rows: list[list], problems: list[tuple[int, str]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "案卷目录"
    sheet.append(INDEX_COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for column, width in zip(
        "ABCDEFGHIJKLM", (6, 14, 10, 22, 10, 22, 12, 12, 28, 6, 48, 66, 30), strict=True
    ):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    if problems:
        failed = book.create_sheet("未能归档")
        failed.append(["案件编号", "原因"])
        for case_id, reason in problems:
            failed.append([case_id, reason])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
