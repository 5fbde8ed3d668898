"""Printing: a case's file (案卷) and its notices as PDF, and bulk archives (一户一档) with a progress bar.

Every download is a use case that checks role and area and notes the printing in the case's trail. A bulk
archive is a job row: the page queues it, a separate `eldercare archive --job` process (started once the
request has committed) makes the zip, and the page's script polls the job's progress.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import event, select

from casefiles import archive as bulk
from casefiles import casefile, notices
from workflows import archives, clock
from workflows.clock import LOCAL
from workflows.errors import NotFound, ValidationFailed
from workflows.models import ProcessVersion
from workflows.models.notices import ArchiveStatus

from .api import operation
from .auth import me
from .database import db
from .i18n import _

bp = Blueprint("archive", __name__)


def pdf_response(content: bytes, filename: str, *, attachment: bool = False) -> Response:
    response = send_file(
        io.BytesIO(content),
        mimetype="application/pdf",
        as_attachment=attachment,
        download_name=filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"  # personal data: never kept by a proxy
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _casefile_response(actor, case_id: int) -> Response:
    content = casefile.print_casefile(db(), actor, case_id, upload_root=current_app.config.get("UPLOAD_DIR"))
    stamp = clock.now().astimezone(LOCAL).strftime("%Y%m%d")
    return pdf_response(content, f"案卷-{case_id}-{stamp}.pdf")


@bp.get("/cases/<int:case_id>/casefile.pdf")
def casefile_pdf(case_id: int):
    return _casefile_response(me(), case_id)


@operation(
    "/cases/<int:case_id>/casefile.pdf",
    "GET",
    summary="案卷 PDF（一户一档）/ the case file as PDF; the download is audited",
    tag="cases",
    errors=(403, 404, 503),
    media_type="application/pdf",
)
def get_casefile(case_id: int):
    from flask import g

    return _casefile_response(g.api_user, case_id)


@bp.get("/notices/<int:notice_id>.pdf")
def notice_pdf(notice_id: int):
    notice, content = notices.notice_pdf(db(), me(), notice_id)
    return pdf_response(content, f"{notice.kind.label}-{notice.document_number}.pdf")


# --------------------------------------------------------------------------------------------------
# Bulk archives


@bp.route("/archives", methods=["GET", "POST"])
def archive_page():
    session = db()
    actor = me()
    areas = archives.archive_areas(session, actor)
    processes = session.execute(
        select(ProcessVersion.process_key, ProcessVersion.name).order_by(ProcessVersion.process_key)
    ).all()
    choices = dict(processes)  # the latest deployed name of each process wins
    year_now = clock.now().astimezone(LOCAL).year
    values = {"area": actor.area_code, "year": str(year_now), "process": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = {k: (request.form.get(k) or "").strip() for k in ("area", "year", "process")}
        year = int(values["year"]) if values["year"].isdigit() and len(values["year"]) == 4 else None
        try:
            if year is None:
                raise ValidationFailed("年份应为四位数字", field_errors={"year": "年份应为四位数字，如 2026"})
            job = archives.request_archive(session, actor, values["area"], year, values["process"] or None)
        except ValidationFailed as exc:
            errors = exc.field_errors or {"_": exc.message}
        else:
            _start_after_commit(session, job.id)
            flash(_("归档任务已开始，完成后可下载"), "success")
            return redirect(url_for("archive.archive_page") + f"#job-{job.id}")
    jobs = archives.list_jobs(session, actor)
    return render_template(
        "archive/archive.html",
        areas=areas,
        processes=sorted(choices.items()),
        jobs=[(j, archives.job_json(j)) for j in jobs],
        area_names={a.code: a.name for a in areas},
        process_names=choices,
        values=values,
        errors=errors,
    ), (422 if errors else 200)


def _start_after_commit(session, job_id: int) -> None:
    """Start the archiving process once the job row is committed (a rolled-back request starts nothing)."""
    app = current_app._get_current_object()
    uploads = app.config.get("UPLOAD_DIR")

    def start(_session):
        env = {
            **os.environ,
            "DATABASE_URL": app.config["DATABASE_URL"],
            "ELDERCARE_INSTANCE": app.instance_path,
        }
        command = [sys.executable, "-m", "cli", "archive", "--job", str(job_id)]
        if uploads:
            command += ["--uploads", str(uploads)]
        log = open(os.path.join(app.instance_path, f"archive-{job_id}.log"), "ab")  # noqa: SIM115 - the child owns it
        try:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        app.extensions.setdefault("archive_processes", {})[job_id] = process
        # Reaped when it ends (its progress is in the database; nobody waits for it here).
        threading.Thread(target=process.wait, name=f"archive-{job_id}", daemon=True).start()

    event.listen(session, "after_commit", start, once=True)


@bp.get("/archives/<int:job_id>.json")
def archive_progress(job_id: int):
    return archives.job_json(archives.get_job(db(), me(), job_id))


@bp.get("/archives/<int:job_id>/download")
def archive_download(job_id: int):
    job = archives.get_job(db(), me(), job_id)
    path = bulk.archive_dir(Path(current_app.instance_path)) / (job.file_name or "")
    if job.status != ArchiveStatus.DONE or not job.file_name or not path.is_file():
        raise NotFound("归档文件尚未生成或已被清理")
    response = send_file(
        path,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"一户一档-{job.area_code}-{job.year}.zip",
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
