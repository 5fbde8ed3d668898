"""Helpers the assessment diagram (and the processes that call it) use in scripts: scoring a GB/T 42195
form, combining the level with its adjustments, dating the reassessment. Pure functions, no database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta

from ...clock import LOCAL, as_date
from ...rules.assessment import (
    GROUPS,
    ITEMS,
    AssessmentError,
    AssessmentReason,
    DisabilityLevel,
    adjust_level,
    check_items,
    valid_until,
)

RISK_EVENTS: dict[str, str] = {
    "falls": "跌倒",
    "choking": "噎食",
    "self_harm": "自杀、自伤",
    "wandering": "走失",
}


def reassessment_due_at(valid_until_day, lead_days: int = 30) -> str:
    """Return when a routine reassessment should start: 09:00 Beijing time `lead_days` before the result expires."""
    if valid_until_day in (None, ""):
        raise ValueError("缺少能力评估有效期，无法安排复评")
    day = as_date(valid_until_day) - timedelta(days=int(lead_days))
    return datetime.combine(day, time(9, 0), LOCAL).isoformat()


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
