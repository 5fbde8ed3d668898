"""The web layer: Flask app factory. HTTP only; every rule lives in `workflows`."""

from flask import Flask, g

from workflows import config as wf_config
from workflows.db import make_engine, session_factory


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app; `overrides` may set DATABASE_URL, SECRET_KEY, TESTING, UPLOAD_DIR, ..."""
    app = Flask(__name__, instance_path=str(wf_config.instance_dir()))
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
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key()
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = session_factory(engine)

    @app.teardown_request
    def _finish_db(exc):
        # One commit per request, at its end; any error rolls everything back.
        session = g.pop("db", None)
        if session is None:
            return
        try:
            if exc is None and session.is_active:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()

    from . import views

    views.init_app(app)
    return app


def db():
    """The request's database session (opened on first use)."""
    from flask import current_app

    if "db" not in g:
        g.db = current_app.extensions["db_sessions"]()
    return g.db


def undo():
    """Roll back what this request wrote so far (a use case refused; the page is shown again)."""
    if "db" in g:
        g.db.rollback()


def _secret_key() -> str:
    path = wf_config.instance_dir() / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
