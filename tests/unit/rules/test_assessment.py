from datetime import date
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from workflows.rules.assessment import (
    ITEMS,
    MAX_TOTAL,
    AssessmentError,
    AssessmentReason,
    DisabilityLevel,
    level_for_total,
    score_assessment,
    valid_until,
)

DMN_FILE = Path(__file__).resolve().parents[3] / "bpmn" / "shared" / "assessment_level.dmn"

INTACT, MILD, MODERATE, SEVERE, COMPLETE = (
    DisabilityLevel.INTACT,
    DisabilityLevel.MILD,
    DisabilityLevel.MODERATE,
    DisabilityLevel.SEVERE,
    DisabilityLevel.COMPLETE,
)


def scores_totalling(total: int) -> dict[str, int]:
    """Return item scores that add up to `total`, taking points away from the last items first."""
    scores = {item.key: item.max_score for item in ITEMS}
    missing = MAX_TOTAL - total
    for item in reversed(ITEMS):
        taken = min(missing, item.max_score)
        scores[item.key] -= taken
        missing -= taken
    return scores


def test_items_match_the_standard():
    assert len(ITEMS) == 26
    assert MAX_TOTAL == 90
    groups = {}
    for item in ITEMS:
        groups[item.group.key] = groups.get(item.group.key, 0) + item.max_score
    assert groups == {"self_care": 32, "basic_mobility": 15, "mental_state": 28, "perception_social": 15}


@pytest.mark.parametrize(
    ("total", "level"),
    [
        (90, INTACT),
        (89, MILD),
        (66, MILD),
        (65, MODERATE),
        (46, MODERATE),
        (45, SEVERE),
        (30, SEVERE),
        (29, COMPLETE),
        (0, COMPLETE),
    ],
)
def test_levels_at_every_boundary(total, level):
    result = score_assessment(scores_totalling(total))
    assert result.total == total
    assert result.base_level == level
    assert result.level == level
    assert result.adjustments == []


def test_subtotals_per_group():
    scores = {item.key: item.max_score for item in ITEMS} | {
        "eating": 1,
        "stairs": 0,
        "memory": 2,
        "vision": 1,
    }
    result = score_assessment(scores)
    assert result.subtotals == {
        "self_care": 29,
        "basic_mobility": 12,
        "mental_state": 26,
        "perception_social": 14,
    }
    assert result.total == 81


@pytest.mark.parametrize(
    ("total", "options", "level", "reason_fragments"),
    [
        (90, {"coma": True}, COMPLETE, ["昏迷"]),
        (70, {"coma": True, "dementia": True}, COMPLETE, ["昏迷"]),
        (90, {"dementia": True}, MILD, ["F00–F03"]),
        (70, {"psychiatric": True}, MODERATE, ["F04–F99"]),
        (70, {"dementia": True, "psychiatric": True}, MODERATE, ["F00–F03", "F04–F99"]),
        (50, {"risk_events": 2}, SEVERE, ["2次"]),
        (50, {"risk_events": 1}, MODERATE, []),
        # Both rules met: one level by default, two when stacking is configured.
        (70, {"dementia": True, "risk_events": 3}, MODERATE, ["F00–F03", "3次", "不叠加"]),
        (70, {"dementia": True, "risk_events": 3, "stack_adjustments": True}, SEVERE, ["F00–F03", "3次"]),
        (90, {"psychiatric": True, "risk_events": 2, "stack_adjustments": True}, MODERATE, []),
        # Never beyond complete.
        (20, {"dementia": True}, COMPLETE, ["不再上调"]),
        (35, {"dementia": True, "risk_events": 2, "stack_adjustments": True}, COMPLETE, ["不再上调"]),
        (35, {"dementia": True, "risk_events": 2}, COMPLETE, ["不叠加"]),
    ],
)
def test_adjustments(total, options, level, reason_fragments):
    result = score_assessment(scores_totalling(total), **options)
    assert result.base_level == level_for_total(total)
    assert result.level == level
    text = "；".join(result.adjustments)
    for fragment in reason_fragments:
        assert fragment in text
    if result.level != result.base_level:
        assert result.adjustments


def test_stacking_on_adds_no_not_stacked_note():
    result = score_assessment(scores_totalling(35), dementia=True, risk_events=2, stack_adjustments=True)
    assert result.level == COMPLETE
    assert not any("不叠加" in reason for reason in result.adjustments)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"eating": 5}, "进食"),
        ({"eating": -1}, "进食"),
        ({"stairs": 4}, "上下楼梯"),
        ({"aggressive_behaviour": 2}, "攻击行为"),
        ({"consciousness": 1.5}, "意识水平"),
        ({"vision": "2"}, "视力"),
        ({"hearing": True}, "听力"),
        ({"hearing": None}, "听力"),
        ({"unknown_item": 1}, "未知的评估项目"),
    ],
)
def test_out_of_range_scores_are_refused(change, fragment):
    scores = scores_totalling(60) | change
    with pytest.raises(AssessmentError, match=fragment):
        score_assessment(scores)


def test_missing_item_is_named():
    scores = scores_totalling(60)
    del scores["bed_chair_transfer"]
    with pytest.raises(AssessmentError, match="床椅转移"):
        score_assessment(scores)


def test_negative_risk_events_are_refused():
    with pytest.raises(AssessmentError, match="风险事件"):
        score_assessment(scores_totalling(60), risk_events=-1)


def test_level_labels():
    assert [level.label for level in DisabilityLevel] == [
        "能力完好",
        "轻度失能",
        "中度失能",
        "重度失能",
        "完全失能",
    ]
    assert DisabilityLevel("severe") is SEVERE


def test_reason_labels():
    assert AssessmentReason.INITIAL.label == "首次评估"
    assert AssessmentReason.ROUTINE.label == "常规评估"
    assert AssessmentReason.IMMEDIATE.label == "即时评估"
    assert AssessmentReason.REASSESSMENT.label == "复评"


@pytest.mark.parametrize(
    ("assessed_on", "months", "until"),
    [
        (date(2025, 1, 15), 12, date(2026, 1, 15)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 8, 31), 6, date(2026, 2, 28)),
        (date(2025, 11, 30), 3, date(2026, 2, 28)),
        (date(2025, 3, 31), 1, date(2025, 4, 30)),
    ],
)
def test_valid_until(assessed_on, months, until):
    assert valid_until(assessed_on, months) == until


BPMN_CALLING_THE_TABLE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="level_lookup_definitions" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="level_lookup" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>to_lookup</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="to_lookup" sourceRef="start" targetRef="look_up_level" />
    <bpmn:businessRuleTask id="look_up_level" name="查能力等级">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>assessment_level</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>to_lookup</bpmn:incoming><bpmn:outgoing>to_end</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="to_end" sourceRef="look_up_level" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture(scope="module")
def level_lookup_spec():
    parser = SpiffBpmnParser(validator=BpmnValidator())
    parser.add_bpmn_str(BPMN_CALLING_THE_TABLE.encode())
    parser.add_dmn_file(str(DMN_FILE))
    return parser.get_spec("level_lookup")


def evaluate_dmn(spec, total: int) -> str:
    """Run the calling process with `total` and return the level it decided, checking one row matched."""
    workflow = BpmnWorkflow(spec)
    workflow.get_tasks(spec_name="start")[0].data["total"] = total
    workflow.do_engine_steps()
    assert workflow.is_completed()
    task = workflow.get_tasks(spec_name="look_up_level")[0]
    engine = spec.task_specs["look_up_level"].dmnEngine
    matching_rows = [
        rule.row_number
        for rule in engine.decision_table.rules
        if engine.evaluate("total", rule.inputEntries[0].lhs[0], task)
    ]
    assert len(matching_rows) == 1, f"total {total} matches rows {matching_rows}"
    return workflow.data["level"]


def test_dmn_table_is_unique_with_one_row_per_level(level_lookup_spec):
    table = level_lookup_spec.task_specs["look_up_level"].dmnEngine.decision_table
    assert table.hit_policy == "UNIQUE"
    assert [rule.outputEntries[0].text for rule in table.rules] == [f'"{level}"' for level in DisabilityLevel]


def test_dmn_table_agrees_with_python_on_every_total(level_lookup_spec):
    for total in range(0, MAX_TOTAL + 1):
        assert evaluate_dmn(level_lookup_spec, total) == level_for_total(total).value, total
