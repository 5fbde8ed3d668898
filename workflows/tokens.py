"""API bearer tokens: issue on login, resolve on every call, revoke; only SHA-256 hashes are stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from . import clock, users
from .errors import DomainError, PermissionDenied
from .models import User
from .models.tokens import ApiToken

DEFAULT_TTL = timedelta(hours=12)
# Writing last_used_at on every call would turn each read into a write; once in a while is enough.
_TOUCH_EVERY = timedelta(minutes=5)
_PREFIX = "ec_"


class NotAuthenticated(DomainError):
    """No valid credentials were given."""

    status = 401


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session, user: User, *, ttl: timedelta = DEFAULT_TTL, label: str = ""
) -> tuple[str, ApiToken]:
    """Create a token for `user`; return the secret (shown once) and its stored record."""
    secret = _PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    record = ApiToken(
        token_hash=_digest(secret), user_id=user.id, label=label[:100], created_at=now, expires_at=now + ttl
    )
    session.add(record)
    session.flush()
    return secret, record


def login(
    session: Session,
    username: str,
    password: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    address: str | None = None,
) -> tuple[str, ApiToken]:
    """Check a username and password and issue a token, or refuse with 401 (LoginRefused)."""
    user = users.authenticate(session, username, password, channel="api", address=address)
    if user.must_change_password:
        raise PermissionDenied("请先在网页上登录并把临时密码改为自己的密码，再使用接口")
    return issue_token(session, user, ttl=ttl, label="api login")


_USER_COLUMNS = list(User.__table__.columns)
_TOKENS = ApiToken.__table__
# Every API call starts here, so it is one Core statement built once (no ORM load of the user).
_BY_HASH = (
    select(_TOKENS.c.id, _TOKENS.c.expires_at, _TOKENS.c.revoked_at, _TOKENS.c.last_used_at, *_USER_COLUMNS)
    .join(User.__table__, User.__table__.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.token_hash == bindparam("h"))
)


def user_for_token(session: Session, token: str | None) -> User:
    """Return the active user a bearer token belongs to, or refuse with 401."""
    if not token or not token.startswith(_PREFIX) or len(token) > 200:
        raise NotAuthenticated("请先登录（缺少有效的访问令牌）")
    row = session.connection().execute(_BY_HASH, {"h": _digest(token)}).first()
    now = clock.now()
    if row is None or row[2] is not None:
        raise NotAuthenticated("访问令牌无效，请重新登录")
    token_id, expires_at, _revoked, last_used_at = row[:4]
    if expires_at <= now:
        raise NotAuthenticated("访问令牌已过期，请重新登录")
    # A detached User built from the row: reads work as on a loaded one, and nothing is written back.
    user = User(**{c.key: value for c, value in zip(_USER_COLUMNS, row[4:], strict=True)})
    make_transient_to_detached(user)
    if not user.is_active:
        raise NotAuthenticated("账号已停用")
    if last_used_at is None or now - last_used_at > _TOUCH_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return user


def revoke_token(session: Session, token: str) -> bool:
    """Revoke a token (logout); return whether it existed."""
    done = session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == _digest(token or ""), ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return done.rowcount > 0
