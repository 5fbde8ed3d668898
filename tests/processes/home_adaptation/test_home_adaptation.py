"""The home_adaptation diagram (家庭适老化改造): one test per path, each step restored from the database.

Paths: refused at application (household category; no 高龄/失能/残疾); township send back / reject; county send
back / reject; plan refused (above the cap without the household's share, or a wrong share) with nothing
written; objection during the public notice (back to planning); notice period ends (timer fires, and not
before); acceptance failed (rework) / passed; subsidy, call-back, archive.
"""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.processes.admission.test_admission import id_number
from workflows import cases, registry, versions
from workflows.config import bpmn_dir
from workflows.errors import Conflict, ValidationFailed
from workflows.models import CaseEvent, CaseStatus
from workflows.processes.home_adaptation import adaptation
from workflows.rules import housing
from workflows.rules.assessment import DisabilityLevel

APPLICATION = {
    "household_category": "dibao",
    "elder_age": 82,
    "disability_level": "none",
    "handicapped": False,
    "contact_phone": "13900001111",
    "address": "祥云村3组12号",
}
APPROVE = {"decision": "approve"}
ASSESSMENT = {
    "assessed_on": "2025-05-26",
    "capability_level": "mild",
    "environment_risks": ["slippery_floor", "toilet_bath"],
    "recommended_items": ["anti_slip_floor", "bathroom_handrail", "shower_chair"],
}
SIGNED = {
    "signed_by": "elder",
    "signer_name": "张三",
    "signed_on": "2025-05-27",
    "signature_scan": "attachment:7",
}
WITHIN_CAP = {
    "plan": {
        "items": [
            {"item": "anti_slip_floor", "quantity": 10},  # 10 m² × 80
            {"item": "bathroom_handrail", "quantity": 2},  # 2 × 300
            {"item": "shower_chair", "quantity": 1, "unit_price": 180},
        ]
    },
    **SIGNED,
}
OVER_CAP_ITEMS = [
    *WITHIN_CAP["plan"]["items"],
    {"item": "nursing_bed", "quantity": 1},
]  # 1,580 + 2,500 = 4,080
WORKS = {
    "contractor_name": "温县安居适老化改造工程队",
    "started_on": "2025-05-28",
    "finished_on": "2025-05-30",
    "before_photo_1": "attachment:11",
    "after_photo_1": "attachment:12",
}
PASSED = {
    "acceptance_result": "passed",
    "inspected_on": "2025-06-01",
    "inspectors": "王建华、刘敏",
    "elder_confirmed": True,
}


@pytest.fixture
def elder(world):
    return world.elder(id_number=id_number("19430101"), name="张三", dibao=True)


@pytest.fixture
def case(world, elder):
    return adaptation.start_application(world.session, world.users["village_assistant"], elder.id)


def to_assessment(world, case, application=None):
    world.complete(case, "application", application or APPLICATION)
    world.complete(case, "township_review", APPROVE)
    world.complete(case, "county_review", APPROVE)


def to_plan(world, case, application=None):
    to_assessment(world, case, application)
    world.complete(case, "home_assessment", ASSESSMENT)


def to_notice(world, case):
    to_plan(world, case)
    world.complete(case, "adaptation_plan", WITHIN_CAP)


def events_count(world, case) -> int:
    return world.session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == case.id))


def refused(world, case, spec, data):
    """Complete a step expecting a refusal; return the error after checking nothing was written."""
    world.session.commit()
    before_events, before_data = events_count(world, case), world.data(case)
    with pytest.raises(ValidationFailed) as error:
        world.complete(case, spec, data)
    world.session.rollback()
    assert world.ready_specs(case) == [spec]
    assert events_count(world, case) == before_events
    assert world.data(case) == before_data
    return error.value


# --------------------------------------------------------------------------------------------------
# Application


def test_application_is_prefilled_from_the_register(world, case):
    assert world.ready_specs(case) == ["application"]
    data = world.data(case)
    assert (data["elder_age"], data["household_category"], data["disability_level"], data["handicapped"]) == (
        82,
        "dibao",
        "none",
        False,
    )
    assert world.ready(case)[0].role == "village_assistant"


def test_a_household_outside_the_four_categories_is_refused_with_a_field_error(world, case):
    error = refused(world, case, "application", {**APPLICATION, "household_category": "other"})
    assert list(error.field_errors) == ["household_category"]
    assert "特困供养、城乡低保、低保边缘或防返贫监测三类户" in error.field_errors["household_category"]


def test_an_elder_neither_old_disabled_nor_handicapped_is_refused(world, case):
    error = refused(world, case, "application", {**APPLICATION, "elder_age": 72})
    assert error.field_errors == {
        "disability_level": "老年人不属于高龄（80周岁及以上）、失能或残疾，不在本项目改造对象范围内"
    }


@pytest.mark.parametrize(
    ("change", "basis"),
    [
        ({}, "困难家庭高龄老年人（80周岁及以上）"),
        ({"elder_age": 70, "disability_level": "severe"}, "困难家庭失能老年人"),
        (
            {"elder_age": 70, "handicapped": True, "household_category": "three_category_household"},
            "困难家庭残疾老年人",
        ),
    ],
)
def test_eligible_applications_go_to_the_township(world, case, change, basis):
    world.complete(case, "application", {**APPLICATION, **change})
    assert world.ready_specs(case) == ["township_review"]
    assert world.data(case)["eligibility_basis"] == basis


# --------------------------------------------------------------------------------------------------
# Reviews


def test_township_sends_back_to_the_assistant_then_approves(world, case):
    world.complete(case, "application", APPLICATION)
    world.complete(case, "township_review", {"decision": "send_back", "comment": "请补充低保证复印件"})
    assert world.ready_specs(case) == ["application"]
    world.complete(case, "application", APPLICATION)
    world.complete(case, "township_review", APPROVE)
    assert world.ready_specs(case) == ["county_review"]


def test_township_rejection_ends_the_case(world, case):
    world.complete(case, "application", APPLICATION)
    world.complete(case, "township_review", {"decision": "reject", "comment": "已享受过改造补助"})
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert "township_rejected_end" in cases.completed_steps(world.session, world.refresh(case))


def test_county_sends_back_to_the_township(world, case):
    world.complete(case, "application", APPLICATION)
    world.complete(case, "township_review", APPROVE)
    world.complete(case, "county_review", {"decision": "send_back", "comment": "年度名额核对"})
    assert world.ready_specs(case) == ["township_review"]


def test_county_rejection_ends_the_case(world, case):
    world.complete(case, "application", APPLICATION)
    world.complete(case, "township_review", APPROVE)
    world.complete(case, "county_review", {"decision": "reject", "comment": "本年度名额已满"})
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert "county_rejected_end" in cases.completed_steps(world.session, world.refresh(case))


# --------------------------------------------------------------------------------------------------
# The plan


def test_assessment_leads_to_the_plan_with_the_cap_of_the_household(world, case):
    to_plan(world, case)
    assert world.ready_specs(case) == ["adaptation_plan"]
    assert world.ready(case)[0].role == "caseworker"
    assert world.data(case)["subsidy_cap"] == 3000


def test_a_plan_above_the_cap_without_the_households_share_is_refused_and_nothing_written(world, case):
    to_plan(world, case)
    error = refused(world, case, "adaptation_plan", {**SIGNED, "plan": {"items": OVER_CAP_ITEMS}})
    assert error.field_errors == {
        "plan.household_share": "方案总价 4,080.00 元，超出本户补助上限 3,000.00 元，须写明家庭自付部分（1,080.00 元），"
        "并由老年人或其监护人签字确认"
    }
    assert "plan_summary" not in world.data(case)


def test_a_wrong_household_share_is_refused(world, case):
    to_plan(world, case)
    error = refused(
        world, case, "adaptation_plan", {**SIGNED, "plan": {"items": OVER_CAP_ITEMS, "household_share": 1000}}
    )
    assert error.field_errors["plan.household_share"] == (
        "家庭自付部分应为 1,080.00 元（方案总价 4,080.00 元 − 补助 3,000.00 元），填写的是 1,000.00 元"
    )


def test_a_plan_above_the_cap_with_the_share_stated_goes_to_public_notice(world, case):
    to_plan(world, case)
    world.complete(
        case, "adaptation_plan", {**SIGNED, "plan": {"items": OVER_CAP_ITEMS, "household_share": 1080}}
    )
    summary = world.data(case)["plan_summary"]
    assert (summary["total"], summary["subsidy"], summary["household_share"]) == (
        "4080.00",
        "3000.00",
        "1080.00",
    )
    assert world.refresh(case).waiting_for == "adaptation_objection"


def test_unknown_items_and_bad_quantities_are_refused_by_the_form(world, case):
    to_plan(world, case)
    with pytest.raises(ValidationFailed) as error:
        world.complete(
            case, "adaptation_plan", {**SIGNED, "plan": {"items": [{"item": "jacuzzi", "quantity": 0}]}}
        )
    assert set(error.value.field_errors) == {"plan.items.0.item", "plan.items.0.quantity"}


# --------------------------------------------------------------------------------------------------
# Public notice


def test_objection_during_the_notice_sends_the_plan_back(world, case, elder):
    to_notice(world, case)
    world.advance(days=3)
    assert world.ready_specs(case) == []
    delivered = adaptation.lodge_objection(
        world.session,
        world.users["caseworker"],
        elder_id=elder.id,
        reason="同村另一户更困难，应优先改造",
        objector="李四",
    )
    assert delivered == [case.id]
    assert world.ready_specs(case) == ["adaptation_plan"]
    assert world.data(case)["objection"]["reason"] == "同村另一户更困难，应优先改造"
    # Re-planned and re-published: a fresh 7-day notice.
    world.complete(case, "adaptation_plan", WITHIN_CAP)
    assert world.advance(days=6, hours=23) == 0
    assert world.advance(hours=2) == 1
    assert world.ready_specs(case) == ["carry_out_works"]


def test_no_objection_in_seven_days_starts_the_works(world, case):
    to_notice(world, case)
    assert world.advance(days=6, hours=23) == 0  # the timer does not fire early
    assert world.refresh(case).waiting_for == "adaptation_objection"
    assert world.advance(hours=1, minutes=1) == 1
    assert world.ready_specs(case) == ["carry_out_works"]
    assert world.ready(case)[0].role == "provider"
    with pytest.raises(Conflict):  # the notice is over
        adaptation.lodge_objection(
            world.session, world.users["caseworker"], case_id=case.id, reason="迟到的异议"
        )


def test_objection_needs_a_reason(world, case):
    to_notice(world, case)
    with pytest.raises(ValidationFailed) as error:
        adaptation.lodge_objection(world.session, world.users["caseworker"], case_id=case.id, reason=" ")
    assert error.value.field_errors == {"reason": "请填写异议内容"}


# --------------------------------------------------------------------------------------------------
# Works, acceptance, payment, call-back, archive


def test_works_need_before_and_after_photos(world, case):
    to_notice(world, case)
    world.advance(days=8)
    with pytest.raises(ValidationFailed) as error:
        world.complete(case, "carry_out_works", {k: v for k, v in WORKS.items() if k != "after_photo_1"})
    assert error.value.field_errors == {"after_photo_1": "此项为必填项"}


def test_failed_acceptance_sends_the_works_back(world, case):
    to_notice(world, case)
    world.advance(days=8)
    world.complete(case, "carry_out_works", WORKS)
    with pytest.raises(ValidationFailed):  # a failed acceptance must say what to fix
        world.complete(case, "acceptance_inspection", {**PASSED, "acceptance_result": "failed"})
    world.complete(
        case,
        "acceptance_inspection",
        {**PASSED, "acceptance_result": "failed", "acceptance_note": "扶手安装不牢固，需加固"},
    )
    assert world.ready_specs(case) == ["carry_out_works"]
    world.complete(case, "carry_out_works", {**WORKS, "works_note": "已加固扶手"})
    world.complete(case, "acceptance_inspection", PASSED)
    assert world.ready_specs(case) == ["subsidy_payment"]


def test_a_payment_other_than_the_subsidy_is_refused(world, case):
    to_notice(world, case)
    world.advance(days=8)
    world.complete(case, "carry_out_works", WORKS)
    world.complete(case, "acceptance_inspection", PASSED)
    error = refused(
        world,
        case,
        "subsidy_payment",
        {"paid_amount": 3000, "paid_on": "2025-06-09", "voucher_no": "ZF-1", "payee": "contractor"},
    )
    assert error.field_errors == {"paid_amount": "拨付金额应为核定补助 1,580.00 元，填写的是 3,000.00 元"}
    world.complete(
        case,
        "subsidy_payment",
        {"paid_amount": 1580, "paid_on": "2025-06-09", "voucher_no": "ZF-1", "payee": "contractor"},
    )
    assert world.ready_specs(case) == ["satisfaction_callback"]


def test_the_notice_period_is_configuration(world, case, tmp_path, monkeypatch):
    override = tmp_path / "county.json"
    override.write_text('{"adaptation": {"public_notice_days": 5}}', encoding="utf-8")
    monkeypatch.setenv(housing.CONFIG_ENV, str(override))
    housing.reload()
    try:
        to_notice(world, case)
        assert world.advance(days=4, hours=23) == 0
        assert world.advance(hours=2) == 1
    finally:
        monkeypatch.delenv(housing.CONFIG_ENV)
        housing.reload()
    assert world.ready_specs(case) == ["carry_out_works"]


def test_the_whole_procedure_to_the_household_file(world, case):
    to_plan(world, case)
    world.complete(
        case, "adaptation_plan", {**SIGNED, "plan": {"items": OVER_CAP_ITEMS, "household_share": 1080}}
    )
    world.advance(days=7, minutes=1)
    world.complete(case, "carry_out_works", WORKS)
    world.complete(case, "acceptance_inspection", PASSED)
    task = world.ready(case)[0]
    assert (task.task_spec, task.role) == ("subsidy_payment", "approver")
    world.complete(
        case,
        "subsidy_payment",
        {"paid_amount": 3000, "paid_on": "2025-06-09", "voucher_no": "ZF-0701", "payee": "contractor"},
    )
    world.complete(
        case,
        "satisfaction_callback",
        {"called_on": "2025-06-09", "callback_method": "phone", "satisfaction": "very_satisfied"},
    )
    world.complete(case, "archive_household_file", {"file_no": "SLH-2025-0001", "documents_complete": True})
    assert world.refresh(case).status == CaseStatus.COMPLETED
    record = adaptation.household_file(world.session, world.users["approver"], case.id)
    sections = {s["step"]: s["record"] for s in record["sections"]}
    assert sections["adaptation_plan"]["plan_summary"]["household_share"] == "1080.00"
    assert sections["carry_out_works"]["before_photo_1"] == "attachment:11"
    assert sections["archive_household_file"]["file_no"] == "SLH-2025-0001"
    assert [r["decision"] for r in record["reviews"]] == ["approve", "approve"]


def test_an_elder_cannot_have_two_running_applications(world, case, elder):
    with pytest.raises(Conflict):
        adaptation.start_application(world.session, world.users["caseworker"], elder.id)


def test_prefill_takes_a_valid_assessment_and_the_handicap(world):
    elder = world.elder(
        id_number=id_number("19500101"),
        name="李四",
        tekun=True,
        severe_handicap=True,
        disability_level=DisabilityLevel.SEVERE,
        disability_assessed_on=date(2025, 1, 1),
        disability_valid_until=date(2025, 12, 31),
    )
    case = adaptation.start_application(world.session, world.users["caseworker"], elder.id)
    data = world.data(case)
    assert (data["household_category"], data["disability_level"], data["handicapped"]) == (
        "tekun",
        "severe",
        True,
    )


# --------------------------------------------------------------------------------------------------
# Rules and configuration


def _decide(decision_id, context):
    files = {k: v for k, v in versions.read_bundle(bpmn_dir()).items() if k.endswith(".dmn")}
    return registry.engine().evaluate_decision(files, decision_id, context)


@pytest.mark.parametrize(
    ("change", "eligible", "field"),
    [
        ({}, True, ""),
        ({"elder_age": 79}, False, "disability_level"),
        ({"elder_age": 79, "disability_level": "mild"}, False, "disability_level"),
        ({"elder_age": 79, "disability_level": "moderate"}, True, ""),
        ({"elder_age": 79, "handicapped": True}, True, ""),
        ({"household_category": "other"}, False, "household_category"),
        ({"household_category": "tekun"}, True, ""),
        ({"household_category": "near_dibao"}, True, ""),
        ({"household_category": "three_category_household"}, True, ""),
    ],
)
def test_eligibility_table(change, eligible, field):
    context = {
        "household_category": "dibao",
        "elder_age": 80,
        "disability_level": "none",
        "handicapped": False,
    }
    result = _decide("adaptation_eligibility", {**context, **change})
    assert (result["eligible"], result["refusal_field"]) == (eligible, field)


@pytest.mark.parametrize("category", ["tekun", "dibao", "near_dibao", "three_category_household"])
def test_subsidy_cap_table(category):
    assert _decide("adaptation_subsidy_cap", {"household_category": category})["subsidy_cap"] == 3000


def test_the_national_list_has_30_items_in_7_groups_7_of_them_basic():
    items = housing.adaptation_items()
    assert len(items) == 30
    assert [i["no"] for i in items.values()] == list(range(1, 31))
    assert len(housing.adaptation_groups()) == 7
    basic = [i["name"] for i in items.values() if i["kind"] == "basic"]
    assert basic == [
        "防滑处理",
        "高差处理",
        "安装床边护栏（抓杆）",
        "安装扶手",
        "配置淋浴椅",
        "手杖",
        "防走失装置",
    ]
    per_group = {}
    for item in items.values():
        per_group[item["group"]] = per_group.get(item["group"], 0) + 1
    assert per_group == {
        "floor": 4,
        "doors": 5,
        "bedroom": 3,
        "toilet_bath": 5,
        "kitchen": 2,
        "environment": 4,
        "aids": 7,
    }


def test_the_plan_and_assessment_forms_offer_exactly_the_national_list():
    files = versions.read_bundle(bpmn_dir())
    import json

    plan = json.loads(files["home_adaptation/forms/adaptation_plan.json"])
    offered = [
        c["const"]
        for c in plan["properties"]["plan"]["properties"]["items"]["items"]["properties"]["item"]["oneOf"]
    ]
    assert offered == list(housing.adaptation_items())
    assessment = json.loads(files["home_adaptation/forms/home_assessment.json"])
    assert [c["const"] for c in assessment["properties"]["recommended_items"]["items"]["oneOf"]] == offered


def test_pricing_uses_indicative_prices_and_counts_only_subsidised_kinds():
    plan = {"items": [{"item": "walking_stick", "quantity": 1}, {"item": "hearing_aid", "quantity": 1}]}
    everything = housing.price_plan(plan, 3000, ["basic", "optional"])
    assert (everything.total, everything.subsidy, everything.household_share) == (
        Decimal("1580.00"),
        Decimal("1580.00"),
        Decimal("0.00"),
    )
    assert everything.ok
    basic_only = housing.price_plan(plan, 3000, ["basic"])
    assert (basic_only.subsidy, basic_only.household_share) == (Decimal("80.00"), Decimal("1500.00"))
    assert (
        "方案总价 1,580.00 元，其中 1,500.00 元为不在补助范围内的项目，须写明家庭自付部分（1,500.00 元）"
        in basic_only.problems["plan.household_share"]
    )
    stated = housing.price_plan({**plan, "household_share": "1500"}, 3000, ["basic"])
    assert stated.ok


def test_pricing_refuses_duplicates_and_a_share_when_none_is_due():
    dup = housing.price_plan(
        {"items": [{"item": "faucet", "quantity": 1}, {"item": "faucet", "quantity": 2}]}, 3000
    )
    assert dup.problems == {"plan.items.1.item": "与第 1 行重复：水龙头改造，请合并数量"}
    extra = housing.price_plan({"items": [{"item": "faucet", "quantity": 1}], "household_share": 10}, 3000)
    assert extra.problems == {
        "plan.household_share": "方案总价 150.00 元在补助范围内，家庭无需自付，自付部分应为 0"
    }
