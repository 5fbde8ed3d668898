"""People who log in: create them, hash and check their passwords (argon2), and administer them.

Administration (add, edit, move to another area, change role, link to an organisation, disable, unlock,
reset the password) is one set of use cases for the pages, the API and the command line. An administrator
manages the accounts inside their own area only, never their own role, area or state; the command line on
the server (actor None) manages every account. Every change is written to the administration log.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import access, admin_log, clock, office_log
from .deadlines import LOCAL
from .errors import LoginRefused, NotFound, PermissionDenied, RegistryError, ValidationFailed
from .models import Case, HumanTask, TaskStatus
from .models.base import is_row_id
from .models.office import PasswordReset
from .models.organisations import Organisation
from .models.registry import Area, Role, User
from .models.tokens import ApiToken

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
MIN_PASSWORD_LENGTH = 8
# Temporary passwords avoid characters that are easily misread on paper (0/O, 1/l/I).
_TEMPORARY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
TEMPORARY_LENGTH = 12
RESET_LINK_HOURS = 24

# Checked against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")

ROLE_LABELS = {
    Role.VILLAGE_ASSISTANT: "养老协理员",
    Role.CASEWORKER: "乡镇经办人",
    Role.ASSESSOR: "评估员",
    Role.APPROVER: "县民政局审批人",
    Role.PROVIDER: "服务机构",
    Role.FACILITY_ADMIN: "养老机构管理员",
    Role.AUDITOR: "监督审计",
    Role.PROCESS_OWNER: "流程管理员",
    Role.ADMIN: "系统管理员",
}


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


def temporary_password() -> str:
    return "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(TEMPORARY_LENGTH))


def _password_error(password: str | None) -> str | None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return f"密码至少{MIN_PASSWORD_LENGTH}位"
    if len(password) > 200:
        return "密码最多200位"
    return None


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role | str,
    area_code: str,
    password: str,
    organisation_id: int | None = None,
    must_change_password: bool = False,
) -> User:
    """Create a user with a hashed password, refusing a taken username or an unknown area."""
    errors: dict[str, str] = {}
    username = (username or "").strip() if isinstance(username, str) else ""
    if not _USERNAME.match(username):
        errors["username"] = "用户名须为2–64位字母、数字、下划线、点或连字符"
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = f"用户名 {username} 已被使用"
    display_name = _text(display_name)
    if not display_name or len(display_name) > 64:
        errors["display_name"] = "请填写姓名（最多64个字）"
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = f"未知角色：{role}"
        role = None
    area = session.get(Area, area_code) if isinstance(area_code, str) and area_code else None
    if area is None:
        errors["area_code"] = f"行政区划代码 {area_code} 不存在"
    elif area.retired_at is not None:
        errors["area_code"] = f"行政区划 {area.name} 已撤销，不能再分配用户"
    problem = _password_error(password)
    if problem:
        errors["password"] = problem
    if role is not None and "organisation_id" not in errors:
        problem = _organisation_problem(session, role, organisation_id)
        if problem:
            errors["organisation_id"] = problem
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
        organisation_id=organisation_id,
        must_change_password=must_change_password,
    )
    try:
        with session.begin_nested():  # two administrators adding the same username at once: one wins
            session.add(user)
            session.flush()
    except IntegrityError:
        message = f"用户名 {username} 已被使用"
        raise RegistryError(message, field_errors={"username": message}) from None
    return user


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _organisation_problem(session: Session, role: Role, organisation_id) -> str | None:
    """Why an account of `role` cannot belong to this organisation (None when it can)."""
    if organisation_id is None:
        return None
    organisation = session.get(Organisation, organisation_id) if is_row_id(organisation_id) else None
    if organisation is None:
        return "所属机构不存在"
    if organisation.kind.staff_role != role:
        return f"{ROLE_LABELS[role]}不能隶属于{organisation.kind.label}“{organisation.name}”"
    return None


# --------------------------------------------------------------------------------------------------
# Signing in

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


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > clock.now()


def change_own_password(session: Session, user: User, current: str, new: str) -> User:
    """A person replaces their own password (a temporary one at the first sign-in, or any time)."""
    errors: dict[str, str] = {}
    if not verify_password(user.password_hash, current or ""):
        errors["current"] = "当前密码不正确"
    problem = _password_error(new)
    if problem:
        errors["new"] = problem
    elif new == current:
        errors["new"] = "新密码不能与当前密码相同"
    if errors:
        raise ValidationFailed("密码未修改：" + "；".join(errors.values()), field_errors=errors)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    session.flush()
    admin_log.record(session, user, "user", user.id, "password_changed", f"{user.username} 修改了本人密码")
    return user


# --------------------------------------------------------------------------------------------------
# Administration


@dataclass
class Issued:
    """What an administrator hands on after a change: a temporary password or a one-time link's secret,
    shown once and never stored in the clear."""

    user: User
    temporary_password: str | None = None
    reset_token: str | None = None


def require_admin(actor: User | None) -> None:
    """Refuse anyone but an active administrator (None, the command line on the server, may do anything)."""
    if actor is None:
        return
    if not actor.is_active or actor.role != Role.ADMIN:
        raise PermissionDenied("只有系统管理员可以管理用户、区划和机构")


def manages(actor: User | None, area_code: str | None) -> bool:
    """Whether an administrator's area covers `area_code`."""
    return actor is None or (area_code is not None and access.covers(actor, area_code))


def get_user(session: Session, actor: User | None, user_id) -> User:
    require_admin(actor)
    user = session.get(User, user_id) if is_row_id(user_id) else None
    if user is None:
        raise NotFound("用户不存在")
    if not manages(actor, user.area_code):
        raise PermissionDenied("无权管理其他辖区的用户")
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    return user


def list_users(
    session: Session,
    actor: User | None = None,
    *,
    q: str | None = None,
    role: str | None = None,
    area_code: str | None = None,
    organisation_id: int | None = None,
    limit: int = 500,
) -> list[User]:
    """The accounts inside the administrator's area, filtered; everyone for the command line."""
    require_admin(actor)
    query = select(User).order_by(User.area_code, User.role, User.username).limit(limit)
    if actor is not None:
        query = query.where(User.area_code.startswith(actor.area_code, autoescape=True))
    if area_code:
        query = query.where(User.area_code.startswith(area_code, autoescape=True))
    if role:
        query = query.where(User.role == role) if role in {r.value for r in Role} else query.where(False)
    if organisation_id is not None:
        query = query.where(User.organisation_id == organisation_id)
    text = "".join((q or "").split())[:50]
    if text:
        query = query.where(
            or_(
                User.username.contains(text, autoescape=True),
                User.display_name.contains(text, autoescape=True),
            )
        )
    return list(session.scalars(query))


def add_user(session: Session, actor: User | None, data: Mapping, *, password: str | None = None) -> Issued:
    """Add an account in the administrator's area. Without a password given, a temporary one is made: it
    is shown once, and must be replaced at the first sign-in."""
    require_admin(actor)
    area_code = data.get("area_code")
    if isinstance(area_code, str) and area_code and not manages(actor, area_code):
        message = "只能在本人管辖的区划内添加用户"
        raise PermissionDenied(message)
    temporary = None if password else temporary_password()
    organisation_id = data.get("organisation_id") or None
    _require_visible_organisation(session, actor, organisation_id)
    user = create_user(
        session,
        username=data.get("username"),
        display_name=data.get("display_name"),
        role=data.get("role"),
        area_code=area_code,
        password=password or temporary,
        organisation_id=organisation_id,
        must_change_password=temporary is not None,
    )
    admin_log.record(
        session,
        actor,
        "user",
        user.id,
        "added",
        f"添加用户 {user.username}（{user.display_name}，{ROLE_LABELS[user.role]}，{user.area_code}）",
        changes={
            "role": (None, user.role),
            "area_code": (None, user.area_code),
            "organisation_id": (None, user.organisation_id),
        },
    )
    return Issued(user, temporary_password=temporary)


def _require_visible_organisation(session: Session, actor: User | None, organisation_id) -> None:
    if organisation_id is None or actor is None or not is_row_id(organisation_id):
        return
    organisation = session.get(Organisation, organisation_id)
    if organisation is not None and not manages(actor, organisation.area_code):
        raise PermissionDenied("无权把用户关联到其他辖区的机构")


# Fields an administrator may change, and how the log names them.
EDITABLE = {
    "display_name": "姓名",
    "role": "角色",
    "area_code": "管辖区划",
    "organisation_id": "所属机构",
    "is_active": "启用",
}


def update_user(session: Session, actor: User | None, user_id, changes: Mapping) -> User:
    """Change an account: name, role, area, organisation, enabled; `unlock: true` lifts a sign-in lock.

    Tasks the person had claimed and can no longer work after the change go back to their group.
    """
    unknown = sorted(set(changes) - set(EDITABLE) - {"unlock"})
    if unknown:
        message = f"不能修改的字段：{'、'.join(unknown)}"
        raise ValidationFailed(message, field_errors={key: "不能修改此项" for key in unknown})
    user = get_user(session, actor, user_id)
    _lock_row(session, user)
    own = actor is not None and actor.id == user.id
    errors: dict[str, str] = {}
    new = {key: getattr(user, key) for key in EDITABLE}
    if "display_name" in changes:
        name = _text(changes["display_name"])
        if not name or len(name) > 64:
            errors["display_name"] = "请填写姓名（最多64个字）"
        new["display_name"] = name
    if "role" in changes:
        try:
            new["role"] = Role(changes["role"])
        except ValueError:
            errors["role"] = f"未知角色：{changes['role']}"
        else:
            if own and new["role"] != user.role:
                errors["role"] = "不能修改本人的角色"
    if "area_code" in changes:
        code = changes["area_code"]
        area = session.get(Area, code) if isinstance(code, str) and code else None
        if area is None:
            errors["area_code"] = f"行政区划代码 {code} 不存在"
        elif area.retired_at is not None:
            errors["area_code"] = f"行政区划 {area.name} 已撤销"
        elif not manages(actor, code):
            errors["area_code"] = "只能调整到本人管辖的区划内"
        elif own and code != user.area_code:
            errors["area_code"] = "不能修改本人的管辖区划"
        new["area_code"] = code
    if "is_active" in changes:
        if not isinstance(changes["is_active"], bool):
            errors["is_active"] = "应为是或否"
        elif own and not changes["is_active"]:
            errors["is_active"] = "不能停用本人的账号"
        else:
            new["is_active"] = changes["is_active"]
    if "organisation_id" in changes:
        new["organisation_id"] = changes["organisation_id"] or None
    elif new["role"] != user.role and user.organisation_id is not None:
        # A new role outside that organisation's kind: the link goes with the old role.
        organisation = session.get(Organisation, user.organisation_id)
        if organisation is not None and organisation.kind.staff_role != new["role"]:
            new["organisation_id"] = None
    if "role" not in errors and "organisation_id" not in errors:
        problem = _organisation_problem(session, new["role"], new["organisation_id"])
        if problem:
            errors["organisation_id"] = problem
    if errors:
        raise ValidationFailed("用户信息有误：" + "；".join(errors.values()), field_errors=errors)
    _require_visible_organisation(session, actor, new["organisation_id"])
    unlock = changes.get("unlock") is True
    changed = {key: (getattr(user, key), value) for key, value in new.items() if getattr(user, key) != value}
    if unlock and (user.locked_until is not None or user.failed_logins):
        changed["locked_until"] = (user.locked_until, None)
        user.failed_logins, user.locked_until = 0, None
    if not changed:
        return user
    for key, (_old, value) in changed.items():
        if key in EDITABLE:
            setattr(user, key, value)
    session.flush()
    released = _release_unworkable_tasks(session, actor, user)
    admin_log.record(
        session,
        actor,
        "user",
        user.id,
        "changed",
        f"修改用户 {user.username}：" + "、".join(_change_words(changed)),
        changes=changed,
        detail={"released_tasks": released} if released else None,
    )
    return user


def _change_words(changed: Mapping) -> list[str]:
    words = []
    for key, (old, new) in changed.items():
        if key == "locked_until":
            words.append("解除登录锁定")
        elif key == "is_active":
            words.append("启用" if new else "停用")
        elif key == "role":
            words.append(f"角色 {ROLE_LABELS.get(old, old)} → {ROLE_LABELS.get(new, new)}")
        else:
            words.append(
                f"{EDITABLE[key]} {old if old is not None else '无'} → {new if new is not None else '无'}"
            )
    return words


def _lock_row(session: Session, user: User) -> None:
    """Serialise two administrators changing the same account (PostgreSQL; SQLite writes one at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.id).where(User.id == user.id).with_for_update())
        session.refresh(user)


def _release_unworkable_tasks(session: Session, actor: User | None, user: User) -> list[str]:
    """Give back to their group the tasks the person claimed and may no longer work (new role, area or
    organisation, or disabled)."""
    from_person = session.execute(
        select(HumanTask, Case.organisation_id)
        .join(Case, Case.id == HumanTask.case_id)
        .where(HumanTask.assignee_id == user.id, HumanTask.status == TaskStatus.READY)
    ).all()
    released = []
    for task, organisation_id in from_person:
        unclaimed = SimpleNamespace(role=task.role, area_code=task.area_code, assignee_id=None)
        outside = access.reads_only_own_cases(user) and user.organisation_id is not None
        same_organisation = not outside or organisation_id in (None, user.organisation_id)
        if user.is_active and access.can_work_task(user, unclaimed) and same_organisation:
            continue
        task.assignee_id, task.claimed_at = None, None
        released.append(task.id)
    session.flush()
    return released


def reset_password(session: Session, actor: User | None, user_id, how: str = "temporary") -> Issued:
    """Give an account a new temporary password (to be changed at sign-in), or a one-time link to set one.

    Either way the sign-in lock is lifted and the account's API tokens stop working."""
    user = get_user(session, actor, user_id)
    if how not in ("temporary", "link"):
        raise ValidationFailed("重置方式须为临时密码或一次性链接", field_errors={"how": "不是允许的选项"})
    now = clock.now()
    user.failed_logins, user.locked_until = 0, None
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    # Earlier links of this account stop working: only the newest one is valid.
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    if how == "temporary":
        secret = temporary_password()
        user.password_hash = hash_password(secret)
        user.must_change_password = True
        session.flush()
        admin_log.record(
            session, actor, "user", user.id, "password_reset", f"为 {user.username} 生成临时密码"
        )
        return Issued(user, temporary_password=secret)
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=_digest(token),
            created_at=now,
            created_by=actor.id if actor is not None else None,
            expires_at=now + timedelta(hours=RESET_LINK_HOURS),
        )
    )
    session.flush()
    admin_log.record(
        session,
        actor,
        "user",
        user.id,
        "reset_link",
        f"为 {user.username} 生成一次性密码设置链接（{RESET_LINK_HOURS}小时内有效）",
    )
    return Issued(user, reset_token=token)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _reset_for(session: Session, token: str) -> PasswordReset:
    if not token or len(token) > 100:
        raise NotFound("链接无效或已过期")
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _digest(token)))
    if reset is None or reset.used_at is not None or reset.expires_at <= clock.now():
        raise NotFound("链接无效、已使用或已过期，请联系系统管理员重新生成")
    return reset


def check_reset_link(session: Session, token: str) -> User:
    """The account a one-time link sets the password of (refused when used, expired or unknown)."""
    user = session.get(User, _reset_for(session, token).user_id)
    if user is None or not user.is_active:
        raise NotFound("链接无效或账号已停用")
    return user


def redeem_reset_link(session: Session, token: str, password: str) -> User:
    """Set the password through a one-time link; the link is void afterwards (also when two tabs race)."""
    reset = _reset_for(session, token)
    user = check_reset_link(session, token)
    problem = _password_error(password)
    if problem:
        raise ValidationFailed(problem, field_errors={"new": problem})
    used = session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=clock.now())
    )
    if used.rowcount != 1:
        raise NotFound("链接已使用")
    user.password_hash = hash_password(password)
    user.must_change_password = False
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    admin_log.record(
        session, user, "user", user.id, "password_set", f"{user.username} 通过一次性链接设置了密码"
    )
    return user


# --------------------------------------------------------------------------------------------------
# The command line's verbs, by username (the server's operator: no area limits)


def unlock(session: Session, username: str) -> User:
    """Lift a sign-in lock now (and forget the failures that led to it)."""
    user = find_user(session, username)
    if user.locked_until is None and not user.failed_logins:
        return user
    return update_user(session, None, user.id, {"unlock": True})


def set_password(session: Session, username: str, password: str) -> User:
    """Give the user a new password (which also lifts a sign-in lock)."""
    problem = _password_error(password)
    if problem:
        raise RegistryError(problem, field_errors={"password": problem})
    user = find_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    user.must_change_password = False
    session.flush()
    admin_log.record(
        session, None, "user", user.id, "password_set", f"在服务器上为 {user.username} 设置新密码"
    )
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Disable a user who left (they can no longer sign in, nor use their API tokens), or enable again."""
    user = find_user(session, username)
    return update_user(session, None, user.id, {"is_active": active})
