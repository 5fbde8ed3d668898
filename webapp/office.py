"""What the web layer tells the office log: a refused page or API call, with who, from where, and what."""

from __future__ import annotations

from flask import g, request
from flask_login import current_user

from workflows import office_log

from .database import db


def actor_or_none():
    """The person behind this request: the signed-in user, or the API token's, or nobody."""
    if getattr(current_user, "is_authenticated", False):
        return current_user.user
    return g.get("api_user")


def channel() -> str:
    return "api" if request.path.startswith("/api/") else "web"


def log_denial(message: str) -> None:
    """Record that this request was refused for role or area (the request's own writes were undone)."""
    office_log.denied(
        db(),
        actor_or_none(),
        f"{request.method} {request.full_path.rstrip('?')}",
        message,
        channel=channel(),
        address=request.remote_addr,
    )
