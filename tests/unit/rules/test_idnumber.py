from datetime import date

import pytest

from workflows.rules.idnumber import IdInfo, IdNumberError, mask_id_number, parse_id_number

TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(
    ("text", "number", "birth_date", "sex", "area_code"),
    [
        ("34052419800101001X", "34052419800101001X", date(1980, 1, 1), "male", "340524"),
        ("11010519491231002X", "11010519491231002X", date(1949, 12, 31), "female", "110105"),
        ("11010519491231002x", "11010519491231002X", date(1949, 12, 31), "female", "110105"),
        (" 340524 19800101 001X ", "34052419800101001X", date(1980, 1, 1), "male", "340524"),
        # Full-width digits and letter, as some input methods type them.
        ("３４０５２４１９８００１０１００１Ｘ", "34052419800101001X", date(1980, 1, 1), "male", "340524"),
        # 15-digit legacy number: "19" inserted before the year, check character computed.
        ("340524800101001", "34052419800101001X", date(1980, 1, 1), "male", "340524"),
        ("110105491231002", "11010519491231002X", date(1949, 12, 31), "female", "110105"),
    ],
)
def test_parse_valid_numbers(text, number, birth_date, sex, area_code):
    info = parse_id_number(text, today=TODAY)
    assert info == IdInfo(number=number, birth_date=birth_date, sex=sex, area_code=area_code)


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("110101202311012171", "check_digit", "应为 6"),
        ("340524198001010011", "check_digit", "应为 X"),
        ("11010519490230002X", "birth_date", "不是有效日期"),
        ("11010519491331002X", "birth_date", "不是有效日期"),
        ("110101202601012171", "birth_date", "晚于今天"),
        ("3405241980010100", "length", "长度"),
        ("34052419800101001XX", "length", "长度"),
        ("", "length", "长度"),
        ("3405241980010100X1", "format", "格式"),
        ("34052419800101001Y", "format", "格式"),
        ("34052480010100X", "format", "数字"),
        ("34052419800101001٣", "format", "格式"),  # an Arabic-Indic digit is not a digit here
    ],
)
def test_parse_refuses_invalid_numbers(text, code, fragment):
    with pytest.raises(IdNumberError) as caught:
        parse_id_number(text, today=TODAY)
    assert caught.value.code == code
    assert fragment in str(caught.value)


def test_invalid_number_from_domain_is_refused_with_any_reason():
    # The domain example is both born in the future (seen from 2023) and wrong in its check character.
    with pytest.raises(IdNumberError) as caught:
        parse_id_number("110101202311012171", today=date(2023, 1, 1))
    assert caught.value.code == "birth_date"


@pytest.mark.parametrize(
    ("day", "age"),
    [
        (date(2029, 12, 30), 79),
        (date(2029, 12, 31), 80),
        (date(2030, 1, 1), 80),
    ],
)
def test_age_in_full_years(day, age):
    assert parse_id_number("11010519491231002X", today=TODAY).age_on(day) == age


def test_mask_keeps_first_and_last_four():
    assert mask_id_number("410521198001011234") == "4105**********1234"
    assert mask_id_number("34052419800101001x") == "3405**********001X"


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_id_number("123", today=TODAY)
