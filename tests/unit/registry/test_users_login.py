from datetime import UTC, datetime

import pytest

from workflows import clock
from workflows.errors import LoginRefused, RegistryError
from workflows.models import Role
from workflows.users import MAX_FAILED_LOGINS, authenticate, create_user, hash_password, verify_password


def test_hash_and_verify():
    hashed = hash_password("正确的密码123")

    assert hashed.startswith("$argon2id$") and "正确的密码123" not in hashed
    assert verify_password(hashed, "正确的密码123")
    assert not verify_password(hashed, "错误的密码123")
    assert not verify_password("", "anything")
    assert not verify_password("not-a-hash", "anything")


def _li_xiumei(session):
    return create_user(
        session,
        username="li.xiumei",
        display_name="李秀梅",
        role="village_assistant",
        area_code="410825100201",
        password="secret-123",
    )


def test_create_and_authenticate(session, areas):
    user = _li_xiumei(session)

    assert (user.role, user.area_code, user.is_active) == (Role.VILLAGE_ASSISTANT, "410825100201", True)
    assert authenticate(session, " li.xiumei ", "secret-123") is user
    with pytest.raises(LoginRefused, match="^用户名或密码错误$"):
        authenticate(session, "li.xiumei", "secret-124")
    user.is_active = False
    with pytest.raises(LoginRefused, match="^用户名或密码错误$"):
        authenticate(session, "li.xiumei", "secret-123")
    with pytest.raises(LoginRefused, match="^用户名或密码错误$"):
        authenticate(session, "nobody", "secret-123")


def test_repeated_failures_lock_the_account_for_a_while(session, areas):
    user = _li_xiumei(session)
    start = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
    moment = clock.ManualClock(start)
    with clock.using(moment):
        messages = []
        for _ in range(MAX_FAILED_LOGINS):
            with pytest.raises(LoginRefused) as refused:
                authenticate(session, "li.xiumei", "guess")
            messages.append(refused.value.message)
        assert messages[:2] == ["用户名或密码错误"] * 2
        assert messages[2:4] == [
            "用户名或密码错误（再错 2 次，账号将锁定 15 分钟）",
            "用户名或密码错误（再错 1 次，账号将锁定 15 分钟）",
        ]
        assert messages[4].startswith("连续登录失败次数过多，账号已暂时锁定，请于 09:15 后再试")
        # Locked: even the right password is refused until the time is up.
        moment.advance(minutes=14)
        with pytest.raises(LoginRefused, match="请于 09:15 后再试"):
            authenticate(session, "li.xiumei", "secret-123")
        moment.advance(minutes=1)
        assert authenticate(session, "li.xiumei", "secret-123") is user
        assert (user.failed_logins, user.locked_until) == (0, None)
        # A success clears the count: failures must be in a row to lock.
        for _ in range(MAX_FAILED_LOGINS - 1):
            with pytest.raises(LoginRefused):
                authenticate(session, "li.xiumei", "guess")
        assert authenticate(session, "li.xiumei", "secret-123") is user
        with pytest.raises(LoginRefused, match="^用户名或密码错误$"):
            authenticate(session, "li.xiumei", "guess")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"username": "taken"}, "username", "用户名 taken 已被使用"),
        ({"username": "中文名"}, "username", "用户名须为2–64位字母、数字、下划线、点或连字符"),
        ({"display_name": ""}, "display_name", "请填写姓名（最多64个字）"),
        ({"role": "mayor"}, "role", "未知角色：mayor"),
        ({"area_code": "999999"}, "area_code", "行政区划代码 999999 不存在"),
        ({"password": "short"}, "password", "密码至少8位"),
    ],
)
def test_create_user_refuses_bad_input(session, areas, changes, field, message):
    create_user(
        session,
        username="taken",
        display_name="甲",
        role="caseworker",
        area_code="410825100",
        password="secret-123",
    )
    data = {
        "username": "new.user",
        "display_name": "新用户",
        "role": "caseworker",
        "area_code": "410825100",
        "password": "secret-123",
    }

    with pytest.raises(RegistryError) as caught:
        create_user(session, **{**data, **changes})

    assert caught.value.field_errors == {field: message}
