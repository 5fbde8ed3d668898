import pytest

from workflows.rules.phone import PhoneError, is_mobile, mask_phone, validate_phone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13812345678", "13812345678"),
        ("199 1234 5678", "19912345678"),
        ("0391-1234567", "0391-1234567"),
        ("03911234567", "03911234567"),
        ("010-12345678", "010-12345678"),
        ("0356-7654321", "0356-7654321"),
        ("１３８１２３４５６７８", "13812345678"),
    ],
)
def test_valid_numbers(text, expected):
    assert validate_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1381234567٨",
        "12812345678",
        "1381234567",
        "138123456789",
        "391-1234567",
        "0391-123456",
        "0391-123456789",
        "abc",
    ],
)
def test_invalid_numbers(text):
    with pytest.raises(PhoneError, match="电话号码格式错误"):
        validate_phone(text)


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"


def test_is_mobile():
    assert is_mobile("13812345678")
    assert not is_mobile("0391-1234567")
