"""Blueprint registration and what every page shares: login, CSRF, language, errors, vendor files."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from workflows import calendars, clock
from workflows.config import REPO_ROOT
from workflows.errors import DomainError, PermissionDenied
from workflows.models import User

from . import (
    account,
    admin,
    api,
    api_admin,  # noqa: F401 - declares the administration operations of /api on import
    api_lists,  # noqa: F401  (declares its routes on api.bp, so before the registration)
    archive,
    assessment,
    auditing,
    auth,
    caselist,
    cases,
    database,
    elder_edit,
    elders,
    facility,
    forms,
    i18n,
    inbox,
    office,
    provider,
    sessions,
    studio,
    supervision,
)
from .database import db, undo
from .i18n import _

csrf = CSRFProtect()
login_manager = LoginManager()
# Endpoints anyone may reach; every other page needs a signed-in person (the API checks its own tokens).
PUBLIC_ENDPOINTS = {
    "auth.login",
    "auth.language",
    "account.reset_password",
    "static",
    "vendor",
    "healthz",
    "favicon",
}
# Files of npm packages the pages use, served from node_modules (never committed) by an allow-list.
VENDOR = {
    "bpmn-js": REPO_ROOT / "node_modules" / "bpmn-js" / "dist",
    "chart.js": REPO_ROOT / "node_modules" / "chart.js" / "dist",
}


def _wants_json() -> bool:
    """The API, and the pages' own scripts (they send JSON or ask for it), get errors as JSON."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    return request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load_user(user_id: str):
        user = db().get(User, int(user_id)) if user_id.isdigit() else None
        return auth.Person(user) if user is not None and user.is_active else None

    @login_manager.unauthorized_handler
    def _unauthorized():
        if request.path.startswith("/api/"):
            return jsonify(message="请先登录", field_errors={}), 401
        flash(_("请先登录"), "info")
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))

    @app.before_request
    def _require_login():
        endpoint = request.endpoint or ""
        if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("api.") or request.path.startswith("/api/"):
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    @app.before_request
    def _calendar_in_force():
        # A year of holidays entered by another process (another web worker) is taken up within a minute.
        if request.endpoint not in ("static", "vendor", "healthz", "favicon"):
            calendars.refresh_now_and_then(db())

    @app.get("/healthz")
    def healthz():
        # For load balancers and supervisors: healthy means the database answers too.
        if not database.reachable():
            headers = {"Retry-After": str(database.RETRY_AFTER)}
            return {"status": "unavailable", "database": "unreachable"}, 503, headers
        return {"status": "ok", "database": "ok"}

    @app.get("/favicon.ico")
    def favicon():
        return "", 204

    @app.get("/vendor/<package>/<path:filename>")
    def vendor(package: str, filename: str):
        folder = VENDOR.get(package)
        if folder is None or not folder.is_dir():
            abort(404)
        response = send_from_directory(folder, filename, max_age=86400)
        return response

    app.jinja_env.globals.update(
        _=i18n.gettext,
        get_locale=i18n.get_locale,
        LANGUAGES=i18n.LANGUAGES,
        label=i18n.label,
        now=clock.now,
        data_labels=forms.data_labels,
        split_data=forms.split_data,
        vendor_ready=lambda package: (VENDOR.get(package) or Path("/nonexistent")).is_dir(),
    )
    app.jinja_env.filters.update(localtime=i18n.local_time, localdate=i18n.local_date, nl2br=i18n.nl2br)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    sessions.init_app(app)
    for module in (
        auth,
        account,
        sessions,
        inbox,
        cases,
        caselist,
        elders,
        elder_edit,
        supervision,
        auditing,
        archive,
        studio,
        admin,
        facility,
        provider,
        assessment,
        api,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(admin.shortcuts)
    csrf.exempt(api.bp)  # bearer tokens, never cookies: nothing for a forged form to ride on

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        if exc.keeps_writes:  # the refusal itself is recorded (a failed sign-in counts)
            database.commit()
        else:
            undo()
        if exc.aftermath is not None:  # recorded once the request's own writes are gone
            exc.aftermath(db())
            database.commit()
        if isinstance(exc, PermissionDenied):
            office.log_denial(exc.message)  # after the undo: the refusal itself is kept
            database.commit()
        headers = getattr(exc, "headers", {})
        if _wants_json():
            response = jsonify(message=exc.message, field_errors=exc.field_errors)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="eldercare"'
            return response, exc.status, headers
        if exc.status == 401:
            return login_manager.unauthorized()
        if exc.status >= 500:  # the page must not need the database that may be what failed
            return _page_without_database(exc.status, exc.message, headers)
        return render_template("error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        message = _("页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试")
        if _wants_json():
            return jsonify(message=message, field_errors={}), 400
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        messages = {
            400: "请求有误",
            401: "请先登录",
            403: "无权访问",
            404: "页面不存在",
            405: "不支持此请求方法",
            413: "提交的内容过大（文件或数据超过上限）",
            500: "服务器内部错误，请稍后重试；如再次出现，请联系系统管理员",
            503: "服务暂时不可用，请稍后重试",
        }
        message = messages.get(exc.code, exc.name)
        if _wants_json():
            return jsonify(message=message, field_errors={}), exc.code
        if exc.code >= 500:  # whatever failed (the database, perhaps), this page needs nothing of it
            return _page_without_database(exc.code, message)
        return render_template("error.html", status=exc.code, message=_(message)), exc.code


def _page_without_database(status: int, message: str, headers: dict | None = None):
    """An error page that reads nothing from the database (which may be what failed): not even the
    signed-in person, so the language is the browser session's choice or Chinese."""
    if "locale" not in g:
        chosen = session.get("lang")
        g.locale = chosen if chosen in i18n.LANGUAGES else i18n.DEFAULT
    return render_template("unavailable.html", status=status, message=_(message)), status, headers or {}
