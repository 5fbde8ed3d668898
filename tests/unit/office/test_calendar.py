"""The county keeps the working-day calendar: a year it enters takes precedence over the library; entering or
correcting one recounts the deadlines that depend on it (tasks, an admission offer with its timer) and says
so in each case's trail; a missing next year is warned about from 1 December."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from tests.processes.admission.test_admission import make_facility, offers_of, queued, vacancy
from tests.processes.harness import World
from workflows import calendars, cases, deadlines
from workflows.errors import PermissionDenied, ValidationFailed
from workflows.models import CaseEvent, EventKind, HumanTask, TaskStatus
from workflows.models.admission import OfferStatus, QueueEventKind, WaitlistEvent
from workflows.models.office import DayKind
from workflows.rules import workdays

# Test data shaped like a State Council notice (not the real 2027 arrangement, which is not out yet).
SPRING_2027 = """
# 2027年部分节假日安排（测试数据）
2027-01-01~2027-01-03 休 元旦
2027-02-05~2027-02-11 休 春节
2027-02-20 班 春节
"""


def local(*args) -> datetime:
    return datetime(*args, tzinfo=deadlines.LOCAL).astimezone(UTC)


def end_of(day: date) -> datetime:
    return datetime.combine(day, datetime.max.time().replace(microsecond=0), deadlines.LOCAL)


# --------------------------------------------------------------------------------------------------
# Reading and checking a year


def test_the_text_form_reads_ranges_single_days_comments_and_separators():
    days = calendars.parse_days(SPRING_2027 + "2027-10-01至2027-10-02,休,国庆节\n\ufeff", 2027)
    holidays = [d.day for d in days if d.kind == DayKind.HOLIDAY]
    assert len(holidays) == 3 + 7 + 2 and date(2027, 2, 8) in holidays
    assert [(d.day, d.name) for d in days if d.kind == DayKind.WORKDAY] == [(date(2027, 2, 20), "春节")]
    # Written back, it reads the same.
    again = calendars.parse_days(calendars.format_days(days), 2027)
    assert sorted(again, key=lambda d: d.day) == sorted(days, key=lambda d: d.day)
    assert "2027-02-05~2027-02-11 休 春节" in calendars.format_days(days)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2027-02-05 放松 春节", "应为“休”或“班”"),
        ("春节 2027-02-05", "格式应为"),
        ("2027-02-30 休 春节", "日期无效"),
        ("2027-03-10~2027-02-05 休 x", "日期范围无效"),
        ("2028-01-01 休 元旦", "不在 2027 年内"),
        ("2027-02-05 休 春节\n2027-02-05 班 春节", "既是放假日又是调休上班日"),
        ("2027-02-17 班 春节", "是工作日（星期三），不需要登记为调休上班"),
        ("2027-02-20 班 春节", "没有任何放假日"),
        ("", "没有任何放假日"),
        ("2027-02-05 休 " + "长" * 40, "名称过长"),
    ],
)
def test_a_year_that_cannot_be_right_is_refused_saying_why(text, says):
    with pytest.raises(ValidationFailed) as refused:
        calendars.parse_days(text, 2027)
    assert says in refused.value.field_errors["days"]


def test_an_entered_year_takes_precedence_over_the_library(session, people):
    assert workdays.is_workday(date(2026, 10, 1)) is False  # the library's National Day
    with pytest.raises(workdays.CalendarRangeError):
        workdays.is_workday(date(2027, 2, 8))
    calendars.enter_year(session, people["admin"], 2027, SPRING_2027, notice="测试通知")
    calendars.enter_year(session, people["admin"], 2026, "2026-01-01 休 元旦")  # a county's own 2026
    session.commit()  # applied to this process once committed
    assert workdays.is_workday(date(2027, 2, 8)) is False and workdays.is_workday(date(2027, 2, 20)) is True
    assert workdays.is_workday(date(2026, 10, 1)) is True  # the county's 2026 has no National Day
    # Another process takes it up from the database.
    workdays.use_entered_years({})
    calendars._seen_revisions = None
    calendars.refresh(session)
    assert workdays.is_workday(date(2027, 2, 8)) is False
    overview = {y.year: y for y in calendars.overview(session, date(2026, 12, 1))}
    assert (
        overview[2027].source == "county"
        and overview[2027].holidays == 10
        and overview[2027].notice == "测试通知"
    )


def test_a_refused_or_rolled_back_entry_changes_nothing(session, people):
    with pytest.raises(ValidationFailed):
        calendars.enter_year(session, people["admin"], 2027, "2027-02-17 班 春节")
    nested = session.begin_nested()
    calendars.enter_year(session, people["admin"], 2027, SPRING_2027)
    nested.rollback()
    with pytest.raises(workdays.CalendarRangeError):
        workdays.is_workday(date(2027, 2, 8))


def test_only_a_county_administrator_keeps_the_calendar(session, people):
    for who in ("town_admin", "caseworker", "approver"):
        with pytest.raises(PermissionDenied):
            calendars.enter_year(session, people[who], 2027, SPRING_2027)


def test_a_missing_next_year_is_warned_about_from_1_december(session, people):
    assert calendars.warnings(session, date(2026, 11, 30)) == []
    [warning] = calendars.warnings(session, date(2026, 12, 1))
    assert "缺少 2027 年" in warning
    # In 2027 without an entry, the current year is warned about all year.
    assert "缺少 2027 年" in calendars.warnings(session, date(2027, 3, 1))[0]
    calendars.enter_year(session, people["admin"], 2027, SPRING_2027)
    assert calendars.warnings(session, date(2026, 12, 15)) == []


# --------------------------------------------------------------------------------------------------
# What moves when a year is entered


@pytest.fixture
def world(session, manual_clock):
    return World(session, manual_clock)


def test_entering_2027_moves_an_offer_across_spring_festival_its_timer_and_its_task(world):
    """The 5-working-day arrival deadline of an offer made before 2027 was entered was counted on plain
    weekdays; entered, it moves past the festival, and the no-show timer with it."""
    session = world.session
    world.clock.set(local(2027, 1, 20, 9, 0))
    facility = make_facility(world)
    case = queued(world, facility, name="春节前")
    world.clock.set(local(2027, 2, 3, 10, 0))  # a Wednesday, two days before the (test) festival
    vacancy(world, facility)
    [offer] = offers_of(world, case)
    assert offer.respond_by == end_of(date(2027, 2, 10))  # Thu, Fri, Mon, Tue, Wed: weekdays only
    task = session.scalar(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
    )
    assert (task.task_spec, task.due_at) == ("await_arrival", end_of(date(2027, 2, 10)))

    world.clock.set(local(2027, 2, 4, 9, 0))
    entered = calendars.enter_year(session, world.users["admin"], 2027, SPRING_2027, notice="测试通知")
    moved = {(m.case_id, m.what): (m.old, m.new) for m in entered.moved}
    new = end_of(date(2027, 2, 17))  # Thu 4th; 5th–11th off; Fri 12th, Mon 15th, 16th, 17th
    assert moved == {
        (case.id, "登记申请人到场或放弃"): (end_of(date(2027, 2, 10)), new),
        (case.id, "到场接受入住评估期限"): (end_of(date(2027, 2, 10)), new),
    }
    session.expire_all()
    assert offers_of(world, case)[0].respond_by == new
    assert session.get(HumanTask, task.id).due_at == new
    assert world.refresh(case).next_timer_at == new.astimezone(UTC)
    assert world.data(case)["offer"]["respond_by_text"] == "2027年2月17日（星期三）"
    # The trail says what moved and why; so does the queue's log.
    notes = [e.comment for e in world.events(case) if e.kind == EventKind.DEADLINE_CHANGED]
    assert len(notes) == 2 and all("2027年放假和调休安排录入后重新计算" in n for n in notes)
    assert any("办理期限由 2027-02-10 调整为 2027-02-17" in n for n in notes)
    logged = session.scalars(
        select(WaitlistEvent).where(WaitlistEvent.kind == QueueEventKind.DEADLINE_CHANGED)
    ).all()
    assert len(logged) == 1 and "2027年2月17日" in logged[0].reason
    # The timer fires on the new day, not the old one.
    world.clock.set(local(2027, 2, 12, 9, 0))
    cases.forget_live_instances()
    assert cases.run_due_timers(session) == 0
    assert offers_of(world, case)[0].status == OfferStatus.PENDING
    world.clock.set(local(2027, 2, 18, 0, 30))
    assert cases.run_due_timers(session) == 1
    session.expire_all()
    assert offers_of(world, case)[0].status == OfferStatus.NO_SHOW


def test_a_correction_moves_deadlines_again_and_leaves_alone_what_it_does_not_touch(world):
    session = world.session
    world.clock.set(local(2027, 1, 20, 9, 0))
    facility = make_facility(world)
    case = queued(world, facility, name="更正")
    calendars.enter_year(session, world.users["admin"], 2027, SPRING_2027)
    session.commit()  # in force for this process from its commit on
    world.clock.set(local(2027, 2, 3, 10, 0))
    vacancy(world, facility)
    assert offers_of(world, case)[0].respond_by == end_of(date(2027, 2, 17))
    corrected = calendars.enter_year(
        session, world.users["admin"], 2027, SPRING_2027.replace("2027-02-11", "2027-02-09")
    )
    assert {m.what for m in corrected.moved} == {"登记申请人到场或放弃", "到场接受入住评估期限"}
    assert offers_of(world, case)[0].respond_by == end_of(date(2027, 2, 15))
    assert (
        calendars.enter_year(
            session, world.users["admin"], 2027, SPRING_2027.replace("2027-02-11", "2027-02-09")
        ).moved
        == []
    )
    # Entering a year no deadline crosses moves nothing.
    assert calendars.enter_year(session, world.users["admin"], 2029, "2029-01-01 休 元旦").moved == []
    changed = session.scalars(select(CaseEvent).where(CaseEvent.kind == EventKind.DEADLINE_CHANGED)).all()
    assert len(changed) == 2


def test_a_due_date_set_by_the_process_is_not_recounted(world):
    session = world.session
    world.clock.set(local(2027, 1, 20, 9, 0))
    facility = make_facility(world)
    case = queued(world, facility, name="自定期限")
    world.clock.set(local(2027, 2, 3, 10, 0))
    vacancy(world, facility)
    task = session.scalar(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
    )
    task.due_at = end_of(date(2027, 3, 1))  # as `enrolments.set_due` sets a date-based deadline
    session.flush()
    moved = calendars.enter_year(session, world.users["admin"], 2027, SPRING_2027).moved
    assert [m.what for m in moved] == ["到场接受入住评估期限"]
    session.refresh(task)
    assert task.due_at == end_of(date(2027, 3, 1))
