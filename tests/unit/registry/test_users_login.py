import pytest

from workflows.errors import RegistryError
from workflows.models import Role
from workflows.users import authenticate, create_user, hash_password, verify_password


def test_hash_and_verify():
    hashed = hash_password("正确的密码123")

    assert hashed.startswith("$argon2id$") and "正确的密码123" not in hashed
    assert verify_password(hashed, "正确的密码123")
    assert not verify_password(hashed, "错误的密码123")
    assert not verify_password("", "anything")
    assert not verify_password("not-a-hash", "anything")


def test_create_and_authenticate(session, areas):
    user = create_user(
        session,
        username="li.xiumei",
        display_name="李秀梅",
        role="village_assistant",
        area_code="410825100201",
        password="secret-123",
    )

    assert (user.role, user.area_code, user.is_active) == (Role.VILLAGE_ASSISTANT, "410825100201", True)
    assert authenticate(session, " li.xiumei ", "secret-123") is user
    assert authenticate(session, "li.xiumei", "secret-124") is None
    user.is_active = False
    assert authenticate(session, "li.xiumei", "secret-123") is None


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
