"""The request's database session: opened on first use, committed once when the view has done its work
(inside the request, so a failure found at commit reaches the error handlers like any other), rolled back
on any error."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from workflows.errors import Conflict, DomainError


class Unavailable(DomainError):
    """The database could not take the request's writes (down, or busy beyond the wait)."""

    status = 503

    def __init__(self):
        super().__init__("数据库暂时不可用，您的操作未保存，请稍后重试")


def db() -> Session:
    """The request's database session (opened on first use)."""
    if "db" not in g:
        g.db = current_app.extensions["db_sessions"]()
    return g.db


def undo() -> None:
    """Roll back what this request wrote so far (a use case refused; the page is shown again)."""
    if "db" in g:
        g.db.rollback()


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
        # Whatever was not committed by now (an error, an aborted request) is rolled back.
        session = g.pop("db", None)
        if session is not None:
            session.close()
