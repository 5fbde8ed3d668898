"""Resident ID numbers (居民身份证号码, GB 11643-1999): parse, check, mask.

An 18-character number is a 6-digit area code, the birth date as YYYYMMDD, a 3-digit sequence (odd = male)
and a check character. Legacy 15-digit numbers (two-digit year, no check character) are converted to the
18-character form. The area code is deliberately not checked against a list: codes are retired and reissued,
and a stale list would refuse real residents.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from workflows import clock

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_RE_18 = re.compile(r"^[0-9]{17}[0-9X]$")
_RE_15 = re.compile(r"^[0-9]{15}$")


class IdNumberError(ValueError):
    """A resident ID number that is malformed; `code` says which check failed."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class IdInfo:
    """What a valid resident ID number tells us."""

    number: str
    birth_date: date
    sex: str
    area_code: str

    def age_on(self, day: date) -> int:
        """Return the age in full years (周岁) on `day`."""
        return age_on(self.birth_date, day)


def age_on(birth_date: date, day: date) -> int:
    """Return the age in full years (周岁) of someone born on `birth_date`, on `day`."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (1 if before_birthday else 0)


def compute_check_char(first17: str) -> str:
    """Return the check character for the first 17 digits of an ID number."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_id_number(text: str, *, today: date | None = None) -> IdInfo:
    """Parse and check a resident ID number, converting a 15-digit one to 18 characters."""
    if today is None:
        today = clock.today()
    number = _normalise(text)
    if len(number) == 15:
        if not _RE_15.match(number):
            raise IdNumberError("15位身份证号只能由数字组成", "format")
        first17 = number[:6] + "19" + number[6:]
        number = first17 + compute_check_char(first17)
    elif len(number) == 18:
        if not _RE_18.match(number):
            raise IdNumberError("身份证号格式错误：前17位须为数字，末位为数字或X", "format")
    else:
        raise IdNumberError(f"身份证号长度错误：应为18位（或旧版15位），实为{len(number)}位", "length")

    birth_date = _read_birth_date(number[6:14])
    if birth_date > today:
        raise IdNumberError(f"身份证号中的出生日期 {birth_date.isoformat()} 晚于今天", "birth_date")

    expected = compute_check_char(number[:17])
    if number[17] != expected:
        raise IdNumberError(f"身份证号校验位错误：应为 {expected}", "check_digit")

    sex = "male" if int(number[16]) % 2 == 1 else "female"
    return IdInfo(number=number, birth_date=birth_date, sex=sex, area_code=number[:6])


def _read_birth_date(digits: str) -> date:
    """Return the birth date encoded as YYYYMMDD, or raise if it is not a real date."""
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise IdNumberError(f"身份证号中的出生日期 {digits} 不是有效日期", "birth_date") from None


def _normalise(text: str) -> str:
    """Drop whitespace, fold full-width digits and letters (common in Chinese input methods), uppercase x."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).upper()


def mask_id_number(number: str) -> str:
    """Hide all but the first 4 and last 4 characters of an ID number."""
    number = _normalise(number)
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]
