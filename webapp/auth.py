"""Signing in and out (Flask-Login sessions, argon2 passwords checked in `workflows.users`) and language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from workflows import users
from workflows.errors import LoginRefused
from workflows.models import User

from .database import db
from .i18n import LANGUAGES, _

bp = Blueprint("auth", __name__)


class Person(UserMixin):
    """The signed-in person as Flask-Login sees it; reads fall through to the `User` row."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    @property
    def is_active(self) -> bool:
        return self.user.is_active

    def __getattr__(self, name):
        return getattr(self.user, name)


def me() -> User:
    """The signed-in user, as the actor every use case takes."""
    return current_user.user


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(message="请填写用户名"), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired(message="请填写密码"), Length(max=200)])


def _safe_next(target: str | None) -> str:
    """Only ever redirect within this site after signing in."""
    if not target:
        return url_for("inbox.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("inbox.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = users.authenticate(
                db(), form.username.data, form.password.data, channel="web", address=request.remote_addr
            )
        except LoginRefused as refused:  # caught, so the request still commits the counted failure
            error = _(refused.message)
        else:
            session.clear()  # a fresh session on sign-in (no fixation)
            login_user(Person(user))
            if user.locale in LANGUAGES:
                session["lang"] = user.locale
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=error), (401 if error else 200)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    flash(_("您已退出登录"), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language():
    """Switch language for this browser, and remember it on the user when signed in."""
    code = request.form.get("lang", "")
    if code in LANGUAGES:
        session["lang"] = code
        if current_user.is_authenticated:
            me().locale = code  # the user row belongs to this request's session
    return redirect(
        _safe_next(request.form.get("next") or request.referrer and urlsplit(request.referrer).path)
    )
