"""Supervision figures against the hand-counted county of supervision_world (22 October 2025, with the
National Day holiday in the month): visit rates by month and by week, the dashboard's figures, the lists
and their scoping, the monthly report, targets, and the office log of sign-ins."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from workflows import caselist, clock, dashboard, elderlist, monthly_report, targets, users, visit_rates
from workflows.errors import LoginRefused, PermissionDenied, ValidationFailed
from workflows.models import CaseStatus, Role
from workflows.models.supervision import LogKind, OfficeLog
from workflows.processes.visiting_care.visiting import visit_rate

from .supervision_world import NOW, TODAY, SupervisionWorld

COUNTY, XIANGYUN, FANTIAN = "410825", "410825100", "410825101"


@pytest.fixture
def manual_clock(manual_clock):
    manual_clock.set(NOW)
    return manual_clock


@pytest.fixture
def sw(session, manual_clock):
    return SupervisionWorld(session, manual_clock)


def rates_of(period):
    return {p.area_code: (p.due, p.visited) for p in period.parts}, (period.total.due, period.total.visited)


# --------------------------------------------------------------------------------------------------
# Visit rates: a month and a week with a holiday


def test_the_weeks_of_october_2025_and_their_working_days():
    weeks = visit_rates.weeks_ending_in(date(2025, 10, 15))
    assert weeks == [
        (date(2025, 9, 29), date(2025, 10, 5)),
        (date(2025, 10, 6), date(2025, 10, 12)),
        (date(2025, 10, 13), date(2025, 10, 19)),
        (date(2025, 10, 20), date(2025, 10, 26)),
    ]  # 27 Oct – 2 Nov ends in November and is counted there
    # National Day: 1–8 October off; Saturday 11 October is a make-up working day.
    assert [visit_rates.working_days(a, b) for a, b in weeks] == [2, 3, 5, 5]
    assert visit_rates.working_days(date(2025, 10, 1), date(2025, 10, 31)) == 18


def test_monthly_visit_rate_in_a_month_with_a_holiday(sw):
    october = visit_rates.month_rates(sw.session, COUNTY, date(2025, 10, 1))
    parts, total = rates_of(october)
    assert total == (5, 3) and october.total.rate == Decimal("0.6000")
    assert parts == {XIANGYUN: (3, 3), FANTIAN: (2, 0)}
    assert october.working_days == 18
    # One level down from a township: its villages.
    village = visit_rates.month_rates(sw.session, XIANGYUN, date(2025, 10, 1))
    assert rates_of(village) == ({"410825100201": (3, 3)}, (3, 3))
    # The same figure as visiting.visit_rate gives for the county.
    assert visit_rate(sw.session, COUNTY, date(2025, 10, 1)) == {
        "enrolled": 5,
        "visited": 3,
        "rate": Decimal("0.6"),
    }


def test_weekly_visit_rate_of_home_supported_tekun_over_the_holiday_weeks(sw):
    month = visit_rates.weekly_rates_of_month(sw.session, COUNTY, date(2025, 10, 1))
    assert [(w.total.due, w.total.visited, w.working_days) for w in month.weeks] == [
        (3, 3, 2),  # visits on 2 Oct and 5 Oct (holidays) count
        (3, 1, 3),  # the make-up Saturday's visit counts in its week; E, ended on 7 Oct, was still due
        (2, 0, 5),
        (2, 1, 5),
    ]
    assert (month.due, month.visited, month.rate) == (10, 5, Decimal("0.5000"))
    holiday_week = month.weeks[0]
    assert rates_of(holiday_week)[0] == {XIANGYUN: (2, 2), FANTIAN: (1, 1)}


def test_who_is_not_yet_visited_this_week_and_this_month(sw):
    start, end = visit_rates.week_of(TODAY)
    week, total = visit_rates.unvisited(sw.session, COUNTY, start, end, home_support_only=True, limit=50)
    assert [u.name for u in week] == ["乙老人"] and total == 1
    month, total = visit_rates.unvisited(
        sw.session, COUNTY, date(2025, 10, 1), date(2025, 10, 31), home_support_only=False, limit=50
    )
    assert sorted(u.name for u in month) == ["丁老人", "戊老人"] and total == 2
    only_xiangyun, total = visit_rates.unvisited(
        sw.session, XIANGYUN, date(2025, 10, 1), date(2025, 10, 31), home_support_only=False, limit=50
    )
    assert only_xiangyun == [] and total == 0
    # Wednesday 22 October: Wednesday to Friday are left of the week's working days.
    assert visit_rates.working_days(TODAY, end) == 3


# --------------------------------------------------------------------------------------------------
# The dashboard's figures


def test_open_cases_by_process_and_step(sw):
    county = {p.process_key: p for p in dashboard.open_cases(sw.session, sw.users["approver"], COUNTY)}
    assert {k: p.running for k, p in county.items()} == {
        "home_care": 3,
        "admission": 5,  # c6 and the four waitlist applications
        "visiting_care": 5,  # A, B, C, D and F enrolled
        "home_care_month": 3,
        "home_adaptation": 1,
    }
    assert {s.task_spec: s.open_tasks for s in county["home_care"].steps} == {
        "township_review": 2,
        "county_approval": 1,
    }
    assert [(s.task_spec, s.open_tasks) for s in county["home_adaptation"].steps] == [("application", 1)]
    township = {p.process_key: p for p in dashboard.open_cases(sw.session, sw.users["caseworker"], XIANGYUN)}
    assert township["home_care"].running == 2
    assert {s.task_spec: s.open_tasks for s in township["home_care"].steps} == {
        "township_review": 1,
        "county_approval": 1,
    }
    assert "home_adaptation" not in township


def test_overdue_tasks_by_township_and_role(sw):
    found = dashboard.overdue_tasks(sw.session, sw.users["approver"], COUNTY, clock.now())
    assert [(o.township, o.township_name, o.role, o.count) for o in found] == [
        (XIANGYUN, "祥云镇", "caseworker", 1),
        (FANTIAN, "番田镇", "caseworker", 1),
    ]
    mine = dashboard.overdue_tasks(sw.session, sw.users["caseworker"], XIANGYUN, clock.now())
    assert [(o.township, o.count) for o in mine] == [(XIANGYUN, 1)]


def test_waitlist_per_tier_and_average_wait(sw):
    tiers = {t.tier.value: t for t in dashboard.waitlist_figures(sw.session, COUNTY, clock.now())}
    assert (
        tiers["special"].waiting,
        tiers["special"].average_wait_days,
        tiers["special"].longest_wait_days,
    ) == (
        2,
        Decimal("25.0"),
        30,
    )
    assert (tiers["priority"].waiting, tiers["priority"].average_wait_days) == (0, None)
    assert (tiers["ordinary"].waiting, tiers["ordinary"].average_wait_days) == (1, Decimal("10.0"))
    fantian = {t.tier.value: t.waiting for t in dashboard.waitlist_figures(sw.session, FANTIAN, clock.now())}
    assert fantian == {"special": 0, "priority": 0, "ordinary": 1}
    lines, total = dashboard.waitlist_lines(sw.session, sw.users["approver"], None, None, limit=10)
    assert total == 3 and [x.elder_name for x in lines] == ["乙老人", "甲老人", "丁老人"]


def test_services_per_six_help_and_per_provider(sw):
    figures = dashboard.service_figures(sw.session, COUNTY, date(2025, 10, 1))
    by_type = {f.key: (f.count, f.amount, f.elders) for f in figures.by_type}
    assert by_type == {
        "meal": (2, Decimal("60.00"), 1),
        "cleaning": (1, Decimal("50.00"), 1),
        "bathing": (1, Decimal("80.00"), 1),
        "mobility": (0, Decimal("0.00"), 0),
        "medical": (0, Decimal("0.00"), 0),
        "personal_care": (0, Decimal("0.00"), 0),
    }
    assert [(f.label, f.count, f.amount, f.elders) for f in figures.by_provider] == [
        ("provider_one", 3, Decimal("110.00"), 1),
        ("provider_two", 1, Decimal("80.00"), 1),
    ]
    assert (figures.months_open, figures.months_without_services) == (3, 1)
    meals = dashboard.service_records(
        sw.session, sw.users["approver"], None, date(2025, 10, 1), service_type="meal"
    )
    assert [(r.service_date, r.amount) for r in meals] == [
        ("2025-10-03", Decimal("30.00")),
        ("2025-10-17", Decimal("30.00")),
    ]
    assert dashboard.service_figures(sw.session, COUNTY, date(2025, 9, 1)).months_open == 0


def test_adaptation_against_the_yearly_and_plan_targets(sw):
    goals = targets.targets_for(sw.session, COUNTY)
    a = dashboard.adaptation_figures(sw.session, COUNTY, TODAY, goals)
    assert (a.done_this_year, a.subsidy_this_year) == (1, Decimal("3000.00"))
    assert (a.done_in_plan, a.subsidy_in_plan) == (2, Decimal("5500.50"))
    assert (a.refused_this_year, a.running) == (1, 1)
    assert (a.yearly_target, a.plan_target, a.plan_first_year, a.plan_last_year) == (167, 500, 2023, 2025)
    households = dashboard.adaptation_households(sw.session, sw.users["approver"], None, 2023, 2025)
    assert [(h.case_id, h.paid_amount) for h in households] == [
        (sw.c8.id, Decimal("2500.50")),
        (sw.c7.id, Decimal("3000.00")),
    ]
    # A county that set its own plan: 300 households over 2025–2026 is 150 a year.
    targets.set_target(sw.session, sw.users["admin"], COUNTY, "adaptation_households", "300")
    targets.set_target(sw.session, sw.users["admin"], COUNTY, "adaptation_first_year", "2025")
    targets.set_target(sw.session, sw.users["admin"], COUNTY, "adaptation_last_year", "2026")
    a = dashboard.adaptation_figures(sw.session, COUNTY, TODAY, targets.targets_for(sw.session, COUNTY))
    assert (a.yearly_target, a.plan_target, a.done_in_plan) == (150, 300, 1)


def test_assessments_by_level_and_expiring_within_30_days(sw):
    figures = dashboard.assessment_figures(sw.session, COUNTY, TODAY)
    assert figures.by_level == {"intact": 1, "mild": 0, "moderate": 1, "severe": 2, "complete": 1, "none": 3}
    assert figures.expiring == 2  # B on 10 Nov, E on 21 Nov (the 30th day)
    assert dashboard.assessment_figures(sw.session, XIANGYUN, TODAY).by_level == {
        "intact": 0,
        "mild": 0,
        "moderate": 1,
        "severe": 1,
        "complete": 0,
        "none": 2,
    }


def test_institutional_support_and_occupancy(sw):
    support = dashboard.institutional_support(sw.session, COUNTY, TODAY)
    assert (support.numerator, support.denominator, support.rate) == (1, 4, Decimal("0.2500"))
    lines = dashboard.facility_lines(sw.session, COUNTY)
    assert [(f.name, f.beds, f.vacant, f.occupied) for f in lines] == [("县社会福利中心", 10, 2, 8)]
    assert dashboard.occupancy(lines).rate == Decimal("0.8000")


def test_the_whole_dashboard_for_the_county_and_for_a_township(sw):
    board = dashboard.build(sw.session, sw.users["approver"], None, date(2025, 10, 1))
    assert (board.area, board.open_total, board.overdue_total) == (COUNTY, 17, 2)
    assert (board.month_visits.total.due, board.month_visits.total.visited) == (5, 3)
    assert (board.week_visits.start, board.week_visits.total.due, board.week_visits.total.visited) == (
        date(2025, 10, 20),
        2,
        1,
    )
    assert board.week_working_days_left == 3
    mine = dashboard.build(sw.session, sw.users["caseworker"], None, date(2025, 10, 1))
    assert mine.area == XIANGYUN and mine.overdue_total == 1
    assert (mine.month_visits.total.due, mine.month_visits.total.visited) == (3, 3)
    with pytest.raises(PermissionDenied):
        dashboard.build(sw.session, sw.users["caseworker"], FANTIAN)
    for role in ("provider", "facility_admin", "village_assistant", "assessor", "process_owner"):
        with pytest.raises(PermissionDenied):
            dashboard.build(sw.session, sw.users[role])


# --------------------------------------------------------------------------------------------------
# The lists


def test_case_list_scoping_filters_totals_and_paging(sw):
    approver, caseworker = sw.users["approver"], sw.users["caseworker"]
    everything = caselist.list_cases(sw.session, approver, caselist.CaseFilter(per_page=200))
    # c1–c6, 7 enrolments, 4 adaptations, 4 waitlist applications, 3 service months.
    assert everything.total == 24
    mine = caselist.list_cases(sw.session, caseworker, caselist.CaseFilter(per_page=200))
    # 祥云村's: c1, c2, c5, c6; A, B, C, G enrolled; c7, c9, c10; A's and B's applications; A's and C's months.
    assert {r.area_code for r in mine.rows} == {"410825100201"} and mine.total == len(mine.rows) == 15
    page2 = caselist.list_cases(sw.session, caseworker, caselist.CaseFilter(per_page=5, page=2))
    assert page2.total == 15 and len(page2.rows) == 5 and page2.pages == 3
    assert [r.id for r in page2.rows] == [r.id for r in mine.rows[5:10]]

    def ids(**kw):
        return [r.id for r in caselist.list_cases(sw.session, approver, caselist.CaseFilter(**kw)).rows]

    assert sorted(ids(overdue=True)) == sorted([sw.c1.id, sw.c3.id])
    assert ids(overdue=True, overdue_role="approver") == []
    assert sorted(ids(process="home_care", step="township_review")) == sorted([sw.c1.id, sw.c3.id])
    assert sorted(
        ids(
            process="home_adaptation",
            status=CaseStatus.COMPLETED,
            ended_from=date(2025, 1, 1),
            ended_to=date(2025, 12, 31),
        )
    ) == sorted([sw.c7.id, sw.c9.id])
    assert ids(q="丁老人", process="home_care") == [sw.c3.id]
    assert ids(q=sw.d.id_number[-6:], process="home_care") == [sw.c3.id]
    assert ids(q=f"#{sw.c2.id}") == [sw.c2.id]
    assert set(ids(elder=sw.e.id)) == {sw.c4.id, sw.c8.id} | {
        r.id
        for r in caselist.list_cases(
            sw.session, approver, caselist.CaseFilter(elder=sw.e.id, process="visiting_care")
        ).rows
    }
    row = next(
        r for r in caselist.list_cases(sw.session, approver, caselist.CaseFilter(q=f"#{sw.c1.id}")).rows
    )
    assert row.overdue and row.next_due_at.astimezone(NOW.tzinfo).date() == date(2025, 10, 20)
    assert row.elder_id_number_masked.count("*") == 10
    with pytest.raises(PermissionDenied):
        caselist.list_cases(sw.session, caseworker, caselist.CaseFilter(area=FANTIAN))


def test_case_list_of_outside_staff_holds_only_their_cases(sw):
    provider = sw.users["provider"]
    assert caselist.list_cases(sw.session, provider, caselist.CaseFilter()).total == 0
    task = sw.session.scalar(select(caselist.HumanTask).where(caselist.HumanTask.case_id == sw.c2.id))
    task.assignee_id = provider.id
    sw.session.flush()
    assert [r.id for r in caselist.list_cases(sw.session, provider, caselist.CaseFilter()).rows] == [sw.c2.id]


def test_case_filter_refuses_bad_input_in_chinese():
    with pytest.raises(ValidationFailed) as refused:
        caselist.CaseFilter.parse(
            {
                "status": "finished",
                "started_from": "2025-13-01",
                "page": "0",
                "per_page": "100000",
                "area": "41x",
                "version": "2",
                "ended_from": "2025-10-02",
                "ended_to": "2025-10-01",
                "elder": "99999999999",
            }
        )
    errors = refused.value.field_errors
    assert set(errors) == {
        "status",
        "started_from",
        "page",
        "per_page",
        "area",
        "version",
        "ended_to",
        "elder",
    }
    assert errors["version"] == "按版本筛选时请同时选择业务"


def test_elder_list_filters_by_flags_level_expiry_and_area(sw):
    approver = sw.users["approver"]

    def names(**args):
        page = elderlist.list_elders(sw.session, approver, elderlist.ElderFilter.parse(args))
        return sorted(r.name for r in page.rows), page.total

    assert names(flag=["tekun", "home_support"]) == (["乙老人", "戊老人", "甲老人"], 3)
    assert names(level=["moderate", "severe", "complete"], flag="tekun") == (
        ["乙老人", "戊老人", "甲老人", "辛老人"],
        4,
    )
    assert names(level="none") == (["丁老人", "丙老人", "庚老人"], 3)
    assert names(expiring="30") == (["乙老人", "戊老人"], 2)
    assert names(area=FANTIAN, flag="living_alone") == (["己老人"], 1)
    page = elderlist.list_elders(sw.session, approver, elderlist.ElderFilter(per_page=3, page=3))
    assert page.total == 8 and len(page.rows) == 2
    with pytest.raises(PermissionDenied):
        elderlist.list_elders(sw.session, sw.users["caseworker"], elderlist.ElderFilter(area=FANTIAN))
    with pytest.raises(ValidationFailed):
        elderlist.ElderFilter.parse({"flag": "rich", "level": "dead"})


# --------------------------------------------------------------------------------------------------
# The monthly report, the targets, the office log


def test_monthly_report_sums_up_the_month_per_township(sw):
    report = monthly_report.build(sw.session, sw.users["approver"], None, date(2025, 10, 1))
    summary = report.tables[0]
    rows = {r["area"]: r for r in summary.rows}
    assert set(rows) == {"温泉街道", "祥云镇", "番田镇", "合计（温县）"}
    assert (rows["温泉街道"]["enrolled"], rows["温泉街道"]["visited"]) == (0, 0)  # a township with nobody yet
    assert (rows["祥云镇"]["enrolled"], rows["祥云镇"]["visited"], rows["祥云镇"]["month_rate"]) == (
        3,
        3,
        Decimal("1.0000"),
    )
    assert (rows["番田镇"]["week_due"], rows["番田镇"]["week_visited"]) == (
        2,
        1,
    )  # E: due twice, seen in week one
    total = rows["合计（温县）"]
    assert (total["enrolled"], total["visited"], total["week_due"], total["week_visited"]) == (5, 3, 10, 5)
    assert (total["services"], total["service_amount"], total["no_service"]) == (4, Decimal("190.00"), 1)
    assert (total["waiting"], total["adapted"]) == (3, 0)
    weeks = report.tables[2]
    assert [(w["working_days"], w["due"], w["visited"]) for w in weeks.rows] == [
        (2, 3, 3),
        (3, 3, 1),
        (5, 2, 0),
        (5, 2, 1),
    ]
    march = monthly_report.build(sw.session, sw.users["approver"], None, date(2025, 3, 1))
    assert march.tables[0].rows[-1]["adapted"] == 1 and march.tables[0].rows[-1]["subsidy"] == Decimal(
        "3000.00"
    )
    with pytest.raises(PermissionDenied):
        monthly_report.build(sw.session, sw.users["caseworker"], FANTIAN, date(2025, 10, 1))


def test_targets_default_to_the_seeds_and_each_county_sets_its_own(sw):
    goals = targets.targets_for(sw.session, XIANGYUN)  # a township reads its county's
    assert goals["monthly_visit_rate"].value == Decimal("1") and goals["monthly_visit_rate"].is_default
    assert goals["institutional_support_rate"].shown() == "70%"
    targets.set_target(sw.session, sw.users["admin"], COUNTY, "monthly_visit_rate", "95%")
    assert targets.targets_for(sw.session, FANTIAN)["monthly_visit_rate"].value == Decimal("0.95")
    targets.set_target(sw.session, sw.users["admin"], COUNTY, "monthly_visit_rate", "0.9")  # again: updated
    assert targets.targets_for(sw.session, COUNTY)["monthly_visit_rate"].shown() == "90%"
    for key, value in (
        ("monthly_visit_rate", "120%"),
        ("adaptation_households", "-1"),
        ("adaptation_households", "2.5"),
        ("adaptation_last_year", "1999"),
        ("nonsense", "1"),
        ("monthly_visit_rate", "很多"),
    ):
        with pytest.raises(ValidationFailed):
            targets.set_target(sw.session, sw.users["admin"], COUNTY, key, value)
    for role in ("approver", "auditor", "caseworker"):
        with pytest.raises(PermissionDenied):
            targets.set_target(sw.session, sw.users[role], COUNTY, "monthly_visit_rate", "90%")


def test_every_sign_in_attempt_is_in_the_office_log(sw):
    user = users.create_user(
        sw.session,
        username="li.xiumei",
        display_name="李秀梅",
        role=Role.CASEWORKER,
        area_code=XIANGYUN,
        password="secret-123",
    )
    users.authenticate(sw.session, "li.xiumei", "secret-123", channel="api", address="10.0.0.8")
    with pytest.raises(LoginRefused):
        users.authenticate(sw.session, "li.xiumei", "guess-123", address="10.0.0.9")
    with pytest.raises(LoginRefused):
        users.authenticate(sw.session, "nobody", "guess-123")
    rows = list(sw.session.scalars(select(OfficeLog).order_by(OfficeLog.id)))
    assert [(r.kind, r.username, r.user_id, r.channel, r.address, r.area_code) for r in rows] == [
        (LogKind.SIGNED_IN, "li.xiumei", user.id, "api", "10.0.0.8", XIANGYUN),
        (LogKind.SIGN_IN_REFUSED, "li.xiumei", user.id, "web", "10.0.0.9", XIANGYUN),
        (LogKind.SIGN_IN_REFUSED, "nobody", None, "web", None, None),
    ]
    assert rows[1].message.startswith("用户名或密码错误")


def test_a_recent_dashboard_is_reused_for_a_minute_but_the_area_is_checked_each_time(sw):
    dashboard.forget_recent()
    approver, caseworker = sw.users["approver"], sw.users["caseworker"]
    first = dashboard.build_recent(sw.session, approver, None, date(2025, 10, 1), max_age=60)
    assert dashboard.build_recent(sw.session, approver, None, date(2025, 10, 1), max_age=60) is first
    assert dashboard.build_recent(sw.session, approver, XIANGYUN, date(2025, 10, 1), max_age=60) is not first
    assert dashboard.build_recent(sw.session, approver, None, date(2025, 10, 1), max_age=0) is not first
    with pytest.raises(PermissionDenied):
        dashboard.build_recent(sw.session, caseworker, FANTIAN, date(2025, 10, 1), max_age=60)
    # A caseworker asking for the county gets their own township, never the county's figures.
    assert (
        dashboard.build_recent(sw.session, caseworker, COUNTY, date(2025, 10, 1), max_age=60).area == XIANGYUN
    )
    dashboard.forget_recent()
