"""Helpers the care diagrams call (assessment, home care, visiting care): scoring a GB/T 42195 form,
checking a service month, choosing call-backs, computing timer dates. Pure functions, no database."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ..rules.assessment import (
    GROUPS,
    ITEMS,
    AssessmentError,
    AssessmentReason,
    DisabilityLevel,
    adjust_level,
    check_items,
    valid_until,
)

__all__ = [
    "assessment_outcome",
    "assessment_total",
    "callback_needed",
    "end_of_day",
    "month_service_check",
    "month_without_records",
    "reassessment_due_at",
    "stricter_frequency",
]

LOCAL = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")

# 六助 (seed 004 §三(二)), in the order forms and reports list them.
SIX_HELPS: dict[str, str] = {
    "meal": "助餐",
    "cleaning": "助洁",
    "bathing": "助浴",
    "mobility": "助行",
    "medical": "助医",
    "personal_care": "生活照料",
}
RISK_EVENTS: dict[str, str] = {
    "falls": "跌倒",
    "choking": "噎食",
    "self_harm": "自杀、自伤",
    "wandering": "走失",
}
# Visit frequencies, least to most frequent.
FREQUENCIES: dict[str, str] = {
    "monthly": "每月至少探访1次",
    "fortnightly": "每两周至少探访1次",
    "weekly": "每周至少探访1次",
}


# --------------------------------------------------------------------------------------------------
# Dates


def as_date(value) -> date:
    """Read a date given as a date or an ISO string (form data keeps dates as strings)."""
    if isinstance(value, datetime):
        return value.astimezone(LOCAL).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        return date.fromisoformat(value.strip()[:10])
    raise ValueError(f"不是有效的日期：{value!r}")


def month_end(day) -> date:
    """Return the last day of the month of `day`."""
    day = as_date(day)
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def end_of_day(day, days_after: int = 0) -> str:
    """Return 23:59:59 Beijing time, `days_after` days after `day`, as an ISO timestamp for a timer."""
    moment = datetime.combine(as_date(day) + timedelta(days=int(days_after)), time(23, 59, 59), LOCAL)
    return moment.isoformat()


def reassessment_due_at(valid_until_day, lead_days: int = 30) -> str:
    """Return when a routine reassessment should start: 09:00 Beijing time `lead_days` before the result expires."""
    if valid_until_day in (None, ""):
        raise ValueError("缺少能力评估有效期，无法安排复评")
    day = as_date(valid_until_day) - timedelta(days=int(lead_days))
    return datetime.combine(day, time(9, 0), LOCAL).isoformat()


# --------------------------------------------------------------------------------------------------
# Capability assessment (GB/T 42195-2022)


def assessment_items(self_care, basic_mobility, mental_state, perception_social) -> dict[str, int]:
    """Flatten the four groups of the assessment form into {item key: score}, each checked against its range."""
    given = {
        "self_care": self_care,
        "basic_mobility": basic_mobility,
        "mental_state": mental_state,
        "perception_social": perception_social,
    }
    items: dict[str, int] = {}
    for group in GROUPS:
        scores = dict(given[group.key] or {})
        own = {item.key for item in ITEMS if item.group is group}
        stray = sorted(set(scores) - own)
        if stray:
            raise AssessmentError(f"“{group.name}”中有不属于该组的项目：{'、'.join(stray)}")
        items.update(scores)
    check_items(items)
    return items


def assessment_total(self_care, basic_mobility, mental_state, perception_social) -> int:
    """Return the total score (0–90) of the four groups."""
    return sum(assessment_items(self_care, basic_mobility, mental_state, perception_social).values())


def risk_event_count(special_conditions: Mapping | None) -> int:
    """Return the number of care-risk events (falls, choking, self-harm, wandering) in the last 30 days."""
    conditions = special_conditions or {}
    count = 0
    for key, label in RISK_EVENTS.items():
        value = conditions.get(key, 0) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AssessmentError(f"近30天{label}次数须为非负整数，实为{value!r}")
        count += value
    return count


def assessment_outcome(
    level,
    self_care,
    basic_mobility,
    mental_state,
    perception_social,
    special_conditions,
    assessed_on,
    assessment_reason,
    valid_months=12,
    stack_adjustments=False,
    reassess_lead_days=30,
) -> dict:
    """Combine the base level (from the `assessment_level` table) with the adjustments into the result stored on the elder."""
    items = assessment_items(self_care, basic_mobility, mental_state, perception_social)
    conditions = special_conditions or {}
    base = DisabilityLevel(level)
    final, adjustments = adjust_level(
        base,
        coma=bool(conditions.get("coma")),
        dementia=bool(conditions.get("dementia")),
        psychiatric=bool(conditions.get("psychiatric")),
        risk_events=risk_event_count(conditions),
        stack_adjustments=bool(stack_adjustments),
    )
    reason = AssessmentReason(assessment_reason)
    day = as_date(assessed_on)
    until = valid_until(day, int(valid_months))
    subtotals = {group.key: sum(items[i.key] for i in ITEMS if i.group is group) for group in GROUPS}
    return {
        "items": items,
        "subtotals": subtotals,
        "total": sum(items.values()),
        "base_level": base.value,
        "base_level_label": base.label,
        "level": final.value,
        "level_label": final.label,
        "adjustments": adjustments,
        "risk_events": risk_event_count(conditions),
        "assessed_on": day.isoformat(),
        "reason": reason.value,
        "reason_label": reason.label,
        "valid_until": until.isoformat(),
        "reassess_at": reassessment_due_at(until, reassess_lead_days),
    }


# --------------------------------------------------------------------------------------------------
# Purchased home care: the service month


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


# --------------------------------------------------------------------------------------------------
# Visiting care


def stricter_frequency(chosen, required) -> str:
    """Return the more frequent of the chosen and the required visit frequency (a caseworker may raise it, never lower it)."""
    order = list(FREQUENCIES)
    candidates = [f for f in (chosen, required) if f in FREQUENCIES]
    if not candidates:
        raise ValueError(f"未知的探访频次：{chosen!r}")
    return max(candidates, key=order.index)
