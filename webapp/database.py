"""The request's database session: opened on first use, committed once when the view has done its work
(inside the request, so a failure found at commit reaches the error handlers like any other), rolled back
on any error."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from workflows.errors import Conflict, DomainError

log = logging.getLogger(__name__)
# Seconds a client should wait before trying again when the database is away (a restart takes a few).
RETRY_AFTER = 5


class Unavailable(DomainError):
    """The database could not take the request's writes (down, or busy beyond the wait)."""

    status = 503
    headers = {"Retry-After": str(RETRY_AFTER)}

    def __init__(self):
        super().__init__("数据库暂时不可用，您的操作未保存，请稍后重试")


def as_domain_error(exc: Exception) -> Exception:
    """What a database failure met anywhere in a request means to the user: the database away (down,
    restarting, out of disk, read-only, busy beyond the wait) is Unavailable; a write another request
    made first is a Conflict. Anything else is returned as it is (a defect: a 500)."""
    if isinstance(exc, StaleDataError):
        return Conflict("数据刚被其他人更新，您的操作未保存，请刷新后重试")
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout) or lost:
        log.warning("database unavailable: %s", exc)
        return Unavailable()
    return exc


def reachable() -> bool:
    """Whether the database answers a query now (a round trip on a pooled connection, no transaction
    held: on SQLite a read does not take the write lock the request sessions take)."""
    engine = current_app.extensions["db_engine"]
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
            connection.rollback()
        finally:
            connection.close()
    except Exception as exc:  # any failure means "not now"; the reason goes to the log
        log.warning("health check: database unreachable: %s", exc)
        return False
    return True


def db() -> Session:
    """The request's database session (opened on first use)."""
    if "db" not in g:
        g.db = current_app.extensions["db_sessions"]()
    return g.db


def undo() -> None:
    """Roll back what this request wrote so far (a use case refused; the page is shown again)."""
    if "db" in g:
        try:
            g.db.rollback()
        except DBAPIError:  # the connection is gone: nothing of the request's survives on it anyway
            log.warning("rolling back on a lost connection", exc_info=True)


def commit() -> None:
    """Commit what the request wrote; a conflict found only now is a Conflict, an outage Unavailable."""
    session = g.get("db")
    if session is None or not session.is_active:
        return
    try:
        session.commit()
    except (IntegrityError, StaleDataError) as exc:
        session.rollback()
        raise Conflict("数据刚被其他人更新，您的操作未保存，请刷新后重试") from exc
    except DBAPIError as exc:
        session.rollback()
        raise Unavailable() from exc


def init_app(app: Flask) -> None:
    @app.teardown_request
    def _close(exc):
        # Whatever was not committed by now (an error, an aborted request) is rolled back. Closing on a
        # connection the database dropped must not turn the answer already made into the server's 500.
        session = g.pop("db", None)
        if session is not None:
            try:
                session.close()
            except Exception:
                log.exception("closing the request's database session failed")
