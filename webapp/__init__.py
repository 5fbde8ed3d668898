"""The web layer: Flask app factory. HTTP only; every rule lives in `workflows`."""

import secrets

from flask import Flask

from workflows import clock, processes
from workflows import config as wf_config
from workflows.db import make_engine, session_factory

from . import database, security, views


class App(Flask):
    """Flask, committing the request's writes as soon as its view returns: inside the request, so that a
    conflict found only at commit becomes the 409 page or JSON through the error handlers, never a 500
    after a redirect was prepared."""

    def dispatch_request(self):
        response = super().dispatch_request()
        database.commit()
        return response

    def handle_user_exception(self, e):
        # The database failing under a request (down, restarting, disk full) means the same wherever it
        # is met, in a view, a login check or a token check: nothing was saved, try again shortly (503).
        return super().handle_user_exception(database.as_domain_error(e))


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app; `overrides` may set DATABASE_URL, SECRET_KEY, TESTING, UPLOAD_DIR, ..."""
    app = App(__name__, instance_path=str(wf_config.instance_dir()))
    app.config.update(
        DATABASE_URL=wf_config.database_url(),
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session: a long form must not expire
        UPLOAD_DIR=None,  # default: <instance>/attachments
        UPLOAD_MAX_BYTES=10 * 1024 * 1024,
        API_TOKEN_HOURS=12,
    )
    app.config.update(overrides or {})
    processes.install()
    clock.use_for_process(clock.ShiftedClock(path) if (path := wf_config.clock_file()) else None)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key()
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = session_factory(engine)
    database.init_app(app)
    security.init_app(app)
    views.init_app(app)
    return app


def _secret_key() -> str:
    path = wf_config.instance_dir() / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
