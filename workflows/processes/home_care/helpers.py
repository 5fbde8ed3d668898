"""Helpers the home-care diagrams use in scripts: checking a service month against the 六助 and the quota,
choosing call-backs. Pure functions, no database."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ...clock import as_date, month_end
from ...rules.care import SIX_HELPS

__all__ = ["SIX_HELPS", "amount", "callback_needed", "month_service_check", "month_without_records"]

CENT = Decimal("0.01")


def amount(value) -> Decimal:
    """Read an amount in 元 (string or number) as a Decimal with 2 places."""
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"金额格式不正确：{value!r}") from exc
    if not result.is_finite() or result < 0:
        raise ValueError(f"金额须为非负数：{value!r}")
    return result.quantize(CENT, rounding=ROUND_HALF_UP)


def month_service_check(services, month_start, monthly_quota, min_services=1) -> dict:
    """Check one month's service records: at least `min_services` of the 六助, within the quota, inside the month."""
    first = as_date(month_start)
    last = month_end(first)
    quota = amount(monthly_quota)
    records = list(services or [])
    total = sum((amount(r.get("amount", 0)) for r in records), Decimal("0.00"))
    helps = [r for r in records if r.get("service_type") in SIX_HELPS]
    types = [key for key in SIX_HELPS if any(r.get("service_type") == key for r in records)]
    outside = [r for r in records if not first <= as_date(r.get("service_date")) <= last]
    minimum = int(min_services or 0)
    flags = []
    if not helps:
        flags.append("本月未提供任何一类“六助”服务")
    elif len(helps) < minimum:
        flags.append(f"本月“六助”服务{len(helps)}次，少于每月至少{minimum}次的要求")
    if total > quota:
        flags.append(f"服务金额 {total} 元超出本月额度 {quota} 元，超出部分不予结算")
    if outside:
        flags.append(f"有{len(outside)}条服务记录的日期不在本月")
    return {
        "service_count": len(records),
        "service_types": types,
        "service_type_labels": "、".join(SIX_HELPS[t] for t in types),
        "service_total": str(total),
        "quota": str(quota),
        "over_quota": total > quota,
        "missing_six_helps": len(helps) < max(minimum, 1),
        "records_missing": False,
        "flags": flags,
        "flagged": bool(flags),
        "proposed_amount": str(min(total, quota)),
    }


def month_without_records(monthly_quota) -> dict:
    """The check of a month whose provider did not submit its records in time: nothing to pay until verified."""
    return {
        "service_count": 0,
        "service_types": [],
        "service_type_labels": "",
        "service_total": "0.00",
        "quota": str(amount(monthly_quota)),
        "over_quota": False,
        "missing_six_helps": True,
        "records_missing": True,
        "flags": ["服务机构逾期未提交本月服务记录", "本月未提供任何一类“六助”服务"],
        "flagged": True,
        "proposed_amount": "0.00",
    }


def callback_needed(month_check: Mapping, elder_id, month_start, callback_rate) -> bool:
    """Whether the township calls the elder back this month: always when flagged, else a repeatable sample."""
    if month_check.get("flagged"):
        return True
    rate = float(callback_rate or 0)
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    # A hash rather than random(): the same month always gives the same answer (auditable, replayable).
    digest = hashlib.sha256(f"{elder_id}:{as_date(month_start).isoformat()}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < rate
