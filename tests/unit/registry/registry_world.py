"""Shared constants and helpers for the elder-register tests (conftest holds the fixtures)."""

from datetime import UTC, date, datetime

from workflows.rules.idnumber import compute_check_char

# 10:00 in Beijing on 2025-06-01.
NOW = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
TODAY = date(2025, 6, 1)

XIANGYUN = "410825100"  # 祥云镇
XIANGYUN_VILLAGE = "410825100201"  # 祥云镇祥云村
DAYULAN_VILLAGE = "410825100202"  # 祥云镇大玉兰村
FANTIAN = "410825101"  # 番田镇
FANTIAN_VILLAGE = "410825101201"  # 番田镇番田村


def make_id(birth: date, sequence: int = 11, area: str = "410825") -> str:
    """Return a valid 18-character ID number (odd sequence = male)."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + compute_check_char(first17)
