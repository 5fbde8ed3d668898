"""The inbox and the task page: list, claim, release, reassign, fill in and complete."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from workflows import attachments, cases, dossiers, drafts, inbox, tasks
from workflows import forms as workflow_forms
from workflows.errors import Conflict, ValidationFailed

from . import forms, start
from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("inbox", __name__)


@bp.get("/")
def index():
    return redirect(url_for("inbox.inbox_page"))


@bp.get("/inbox")
def inbox_page():
    if not request.args:  # the first page after signing in: one's own tasks and the role's waiting ones
        return render_template("inbox/start.html", **start.start_page(db(), me()))
    flt = inbox.InboxFilter.parse(request.args)
    page = inbox.list_inbox(db(), me(), flt)
    return render_template("inbox/inbox.html", page=page, flt=flt, Scope=inbox.Scope, Sort=inbox.Sort)


def _task_context(task_id: str, *, values=None, errors=None, comment: str = "", message: str | None = None):
    """What the task page shows; `values`/`errors` carry a refused submission back to the form."""
    session = db()
    opened = inbox.open_task(session, me(), task_id)
    task = opened.task
    step = dossiers.step_form(session, me(), task)
    case = cases.get_case(session, me(), task.case_id)
    data = cases.case_data(case)
    if not (opened.can_work or task.assignee_id == me().id):
        # Someone reading a task they do not do (an auditor, a supervisor) needs no full numbers.
        data = dossiers.mask_personal_numbers(data)
    schema = step.get("form")
    ui = step.get("ui_form")
    draft = drafts.load(session, me(), task.id) if values is None and opened.can_work else None
    if draft is not None:
        values, comment = draft.fields, draft.comment
    elif values is None:
        values = forms.flatten(schema, data)
    errors = dict(errors or {})
    fields = forms.build_fields(schema, ui, values, errors)
    shown = _paths(fields)
    has_comment = "comment" in ((schema or {}).get("properties") or {})
    comment_error = errors.get("comment") if not has_comment else None
    general = [m for p, m in errors.items() if p not in shown and p != "comment" and p != "_"] + (
        [errors["_"]] if "_" in errors else []
    )
    elder = dossiers.case_elder(session, me(), case)
    return {
        "opened": opened,
        "task": task,
        "step": step,
        "case": case,
        "data": data,
        "elder": elder,
        "fields": fields,
        "has_comment_field": has_comment,
        "can_send_back": workflow_forms.offers_send_back(schema),
        "comment": comment,
        "comment_error": comment_error,
        "general_errors": general,
        "message": message,
        "instructions": forms.render_instructions(step.get("instructions"), data),
        "documents": attachments.list_attachments(session, me(), case.id),
        "assignees": inbox.assignable_users(session, me(), task) if opened.can_assign else [],
        "draft": draft,
    }


def _paths(fields) -> set[str]:
    out = set()
    for f in fields:
        out.add(f.path)
        out |= _paths(f.children)
        for row in f.rows:
            out |= _paths(row)
    return out


@bp.get("/tasks/<task_id>")
def task_page(task_id: str):
    return render_template("inbox/task.html", **_task_context(task_id))


@bp.post("/tasks/<task_id>")
def complete(task_id: str):
    session = db()
    opened = inbox.open_task(session, me(), task_id)
    step = dossiers.step_form(session, me(), opened.task)
    schema = step.get("form")
    values = forms.compact(schema, forms.posted_values(request.form))
    comment = (request.form.get("comment") or "").strip()
    data, errors = forms.parse(schema, values)
    try:
        # Files are kept only for input that reads well; the use case reports every problem at once.
        for path in forms.file_fields(schema, step.get("ui_form")) if not errors else ():
            upload = request.files.get(forms.PREFIX + path)
            if upload and upload.filename:
                saved = attachments.save_attachment(
                    session,
                    me(),
                    opened.task.case_id,
                    upload.filename,
                    upload.read(),
                    task_id=opened.task.id,
                    field=path,
                    max_bytes=_max_upload(),
                    root=_upload_dir(),
                )
                data[path] = f"{forms.ATTACHMENT}{saved.id}"
            elif values.get(forms.PREFIX + path, [""])[0].startswith(forms.ATTACHMENT):
                data[path] = values[forms.PREFIX + path][0]
        outcome = tasks.complete(session, me(), task_id, data, comment=comment or None, input_errors=errors)
    except Conflict as exc:
        undo()
        # Someone else finished it: say so, and show the form as typed so nothing is lost.
        context = _task_context(task_id, values=values, comment=comment, message=exc.message)
        return render_template("inbox/task.html", **context), 409
    except ValidationFailed as exc:
        undo()
        context = _task_context(
            task_id,
            values=values,
            errors=exc.field_errors or {"_": exc.message},
            comment=comment,
            message=exc.message,
        )
        return render_template("inbox/task.html", **context), 422
    drafts.discard(session, me(), task_id)
    flash(_("已提交：{name}", name=opened.task.name), "success")
    # When the next step is this person's too (a provider accepting, then recording), go straight to it.
    for new in outcome.new_tasks:
        if new.role in (None, me().role.value):
            return redirect(url_for("inbox.task_page", task_id=new.id))
    return redirect(url_for("inbox.inbox_page"))


def _upload_dir():
    return current_app.config.get("UPLOAD_DIR")


def _max_upload() -> int:
    return current_app.config["UPLOAD_MAX_BYTES"]


@bp.post("/tasks/<task_id>/claim")
def claim(task_id: str):
    task = tasks.claim(db(), me(), task_id)
    flash(_("已认领：{name}", name=task.name), "success")
    return redirect(url_for("inbox.task_page", task_id=task_id))


@bp.post("/tasks/<task_id>/release")
def release(task_id: str):
    task = tasks.release(db(), me(), task_id)
    flash(_("已释放：{name}", name=task.name), "success")
    return redirect(url_for("inbox.inbox_page"))


@bp.post("/tasks/<task_id>/assign")
def assign(task_id: str):
    assignee = request.form.get("assignee_id", "")
    if not assignee.isdigit():
        raise ValidationFailed("请选择改派给谁", field_errors={"assignee_id": "请选择改派给谁"})
    task = tasks.assign(db(), me(), task_id, int(assignee))
    flash(_("已改派：{name}", name=task.name), "success")
    return redirect(url_for("inbox.task_page", task_id=task_id))
