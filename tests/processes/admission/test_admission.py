"""The admission diagram (公办养老机构入住评估和轮候): one test per path, each step restored from the database.

Paths: refused at application (each condition); materials rejected; rural 特困 referred to the township home;
queued → withdrawn; queued → offered → arrived → assessed suitable → admitted (deadline timer not firing);
→ assessed unsuitable (bed passes on); → declined (place kept, bed passes on); → no-show when the 5-working-day
timer fires; → removed when the refusal limit is reached.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.processes.harness import COUNTY, OTHER_VILLAGE
from workflows import cases, deadlines, registry, versions
from workflows.config import bpmn_dir
from workflows.errors import ValidationFailed
from workflows.models import Case, CaseEvent, CaseStatus, HukouType
from workflows.models.admission import (
    EntryStatus,
    OfferStatus,
    QueueEventKind,
    Tier,
    VacancyStatus,
    WaitlistEntry,
    WaitlistEvent,
    WaitlistOffer,
)
from workflows.models.outbox import OutboxMessage, OutboxStatus
from workflows.processes.admission import waitlist
from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import compute_check_char

ANSWERS = {
    "violent_tendency": False,
    "mental_state_stable": True,
    "infectious_disease": False,
    "voluntary": True,
}
_serial = iter(range(100, 999))


def id_number(birth: str = "19400101", sex_digit: int = 1) -> str:
    """A valid resident ID number for a birth date (YYYYMMDD), unique per call."""
    first17 = f"410825{birth}{next(_serial):02d}{sex_digit}"[:17]
    return first17 + compute_check_char(first17)


def make_elder(world, birth: str = "19400101", name: str = "张三", **flags):
    level = flags.pop("level", None)
    if level is not None:
        flags.update(
            disability_level=DisabilityLevel(level),
            disability_assessed_on=date(2025, 1, 10),
            disability_valid_until=date(2026, 1, 9),
        )
    flags.setdefault("phone", "13900001111")
    return world.elder(id_number=id_number(birth), name=name, **flags)


def make_facility(world, name: str = "温县社会福利中心"):
    return waitlist.create_facility(
        world.session,
        world.users["approver"],
        name=name,
        area_code=COUNTY,
        address="温县黄河路1号",
        phone="0391-6123456",
        beds=120,
    )


def apply(world, elder, facility, *, applied_at=None, **answers):
    return waitlist.apply(
        world.session,
        world.users["caseworker"],
        elder.id,
        facility.id,
        {**ANSWERS, **answers},
        applied_at=applied_at,
    )


def verify(world, case, *, referral: bool = False):
    return world.complete(case, "verify_application", {"decision": "approve", "township_referral": referral})


def queued(world, facility, *, birth="19400101", name="张三", applied_at=None, referral=False, **flags):
    """An elder who applied and whose application was verified: on the facility's queue."""
    elder = make_elder(world, birth, name, **flags)
    case = apply(world, elder, facility, applied_at=applied_at)
    verify(world, case, referral=referral)
    return case


def entry_of(world, case) -> WaitlistEntry:
    world.session.expire_all()
    return world.session.scalar(select(WaitlistEntry).where(WaitlistEntry.case_id == case.id))


def offers_of(world, case) -> list[WaitlistOffer]:
    return list(
        world.session.scalars(
            select(WaitlistOffer).where(WaitlistOffer.case_id == case.id).order_by(WaitlistOffer.id)
        )
    )


def vacancy(world, facility, bed="3号楼201-1", **kwargs):
    return waitlist.register_vacancy(world.session, world.users["facility_admin"], facility.id, bed, **kwargs)


def at_local(*args) -> datetime:
    return datetime(*args, tzinfo=deadlines.LOCAL).astimezone(UTC)


@pytest.fixture
def facility(world):
    return make_facility(world)


# --------------------------------------------------------------------------------------------------
# Application refused: a field error, nothing written


def test_applicant_under_60_is_refused_with_a_field_error_and_nothing_written(world, facility):
    elder = make_elder(world, birth="19670315")  # 58 on 2025-06-02
    before = world.session.scalar(select(func.count(Case.id)))
    with pytest.raises(ValidationFailed) as refused:
        apply(world, elder, facility)
    assert refused.value.field_errors == {
        "elder_age": "申请人须年满60周岁才能申请轮候入住公办养老机构（申请人现年58周岁）"
    }
    world.session.expire_all()
    assert world.session.scalar(select(func.count(Case.id))) == before
    assert world.session.scalar(select(func.count(WaitlistEntry.id))) == 0


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("violent_tendency", True, "有暴力倾向"),
        ("mental_state_stable", False, "精神状况不稳定"),
        ("infectious_disease", True, "传染性疾病"),
        ("voluntary", False, "自愿"),
    ],
)
def test_each_condition_refuses_with_its_field(world, facility, field, value, reason):
    elder = make_elder(world)
    with pytest.raises(ValidationFailed) as refused:
        apply(world, elder, facility, **{field: value})
    assert list(refused.value.field_errors) == [field]
    assert reason in refused.value.field_errors[field]
    assert world.session.scalar(select(func.count(Case.id)).where(Case.elder_id == elder.id)) == 0


def test_not_eligible_path_through_the_generic_form_refuses_and_keeps_the_case_as_it_was(world, facility):
    """Started without the waitlist module (e.g. from the generic task list): the refusal end event's handler
    refuses the submission; the step is rolled back and the application stays open."""
    elder = make_elder(world, birth="19700101")
    case = world.start("admission", elder=elder)
    assert world.ready_specs(case) == ["application"]
    events_before = len(world.events(case))
    form = {
        "facility_id": facility.id,
        "elder_age": 55,
        **ANSWERS,
        "hukou_type": "rural",
        "tekun": False,
        "dibao": False,
        "near_dibao": False,
        "disability_level": "none",
        "entitled_veteran_family": False,
        "family_planning_special": False,
    }
    with pytest.raises(ValidationFailed) as refused, world.session.begin_nested():
        world.complete(case, "application", form)
    assert "elder_age" in refused.value.field_errors
    assert world.ready_specs(case) == ["application"]
    assert len(world.events(world.refresh(case))) == events_before


# --------------------------------------------------------------------------------------------------
# Verified or not; tier


def test_materials_rejected_ends_without_queueing(world, facility):
    elder = make_elder(world)
    case = apply(world, elder, facility)
    assert world.ready_specs(case) == ["verify_application"]
    world.complete(
        case,
        "verify_application",
        {"decision": "reject", "township_referral": False, "comment": "健康证明系伪造"},
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert entry_of(world, case) is None
    assert "application_rejected_end" in cases.completed_steps(world.session, world.refresh(case))


def test_rural_tekun_without_township_referral_is_referred_to_the_township_home(world, facility):
    case = queued(world, facility, tekun=True, hukou_type=HukouType.RURAL)
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert world.data(case)["tier"] == "township_home"
    assert entry_of(world, case) is None
    assert "refer_to_township_home_end" in cases.completed_steps(world.session, world.refresh(case))


@pytest.mark.parametrize(
    ("flags", "referral", "tier"),
    [
        ({"tekun": True, "hukou_type": HukouType.URBAN}, False, Tier.SPECIAL),
        ({"tekun": True, "hukou_type": HukouType.RURAL}, True, Tier.SPECIAL),
        ({"dibao": True, "level": "moderate"}, False, Tier.PRIORITY),
        ({"near_dibao": True, "level": "complete"}, False, Tier.PRIORITY),
        ({"entitled_veteran_family": True, "level": "severe"}, False, Tier.PRIORITY),
        ({"family_planning_special": True}, False, Tier.PRIORITY),
        ({"dibao": True, "level": "mild"}, False, Tier.ORDINARY),
        ({"dibao": True}, False, Tier.ORDINARY),
        ({}, False, Tier.ORDINARY),
    ],
)
def test_tier_comes_from_the_register_through_the_tier_table(world, facility, flags, referral, tier):
    case = queued(world, facility, referral=referral, **flags)
    entry = entry_of(world, case)
    assert entry.tier == tier
    assert entry.status == EntryStatus.WAITING
    assert world.refresh(case).waiting_for == "admission_withdrawn\nbed_vacated"
    joined = world.session.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id)).all()
    assert [m.purpose for m in joined] == ["waitlist_joined"]
    assert "当前第1位" in joined[0].body


# --------------------------------------------------------------------------------------------------
# Waiting: withdrawn, or a bed


def test_withdrawal_while_waiting_ends_the_case_and_the_entry(world, facility):
    case = queued(world, facility)
    entry = entry_of(world, case)
    waitlist.withdraw(world.session, world.users["caseworker"], entry.id, "家属接回家中照料")
    assert world.refresh(case).status == CaseStatus.COMPLETED
    entry = entry_of(world, case)
    assert entry.status == EntryStatus.WITHDRAWN
    assert entry.end_reason == "家属接回家中照料"


def test_offer_arrival_suitable_admitted_and_the_deadline_timer_never_fires(world, facility):
    case = queued(world, facility, name="李桂兰")
    bed = vacancy(world, facility)
    assert world.ready_specs(case) == ["await_arrival"]
    (offer,) = offers_of(world, case)
    assert offer.status == OfferStatus.PENDING
    sms = world.session.get(OutboxMessage, offer.message_id)
    assert sms.purpose == "bed_offer" and sms.status == OutboxStatus.QUEUED
    assert "李桂兰您好" in sms.body and "2025年6月9日（星期一）前" in sms.body
    world.advance(days=2)  # comes on Wednesday, before the deadline
    world.complete(case, "await_arrival", {"response": "arrived"})
    assert world.ready_specs(case) == ["admission_assessment"]
    assert world.session.get(WaitlistOffer, offer.id).status == OfferStatus.ARRIVED
    world.complete(
        case,
        "admission_assessment",
        {"assessed_on": "2025-06-04", "care_level": "mild", "assessment_result": "suitable"},  # Wednesday
    )
    world.complete(
        case, "admit", {"admitted_on": "2025-06-04", "bed_label": "3号楼201-1", "contract_no": "WX-2025-031"}
    )
    assert world.refresh(case).status == CaseStatus.COMPLETED
    world.session.expire_all()
    assert entry_of(world, case).status == EntryStatus.ADMITTED
    assert world.session.get(WaitlistOffer, offer.id).status == OfferStatus.ADMITTED
    assert world.session.get(type(bed), bed.id).status == VacancyStatus.FILLED
    assert world.advance(days=10) == 0  # the arrival deadline was withdrawn with the step


def test_unsuitable_at_assessment_ends_the_application_and_passes_the_bed_on(world, facility):
    first = queued(world, facility, name="甲")
    second = queued(world, facility, name="乙")
    vacancy(world, facility)
    world.complete(first, "await_arrival", {"response": "arrived"})
    world.complete(
        first,
        "admission_assessment",
        {
            "assessed_on": "2025-06-02",
            "care_level": "complete",
            "assessment_result": "unsuitable",
            "assessment_note": "需住院治疗，不宜入住养老机构",
        },
    )
    assert world.refresh(first).status == CaseStatus.COMPLETED
    assert entry_of(world, first).status == EntryStatus.NOT_ADMITTED
    assert offers_of(world, first)[0].status == OfferStatus.UNSUITABLE
    assert world.ready_specs(second) == ["await_arrival"]


def test_decline_keeps_the_place_and_passes_the_bed_to_the_next(world, facility):
    first = queued(world, facility, name="甲")
    second = queued(world, facility, name="乙")
    vacancy(world, facility)
    world.complete(first, "await_arrival", {"response": "declined", "response_note": "想再等等本镇敬老院"})
    assert world.ready_specs(first) == []
    assert world.refresh(first).waiting_for == "admission_withdrawn\nbed_vacated"
    assert offers_of(world, first)[0].status == OfferStatus.DECLINED
    assert entry_of(world, first).status == EntryStatus.WAITING
    assert waitlist.explain_position(world.session, world.users["caseworker"], entry_of(world, first).id) == (
        "第1位：普通轮候，申请时间 2025-06-02 09:00；与第2位同类别、同申请时间，按登记先后（登记号 "
        f"{entry_of(world, first).id} 在前）排在其前；365天内已放弃或逾期未到 1 次（满 3 次将移出轮候名单）"
    )
    assert world.ready_specs(second) == ["await_arrival"]
    skip = world.session.scalars(
        select(WaitlistEvent).where(WaitlistEvent.kind == QueueEventKind.SKIPPED)
    ).one()
    assert skip.entry_id == entry_of(world, first).id and skip.reason.startswith("已放弃本床位")


def test_decline_needs_a_reason(world, facility):
    case = queued(world, facility)
    vacancy(world, facility)
    with pytest.raises(ValidationFailed) as refused:
        world.complete(case, "await_arrival", {"response": "declined"})
    assert refused.value.field_errors == {"response_note": "此项为必填项"}


def test_no_show_when_five_working_days_pass(world, facility):
    first = queued(world, facility, name="甲")
    second = queued(world, facility, name="乙")
    vacancy(world, facility)  # Monday 2 June 2025 is the Dragon Boat holiday: days 3,4,5,6,9 June
    (offer,) = offers_of(world, first)
    assert offer.respond_by == at_local(2025, 6, 9, 23, 59, 59)
    assert world.advance(days=7, hours=14) == 0  # 9 June, 23:00 in Beijing: still in time
    assert world.ready_specs(first) == ["await_arrival"]
    assert world.advance(hours=1) == 1  # 10 June, 00:00: the timer fires
    world.session.expire_all()
    assert offers_of(world, first)[0].status == OfferStatus.NO_SHOW
    assert entry_of(world, first).status == EntryStatus.WAITING
    assert world.data(first)["response"] == "no_show"
    assert world.ready_specs(second) == ["await_arrival"]


def test_offer_deadline_skips_the_national_day_holiday(world, facility):
    world.clock.set(at_local(2025, 9, 30, 10, 0))
    case = queued(world, facility)
    vacancy(world, facility)
    (offer,) = offers_of(world, case)
    # 1–8 October are holidays; Saturday 11 October is a make-up working day.
    assert offer.respond_by == at_local(2025, 10, 14, 23, 59, 59)
    task = world.ready(case)[0]
    assert task.due_at == offer.respond_by


def test_third_refusal_removes_the_applicant_with_a_one_year_ban(world, facility):
    case = queued(world, facility, name="王五")
    vacancy(world, facility, bed="1")
    world.complete(case, "await_arrival", {"response": "declined", "response_note": "身体不适"})
    vacancy(world, facility, bed="2")
    world.advance(days=8)  # no-show
    world.advance(days=1)
    vacancy(world, facility, bed="3")
    assert offers_of(world, case)[-1].status == OfferStatus.PENDING
    world.complete(case, "await_arrival", {"response": "declined", "response_note": "家属不同意"})
    assert world.refresh(case).status == CaseStatus.COMPLETED
    assert "removed_end" in cases.completed_steps(world.session, world.refresh(case))
    entry = entry_of(world, case)
    assert entry.status == EntryStatus.REMOVED
    assert entry.banned_until == world.clock() + timedelta(days=365)
    assert [o.status for o in offers_of(world, case)] == [
        OfferStatus.DECLINED,
        OfferStatus.NO_SHOW,
        OfferStatus.DECLINED,
    ]
    removed = world.session.scalars(
        select(OutboxMessage).where(OutboxMessage.purpose == "waitlist_removed")
    ).one()
    assert "因3次放弃入住" in removed.body and "2026-06-11前不能重新申请" in removed.body
    assert waitlist.explain_position(world.session, world.users["caseworker"], entry.id).startswith(
        "已移出轮候名单（2025-06-11）：365天内3次放弃入住或逾期未接受入住评估；2026-06-11 前不能重新申请"
    )
    elder_id = world.refresh(case).elder_id
    with pytest.raises(ValidationFailed) as banned:
        waitlist.apply(world.session, world.users["caseworker"], elder_id, facility.id, ANSWERS)
    assert "2026-06-11 前不能重新申请" in banned.value.field_errors["elder_id"]


# --------------------------------------------------------------------------------------------------
# The tables, row by row


def _decide(decision_id, context):
    files = {k: v for k, v in versions.read_bundle(bpmn_dir()).items() if k.endswith(".dmn")}
    return registry.engine().evaluate_decision(files, decision_id, context)


ELIGIBLE = {"elder_age": 60, **ANSWERS}


@pytest.mark.parametrize(
    ("change", "eligible", "field"),
    [
        ({}, True, ""),
        ({"elder_age": 59}, False, "elder_age"),
        ({"elder_age": 59, "violent_tendency": True}, False, "elder_age"),
        ({"violent_tendency": True}, False, "violent_tendency"),
        ({"mental_state_stable": False}, False, "mental_state_stable"),
        ({"infectious_disease": True}, False, "infectious_disease"),
        ({"voluntary": False}, False, "voluntary"),
    ],
)
def test_eligibility_table(change, eligible, field):
    result = _decide("admission_eligibility", {**ELIGIBLE, **change})
    assert (result["eligible"], result["refusal_field"]) == (eligible, field)


PLAIN = {
    "tekun": False,
    "hukou_type": "rural",
    "township_referral": False,
    "disability_level": "none",
    "dibao": False,
    "near_dibao": False,
    "entitled_veteran_family": False,
    "family_planning_special": False,
}


@pytest.mark.parametrize(
    ("change", "tier"),
    [
        ({"tekun": True, "hukou_type": "urban"}, "special"),
        ({"tekun": True, "township_referral": True}, "special"),
        ({"tekun": True}, "township_home"),
        ({"dibao": True, "disability_level": "moderate"}, "priority"),
        ({"near_dibao": True, "disability_level": "severe"}, "priority"),
        ({"entitled_veteran_family": True, "disability_level": "complete"}, "priority"),
        ({"entitled_veteran_family": True, "disability_level": "mild"}, "ordinary"),
        ({"family_planning_special": True}, "priority"),
        ({"dibao": True}, "ordinary"),
        ({}, "ordinary"),
    ],
)
def test_tier_table(change, tier):
    assert _decide("admission_tier", {**PLAIN, **change})["tier"] == tier


def test_an_elder_in_another_township_cannot_be_applied_for_by_this_caseworker(world, facility):
    elder = make_elder(world, village=OTHER_VILLAGE)
    with pytest.raises(Exception) as denied:
        apply(world, elder, facility)
    assert "无权" in str(denied.value)


def test_every_queue_event_of_a_case_is_in_its_trail(world, facility):
    case = queued(world, facility)
    vacancy(world, facility)
    kinds = [e.kind.value for e in world.events(world.refresh(case))]
    assert kinds.count("message_sent") == 3  # waitlist_join, issue_notice (入住通知), waitlist_notify
    assert "message_received" in kinds  # bed_vacated
    assert world.session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == case.id)) == len(
        kinds
    )
