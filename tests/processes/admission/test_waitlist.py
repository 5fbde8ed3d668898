"""The waitlist: queue order (tier, time, entry id for ties), explanations, offers down the queue and the audit
log, the 2-day notification rule proven from the outbox, and who may see what."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.processes.admission.test_admission import (
    ANSWERS,
    at_local,
    entry_of,
    make_elder,
    make_facility,
    offers_of,
    queued,
    vacancy,
)
from tests.processes.harness import OTHER_TOWNSHIP, World
from workflows import cases, outbox
from workflows.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from workflows.models import HukouType, Role, User
from workflows.models.admission import (
    EntryStatus,
    OfferStatus,
    QueueEventKind,
    VacancyStatus,
    WaitlistEvent,
)
from workflows.processes.admission import waitlist
from workflows.rules import housing


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


@pytest.fixture
def facility(world):
    return make_facility(world)


def background(session) -> int:
    """What the worker does for the waitlist: send queued SMS, then offer free beds and reconcile."""
    return outbox.send_due(session) + waitlist.offer_and_reconcile(session)


def order(world, facility) -> list[str]:
    return [
        p.elder_name for p in waitlist.waitlist(world.session, world.users["facility_admin"], facility.id)
    ]


# --------------------------------------------------------------------------------------------------
# Order and explanation


def test_queue_orders_by_tier_then_application_time_then_entry_id(world, facility):
    early, noon = at_local(2025, 3, 2, 10, 15), at_local(2025, 3, 2, 12, 0)
    queued(world, facility, name="普通早", applied_at=early)
    queued(world, facility, name="优先晚", applied_at=noon, family_planning_special=True)
    queued(world, facility, name="特殊晚", applied_at=noon, tekun=True, hukou_type=HukouType.URBAN)
    queued(world, facility, name="优先早甲", applied_at=early, dibao=True, level="severe")
    queued(world, facility, name="优先早乙", applied_at=early, near_dibao=True, level="moderate")
    queued(world, facility, name="普通晚", applied_at=noon)
    assert order(world, facility) == ["特殊晚", "优先早甲", "优先早乙", "优先晚", "普通早", "普通晚"]


def test_ties_are_broken_by_entry_id_whatever_the_order_cases_were_created(world, facility):
    same = at_local(2025, 3, 2, 10, 15)
    cases_in_creation_order = [queued(world, facility, name=n, applied_at=same) for n in ("丙", "甲", "乙")]
    entries = [entry_of(world, c) for c in cases_in_creation_order]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert order(world, facility) == ["丙", "甲", "乙"]
    # The same query twice, and the explanation, agree.
    assert order(world, facility) == ["丙", "甲", "乙"]
    second = waitlist.explain_position(world.session, world.users["caseworker"], entries[1].id)
    assert second == (
        f"第2位：普通轮候，申请时间 2025-03-02 10:15；与第1位同类别、同申请时间，按登记先后（登记号 {entries[0].id} 在前）"
        f"排在其后；与第3位同类别、同申请时间，按登记先后（登记号 {entries[1].id} 在前）排在其前"
    )


def test_explain_position_says_where_and_why(world, facility):
    for i in range(6):
        queued(
            world, facility, name=f"前{i}", applied_at=at_local(2025, 3, 1, 9, i), dibao=True, level="severe"
        )
    mine = queued(
        world, facility, name="本人", applied_at=at_local(2025, 3, 2, 10, 15), dibao=True, level="moderate"
    )
    queued(world, facility, name="后", applied_at=at_local(2025, 3, 3, 8, 0), dibao=True, level="severe")
    entry = entry_of(world, mine)
    assert waitlist.explain_position(world.session, world.users["caseworker"], entry.id) == (
        "第7位：优先保障，申请时间 2025-03-02 10:15"
    )
    lines = waitlist.waitlist(world.session, world.users["approver"], facility.id)
    assert [line.position for line in lines] == list(range(1, 9))
    assert lines[6].explanation == "第7位：优先保障，申请时间 2025-03-02 10:15"
    assert lines[6].tier_label == "优先保障"


def test_an_outstanding_offer_shows_in_the_explanation(world, facility):
    case = queued(world, facility)
    vacancy(world, facility, bed="2号楼105-2")
    text = waitlist.explain_position(world.session, world.users["caseworker"], entry_of(world, case).id)
    assert (
        text
        == "第1位：普通轮候，申请时间 2025-06-02 09:00；已通知床位 2号楼105-2，须于 2025年6月9日（星期一） 前到场接受入住评估"
    )


def test_waitlist_of_an_area_lists_each_facility_in_order(world, facility):
    other = make_facility(world, name="温县第二养老院")
    queued(world, facility, name="甲")
    elder = make_elder(world, name="乙")
    waitlist.apply(world.session, world.users["caseworker"], elder.id, other.id, ANSWERS)
    world.complete(
        world.session.scalars(select(cases.Case).where(cases.Case.elder_id == elder.id)).one(),
        "verify_application",
        {"decision": "approve", "township_referral": False},
    )
    lines = waitlist.waitlist(world.session, world.users["approver"], "410825")
    assert [(line.facility_id, line.position, line.elder_name) for line in lines] == [
        (facility.id, 1, "甲"),
        (other.id, 1, "乙"),
    ]


def test_a_facility_id_beyond_any_row_is_not_found(world):
    # Beyond PostgreSQL's integer ids: "not found", not a driver error.
    with pytest.raises(NotFound, match="公办养老机构不存在"):
        waitlist.waitlist(world.session, world.users["approver"], 2**40)
    elder = make_elder(world, name="丙")
    with pytest.raises(NotFound, match="公办养老机构不存在"):
        waitlist.apply(world.session, world.users["caseworker"], elder.id, 2**40, ANSWERS)


# --------------------------------------------------------------------------------------------------
# Offers down the queue


def test_a_second_bed_skips_the_applicant_holding_the_first_offer_and_says_why(world, facility):
    first = queued(world, facility, name="甲")
    second = queued(world, facility, name="乙")
    vacancy(world, facility, bed="A-1")
    bed_b = vacancy(world, facility, bed="B-1")
    assert world.ready_specs(first) == ["await_arrival"] and world.ready_specs(second) == ["await_arrival"]
    assert offers_of(world, second)[0].vacancy_id == bed_b.id
    log = waitlist.queue_log(world.session, world.users["facility_admin"], facility.id, vacancy_id=bed_b.id)
    assert [(e.kind, e.position) for e in log] == [
        (QueueEventKind.VACANCY_REGISTERED, None),
        (QueueEventKind.SKIPPED, 1),
        (QueueEventKind.OFFERED, 2),
        (QueueEventKind.NOTIFIED, None),
    ]
    assert log[1].entry_id == entry_of(world, first).id
    assert log[1].reason == "正在等待床位 A-1 的入住评估（2025年6月9日（星期一） 前），本床位顺延"
    assert log[2].reason.startswith("床位 B-1 按轮候顺序通知第2位（普通轮候，申请时间 2025-06-02 09:00）")


def test_a_bed_nobody_can_take_stays_open_until_someone_joins(world, facility):
    bed = vacancy(world, facility)
    assert bed.status == VacancyStatus.OPEN
    assert background(world.session) == 0
    case = queued(world, facility)
    assert world.ready_specs(case) == []
    assert background(world.session) >= 1  # the joined SMS is sent and the bed offered
    assert world.ready_specs(case) == ["await_arrival"]
    assert world.session.get(type(bed), bed.id).status == VacancyStatus.OFFERED


def test_nursing_home_staff_read_an_admission_case_once_it_reaches_them(world, facility):
    # Outside staff read the cases they work on, not every case of their area.
    staff = world.users["facility_admin"]
    case = queued(world, facility)
    assert not cases.may_read(world.session, staff, case)
    with pytest.raises(PermissionDenied, match="只能查看本机构经办的案件"):
        cases.get_case(world.session, staff, case.id)
    vacancy(world, facility)
    assert world.ready_specs(case) == ["await_arrival"]  # the bed is offered: the home's step is open
    assert cases.get_case(world.session, staff, case.id) is case
    world.complete(case, "await_arrival", {"response": "arrived"}, as_role="facility_admin")
    assert cases.may_read(world.session, staff, case)  # what they did stays theirs to read
    assert cases.may_read(world.session, world.users["caseworker"], case)


def test_an_open_bed_is_not_offered_again_to_who_declined_it(world, facility):
    case = queued(world, facility)
    bed = vacancy(world, facility)
    world.complete(case, "await_arrival", {"response": "declined", "response_note": "不想去"})
    assert world.session.get(type(bed), bed.id).status == VacancyStatus.OPEN
    skips = len(waitlist.queue_log(world.session, world.users["approver"], facility.id))
    background(world.session)
    background(world.session)
    assert len(waitlist.queue_log(world.session, world.users["approver"], facility.id)) == skips


def test_a_case_cancelled_by_staff_leaves_the_queue_and_its_bed_passes_on(world, facility):
    first = queued(world, facility, name="甲")
    second = queued(world, facility, name="乙")
    vacancy(world, facility)
    cases.cancel_case(world.session, world.users["approver"], first.id, "重复申请")
    background(world.session)
    assert entry_of(world, first).status == EntryStatus.WITHDRAWN
    assert offers_of(world, first)[0].status == OfferStatus.CANCELLED
    assert world.ready_specs(second) == ["await_arrival"]


def test_refusals_older_than_the_window_do_not_count(world, facility):
    case = queued(world, facility)
    vacancy(world, facility, bed="1")
    world.complete(case, "await_arrival", {"response": "declined", "response_note": "a"})
    vacancy(world, facility, bed="2")
    world.complete(case, "await_arrival", {"response": "declined", "response_note": "b"})
    world.clock.advance(days=366)
    vacancy(world, facility, bed="3")
    assert world.data(case)["offer"]["refusals_before"] == 0
    world.complete(case, "await_arrival", {"response": "declined", "response_note": "c"})
    assert entry_of(world, case).status == EntryStatus.WAITING


def test_withdraw_is_refused_while_an_offer_is_outstanding(world, facility):
    case = queued(world, facility)
    vacancy(world, facility)
    with pytest.raises(Conflict):
        waitlist.withdraw(world.session, world.users["caseworker"], entry_of(world, case).id, "不去了")


def test_one_active_application_per_elder(world, facility):
    case = queued(world, facility)
    other = make_facility(world, name="温县第二养老院")
    with pytest.raises(ValidationFailed) as refused:
        waitlist.apply(
            world.session, world.users["caseworker"], world.refresh(case).elder_id, other.id, ANSWERS
        )
    assert "已在温县社会福利中心轮候名单中（第1位：普通轮候" in refused.value.field_errors["facility_id"]


def test_refusal_limit_and_ban_are_configuration(world, facility, tmp_path, monkeypatch):
    override = tmp_path / "county.json"
    override.write_text('{"admission": {"refusal_limit": 1, "ban_days": 0}}', encoding="utf-8")
    monkeypatch.setenv(housing.CONFIG_ENV, str(override))
    housing.reload()
    try:
        case = queued(world, facility)
        vacancy(world, facility)
        world.complete(case, "await_arrival", {"response": "declined", "response_note": "不去"})
    finally:
        monkeypatch.delenv(housing.CONFIG_ENV)
        housing.reload()
    entry = entry_of(world, case)
    assert (entry.status, entry.banned_until) == (EntryStatus.REMOVED, None)
    assert world.refresh(case).status == cases.CaseStatus.COMPLETED


# --------------------------------------------------------------------------------------------------
# The 2-day notification rule, from the outbox


def test_every_offer_was_notified_within_two_days_of_the_bed_becoming_free(world, facility):
    first = queued(world, facility, name="甲")
    queued(world, facility, name="乙")
    bed = vacancy(world, facility, vacated_on=world.clock() - timedelta(hours=20))
    world.clock.advance(minutes=5)
    outbox.send_due(world.session)  # the worker
    world.advance(days=1)
    world.complete(first, "await_arrival", {"response": "declined", "response_note": "不去"})
    world.clock.advance(minutes=5)
    outbox.send_due(world.session)
    report = waitlist.notification_report(world.session, world.users["auditor"], bed.id)
    assert [(c.seq, c.within_deadline, c.message_status) for c in report] == [
        (1, True, "sent"),
        (2, True, "sent"),
    ]
    assert report[0].bed_free_since == bed.vacated_on
    assert report[0].sent_at - report[0].bed_free_since == timedelta(hours=20, minutes=5)
    assert report[1].bed_free_since == offers_of(world, first)[0].responded_at
    assert report[1].queued_at == report[1].bed_free_since
    assert report[1].deadline == report[1].bed_free_since + timedelta(days=2)


def test_a_late_registration_or_unsent_sms_is_reported_as_missing_the_rule(world, facility):
    queued(world, facility, name="甲", phone=None)  # no mobile: the SMS cannot be sent
    late = vacancy(world, facility, vacated_on=world.clock() - timedelta(days=3))
    outbox.send_due(world.session)
    (check,) = waitlist.notification_report(world.session, world.users["auditor"], late.id)
    assert not check.within_deadline
    assert check.message_status == "failed"


# --------------------------------------------------------------------------------------------------
# Who may see and do what


def test_names_outside_the_readers_area_are_masked(world, facility):
    queued(world, facility, name="张桂英")
    other_township = User(
        username="cw_other", display_name="番田经办人", role=Role.CASEWORKER, area_code=OTHER_TOWNSHIP
    )
    world.session.add(other_township)
    world.session.flush()
    assert [
        p.elder_name for p in waitlist.waitlist(world.session, world.users["caseworker"], facility.id)
    ] == ["张桂英"]
    assert [p.elder_name for p in waitlist.waitlist(world.session, other_township, facility.id)] == ["张**"]
    with pytest.raises(PermissionDenied):
        waitlist.explain_position(
            world.session, other_township, world.session.scalars(select(waitlist.WaitlistEntry)).one().id
        )


def test_providers_cannot_read_the_queue_and_only_facilities_register_beds(world, facility):
    with pytest.raises(PermissionDenied):
        waitlist.waitlist(world.session, world.users["provider"], facility.id)
    with pytest.raises(PermissionDenied):
        waitlist.register_vacancy(world.session, world.users["caseworker"], facility.id, "1")


def test_queue_events_are_appended_for_every_step(world, facility):
    case = queued(world, facility)
    vacancy(world, facility)
    world.complete(case, "await_arrival", {"response": "arrived"})
    kinds = [e.kind for e in world.session.scalars(select(WaitlistEvent).order_by(WaitlistEvent.id))]
    assert kinds == [
        QueueEventKind.JOINED,
        QueueEventKind.VACANCY_REGISTERED,
        QueueEventKind.OFFERED,
        QueueEventKind.NOTIFIED,
        QueueEventKind.ARRIVED,
    ]
    assert entry_of(world, case).status == EntryStatus.OFFERED


# --------------------------------------------------------------------------------------------------
# Demo data


def test_demo_cases_reach_the_promised_states(session, manual_clock):
    from workflows import demo, registry, versions
    from workflows.config import bpmn_dir
    from workflows.models import Case, CaseStatus, Elder

    versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
    demo.load_demo_registry(session, "eldercare2026")
    users = {u.username: u for u in session.scalars(select(User))}
    elders = list(session.scalars(select(Elder).order_by(Elder.id)))
    counts = {}
    for key in ("home_adaptation", "admission"):  # their demos, in the registry's order
        counts.update(registry.current().get(key).demo(session, users, elders))
    assert counts == {"home_adaptation_cases": 3, "waitlist_entries": 9, "bed_vacancies": 1}
    adaptations = session.scalars(
        select(Case).where(Case.process_key == "home_adaptation").order_by(Case.id)
    ).all()
    assert [(c.status, c.waiting_for, c.current_step) for c in adaptations] == [
        (CaseStatus.COMPLETED, "", ""),
        (CaseStatus.RUNNING, "adaptation_objection", ""),
        (CaseStatus.RUNNING, "", "乡镇（街道）初审"),
    ]
    lines = waitlist.waitlist(session, users["approver"], "410825")
    assert {line.tier_label for line in lines} == {"特殊保障", "优先保障", "普通轮候"}
    assert [line.status for line in lines].count(EntryStatus.OFFERED) == 1
    assert "同类别、同申请时间" in lines[-1].explanation
