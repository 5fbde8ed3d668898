"""Sessions that end when left alone, without losing work: after IDLE_MINUTES without a request (default
30, as 等保 asks) the next request signs the person out, and a task form being filled in is kept as a
server-side draft (saved as it is typed, and from the form posted when the session had already lapsed),
restored when they come back to the task. The clock is the system's (`workflows.clock`), so tests move it.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, current_app, flash, jsonify, redirect, request, session, url_for
from flask_login import current_user, logout_user

from workflows import clock, drafts
from workflows.errors import DomainError

from . import database, forms
from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("sessions", __name__)

DEFAULT_IDLE_MINUTES = 30
# Requests that never count as activity nor sign anyone out.
_QUIET = {"static", "vendor", "favicon", "healthz"}
# Requests that carry a task form: when the session has lapsed, what they carry is kept as a draft.
_CARRY_FORMS = {"inbox.complete": "task_id", "sessions.save_draft": "task_id"}


def idle_seconds() -> int:
    return int(current_app.config["IDLE_MINUTES"]) * 60


def init_app(app: Flask) -> None:
    app.config.setdefault("IDLE_MINUTES", int(os.environ.get("ELDERCARE_IDLE_MINUTES", DEFAULT_IDLE_MINUTES)))
    app.jinja_env.globals["idle_seconds"] = idle_seconds


@bp.before_app_request
def _sign_out_when_idle():
    if request.path.startswith("/api/") or request.endpoint in _QUIET or not current_user.is_authenticated:
        return None
    now = clock.now().timestamp()
    seen = session.get("seen")
    if isinstance(seen, int | float) and now - seen > idle_seconds():
        return _lapsed()
    session["seen"] = now
    return None


def _lapsed():
    """Sign the person out; keep the task form they were sending, and come back to where they were."""
    kept = False
    field = _CARRY_FORMS.get(request.endpoint or "")
    task_id = (request.view_args or {}).get(field) if field else None
    if task_id and request.method == "POST":
        try:
            drafts.save(
                db(), me(), task_id, forms.posted_values(request.form), request.form.get("comment") or ""
            )
            database.commit()
            kept = True
        except DomainError:
            undo()
    if task_id:
        target = url_for("inbox.task_page", task_id=task_id)
    elif request.method == "GET":
        target = request.full_path.rstrip("?")
    else:
        target = None
    _sign_out(kept)
    return redirect(url_for("auth.login", next=target))


def _sign_out(kept: bool) -> None:
    minutes = current_app.config["IDLE_MINUTES"]
    logout_user()
    session.clear()
    message = _("您已 {n} 分钟未操作，系统已自动退出登录。", n=minutes)
    if kept:
        message += _("您填写的内容已保存为草稿，重新登录后可继续。")
    flash(message, "info")


@bp.post("/session/idle")
def idle():
    """The page saw no activity for the idle period: sign out (its draft was saved just before)."""
    target = request.form.get("next") or ""
    _sign_out(kept=request.form.get("kept") == "1")
    return redirect(
        url_for("auth.login", next=target if target.startswith("/") and not target.startswith("//") else None)
    )


@bp.post("/tasks/<task_id>/draft")
def save_draft(task_id: str):
    """Keep what is typed into a task form so far (the page sends it as the person types)."""
    try:
        saved = drafts.save(
            db(), me(), task_id, forms.posted_values(request.form), request.form.get("comment") or ""
        )
    except DomainError as exc:
        undo()
        return jsonify(message=exc.message, field_errors=exc.field_errors), exc.status
    return jsonify(saved_at=clock.local_text(saved.saved_at, "%H:%M"))


@bp.post("/tasks/<task_id>/draft/discard")
def discard_draft(task_id: str):
    drafts.discard(db(), me(), task_id)
    flash(_("已放弃草稿"), "info")
    return redirect(url_for("inbox.task_page", task_id=task_id))
