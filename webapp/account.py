"""One's own account: changing one's password (a temporary one must be changed at the first sign-in, and
nothing else opens until it is), and setting it through a one-time link an administrator issued."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from workflows import users
from workflows.errors import ValidationFailed

from .auth import me
from .database import db, undo
from .i18n import _

bp = Blueprint("account", __name__)

# What a person who must change a temporary password may still open.
_WHILE_CHANGING = {"account.change_password", "auth.logout", "auth.language", "static", "favicon", "healthz"}


@bp.before_app_request
def _temporary_password_first():
    if request.path.startswith("/api/") or not current_user.is_authenticated:
        return None
    if me().must_change_password and request.endpoint not in _WHILE_CHANGING:
        return redirect(
            url_for("account.change_password", next=request.full_path if request.method == "GET" else None)
        )
    return None


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    errors, message = {}, None
    if request.method == "POST":
        new, again = request.form.get("new") or "", request.form.get("again") or ""
        try:
            if new != again:
                errors = {"again": _("两次输入的新密码不一致")}
                raise ValidationFailed(errors["again"], field_errors=errors)
            users.change_own_password(db(), me(), request.form.get("current") or "", new)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            flash(_("密码已修改"), "success")
            target = request.args.get("next") or ""
            return redirect(
                target if target.startswith("/") and not target.startswith("//") else url_for("inbox.index")
            )
    return render_template(
        "account/password.html", errors=errors, message=message, forced=me().must_change_password
    ), (status if message else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """A one-time link: anyone holding it (signed in or not) sets the account's password, once."""
    session = db()
    user = users.check_reset_link(session, token)
    errors, message = {}, None
    if request.method == "POST":
        new, again = request.form.get("new") or "", request.form.get("again") or ""
        try:
            if new != again:
                errors = {"again": _("两次输入的新密码不一致")}
                raise ValidationFailed(errors["again"], field_errors=errors)
            users.redeem_reset_link(session, token, new)
        except ValidationFailed as exc:
            undo()
            errors, message, status = exc.field_errors or {"_": exc.message}, exc.message, exc.status
        else:
            flash(_("密码已设置，请用新密码登录"), "success")
            return redirect(url_for("auth.login"))
    response = render_template("account/reset.html", user=user, errors=errors, message=message)
    return (
        response,
        (status if message else 200),
        {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
