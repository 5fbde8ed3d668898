"""Telephone numbers: mainland mobile numbers and landlines with an area code."""

from __future__ import annotations

import re
import unicodedata

# re.ASCII: without it \d also matches full-width and other Unicode digits.
_MOBILE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$", re.ASCII)


class PhoneError(ValueError):
    """A telephone number that is neither a mobile nor a landline number."""


def validate_phone(text: str) -> str:
    """Return the number without spaces, or raise PhoneError if it is not a valid phone number."""
    number = _normalise(text)
    if _MOBILE.match(number) or _LANDLINE.match(number):
        return number
    raise PhoneError("电话号码格式错误：请填写11位手机号，或带区号的固定电话（如 0391-1234567）")


def is_mobile(number: str) -> bool:
    """Tell whether `number` is a mainland mobile number (so it can receive SMS)."""
    return bool(_MOBILE.match(_normalise(number)))


def _normalise(text: str) -> str:
    """Drop whitespace and fold full-width digits and dashes to ASCII."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))


def mask_phone(number: str) -> str:
    """Hide the middle of a phone number: 13812345678 -> 138****5678."""
    number = _normalise(number)
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
