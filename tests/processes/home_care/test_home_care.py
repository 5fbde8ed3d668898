"""Purchased home care (`home_care`, `home_care_month`): every path through both diagrams, the three DMN
tables row by row, the monthly job, the helpers and the checks on bad submissions."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.processes.assessment.test_assessment import NOTIFIED, assessment_form, shown
from workflows import cases, engine, registry, tasks
from workflows.clock import LOCAL
from workflows.config import REPO_ROOT
from workflows.errors import Conflict, PermissionDenied, ValidationFailed
from workflows.models import Case, CaseStatus, HumanTask, TaskStatus
from workflows.models.care import EndReason, EnrolmentStatus, HomeCareMonth, MonthStatus
from workflows.models.registry import Role, User
from workflows.processes.home_care import enrolment as home_care
from workflows.processes.home_care import months
from workflows.processes.home_care.helpers import callback_needed, month_service_check, month_without_records
from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import compute_check_char

BPMN = REPO_ROOT / "bpmn"
APPLICATION = {
    "applicant_type": "proxy",
    "applicant_name": "李秀梅",
    "applicant_phone": "13812345678",
    "requested_services": ["meal", "cleaning", "bathing"],
    "application_note": "独居，行动不便",
}
REVIEW_PASS = {
    "decision": "pass",
    "home_visit_on": "2025-06-02",
    "verification": "入户核实：低保在册，卧床，无人照料",
}


def id_number(n: int, birth: str = "19450310") -> str:
    first17 = f"410825{birth}{n:03d}"
    return first17 + compute_check_char(first17)


_serial = iter(range(100, 999))


def make_elder(world, *, level: str | None = "moderate", **flags):
    """An elder of the test village, by default on 低保 with a valid moderate assessment."""
    flags.setdefault("dibao", True)
    if level is not None:
        flags.update(
            disability_level=DisabilityLevel(level),
            disability_assessed_on=date(2025, 5, 6),
            disability_valid_until=date(2026, 5, 6),
        )
    return world.elder(id_number=id_number(next(_serial)), name="赵桂兰", **flags)


def apply(world, elder, data=None):
    return home_care.apply_home_care(
        world.session, world.users["village_assistant"], elder.id, data or APPLICATION
    )


def second_provider(world) -> User:
    user = User(
        username="t_provider2",
        display_name="温县夕阳红家政服务有限公司",
        role=Role.PROVIDER,
        area_code="410825",
    )
    world.session.add(user)
    world.session.flush()
    return user


def dispatch(world, case, provider: User):
    task = next(t for t in world.ready(case) if t.task_spec == "dispatch_provider")
    cases.forget_live_instances()
    return home_care.dispatch(world.session, world.users["caseworker"], task.id, {"provider_id": provider.id})


def approve_and_dispatch(world, case):
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "approve", "comment": "同意"})
    dispatch(world, case, world.users["provider"])


def enrolled(world, **elder_flags):
    """An elder taken through the whole application to enrolment (services from 2025-07-01)."""
    elder = make_elder(world, **elder_flags)
    case = apply(world, elder)
    approve_and_dispatch(world, case)
    world.complete(case, "provider_accept", {"decision": "accept", "planned_start_on": "2025-07-01"})
    enrolment = home_care.active_enrolment(world.session, elder.id)
    return elder, case, enrolment


def ready_data(world, case) -> dict:
    """The data of the case's first open step (what the person working it sees)."""
    case = world.refresh(case)
    instance = engine.Instance.restore(cases.runtime_of(world.session, case).spec, case.state)
    return instance.human_steps()[0].data


def month_case(world, enrolment, first: date) -> Case:
    month = world.session.scalar(
        select(HomeCareMonth).where(HomeCareMonth.enrolment_id == enrolment.id, HomeCareMonth.month == first)
    )
    return world.refresh(world.session.get(Case, month.case_id))


def service(day: str, kind: str = "meal", amount: str = "30.00", minutes: int = 60) -> dict:
    return {
        "service_date": day,
        "service_type": kind,
        "minutes": minutes,
        "amount": amount,
        "staff_name": "陈红",
    }


CALLBACK = {
    "callback": {
        "callback_on": "2025-07-26",
        "reached": True,
        "services_confirmed": "confirmed",
        "satisfaction": "satisfied",
    }
}


# --------------------------------------------------------------------------------------------------
# The application: eligibility, assessment, review, approval


def test_elder_with_valid_assessment_goes_straight_to_township_review_and_is_enrolled(world):
    elder = make_elder(world)
    case = apply(world, elder)
    data = world.data(case)
    assert (data["household"], data["household_covered"], data["eligibility"]) == ("dibao", True, "eligible")
    assert world.ready_specs(case) == ["township_review"]
    assert "申请人：赵桂兰，80周岁，低保对象；能力等级：中度失能" in shown(world, case)["township_review"]

    world.complete(case, "township_review", REVIEW_PASS)
    assert world.ready(case)[0].role == "approver"
    assert "乡镇核实情况：入户核实" in shown(world, case)["county_approval"]
    world.complete(case, "county_approval", {"decision": "approve"})
    assert world.data(case)["monthly_quota"] == 300  # 中度失能, from the home_care_quota table
    assert "月度服务额度 300 元" in shown(world, case)["dispatch_provider"]
    dispatch(world, case, world.users["provider"])
    assert "助餐、助洁、助浴" in shown(world, case)["provider_accept"]
    accept = world.ready(case)[0]
    assert (accept.task_spec, accept.assignee_id) == ("provider_accept", world.users["provider"].id)

    world.complete(case, "provider_accept", {"decision": "accept", "planned_start_on": "2025-07-01"})
    enrolment = home_care.active_enrolment(world.session, elder.id)
    assert (
        enrolment.monthly_quota == Decimal("300.00")
        and enrolment.disability_level == DisabilityLevel.MODERATE
    )
    assert (enrolment.started_on, enrolment.next_month) == (date(2025, 6, 2), date(2025, 7, 1))
    assert json.loads(enrolment.services) == ["meal", "cleaning", "bathing"]
    case = world.refresh(case)
    assert case.status == CaseStatus.RUNNING
    assert set(case.waiting_for.split("\n")) == {
        "elder_died",
        "elder_moved_away",
        "home_care_withdrawn",
        "home_care_eligibility_lost",
    }


def test_elder_without_assessment_is_assessed_through_the_call_activity(world):
    elder = make_elder(world, level=None)
    case = apply(world, elder)
    assert world.data(case)["eligibility"] == "needs_assessment"
    assert [(t.task_spec, t.role) for t in world.ready(case)] == [("conduct_assessment", "assessor")]
    world.complete(case, "conduct_assessment", assessment_form(40))
    world.complete(case, "notify_result", NOTIFIED)
    world.session.refresh(elder)
    assert elder.disability_level == DisabilityLevel.SEVERE  # recorded on the elder by the message effect
    data = world.data(case)
    assert (data["disability_level"], data["eligibility"]) == ("severe", "eligible")
    assert data["assessment_valid_until"] == "2026-06-02"
    assert world.ready_specs(case) == ["township_review"]
    assert "重度失能" in shown(world, case)["township_review"]


def test_assessed_as_mildly_disabled_is_refused_with_the_reason(world):
    elder = make_elder(world, level=None)
    case = apply(world, elder)
    world.complete(case, "conduct_assessment", assessment_form(75))
    world.complete(case, "notify_result", NOTIFIED)
    assert world.ready_specs(case) == ["inform_applicant"]
    assert "轻度失能" in world.data(case)["eligibility_reason"]
    world.complete(case, "inform_applicant", {"informed_on": "2025-06-02", "inform_method": "written"})
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert home_care.active_enrolment(world.session, elder.id) is None


def test_household_not_covered_is_refused_without_assessment(world):
    elder = make_elder(world, level=None, dibao=False, near_dibao=True)
    case = apply(world, elder)
    data = world.data(case)
    assert (data["household_covered"], data["eligibility"]) == (False, "ineligible")
    assert world.ready_specs(case) == ["inform_applicant"]
    assert shown(world, case)["inform_applicant"].startswith("不属于本县购买居家养老服务保障的经济困难对象")


def test_township_rejection_needs_a_comment_and_ends_the_application(world):
    case = apply(world, make_elder(world))
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "township_review", {**REVIEW_PASS, "decision": "reject"})
    assert refused.value.field_errors == {"comment": "此项为必填项"}
    world.complete(
        case,
        "township_review",
        {**REVIEW_PASS, "decision": "reject", "comment": "子女有赡养能力，实际与子女同住"},
    )
    assert world.ready_specs(case) == ["inform_applicant"]


def test_county_sends_back_with_a_reason_and_township_resubmits(world):
    case = apply(world, make_elder(world))
    world.complete(case, "township_review", REVIEW_PASS)
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "county_approval", {"decision": "send_back"})
    assert refused.value.field_errors == {"comment": "此项为必填项"}
    world.complete(case, "county_approval", {"decision": "send_back", "comment": "请补充低保证明复印件"})
    assert world.ready_specs(case) == ["township_review"]
    assert any(
        e.kind.value == "sent_back" and e.comment == "请补充低保证明复印件" for e in world.events(case)
    )
    world.complete(case, "township_review", {**REVIEW_PASS, "verification": "已补充低保证明"})
    world.complete(case, "county_approval", {"decision": "approve"})
    assert world.ready_specs(case) == ["dispatch_provider"]


def test_county_rejection_ends_the_application(world):
    case = apply(world, make_elder(world))
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "reject", "comment": "本年度名额已满"})
    assert world.ready_specs(case) == ["inform_applicant"]


# --------------------------------------------------------------------------------------------------
# Dispatch: accept, decline, no response


def test_declining_provider_goes_back_to_dispatch_and_cannot_be_chosen_again(world):
    other = second_provider(world)
    case = apply(world, make_elder(world))
    approve_and_dispatch(world, case)
    world.complete(case, "provider_accept", {"decision": "decline", "decline_reason": "人手不足"})
    assert world.ready_specs(case) == ["dispatch_provider"]
    assert world.data(case)["declined_providers"] == [world.users["provider"].id]
    with pytest.raises(ValidationFailed) as refused:
        dispatch(world, case, world.users["provider"])
    assert "已拒单或未响应" in refused.value.field_errors["provider_id"]
    assert [u.id for u in home_care.provider_choices(world.session, world.refresh(case))] == [other.id]
    dispatch(world, case, other)
    task = world.ready(case)[0]
    assert task.assignee_id == other.id
    with pytest.raises(PermissionDenied):  # the order is the other provider's now
        tasks.complete(world.session, world.users["provider"], task.id, {"decision": "accept"})
    tasks.complete(world.session, other, task.id, {"decision": "accept", "planned_start_on": "2025-07-01"})
    assert home_care.active_enrolment(world.session, world.refresh(case).elder_id).provider_id == other.id


def test_decline_needs_a_reason(world):
    case = apply(world, make_elder(world))
    approve_and_dispatch(world, case)
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "provider_accept", {"decision": "decline"})
    assert refused.value.field_errors == {"decline_reason": "此项为必填项"}


def test_dispatch_to_a_non_provider_is_refused(world):
    case = apply(world, make_elder(world))
    world.complete(case, "township_review", REVIEW_PASS)
    world.complete(case, "county_approval", {"decision": "approve"})
    task = world.ready(case)[0]
    with pytest.raises(ValidationFailed) as refused:
        home_care.dispatch(
            world.session, world.users["caseworker"], task.id, {"provider_id": world.users["assessor"].id}
        )
    assert refused.value.field_errors == {"provider_id": "请选择一家服务机构（账号编号不存在）"}
    assert world.ready_specs(case) == ["dispatch_provider"]


def test_provider_not_responding_in_three_days_returns_to_dispatch(world):
    case = apply(world, make_elder(world))
    approve_and_dispatch(world, case)
    assert world.advance(days=2, hours=23) == 0
    assert world.ready_specs(case) == ["provider_accept"]
    assert world.advance(hours=2) == 1
    assert world.ready_specs(case) == ["dispatch_provider"]
    assert ready_data(world, case)["declined_providers"] == [world.users["provider"].id]
    withdrawn = world.session.scalars(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.task_spec == "provider_accept")
    ).all()
    assert [t.status for t in withdrawn] == [TaskStatus.CANCELLED]


def test_no_response_timer_does_not_fire_once_accepted(world):
    elder, case, enrolment = enrolled(world)
    assert world.advance(days=5) == 0
    assert home_care.active_enrolment(world.session, elder.id).id == enrolment.id


# --------------------------------------------------------------------------------------------------
# The enrolment: ending messages and the yearly reassessment


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("elder_died", EndReason.DECEASED),
        ("elder_moved_away", EndReason.MOVED_AWAY),
        ("home_care_eligibility_lost", EndReason.HOUSEHOLD),
    ],
)
def test_enrolment_ends_on_message(world, message, reason):
    elder, case, enrolment = enrolled(world)
    assert world.deliver(message, {"on": "2025-06-20"}, elder_id=elder.id) == [case.id]
    world.session.refresh(enrolment)
    assert (enrolment.status, enrolment.end_reason, enrolment.ended_on) == (
        EnrolmentStatus.ENDED,
        reason,
        date(2025, 6, 2),
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED
    world.advance(days=30)
    assert months.open_due_months(world.session) == 0  # no month opens for an ended enrolment


def test_withdrawal_is_recorded_through_the_enrolment_case(world):
    elder, case, enrolment = enrolled(world)
    with pytest.raises(ValidationFailed):
        home_care.withdraw(world.session, world.users["caseworker"], elder.id, " ")
    home_care.withdraw(world.session, world.users["caseworker"], elder.id, "老人随子女外出居住，申请退出")
    world.session.refresh(enrolment)
    assert enrolment.end_reason == EndReason.WITHDRAWN
    notice = json.loads(world.refresh(case).data)
    assert notice["withdrawal_notice"]["reason"] == "老人随子女外出居住，申请退出"


def test_yearly_reassessment_updates_level_and_quota(world):
    elder, case, enrolment = enrolled(world)  # assessment valid until 2026-05-06: reassess on 2026-04-06
    assert world.advance(days=307) == 0  # 2026-04-05
    assert world.advance(days=1, minutes=1) == 1
    assert world.ready_specs(case) == ["conduct_assessment"]
    assert world.data(case)["assessment_reason"] == "routine"
    world.complete(case, "conduct_assessment", assessment_form(35, day="2026-04-06", reason="routine"))
    world.complete(case, "notify_result", {**NOTIFIED, "notified_on": "2026-04-06"})
    world.session.refresh(enrolment)
    assert (enrolment.disability_level, enrolment.monthly_quota) == (
        DisabilityLevel.SEVERE,
        Decimal("450.00"),
    )
    assert enrolment.assessment_valid_until == date(2027, 4, 6)
    case = world.refresh(case)
    assert case.status == CaseStatus.RUNNING and case.next_timer_at.date() == date(2027, 3, 7)


def test_reassessed_as_able_ends_the_enrolment(world):
    elder, case, enrolment = enrolled(world)
    world.advance(days=308, minutes=1)
    world.complete(case, "conduct_assessment", assessment_form(80, day="2026-04-06", reason="routine"))
    world.complete(case, "notify_result", {**NOTIFIED, "notified_on": "2026-04-06"})
    world.session.refresh(enrolment)
    assert (enrolment.status, enrolment.end_reason) == (EnrolmentStatus.ENDED, EndReason.INELIGIBLE)
    assert world.refresh(case).status == CaseStatus.COMPLETED


def test_death_during_the_reassessment_ends_it(world):
    elder, case, enrolment = enrolled(world)
    world.advance(days=308, minutes=1)
    assert world.ready_specs(case) == ["conduct_assessment"]
    world.deliver("elder_died", {"on": "2026-04-08"}, elder_id=elder.id)
    assert world.ready_specs(case) == []
    world.session.refresh(enrolment)
    assert enrolment.end_reason == EndReason.DECEASED


# --------------------------------------------------------------------------------------------------
# Applying: checks


def test_application_errors_name_the_fields(world):
    elder = make_elder(world)
    with pytest.raises(ValidationFailed) as refused:
        apply(
            world,
            elder,
            {"applicant_type": "proxy", "applicant_phone": "12345", "requested_services": ["massage"]},
        )
    assert refused.value.field_errors == {
        "applicant_name": "家属申请或代办时须填写申请人姓名",
        "applicant_phone": refused.value.field_errors["applicant_phone"],
        "requested_services": "不是“六助”服务项目：massage",
    }
    assert (
        "电话" in refused.value.field_errors["applicant_phone"]
        or "号码" in refused.value.field_errors["applicant_phone"]
    )
    assert world.session.scalars(select(Case).where(Case.elder_id == elder.id)).all() == []


def test_second_application_and_enrolled_elder_are_refused(world):
    elder = make_elder(world)
    apply(world, elder)
    with pytest.raises(Conflict, match="在办"):
        apply(world, elder)
    enrolled_elder, *_ = enrolled(world)
    with pytest.raises(Conflict, match="已在享受"):
        apply(world, enrolled_elder)


# --------------------------------------------------------------------------------------------------
# The service month (`home_care_month`) and its job


def test_job_opens_one_month_case_per_month_for_the_provider(world):
    elder, case, enrolment = enrolled(world)
    assert months.open_due_months(world.session) == 0  # June: services start in July
    world.advance(days=29)  # 2025-07-01
    assert months.open_due_months(world.session) == 1
    assert months.open_due_months(world.session) == 0  # restart-safe: the same month is not opened twice
    july = month_case(world, enrolment, date(2025, 7, 1))
    assert july.parent_case_id == case.id
    assert "2025年7月的上门服务记录" in shown(world, july)["record_services"]
    task = world.ready(july)[0]
    assert (task.task_spec, task.role, task.assignee_id) == (
        "record_services",
        "provider",
        world.users["provider"].id,
    )
    assert task.due_at.astimezone(LOCAL).isoformat() == "2025-08-05T23:59:59+08:00"
    data = world.data(july)
    assert (data["monthly_quota"], data["min_services"], data["month_label"]) == (300, 1, "2025年7月")
    world.session.refresh(enrolment)
    assert enrolment.next_month == date(2025, 8, 1)


def _open(world, enrolment, first: date) -> Case:
    world.clock.set(world.clock() + (first - world.clock().date()) + timedelta(days=25))
    month = months.open_month(world.session, enrolment, first)
    return world.refresh(world.session.get(Case, month.case_id))


def _month_with_sample(elder_id: int, sampled: bool) -> date:
    first = date(2025, 7, 1)
    while callback_needed({"flagged": False}, elder_id, first, 0.2) != sampled:
        first = (first + timedelta(days=32)).replace(day=1)
    return first


def test_clean_month_not_sampled_is_settled_without_call_back(world):
    elder, _case, enrolment = enrolled(world)
    first = _month_with_sample(elder.id, sampled=False)
    month = _open(world, enrolment, first)
    day = first.isoformat()
    world.complete(month, "record_services", {"services": [service(day), service(day, "cleaning", "50.00")]})
    check = world.data(month)["month_check"]
    assert (check["flagged"], check["service_total"], check["proposed_amount"]) == (False, "80.00", "80.00")
    assert world.ready_specs(month) == ["township_settlement"]
    world.complete(month, "township_settlement", {"settlement_amount": "80.00"})
    row = world.session.scalar(select(HomeCareMonth).where(HomeCareMonth.case_id == month.id))
    assert (row.status, row.settlement_amount, row.flagged, row.callback) == (
        MonthStatus.SETTLED,
        Decimal("80.00"),
        False,
        None,
    )
    assert row.settled_by == world.users["caseworker"].id
    assert world.refresh(month).status == CaseStatus.COMPLETED


def test_sampled_month_is_called_back(world):
    elder, _case, enrolment = enrolled(world)
    first = _month_with_sample(elder.id, sampled=True)
    month = _open(world, enrolment, first)
    world.complete(month, "record_services", {"services": [service(first.isoformat())]})
    assert world.ready_specs(month) == ["callback_check"]
    world.complete(month, "callback_check", CALLBACK)
    world.complete(month, "township_settlement", {"settlement_amount": "30.00"})
    row = world.session.scalar(select(HomeCareMonth).where(HomeCareMonth.case_id == month.id))
    assert json.loads(row.callback)["satisfaction"] == "satisfied"


def test_month_without_six_helps_is_flagged_and_called_back(world):
    elder, _case, enrolment = enrolled(world)
    month = _open(world, enrolment, date(2025, 7, 1))
    world.complete(month, "record_services", {"services": [], "no_service_reason": "老人住院"})
    assert "⚠ 本月未提供任何一类“六助”服务" in shown(world, month)["callback_check"]
    check = world.data(month)["month_check"]
    assert check["flags"] == ["本月未提供任何一类“六助”服务"] and check["proposed_amount"] == "0.00"
    assert world.ready_specs(month) == ["callback_check"]
    world.complete(month, "callback_check", CALLBACK)
    world.complete(
        month, "township_settlement", {"settlement_amount": "0.00", "settlement_note": "住院，无服务"}
    )
    row = world.session.scalar(select(HomeCareMonth).where(HomeCareMonth.case_id == month.id))
    assert row.flagged and json.loads(row.flags) == ["本月未提供任何一类“六助”服务"]


def test_month_beyond_quota_is_flagged_and_settled_at_most_the_quota(world):
    elder, _case, enrolment = enrolled(world)
    month = _open(world, enrolment, date(2025, 7, 1))
    records = [service(f"2025-07-{d:02d}", "personal_care", "40.00") for d in range(1, 11)]  # 400 元 > 300
    world.complete(month, "record_services", {"services": records})
    check = world.data(month)["month_check"]
    assert check["over_quota"] and check["proposed_amount"] == "300.00"
    world.complete(month, "callback_check", CALLBACK)
    assert "建议结算 300.00 元" in shown(world, month)["township_settlement"]
    task = world.ready(month)[0]
    with pytest.raises(ValidationFailed) as refused:
        months.settle(world.session, world.users["caseworker"], task.id, {"settlement_amount": "400.00"})
    assert refused.value.field_errors == {"settlement_amount": "结算金额 400.00 元超出本月服务额度 300.00 元"}
    months.settle(world.session, world.users["caseworker"], task.id, {"settlement_amount": "300.00"})
    assert months.settled_total(world.session, "410825", date(2025, 7, 1)) == Decimal("300.00")


def test_records_not_submitted_by_the_deadline_are_flagged_missing(world):
    elder, _case, enrolment = enrolled(world)
    month = _open(world, enrolment, date(2025, 7, 1))  # clock: 2025-07-26
    assert world.advance(days=10) == 0  # 2025-08-05: the deadline is the end of that day
    assert world.ready_specs(month) == ["record_services"]
    assert world.advance(days=1) == 1
    assert world.ready_specs(month) == ["callback_check"]
    check = world.data(month)["month_check"]
    assert check["records_missing"] and "服务机构逾期未提交本月服务记录" in check["flags"]


def test_deadline_timer_does_not_fire_after_submission(world):
    elder, _case, enrolment = enrolled(world)
    month = _open(world, enrolment, date(2025, 7, 1))
    world.complete(month, "record_services", {"services": [service("2025-07-02")]})
    before = world.ready_specs(month)
    assert world.advance(days=20) == 0
    assert world.ready_specs(month) == before
    assert not world.data(month)["month_check"]["records_missing"]


def test_service_outside_the_month_is_refused_naming_the_row(world):
    elder, _case, enrolment = enrolled(world)
    month = _open(world, enrolment, date(2025, 7, 1))  # today: 2025-07-26
    task = world.ready(month)[0]
    records = [service("2025-07-03"), service("2025-08-01"), service("2025-07-30")]
    with pytest.raises(ValidationFailed) as refused:
        months.record_services(world.session, world.users["provider"], task.id, {"services": records})
    assert refused.value.field_errors == {
        "services.1.service_date": "服务日期 2025-08-01 不在本服务月（2025年7月）内",
        "services.2.service_date": "服务日期 2025-07-30 晚于今天，不能预先填报",
    }
    assert world.ready_specs(month) == ["record_services"]
    assert world.session.get(HomeCareMonth, 1) is None or True  # nothing settled
    bad_amount = [service("2025-07-03", amount="12.345")]
    with pytest.raises(ValidationFailed) as refused:
        months.record_services(world.session, world.users["provider"], task.id, {"services": bad_amount})
    assert refused.value.field_errors == {"services.0.amount": "格式不正确"}


# --------------------------------------------------------------------------------------------------
# The tables and the helpers


def _files(**replace) -> dict:
    files = {str(p.relative_to(BPMN)): p.read_text(encoding="utf-8") for p in BPMN.rglob("*.dmn")}
    for name, (old, new) in replace.items():
        files[name] = files[name].replace(old, new)
    return files


@pytest.mark.parametrize(
    ("household", "covered", "label"),
    [
        ("dibao", True, "低保对象"),
        ("tekun", False, "特困人员"),
        ("near_dibao", False, "低保边缘家庭"),
        ("none", False, "一般家庭"),
    ],
)
def test_households_table(household, covered, label):
    result = registry.engine().evaluate_decision(_files(), "home_care_households", {"household": household})
    assert result == {"household_covered": covered, "household_label": label}


def test_a_county_extends_coverage_to_near_dibao_by_editing_one_cell():
    near = '<rule id="household_near_dibao">'
    files = _files()
    text = files["home_care/home_care_households.dmn"]
    head, rule = text.split(near)
    rule = rule.replace("<text>False</text>", "<text>True</text>", 1)
    files["home_care/home_care_households.dmn"] = head + near + rule
    assert registry.engine().evaluate_decision(files, "home_care_households", {"household": "near_dibao"})[
        "household_covered"
    ]


@pytest.mark.parametrize(
    ("age", "covered", "level", "eligibility"),
    [
        (59, True, "severe", "ineligible"),
        (70, False, "severe", "ineligible"),
        (70, True, "moderate", "eligible"),
        (70, True, "severe", "eligible"),
        (70, True, "complete", "eligible"),
        (70, True, "mild", "ineligible"),
        (70, True, "intact", "ineligible"),
        (70, True, None, "needs_assessment"),
    ],
)
def test_eligibility_table(age, covered, level, eligibility):
    context = {"age": age, "household_covered": covered, "disability_level": level}
    result = registry.engine().evaluate_decision(_files(), "home_care_eligibility", context)
    assert result["eligibility"] == eligibility and result["eligibility_reason"]


@pytest.mark.parametrize(
    ("level", "quota", "rate"),
    [("moderate", 300, 0.2), ("severe", 450, 0.3), ("complete", 600, 0.3), ("mild", 0, 1)],
)
def test_quota_table(level, quota, rate):
    result = registry.engine().evaluate_decision(_files(), "home_care_quota", {"disability_level": level})
    assert result == {"monthly_quota": quota, "min_services": 1, "callback_rate": rate}


def test_month_check_helper():
    records = [service("2025-07-01", "meal", "100"), service("2025-06-30", "bathing", "250.5")]
    check = month_service_check(records, "2025-07-01", 300, 2)
    assert check["service_total"] == "350.50" and check["proposed_amount"] == "300.00"
    assert check["service_types"] == ["meal", "bathing"] and check["service_type_labels"] == "助餐、助浴"
    assert check["flags"] == [
        "服务金额 350.50 元超出本月额度 300.00 元，超出部分不予结算",
        "有1条服务记录的日期不在本月",
    ]
    few = month_service_check([service("2025-07-01")], "2025-07-01", 300, 2)
    assert few["flags"] == ["本月“六助”服务1次，少于每月至少2次的要求"]
    assert month_without_records("450")["quota"] == "450.00"


def test_callback_sample_is_repeatable():
    assert callback_needed({"flagged": True}, 1, "2025-07-01", 0) is True
    assert callback_needed({"flagged": False}, 1, "2025-07-01", 1) is True
    assert callback_needed({"flagged": False}, 1, "2025-07-01", 0) is False
    picks = [callback_needed({"flagged": False}, n, "2025-07-01", 0.3) for n in range(1000)]
    assert picks == [callback_needed({"flagged": False}, n, "2025-07-01", 0.3) for n in range(1000)]
    assert 250 < sum(picks) < 350


def test_month_opened_after_its_deadline_is_flagged_missing_at_once(world):
    elder, _case, enrolment = enrolled(world)
    world.clock.set(world.clock() + timedelta(days=70))  # 2025-08-11: the worker was down
    month = months.open_month(world.session, enrolment, date(2025, 7, 1))
    case = world.session.get(Case, month.case_id)
    assert world.ready_specs(case) == ["callback_check"]
    assert world.data(case)["month_check"]["records_missing"]


# --------------------------------------------------------------------------------------------------
# Effects called directly


def test_effects_are_registered_for_every_message_the_diagrams_throw():
    from lxml import etree

    thrown = set()
    for path in [
        *BPMN.glob("assessment/*.bpmn"),
        *BPMN.glob("home_care/*.bpmn"),
        *BPMN.glob("visiting_care/*.bpmn"),
    ]:
        root = etree.parse(str(path)).getroot()
        names = {m.get("id"): m.get("name") for m in root.iter("{*}message")}
        for event in root.iter("{*}intermediateThrowEvent", "{*}endEvent"):
            for definition in event.iter("{*}messageEventDefinition"):
                thrown.add(names[definition.get("messageRef")])
    assert thrown == {
        "record_assessment",
        "start_reassessment",
        "assign_home_care_provider",
        "enrol_home_care",
        "update_home_care_enrolment",
        "end_home_care",
        "settle_home_care_month",
        "enrol_visiting_care",
        "update_visiting_frequency",
        "end_visiting_care",
        "visit_recorded",
        "visit_overdue",
        "refer_home_adaptation",
        "refer_home_care",
        "issue_notice",
    }
    assert all(registry.current().handler_for(name) is not None for name in thrown)


def test_assigning_a_non_provider_is_refused(world):
    case = apply(world, make_elder(world))
    with pytest.raises(ValidationFailed) as refused:
        home_care.assign_provider(world.session, case, {"provider_id": world.users["approver"].id})
    assert refused.value.field_errors == {"provider_id": "请选择一家服务机构（账号编号不存在）"}
    with pytest.raises(ValidationFailed):
        home_care.assign_provider(world.session, case, {"provider_id": True})


def test_ending_without_an_active_enrolment_changes_nothing(world):
    case = apply(world, make_elder(world))
    assert home_care.end_enrolment(world.session, case, {"reason": "deceased"}) is None


def test_settlement_effect_rechecks_the_amount(world):
    elder, _case, enrolment = enrolled(world)
    month = _open(world, enrolment, date(2025, 7, 1))
    check = month_service_check([service("2025-07-01")], "2025-07-01", 300)
    payload = {"enrolment_id": enrolment.id, "month_start": "2025-07-01", "month_check": check}
    with pytest.raises(ValidationFailed):
        months.record_settlement(world.session, month, {**payload, "settlement_amount": "31.00"}, None)
    row = months.record_settlement(world.session, month, {**payload, "settlement_amount": "30"}, None)
    assert row.settlement_amount == Decimal("30.00") and row.settled_by is None


def test_demo_cases_reach_their_states(world):
    from workflows import registry as registry_of_processes
    from workflows.models.care import Visit

    registry = [
        make_elder(world, level=None, dibao=False),
        make_elder(world, level=None, dibao=False),
        make_elder(world),
        make_elder(world, level="severe"),
        make_elder(world, level=None),
        *(make_elder(world, level=None, dibao=False, living_alone=True) for _ in range(3)),
    ]
    counts = {}
    for key in ("assessment", "home_care", "visiting_care"):  # their demos, in the registry's order
        counts.update(registry_of_processes.current().get(key).demo(world.session, world.users, registry))
    assert counts == {
        "care_assessments": 2,
        "home_care_cases": 3,
        "home_care_enrolments": 1,
        "visiting_enrolments": 3,
        "visits": 4,
    }
    steps = {c.process_key + ":" + c.current_step for c in world.session.scalars(select(Case))}
    assert {
        "home_care:乡镇初审（入户核实）",
        "home_care:县级审批",
        "home_care_month:填报本月服务记录",
    } <= steps
    assert "assessment:现场评估（26项指标）" in steps
    statuses = sorted(v.status.value for v in world.session.scalars(select(Visit)))
    assert statuses == ["done", "due", "due", "overdue"]


def test_job_ends_the_enrolment_of_an_elder_who_moved_away(world):
    from workflows.models.elders import ElderStatus

    elder, case, enrolment = enrolled(world)
    elder.status = ElderStatus.MOVED_AWAY
    world.advance(days=29)
    assert months.open_due_months(world.session) == 1
    world.session.refresh(enrolment)
    assert enrolment.end_reason == EndReason.MOVED_AWAY
    assert world.session.scalars(select(HomeCareMonth)).all() == []
