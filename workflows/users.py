"""People who log in: create them, hash and check their passwords (argon2)."""

from __future__ import annotations

import re
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock, office_log
from .deadlines import LOCAL
from .errors import LoginRefused, NotFound, RegistryError
from .models.registry import Area, Role, User

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
MIN_PASSWORD_LENGTH = 8

# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    """Return an argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Tell whether `password` matches `password_hash` (argument order as argon2's and werkzeug's)."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: Session, *, username: str, display_name: str, role: Role | str, area_code: str, password: str
) -> User:
    """Create a user with a hashed password, refusing a taken username or an unknown area."""
    errors: dict[str, str] = {}
    username = (username or "").strip()
    if not _USERNAME.match(username):
        errors["username"] = "用户名须为2–64位字母、数字、下划线、点或连字符"
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = f"用户名 {username} 已被使用"
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 64:
        errors["display_name"] = "请填写姓名（最多64个字）"
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = f"未知角色：{role}"
    if session.get(Area, area_code) is None:
        errors["area_code"] = f"行政区划代码 {area_code} 不存在"
    if len(password or "") < MIN_PASSWORD_LENGTH:
        errors["password"] = f"密码至少{MIN_PASSWORD_LENGTH}位"
    if errors:
        raise RegistryError("用户信息有误：" + "；".join(errors.values()), field_errors=errors)
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        area_code=area_code,
        password_hash=hash_password(password),
        is_active=True,
        created_at=clock.now(),
    )
    session.add(user)
    session.flush()
    return user


# Sign-in failures in a row that lock an account, and for how long (against password guessing).
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15


def authenticate(
    session: Session, username: str, password: str, *, channel: str = "web", address: str | None = None
) -> User:
    """Return the active user with this username and password, or raise LoginRefused.

    Failures are counted on the account; after MAX_FAILED_LOGINS in a row it is locked for LOCK_MINUTES,
    even to the right password. The count is written although the sign-in is refused. Every attempt is
    written to the office log (`channel` web/api/cli, `address` the client's).
    """
    try:
        user = _authenticate(session, username, password)
    except LoginRefused as refused:
        known = session.scalar(select(User).where(User.username == (username or "").strip()))
        office_log.sign_in_refused(
            session, (username or "").strip(), known, refused.message, channel=channel, address=address
        )
        raise
    office_log.sign_in(session, user, channel=channel, address=address)
    return user


def _authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None or not user.is_active or not user.password_hash:
        verify_password(_DUMMY_HASH, password or "")
        raise LoginRefused("用户名或密码错误")
    now = clock.now()
    if user.locked_until is not None and user.locked_until > now:
        raise LoginRefused(_locked_message(user.locked_until))
    if not verify_password(user.password_hash, password or ""):
        user.failed_logins = (user.failed_logins or 0) + 1
        left = MAX_FAILED_LOGINS - user.failed_logins
        if left <= 0:
            user.failed_logins = 0
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            session.flush()
            raise LoginRefused(_locked_message(user.locked_until))
        session.flush()
        warning = f"（再错 {left} 次，账号将锁定 {LOCK_MINUTES} 分钟）" if left <= 2 else ""
        raise LoginRefused("用户名或密码错误" + warning)
    if user.failed_logins or user.locked_until is not None:
        user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made; upgrade it while we know the password.
        user.password_hash = hash_password(password)
    session.flush()
    return user


def _locked_message(until) -> str:
    local = until.astimezone(LOCAL).strftime("%H:%M")
    return f"连续登录失败次数过多，账号已暂时锁定，请于 {local} 后再试"


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.area_code, User.role, User.username)))


def unlock(session: Session, username: str) -> User:
    """Lift a sign-in lock now (and forget the failures that led to it)."""
    user = find_user(session, username)
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> User:
    """Give the user a new password (which also lifts a sign-in lock)."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        message = f"密码至少{MIN_PASSWORD_LENGTH}位"
        raise RegistryError(message, field_errors={"password": message})
    user = find_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Disable a user who left (they can no longer sign in, nor use their API tokens), or enable again."""
    user = find_user(session, username)
    user.is_active = active
    session.flush()
    return user
