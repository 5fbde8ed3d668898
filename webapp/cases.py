"""Case pages: start a case for an elder, read a case (diagram, timeline, data, documents), comment, upload."""

from __future__ import annotations

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

from workflows import attachments, dossiers, elders, notices, registration, starting
from workflows.errors import DomainError, ValidationFailed

from . import forms
from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("cases", __name__)


@bp.get("/cases/<int:case_id>")
def case_page(case_id: int):
    dossier = dossiers.case_dossier(db(), me(), case_id)
    issued = notices.notices_of_case(db(), me(), case_id)
    return render_template("cases/case.html", d=dossier, case=dossier.case, notices=issued)


def _refused_on_case_page(case_id: int, exc: DomainError, **kept):
    """A refused comment or upload comes back on the case page, beside its form, with what was typed."""
    undo()
    dossier = dossiers.case_dossier(db(), me(), case_id)
    return render_template(
        "cases/case.html", d=dossier, case=dossier.case, refused=exc.message, **kept
    ), exc.status


@bp.get("/cases/<int:case_id>/diagram.json")
def diagram(case_id: int):
    found = dossiers.case_diagram(db(), me(), case_id)
    return {"xml": found.xml, "completed": found.completed, "current": found.current}


@bp.post("/cases/<int:case_id>/comments")
def comment(case_id: int):
    text = request.form.get("comment", "")
    try:
        attachments.add_comment(db(), me(), case_id, text)
    except ValidationFailed as exc:
        return _refused_on_case_page(case_id, exc, refused_comment=exc.message, comment_text=text)
    flash(_("意见已添加"), "success")
    return redirect(url_for("cases.case_page", case_id=case_id) + "#timeline")


@bp.post("/cases/<int:case_id>/documents")
def upload(case_id: int):
    files = [f for f in request.files.getlist("file") if f and f.filename]
    back = request.form.get("back")
    try:
        if not files:
            raise ValidationFailed("请选择要上传的文件", field_errors={"file": "请选择要上传的文件"})
        for f in files:
            attachments.save_attachment(
                db(),
                me(),
                case_id,
                f.filename,
                f.read(),
                root=current_app.config.get("UPLOAD_DIR"),
                max_bytes=current_app.config["UPLOAD_MAX_BYTES"],
            )
    except ValidationFailed as exc:
        if back:  # from a task page: the error goes back there as before
            raise
        return _refused_on_case_page(case_id, exc, refused_upload=exc.message)
    flash(_("已上传 {n} 个文件", n=len(files)), "success")
    target = back or url_for("cases.case_page", case_id=case_id) + "#documents"
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


@bp.get("/documents/<int:attachment_id>")
def document(attachment_id: int):
    stored = attachments.open_attachment(db(), me(), attachment_id, root=current_app.config.get("UPLOAD_DIR"))
    a = stored.attachment
    inline = a.content_type.startswith("image/") or a.content_type == "application/pdf"
    response: Response = send_file(
        stored.path, mimetype=a.content_type, as_attachment=not inline, download_name=a.filename, max_age=0
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    )
    return response


@bp.route("/cases/new", methods=["GET", "POST"])
def new_case():
    """Start a case: choose the process and the elder, then fill in the first step's form."""
    session = db()
    available = starting.startable_processes(session, me())
    key = (request.values.get("process") or "").strip()
    elder_id = request.values.get("elder_id", "")
    q = (request.args.get("q") or "").strip()
    found = elders.search_elders(session, me(), q, limit=20) if q else []
    elder = registration.find_elder(session, me(), int(elder_id)) if elder_id.isdigit() else None
    version = next((p for p in available if p.process_key == key), None)
    step = starting.first_step(session, me(), key, elder) if version and elder else None
    schema = step.form if step and step.for_actor else None
    ui = step.ui_form if step and step.for_actor else None
    values, errors, message, comment = {}, {}, None, ""
    if request.method == "POST":
        if version is None or elder is None:
            raise ValidationFailed("请选择业务流程和老人")
        values = forms.compact(schema, forms.posted_values(request.form))
        comment = (request.form.get("comment") or "").strip()
        data, errors = forms.parse(schema, values)
        try:
            started = starting.start_for_elder(
                session, me(), key, elder.id, data, comment=comment or None, input_errors=errors
            )
        except DomainError as exc:
            undo()
            errors = exc.field_errors or {"_": exc.message}
            message = exc.message
        else:
            flash(_("已发起：{title}（案件 #{id}）", title=started.case.title, id=started.case.id), "success")
            for new in started.next_tasks:
                if new.role in (None, me().role.value):
                    return redirect(url_for("inbox.task_page", task_id=new.id))
            return redirect(url_for("cases.case_page", case_id=started.case.id))
    fields = forms.build_fields(schema, ui, values, errors)
    return render_template(
        "cases/new.html",
        processes=available,
        version=version,
        key=key,
        elder=dossiers.summarize_elder(session, elder) if elder else None,
        elder_id=elder.id if elder else None,
        found=[dossiers.summarize_elder(session, e) for e in found],
        q=q,
        step=step,
        fields=fields,
        instructions=forms.render_instructions(
            step.instructions, {"elder_id": elder.id, "case_area_code": elder.residence_area_code}
        )
        if step
        else "",
        message=message,
        errors=errors,
        comment=comment,
    ), (422 if message else 200)
