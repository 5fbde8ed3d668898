"""Visiting care (`visiting_care`, `visiting_care_visit`): every path through both diagrams, the
`visit_frequency` table row by row, the period job, the referrals a visit starts, and the checks."""

import json
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.processes.assessment.test_assessment import shown
from workflows import deadlines, registry
from workflows.config import REPO_ROOT
from workflows.errors import Conflict, ValidationFailed
from workflows.models import Case, CaseStatus
from workflows.models.care import EndReason, EnrolmentStatus, Visit, VisitFrequency, VisitStatus
from workflows.models.elders import LivingArrangement
from workflows.processes.visiting_care import visiting
from workflows.processes.visiting_care.helpers import stricter_frequency
from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import compute_check_char

BPMN = REPO_ROOT / "bpmn"
APPROVE = {"decision": "approve", "visit_frequency": "monthly"}
VISIT = {
    "visited_on": "2025-06-02",
    "method": "home",
    "services_provided": ["health_management", "home_safety", "emotional_support"],
    "findings": {"health_status": "good", "home_safety_risk": False, "emergency": False, "needs": []},
}

_serial = iter(range(100, 999))


def make_elder(world, **flags):
    first17 = f"41082519400715{next(_serial):03d}"
    return world.elder(id_number=first17 + compute_check_char(first17), name="刘长顺", **flags)


def lonely(world, **flags):
    return make_elder(world, living_alone=True, living_arrangement=LivingArrangement.LIVING_ALONE, **flags)


def start(world, elder):
    return visiting.enrol_visiting_care(
        world.session, world.users["village_assistant"], elder.id, "摸排：独居"
    )


def enrol(world, elder, decision=APPROVE):
    case = start(world, elder)
    world.complete(case, "confirm_enrolment", decision)
    return case, visiting.active_enrolment(world.session, elder.id)


def visit_of(world, enrolment, start: date | None = None) -> Visit:
    query = select(Visit).where(Visit.enrolment_id == enrolment.id).order_by(Visit.period_start.desc())
    if start is not None:
        query = query.where(Visit.period_start == start)
    world.session.expire_all()
    return world.session.scalars(query).first()


def first_visit(world, elder):
    case, enrolment = enrol(world, elder)
    assert visiting.open_due_visits(world.session) == 1
    visit = visit_of(world, enrolment)
    return enrolment, visit, world.refresh(world.session.get(Case, visit.case_id))


def with_findings(**findings) -> dict:
    return {**VISIT, "findings": {**VISIT["findings"], **findings}}


# --------------------------------------------------------------------------------------------------
# Enrolment


def test_home_support_tekun_elder_is_visited_weekly_even_if_a_lower_frequency_is_chosen(world):
    elder = make_elder(world, tekun=True, home_support=True)
    case = start(world, elder)
    data = world.data(case)
    assert (data["required_frequency"], data["categories"]) == ("weekly", ["home_support"])
    task = world.ready(case)[0]
    assert (task.task_spec, task.role) == ("confirm_enrolment", "caseworker")
    assert "分散供养特困" in shown(world, case)["confirm_enrolment"]
    world.complete(case, "confirm_enrolment", APPROVE)  # "monthly" chosen: the minimum wins
    enrolment = visiting.active_enrolment(world.session, elder.id)
    assert (enrolment.frequency, enrolment.next_period_start) == (VisitFrequency.WEEKLY, date(2025, 6, 2))
    case = world.refresh(case)
    assert set(case.waiting_for.split("\n")) == {"elder_died", "elder_moved_away", "visiting_care_withdrawn"}
    assert case.next_timer_at.date() == date(2026, 6, 2)  # the yearly review


def test_caseworker_may_raise_the_frequency(world):
    elder = lonely(world)
    case, enrolment = enrol(world, elder, {"decision": "approve", "visit_frequency": "weekly"})
    assert world.data(case)["required_frequency"] == "monthly"
    assert enrolment.frequency == VisitFrequency.WEEKLY


def test_elder_who_cannot_look_after_themselves_is_visited_fortnightly(world):
    elder = make_elder(
        world,
        disability_level=DisabilityLevel.SEVERE,
        disability_assessed_on=date(2025, 3, 1),
        disability_valid_until=date(2026, 3, 1),
    )
    case, enrolment = enrol(world, elder)
    assert (
        world.data(case)["categories"] == ["disabled"] and enrolment.frequency == VisitFrequency.FORTNIGHTLY
    )


def test_elder_in_no_vulnerable_group_is_not_enrolled(world):
    case = start(world, make_elder(world))
    assert world.ready_specs(case) == []
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert world.data(case)["required_frequency"] == "none"


@pytest.mark.parametrize(
    "decision", [{"decision": "declined_by_elder"}, {"decision": "reject", "comment": "已入住养老机构"}]
)
def test_refused_enrolment_creates_nothing(world, decision):
    elder = lonely(world)
    case, enrolment = enrol(world, elder, {**decision, "visit_frequency": "monthly"})
    assert enrolment is None and world.refresh(case).status == CaseStatus.COMPLETED


def test_rejection_needs_a_comment(world):
    case = start(world, lonely(world))
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "confirm_enrolment", {"decision": "reject", "visit_frequency": "monthly"})
    assert refused.value.field_errors == {"comment": "此项为必填项"}


def test_an_elder_is_enrolled_once(world):
    elder = lonely(world)
    enrol(world, elder)
    with pytest.raises(Conflict, match="已是探访关爱对象"):
        start(world, elder)


@pytest.mark.parametrize(
    ("message", "reason"), [("elder_died", EndReason.DECEASED), ("elder_moved_away", EndReason.MOVED_AWAY)]
)
def test_enrolment_ends_on_message(world, message, reason):
    elder = lonely(world)
    case, enrolment = enrol(world, elder)
    assert world.deliver(message, {"on": "2025-06-10"}, elder_id=elder.id) == [case.id]
    world.session.refresh(enrolment)
    assert (enrolment.status, enrolment.end_reason) == (EnrolmentStatus.ENDED, reason)
    assert visiting.open_due_visits(world.session) == 0  # no visit period for an ended enrolment


def test_withdrawal_ends_the_enrolment(world):
    elder = lonely(world)
    case, enrolment = enrol(world, elder)
    visiting.withdraw(world.session, world.users["village_assistant"], elder.id, "本人不愿再接受探访")
    world.session.refresh(enrolment)
    assert enrolment.end_reason == EndReason.WITHDRAWN and world.refresh(case).status == CaseStatus.COMPLETED


def test_yearly_review_sets_a_new_frequency_and_waits_another_year(world):
    elder = lonely(world)
    case, enrolment = enrol(world, elder)
    assert world.advance(days=364) == 0
    assert world.advance(days=1, minutes=1) == 1
    assert world.ready_specs(case) == ["annual_review"]
    assert "每月至少探访1次" in shown(world, case)["annual_review"]
    world.complete(case, "annual_review", {"decision": "continue", "visit_frequency": "fortnightly"})
    world.session.refresh(enrolment)
    assert enrolment.frequency == VisitFrequency.FORTNIGHTLY and enrolment.status == EnrolmentStatus.ACTIVE
    assert world.refresh(case).next_timer_at.date() == date(2027, 6, 2)


def test_yearly_review_may_take_the_elder_off_the_list(world):
    elder = lonely(world)
    case, enrolment = enrol(world, elder)
    world.advance(days=366)
    world.complete(
        case, "annual_review", {"decision": "leave", "visit_frequency": "monthly", "comment": "已随子女居住"}
    )
    world.session.refresh(enrolment)
    assert (enrolment.status, enrolment.end_reason) == (EnrolmentStatus.ENDED, EndReason.REVIEWED)


# --------------------------------------------------------------------------------------------------
# Visit periods and the job


def test_job_opens_one_visit_per_period_for_the_village_assistant(world):
    elder = make_elder(world, tekun=True, home_support=True)
    _case, enrolment = enrol(world, elder)
    assert visiting.open_due_visits(world.session) == 1
    assert visiting.open_due_visits(world.session) == 0
    visit = visit_of(world, enrolment)
    assert (visit.period_start, visit.period_end, visit.status) == (
        date(2025, 6, 2),
        date(2025, 6, 8),
        VisitStatus.DUE,
    )
    visit_case = world.session.get(Case, visit.case_id)
    task = world.ready(visit_case)[0]
    assert (task.task_spec, task.role, task.area_code) == (
        "record_visit",
        "village_assistant",
        elder.residence_area_code,
    )
    world.advance(days=7)
    assert visiting.open_due_visits(world.session) == 1
    assert visit_of(world, enrolment).period_start == date(2025, 6, 9)


def test_visit_without_findings_is_recorded_and_closes(world):
    elder = lonely(world)
    enrolment, visit, case = first_visit(world, elder)
    assert (visit.period_start, visit.period_end) == (date(2025, 6, 1), date(2025, 6, 30))
    assert "本期：2025-06-01 至 2025-06-30" in shown(world, case)["record_visit"]
    world.complete(case, "record_visit", VISIT)
    visit = visit_of(world, enrolment)
    assert (visit.status, visit.visited_on, visit.method.value) == (
        VisitStatus.DONE,
        date(2025, 6, 2),
        "home",
    )
    assert visit.visitor_id == world.users["village_assistant"].id
    assert json.loads(visit.services) == VISIT["services_provided"]
    assert world.refresh(case).status == CaseStatus.COMPLETED
    world.session.refresh(enrolment)
    assert enrolment.last_visited_on == date(2025, 6, 2)


def test_emergency_creates_an_urgent_township_task_at_once(world):
    elder = lonely(world)
    enrolment, visit, case = first_visit(world, elder)
    world.complete(
        case, "record_visit", with_findings(emergency=True, emergency_description="老人摔倒在家，无法起身")
    )
    [task] = world.ready(case)
    assert (task.task_spec, task.role) == ("handle_emergency", "caseworker")
    assert task.due_at == datetime.combine(date(2025, 6, 2), time(23, 59, 59), deadlines.LOCAL)  # today
    assert "老人摔倒在家" in shown(world, case)["handle_emergency"]
    assert visit_of(world, enrolment).emergency
    world.complete(
        case,
        "handle_emergency",
        {
            "actions": ["called_120", "contacted_family"],
            "outcome": "hospitalised",
            "handling_note": "已送县医院",
        },
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED


def test_emergency_needs_a_description(world):
    enrolment, visit, case = first_visit(world, lonely(world))
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "record_visit", with_findings(emergency=True))
    assert refused.value.field_errors == {"findings.emergency_description": "此项为必填项"}


def test_need_for_home_care_applies_on_the_elders_behalf(world):
    elder = lonely(world, dibao=True)
    enrolment, visit, case = first_visit(world, elder)
    world.complete(case, "record_visit", with_findings(needs=["home_care"], needs_note="卧床，需要助餐助洁"))
    application = world.session.scalar(
        select(Case).where(Case.process_key == "home_care", Case.elder_id == elder.id)
    )
    assert application is not None and application.started_by == world.users["village_assistant"].id
    assert world.data(application)["applicant_type"] == "proxy"
    assert json.loads(visit_of(world, enrolment).referrals) == [
        {"process": "home_care", "case_id": application.id}
    ]
    assert world.refresh(case).status == CaseStatus.COMPLETED


def test_a_second_home_care_referral_is_not_duplicated(world):
    elder = lonely(world, dibao=True)
    enrolment, visit, case = first_visit(world, elder)
    world.complete(case, "record_visit", with_findings(needs=["home_care"]))
    world.advance(days=30)
    visiting.open_due_visits(world.session)
    second = world.refresh(world.session.get(Case, visit_of(world, enrolment).case_id))
    world.complete(second, "record_visit", {**with_findings(needs=["home_care"]), "visited_on": "2025-07-02"})
    referral = json.loads(visit_of(world, enrolment).referrals)[0]
    assert referral["skipped"].startswith("已有在办申请")


def test_need_for_adaptation_starts_a_home_adaptation_case(world):
    if "home_adaptation" not in {d.key for d in world.deployed}:
        pytest.skip("home_adaptation is not deployed yet (another engineer's process)")
    elder = lonely(world, dibao=True)
    enrolment, visit, case = first_visit(world, elder)
    world.complete(case, "record_visit", with_findings(needs=["home_adaptation"], needs_note="卫生间无扶手"))
    adaptation = world.session.scalar(
        select(Case).where(Case.process_key == "home_adaptation", Case.elder_id == elder.id)
    )
    assert adaptation is not None and adaptation.status == CaseStatus.RUNNING
    assert world.data(adaptation)["referral_note"] == "卫生间无扶手"
    assert json.loads(visit_of(world, enrolment).referrals) == [
        {"process": "home_adaptation", "case_id": adaptation.id}
    ]


def test_adaptation_need_is_kept_when_the_process_is_not_deployed(world, monkeypatch):
    elder = lonely(world)
    enrolment, visit, case = first_visit(world, elder)
    monkeypatch.setattr(visiting, "ADAPTATION_PROCESS_KEY", "home_adaptation_not_deployed")
    world.complete(case, "record_visit", with_findings(needs=["home_adaptation"]))
    [referral] = json.loads(visit_of(world, enrolment).referrals)
    assert referral["skipped"] == "适老化改造流程尚未部署，需求已记录"
    assert world.refresh(case).status == CaseStatus.COMPLETED


def test_emergency_and_need_together_take_both_paths(world):
    elder = lonely(world, dibao=True)
    enrolment, visit, case = first_visit(world, elder)
    world.complete(
        case,
        "record_visit",
        with_findings(emergency=True, emergency_description="煤气泄漏", needs=["home_care"]),
    )
    assert world.ready_specs(case) == ["handle_emergency"]
    assert world.session.scalar(
        select(Case).where(Case.process_key == "home_care", Case.elder_id == elder.id)
    )
    world.complete(
        case,
        "handle_emergency",
        {"actions": ["called_119"], "outcome": "resolved", "handling_note": "已关阀通风"},
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED


def test_missed_visit_turns_overdue_and_escalates_while_the_visit_stays_open(world):
    elder = make_elder(world, tekun=True, home_support=True)
    enrolment, visit, case = first_visit(world, elder)  # week 2025-06-02..08
    assert world.advance(days=6, hours=14) == 0  # 2025-06-08 23:00 Beijing
    assert world.advance(hours=1) == 1
    assert visit_of(world, enrolment, date(2025, 6, 2)).status == VisitStatus.OVERDUE
    tasks_now = {t.task_spec: t for t in world.ready(case)}
    assert set(tasks_now) == {"record_visit", "supervise_overdue_visit"}
    assert tasks_now["supervise_overdue_visit"].role == "caseworker"
    assert "未按时探访" in shown(world, case)["supervise_overdue_visit"]
    world.complete(case, "record_visit", {**VISIT, "visited_on": "2025-06-09"})
    assert visit_of(world, enrolment, date(2025, 6, 2)).status == VisitStatus.DONE_LATE
    world.complete(
        case, "supervise_overdue_visit", {"action": "reminded_assistant", "action_note": "已电话督促"}
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED


def test_visit_in_time_never_turns_overdue(world):
    enrolment, visit, case = first_visit(world, lonely(world))
    world.complete(case, "record_visit", VISIT)
    assert world.advance(days=40) == 0
    assert visit_of(world, enrolment, date(2025, 6, 1)).status == VisitStatus.DONE


def test_visit_date_outside_the_period_is_refused(world):
    enrolment, visit, case = first_visit(world, lonely(world))
    task = world.ready(case)[0]
    actor = world.users["village_assistant"]
    with pytest.raises(ValidationFailed) as refused:
        visiting.submit_visit(world.session, actor, task.id, {**VISIT, "visited_on": "2025-05-30"})
    assert refused.value.field_errors == {
        "visited_on": "探访日期 2025-05-30 早于本期开始日期 2025-06-01，请在对应的探访期填报"
    }
    with pytest.raises(ValidationFailed) as refused:
        visiting.submit_visit(world.session, actor, task.id, {**VISIT, "visited_on": "2025-06-03"})
    assert refused.value.field_errors == {"visited_on": "探访日期不能晚于今天"}
    assert visit_of(world, enrolment).status == VisitStatus.DUE
    visiting.submit_visit(world.session, actor, task.id, VISIT)
    assert visit_of(world, enrolment).status == VisitStatus.DONE


def test_monthly_visit_rate(world):
    seen, unseen = lonely(world), lonely(world)
    for elder in (seen, unseen):
        enrol(world, elder)
    visiting.open_due_visits(world.session)
    case = world.session.get(Case, visit_of(world, visiting.active_enrolment(world.session, seen.id)).case_id)
    world.complete(case, "record_visit", VISIT)
    rate = visiting.visit_rate(world.session, "410825100", date(2025, 6, 1))
    assert rate == {"enrolled": 2, "visited": 1, "rate": Decimal("0.5000")}


# --------------------------------------------------------------------------------------------------
# The table and the helpers


FLAGS = (
    "home_support",
    "living_alone",
    "empty_nest",
    "left_behind",
    "severe_handicap",
    "family_planning_special",
)


@pytest.mark.parametrize(
    ("attributes", "frequency"),
    [
        ({"home_support": True, "living_alone": True}, "weekly"),
        ({"disability_level": "complete"}, "fortnightly"),
        ({"disability_level": "severe", "living_alone": True}, "fortnightly"),
        ({"living_alone": True}, "monthly"),
        ({"empty_nest": True}, "monthly"),
        ({"left_behind": True}, "monthly"),
        ({"disability_level": "mild"}, "monthly"),
        ({"disability_level": "moderate"}, "monthly"),
        ({"severe_handicap": True}, "monthly"),
        ({"family_planning_special": True}, "monthly"),
        ({"disability_level": "intact"}, "none"),
        ({}, "none"),
    ],
)
def test_frequency_table(attributes, frequency):
    files = {p.name: p.read_text(encoding="utf-8") for p in BPMN.rglob("*.dmn")}
    context = {flag: False for flag in FLAGS} | {"disability_level": None} | attributes
    result = registry.engine().evaluate_decision(files, "visit_frequency", context)
    assert result["required_frequency"] == frequency and result["required_frequency_label"]


@pytest.mark.parametrize(
    ("day", "frequency", "period"),
    [
        (date(2025, 6, 4), "weekly", (date(2025, 6, 2), date(2025, 6, 8))),
        (date(2025, 6, 16), "fortnightly", (date(2025, 6, 16), date(2025, 6, 29))),
        (date(2025, 6, 29), "fortnightly", (date(2025, 6, 16), date(2025, 6, 29))),
        (date(2024, 2, 10), "monthly", (date(2024, 2, 1), date(2024, 2, 29))),
    ],
)
def test_periods(day, frequency, period):
    assert visiting.period_of(day, frequency) == period


def test_stricter_frequency():
    assert stricter_frequency("monthly", "weekly") == "weekly"
    assert stricter_frequency("weekly", "monthly") == "weekly"
    assert stricter_frequency(None, "fortnightly") == "fortnightly"
    with pytest.raises(ValueError):
        stricter_frequency("daily", "none")


def test_period_opened_after_it_ended_turns_overdue_at_once(world):
    elder = lonely(world)
    _case, enrolment = enrol(world, elder)
    visit = visiting.open_visit(world.session, enrolment, date(2025, 5, 1))  # the worker was down over May
    assert (visit.period_end, visit.status) == (date(2025, 5, 31), VisitStatus.OVERDUE)
    case = world.session.get(Case, visit.case_id)
    assert world.ready_specs(case) == ["record_visit", "supervise_overdue_visit"]


def test_job_ends_the_enrolment_of_an_elder_the_register_shows_as_deceased(world):
    from workflows.models.elders import ElderStatus

    elder = lonely(world)
    case, enrolment = enrol(world, elder)
    elder.status, elder.deceased_on = ElderStatus.DECEASED, date(2025, 6, 1)  # the death message was missed
    world.session.flush()
    assert visiting.open_due_visits(world.session) == 1
    world.session.refresh(enrolment)
    assert (enrolment.status, enrolment.end_reason) == (EnrolmentStatus.ENDED, EndReason.DECEASED)
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert visit_of(world, enrolment) is None and visiting.open_due_visits(world.session) == 0
