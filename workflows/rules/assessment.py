"""Capability assessment of older people (老年人能力评估规范, GB/T 42195-2022): scoring and levels.

26 items in 4 groups add up to 90 points (higher = more able). The total gives a base level; a coma, a
diagnosed dementia or psychiatric disorder, and repeated care-risk events raise it. The band table is also
shipped as the DMN decision `assessment_level` (bpmn/shared/assessment_level.dmn) so a process owner can
read and edit it; tests keep the two in step.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path


class DisabilityLevel(StrEnum):
    """The five capability levels, from most to least able."""

    INTACT = "intact"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    COMPLETE = "complete"

    @property
    def label(self) -> str:
        """Return the Chinese name of the level."""
        return _LEVEL_LABELS[self]

    @property
    def rank(self) -> int:
        """Return 0 for intact up to 4 for complete, so levels can be compared and raised."""
        return _LEVEL_ORDER.index(self)

    def raised(self, steps: int = 1) -> DisabilityLevel:
        """Return the level `steps` levels worse, never beyond complete."""
        return _LEVEL_ORDER[min(self.rank + steps, len(_LEVEL_ORDER) - 1)]


_LEVEL_ORDER = list(DisabilityLevel)
_LEVEL_LABELS = {
    DisabilityLevel.INTACT: "能力完好",
    DisabilityLevel.MILD: "轻度失能",
    DisabilityLevel.MODERATE: "中度失能",
    DisabilityLevel.SEVERE: "重度失能",
    DisabilityLevel.COMPLETE: "完全失能",
}

# (lowest total, highest total, level), as printed in GB/T 42195-2022 table 2.
LEVEL_BANDS: tuple[tuple[int, int, DisabilityLevel], ...] = (
    (90, 90, DisabilityLevel.INTACT),
    (66, 89, DisabilityLevel.MILD),
    (46, 65, DisabilityLevel.MODERATE),
    (30, 45, DisabilityLevel.SEVERE),
    (0, 29, DisabilityLevel.COMPLETE),
)


class AssessmentReason(StrEnum):
    """Why an assessment is made (评估类型)."""

    INITIAL = "initial"
    ROUTINE = "routine"
    IMMEDIATE = "immediate"
    REASSESSMENT = "reassessment"

    @property
    def label(self) -> str:
        """Return the Chinese name of the reason."""
        return _REASON_LABELS[self]


_REASON_LABELS = {
    AssessmentReason.INITIAL: "首次评估",
    AssessmentReason.ROUTINE: "常规评估",
    AssessmentReason.IMMEDIATE: "即时评估",
    AssessmentReason.REASSESSMENT: "复评",
}


@dataclass(frozen=True)
class ItemGroup:
    """One of the four groups (一级指标) of assessment items."""

    key: str
    name: str


SELF_CARE = ItemGroup("self_care", "自理能力")
BASIC_MOBILITY = ItemGroup("basic_mobility", "基础运动能力")
MENTAL_STATE = ItemGroup("mental_state", "精神状态")
PERCEPTION_SOCIAL = ItemGroup("perception_social", "感知觉与社会参与")
GROUPS: tuple[ItemGroup, ...] = (SELF_CARE, BASIC_MOBILITY, MENTAL_STATE, PERCEPTION_SOCIAL)


@dataclass(frozen=True)
class Item:
    """One assessment item (二级指标) with its highest possible score."""

    key: str
    name: str
    group: ItemGroup
    max_score: int


ITEMS: tuple[Item, ...] = (
    Item("eating", "进食", SELF_CARE, 4),
    Item("grooming", "修饰", SELF_CARE, 4),
    Item("bathing", "洗澡", SELF_CARE, 4),
    Item("upper_dressing", "穿/脱上衣", SELF_CARE, 4),
    Item("lower_dressing", "穿/脱裤子和鞋袜", SELF_CARE, 4),
    Item("bladder", "小便控制", SELF_CARE, 4),
    Item("bowel", "大便控制", SELF_CARE, 4),
    Item("toileting", "如厕", SELF_CARE, 4),
    Item("bed_mobility", "床上体位转移", BASIC_MOBILITY, 4),
    Item("bed_chair_transfer", "床椅转移", BASIC_MOBILITY, 4),
    Item("level_walking", "平地行走", BASIC_MOBILITY, 4),
    Item("stairs", "上下楼梯", BASIC_MOBILITY, 3),
    Item("time_orientation", "时间定向", MENTAL_STATE, 4),
    Item("place_orientation", "空间定向", MENTAL_STATE, 4),
    Item("person_orientation", "人物定向", MENTAL_STATE, 4),
    Item("memory", "记忆", MENTAL_STATE, 4),
    Item("comprehension", "理解能力", MENTAL_STATE, 4),
    Item("expression", "表达能力", MENTAL_STATE, 4),
    Item("aggressive_behaviour", "攻击行为", MENTAL_STATE, 1),
    Item("depressive_symptoms", "抑郁症状", MENTAL_STATE, 1),
    Item("consciousness", "意识水平", MENTAL_STATE, 2),
    Item("vision", "视力", PERCEPTION_SOCIAL, 2),
    Item("hearing", "听力", PERCEPTION_SOCIAL, 2),
    Item("daily_affairs", "执行日常事务", PERCEPTION_SOCIAL, 4),
    Item("transport_use", "使用交通工具外出", PERCEPTION_SOCIAL, 3),
    Item("social_interaction", "社会交往能力", PERCEPTION_SOCIAL, 4),
)
ITEMS_BY_KEY = {item.key: item for item in ITEMS}
MAX_TOTAL = sum(item.max_score for item in ITEMS)

# How many care-risk events (falls, choking, self-harm/suicide, wandering) in 30 days raise the level.
RISK_EVENTS_THRESHOLD = 2


class AssessmentError(ValueError):
    """Scores that cannot be assessed: an item missing, unknown or out of range."""


@dataclass(frozen=True)
class AssessmentResult:
    """The outcome of one assessment: group subtotals, total, level before and after adjustments."""

    subtotals: dict[str, int]
    total: int
    base_level: DisabilityLevel
    level: DisabilityLevel
    adjustments: list[str] = field(default_factory=list)


def level_for_total(total: int) -> DisabilityLevel:
    """Return the base level for a total score of 0-90."""
    for low, high, level in LEVEL_BANDS:
        if low <= total <= high:
            return level
    raise AssessmentError(f"总分须在0–{MAX_TOTAL}之间，实为{total}")


def check_items(items: dict[str, int]) -> None:
    """Raise AssessmentError unless every item has an integer score within its range and nothing else is given."""
    unknown = sorted(set(items) - set(ITEMS_BY_KEY))
    if unknown:
        raise AssessmentError(f"未知的评估项目：{'、'.join(unknown)}")
    missing = [item.name for item in ITEMS if item.key not in items]
    if missing:
        raise AssessmentError(f"缺少评估项目得分：{'、'.join(missing)}")
    for item in ITEMS:
        score = items[item.key]
        # bool is an int in Python; a checkbox value slipping through as a score must not count as 1.
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= item.max_score:
            raise AssessmentError(f"评估项目「{item.name}」的得分须为0–{item.max_score}的整数，实为{score!r}")


def score_assessment(
    items: dict[str, int],
    *,
    coma: bool = False,
    dementia: bool = False,
    psychiatric: bool = False,
    risk_events: int = 0,
    stack_adjustments: bool = False,
) -> AssessmentResult:
    """Score the 26 items and return subtotals, total and the adjusted level."""
    check_items(items)
    if isinstance(risk_events, bool) or not isinstance(risk_events, int) or risk_events < 0:
        raise AssessmentError(f"近30天照护风险事件次数须为非负整数，实为{risk_events!r}")

    subtotals = {group.key: 0 for group in GROUPS}
    for item in ITEMS:
        subtotals[item.group.key] += items[item.key]
    total = sum(subtotals.values())
    base_level = level_for_total(total)
    level, adjustments = adjust_level(
        base_level,
        coma=coma,
        dementia=dementia,
        psychiatric=psychiatric,
        risk_events=risk_events,
        stack_adjustments=stack_adjustments,
    )
    return AssessmentResult(subtotals, total, base_level, level, adjustments)


def adjust_level(
    base_level: DisabilityLevel,
    *,
    coma: bool = False,
    dementia: bool = False,
    psychiatric: bool = False,
    risk_events: int = 0,
    stack_adjustments: bool = False,
) -> tuple[DisabilityLevel, list[str]]:
    """Apply the GB/T 42195 adjustments to a base level and return the level with the reasons."""
    if coma:
        return DisabilityLevel.COMPLETE, ["处于昏迷状态，直接评定为完全失能"]

    reasons: list[str] = []
    if dementia and psychiatric:
        reasons.append("确诊痴呆（F00–F03）及其他精神疾病（F04–F99），上调一个等级")
    elif dementia:
        reasons.append("确诊痴呆（F00–F03），上调一个等级")
    elif psychiatric:
        reasons.append("确诊精神疾病（F04–F99），上调一个等级")
    if risk_events >= RISK_EVENTS_THRESHOLD:
        reasons.append(f"近30天内发生照护风险事件{risk_events}次（≥{RISK_EVENTS_THRESHOLD}次），上调一个等级")
    if not reasons:
        return base_level, []

    steps = len(reasons)
    if steps > 1 and not stack_adjustments:
        # GB/T 42195 does not say whether the two rules add up; by default a level is raised at most once.
        steps = 1
        reasons.append("多项上调条件同时满足，按配置不叠加，最多上调一个等级")
    level = base_level.raised(steps)
    if base_level.rank + steps > DisabilityLevel.COMPLETE.rank:
        reasons.append("已达完全失能，不再上调")
    return level, reasons


def valid_until(assessed_on: date, months: int = 12) -> date:
    """Return the last day an assessment made on `assessed_on` stays valid."""
    # Civil Code art. 201-203: the period starts the next day and ends on the corresponding day of the
    # final month, or on that month's last day when it has no corresponding day.
    if months < 1:
        raise ValueError("有效期月数须为正整数")
    month_index = assessed_on.month - 1 + months
    year, month = assessed_on.year + month_index // 12, month_index % 12 + 1
    day = min(assessed_on.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


# --------------------------------------------------------------------------------------------------
# What each score means: the standard's wording, kept as data (rules/data/assessment_scale.json) and shown
# beside the choices of the assessor's form.

_SCALE_FILE = Path(__file__).parent / "data" / "assessment_scale.json"


@cache
def _scale() -> dict:
    return json.loads(_SCALE_FILE.read_text(encoding="utf-8"))


def item_meaning(key: str) -> str:
    """What an item assesses, in the standard's words."""
    return _scale()["items"][key]["what"]


def score_descriptions(key: str) -> list[tuple[int, str]]:
    """An item's scores from best to worst, each with the standard's description."""
    scores = _scale()["items"][key]["scores"]
    return sorted(((int(score), text) for score, text in scores.items()), reverse=True)


def scale() -> dict:
    """Everything a page needs to score along while the assessor fills in the form (the server's own
    scoring stays the authority): groups, items with their maxima and descriptions, levels, adjustments."""
    return {
        "groups": [{"key": g.key, "name": g.name} for g in GROUPS],
        "items": [
            {
                "key": item.key,
                "name": item.name,
                "group": item.group.key,
                "max": item.max_score,
                "what": item_meaning(item.key),
                "scores": [{"score": score, "text": text} for score, text in score_descriptions(item.key)],
            }
            for item in ITEMS
        ],
        "max_total": MAX_TOTAL,
        "levels": [
            {"low": low, "high": high, "level": level.value, "label": level.label}
            for low, high, level in LEVEL_BANDS
        ],
        "order": [level.value for level in _LEVEL_ORDER],
        "labels": {level.value: level.label for level in DisabilityLevel},
        "risk_events_threshold": RISK_EVENTS_THRESHOLD,
        "stack_adjustments": False,
    }
