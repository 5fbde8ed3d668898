"""The capability assessment (process `assessment`, GB/T 42195-2022): every path through the diagram, the
`assessment_policy` table row by row, the scoring helpers, the form checks and the recording effect."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from workflows import cases, engine, registry, tasks
from workflows.config import REPO_ROOT
from workflows.errors import Conflict, ValidationFailed
from workflows.models import Case, CaseStatus, EventKind, HumanTask, TaskStatus
from workflows.models.elders import Assessment
from workflows.processes.assessment import assessments
from workflows.processes.assessment.helpers import (
    assessment_outcome,
    assessment_total,
    reassessment_due_at,
    risk_event_count,
)
from workflows.rules.assessment import GROUPS, ITEMS, AssessmentError

BPMN = REPO_ROOT / "bpmn"
ELDER_ID = "11010519491231002X"  # born 1949-12-31
NO_CONDITIONS = {
    "coma": False,
    "dementia": False,
    "psychiatric": False,
    "falls": 0,
    "choking": 0,
    "self_harm": 0,
    "wandering": 0,
}


def scores_for_total(total: int) -> dict[str, dict[str, int]]:
    """Item scores grouped as the form groups them, adding up to `total` (0–90)."""
    scores = {item.key: item.max_score for item in ITEMS}
    missing = sum(scores.values()) - total
    for item in ITEMS:
        cut = min(missing, scores[item.key])
        scores[item.key] -= cut
        missing -= cut
    return {group.key: {i.key: scores[i.key] for i in ITEMS if i.group is group} for group in GROUPS}


def assessment_form(
    total: int = 50, *, day: str = "2025-06-02", reason: str = "initial", **conditions
) -> dict:
    return {
        "assessed_on": day,
        "assessment_reason": reason,
        **scores_for_total(total),
        "special_conditions": {**NO_CONDITIONS, **conditions},
        "assessor_note": "入户评估，家属在场",
    }


NOTIFIED = {"notified_on": "2025-06-02", "notify_method": "in_person", "objection": False}


def assess(world, case, total: int = 50, **conditions):
    """Drive the assessment steps (wherever they run) to a recorded result without objection."""
    world.complete(case, "conduct_assessment", assessment_form(total, **conditions))
    return world.complete(case, "notify_result", NOTIFIED)


@pytest.fixture
def elder(world):
    return world.elder(id_number=ELDER_ID, name="王秀英", living_alone=True)


def start(world, elder, *, schedule=True, reason="initial"):
    return assessments.request_assessment(
        world.session, world.users["caseworker"], elder.id, reason, schedule_reassessment=schedule
    )


def shown(world, case) -> dict[str, str]:
    """The instructions of every open step rendered with its data; a variable the data lacks fails the test."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    case = world.refresh(case)
    runtime = cases.runtime_of(world.session, case)
    instance = engine.Instance.restore(runtime.spec, case.state)
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    return {
        step.spec_id: env.from_string(runtime.steps[step.spec_id].get("instructions") or "").render(step.data)
        for step in instance.human_steps()
    }


def latest_assessment(world, elder):
    return world.session.scalar(
        select(Assessment).where(Assessment.elder_id == elder.id).order_by(Assessment.id.desc()).limit(1)
    )


# --------------------------------------------------------------------------------------------------
# Paths through the diagram


def test_assessment_without_objection_records_the_result_and_waits_for_expiry(world, elder):
    case = start(world, elder)
    assert world.ready_specs(case) == ["conduct_assessment"]
    task = world.ready(case)[0]
    assert task.role == "assessor" and task.due_at is not None

    assert "王秀英" in shown(world, case)["conduct_assessment"]
    world.complete(case, "conduct_assessment", assessment_form(50))
    assert world.ready_specs(case) == ["notify_result"]
    assert "总分 50 分，中度失能" in shown(world, case)["notify_result"]
    result = world.data(case)["assessment_result"]
    assert (result["total"], result["level"], result["valid_until"]) == (50, "moderate", "2026-06-02")

    world.complete(case, "notify_result", NOTIFIED, as_role="caseworker")
    world.session.refresh(elder)
    assert (elder.disability_level.value, elder.disability_valid_until) == ("moderate", date(2026, 6, 2))
    stored = latest_assessment(world, elder)
    assert (stored.total, stored.reason.value, stored.case_id) == (50, "initial", case.id)
    assert stored.assessor_id == world.users["assessor"].id  # the assessor, not the caseworker who notified
    case = world.refresh(case)
    assert case.status == CaseStatus.RUNNING and world.ready_specs(case) == []
    assert set(case.waiting_for.split("\n")) == {"elder_died", "assessment_superseded"}
    sent = [e for e in world.events(case) if e.kind == EventKind.MESSAGE_SENT]
    assert '"record_assessment"' in sent[0].detail


def test_reassessment_timer_fires_before_expiry_and_starts_a_routine_assessment(world, elder):
    case = start(world, elder)
    assess(world, case, 50)
    # the policy table: valid 12 months, reassess 30 days before the end (2026-05-03 09:00 Beijing)
    assert world.advance(days=334) == 0  # 2026-05-02: not yet
    assert world.refresh(case).status == CaseStatus.RUNNING
    assert world.advance(days=1, minutes=1) == 1
    assert world.refresh(case).status == CaseStatus.COMPLETED
    follow_up = world.session.scalar(
        select(Case).where(Case.elder_id == elder.id, Case.id != case.id, Case.process_key == "assessment")
    )
    assert follow_up is not None and world.ready_specs(follow_up) == ["conduct_assessment"]
    assert world.data(follow_up)["assessment_reason"] == "routine"


def test_objection_leads_to_one_review_whose_result_is_final(world, elder):
    case = start(world, elder)
    world.complete(case, "conduct_assessment", assessment_form(70))  # mild
    world.complete(
        case, "notify_result", {**NOTIFIED, "objection": True, "objection_reason": "老人近期摔伤，行动不便"}
    )
    assert world.ready_specs(case) == ["conduct_assessment"]
    assert world.data(case)["assessment_reason"] == "reassessment"
    assert latest_assessment(world, elder) is None  # nothing recorded while the result is disputed

    world.complete(case, "conduct_assessment", assessment_form(60, reason="reassessment"))
    # a review's result is final: a second objection does not loop again
    world.complete(case, "notify_result", {**NOTIFIED, "objection": True, "objection_reason": "仍不服"})
    stored = latest_assessment(world, elder)
    assert (stored.level.value, stored.reason.value) == ("moderate", "reassessment")
    assert world.ready_specs(case) == []


def test_objection_needs_a_reason(world, elder):
    case = start(world, elder)
    world.complete(case, "conduct_assessment", assessment_form(70))
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "notify_result", {**NOTIFIED, "objection": True})
    assert refused.value.field_errors == {"objection_reason": "此项为必填项"}


def test_without_follow_up_the_case_ends_after_recording(world, elder):
    case = start(world, elder, schedule=False)
    assess(world, case, 20)
    case = world.refresh(case)
    assert case.status == CaseStatus.COMPLETED and case.next_timer_at is None
    assert latest_assessment(world, elder).level.value == "complete"


def test_death_while_waiting_ends_the_case_without_reassessment(world, elder):
    case = start(world, elder)
    assess(world, case, 50)
    assert world.deliver("elder_died", {"deceased_on": "2025-09-01"}, elder_id=elder.id) == [case.id]
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert world.advance(days=400) == 0
    assert world.session.scalars(select(Case).where(Case.process_key == "assessment")).all() == [
        world.refresh(case)
    ]


def test_a_newer_assessment_supersedes_the_waiting_one(world, elder):
    first = start(world, elder)
    assess(world, first, 50)
    second = start(world, elder, reason="immediate")
    assess(world, second, 35)
    first = world.refresh(first)
    assert first.status == CaseStatus.COMPLETED
    assert "reassessment_superseded" in cases.completed_steps(world.session, first)
    assert "start_routine_reassessment" not in cases.completed_steps(world.session, first)
    assert world.refresh(second).status == CaseStatus.RUNNING
    world.session.refresh(elder)
    assert elder.disability_level.value == "severe"


# --------------------------------------------------------------------------------------------------
# Level adjustments (coma, dementia, care-risk events), through the diagram


@pytest.mark.parametrize(
    ("total", "conditions", "level"),
    [
        (85, {"coma": True}, "complete"),
        (85, {"dementia": True}, "moderate"),
        (85, {"falls": 1, "wandering": 1}, "moderate"),
        (85, {"falls": 1}, "mild"),
        (
            85,
            {"psychiatric": True, "choking": 2},
            "moderate",
        ),  # two reasons, raised once (policy: no stacking)
        (25, {"dementia": True}, "complete"),  # never beyond complete
    ],
)
def test_adjustments_raise_the_level(world, elder, total, conditions, level):
    case = start(world, elder, schedule=False)
    assess(world, case, total, **conditions)
    assert latest_assessment(world, elder).level.value == level


# --------------------------------------------------------------------------------------------------
# Bad submissions: Chinese messages naming the field, nothing written


def test_a_future_assessment_date_is_refused_and_nothing_is_written(world, elder):
    case = start(world, elder)
    task = world.ready(case)[0]
    events_before = len(world.events(case))
    with pytest.raises(ValidationFailed) as refused:
        assessments.submit_assessment(
            world.session, world.users["assessor"], task.id, assessment_form(50, day="2025-06-03")
        )
    assert refused.value.field_errors == {"assessed_on": "评估日期不能晚于今天"}
    assert world.ready_specs(case) == ["conduct_assessment"] and len(world.events(case)) == events_before


def test_item_errors_name_the_item(world, elder):
    case = start(world, elder)
    task = world.ready(case)[0]
    form = assessment_form(50)
    form["self_care"]["eating"] = 5
    with pytest.raises(ValidationFailed) as refused:
        tasks.complete(world.session, world.users["assessor"], task.id, form)
    assert refused.value.field_errors == {"self_care.eating": "不能大于 4"}
    form["self_care"]["eating"] = 4
    del form["mental_state"]["memory"]
    form["mental_state"]["eating"] = 1
    errors = assessments.check_assessment_form(elder, form, date(2025, 6, 2))
    assert errors == {"mental_state.eating": "不属于本组的评估项目", "mental_state.memory": "此项为必填项"}


def test_a_second_assessment_cannot_start_while_one_is_open(world, elder):
    start(world, elder)
    with pytest.raises(Conflict, match="正在进行的能力评估"):
        start(world, elder)


def test_only_assessment_roles_may_request(world, elder):
    from workflows.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        assessments.request_assessment(world.session, world.users["provider"], elder.id)


# --------------------------------------------------------------------------------------------------
# The assessment_policy table and the helpers


def _decide(decision_id: str, context: dict) -> dict:
    files = {p.name: p.read_text(encoding="utf-8") for p in BPMN.rglob("*.dmn")}
    return registry.engine().evaluate_decision(files, decision_id, context)


@pytest.mark.parametrize("reason", ["initial", "routine", "immediate", "reassessment"])
def test_policy_table_has_a_row_per_reason(reason):
    assert _decide("assessment_policy", {"assessment_reason": reason}) == {
        "valid_months": 12,
        "stack_adjustments": False,
        "reassess_lead_days": 30,
    }


def test_outcome_combines_table_level_adjustments_and_validity():
    form = assessment_form(50, falls=2)
    result = assessment_outcome(
        "moderate",
        form["self_care"],
        form["basic_mobility"],
        form["mental_state"],
        form["perception_social"],
        form["special_conditions"],
        "2024-02-29",
        "routine",
        12,
        False,
        30,
    )
    assert result["total"] == 50 and result["base_level"] == "moderate" and result["level"] == "severe"
    assert result["valid_until"] == "2025-02-28"  # no 29 February: the month's last day
    assert result["reassess_at"] == "2025-01-29T09:00:00+08:00"
    assert sum(result["subtotals"].values()) == 50 and result["risk_events"] == 2
    assert result["adjustments"][0].startswith("近30天内发生照护风险事件2次")


def test_scoring_helpers_refuse_bad_scores():
    form = scores_for_total(60)
    assert assessment_total(**form) == 60
    form["self_care"]["stairs"] = 1  # an item of another group
    with pytest.raises(AssessmentError, match="不属于该组"):
        assessment_total(**form)
    with pytest.raises(AssessmentError, match="跌倒"):
        risk_event_count({"falls": -1})
    with pytest.raises(ValueError, match="缺少能力评估有效期"):
        reassessment_due_at(None)


def test_stored_assessment_matches_the_form(world, elder):
    case = start(world, elder, schedule=False)
    form = assessment_form(44)
    world.complete(case, "conduct_assessment", form)
    world.complete(case, "notify_result", NOTIFIED)
    stored = latest_assessment(world, elder)
    flat = {k: v for group in GROUPS for k, v in form[group.key].items()}
    assert stored.item_scores() == flat and stored.total == 44 and stored.level.value == "severe"
    assert stored.valid_until == date(2025, 6, 2) + timedelta(days=365)
    done = world.session.scalars(select(HumanTask).where(HumanTask.case_id == case.id)).all()
    assert {t.status for t in done} == {TaskStatus.COMPLETED}
