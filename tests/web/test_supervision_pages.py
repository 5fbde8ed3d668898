"""The supervision pages and API on the real app: a township caseworker never sees another township's rows
or numbers (pages, API, exports), refusals and exports land in the office log, workbooks read back with
openpyxl, and the auditor's viewer finds a tampered event."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from sqlalchemy import select, update

from workflows.db import session_factory
from workflows.models import CaseEvent
from workflows.models.supervision import LogKind, OfficeLog

from .conftest import Browser
from .helpers import MASKED_ID, start_case

XIANGYUN, FANTIAN = "410825100", "410825101"
FULL_ID = re.compile(r"^\d{17}[0-9X]$")


@pytest.fixture(scope="module")
def two_townships(api, make_elder):
    """A home-care application in each township (祥云镇 by its assistant, 番田镇 by its caseworker)."""
    mine = start_case(api, make_elder(name="祥云老人"))
    response = api["caseworker2"].post(
        "/api/cases",
        {
            "process": "home_care",
            "elder_id": make_elder(township="fantian", name="番田老人"),
            "data": {
                "applicant_type": "proxy",
                "applicant_name": "赵丽娟",
                "applicant_phone": "13812345678",
                "requested_services": ["meal"],
            },
        },
    )
    assert response.status_code == 201, response.text
    return {"xiangyun": mine, "fantian": response.json}


def _log(web_db, **where):
    with session_factory(web_db[2])() as s:
        query = select(OfficeLog).order_by(OfficeLog.id)
        for key, value in where.items():
            query = query.where(getattr(OfficeLog, key) == value)
        return list(s.scalars(query))


def _workbook(response):
    assert response.status_code == 200, response.text[:300]
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    return openpyxl.load_workbook(io.BytesIO(response.data))


def _header_row(sheet, first: str):
    for row in sheet.iter_rows(values_only=True):
        if row and row[0] == first:
            return list(row)
    raise AssertionError(f"no header row starting with {first}")


def _rows_after(sheet, first: str):
    rows, seen = [], False
    for row in sheet.iter_rows(values_only=True):
        if seen:
            rows.append(row)
        elif row and row[0] == first:
            seen = True
    return rows


def test_a_township_caseworker_never_sees_another_townships_cases(browsers, api, two_townships, web_db):
    mine, theirs = two_townships["xiangyun"]["id"], two_townships["fantian"]["id"]
    page = browsers["caseworker"].get("/cases?per_page=200")
    assert page.status_code == 200
    assert f"#{mine} " in page.text and f"#{theirs} " not in page.text and "番田" not in page.text
    listed = api["caseworker"].get("/api/cases?per_page=200").json
    assert listed["total"] == len(listed["items"]) >= 1
    assert all(item["area_code"].startswith(XIANGYUN) for item in listed["items"])
    assert mine in {i["id"] for i in listed["items"]} and theirs not in {i["id"] for i in listed["items"]}
    assert all(MASKED_ID.fullmatch(i["elder_id_number"]) for i in listed["items"] if i["elder_id_number"])
    other = api["caseworker2"].get("/api/cases?process=home_care&per_page=200").json
    assert theirs in {i["id"] for i in other["items"]} and mine not in {i["id"] for i in other["items"]}
    county = api["approver"].get("/api/cases?process=home_care&per_page=200").json
    assert {mine, theirs} <= {i["id"] for i in county["items"]}
    # Asking for the other township by URL is refused, and the refusal is logged with who asked for what.
    before = len(_log(web_db, kind=LogKind.DENIED))
    refused = browsers["caseworker"].get(f"/cases?area={FANTIAN}")
    assert refused.status_code == 403 and "无权" in refused.text
    assert api["caseworker"].get(f"/api/cases?area={FANTIAN}").status_code == 403
    denied = _log(web_db, kind=LogKind.DENIED)[before:]
    assert [(d.username, d.channel, d.target) for d in denied] == [
        ("caseworker", "web", f"GET /cases?area={FANTIAN}"),
        ("caseworker", "api", f"GET /api/cases?area={FANTIAN}"),
    ]
    assert denied[0].message == "无权查看其他辖区的数据" and denied[0].area_code == XIANGYUN


def test_case_list_filters_paging_and_bad_input(browsers, api, two_townships):
    mine = two_townships["xiangyun"]["id"]
    one = api["approver"].get("/api/cases?per_page=1&page=2").json
    assert (
        one["per_page"] == 1 and one["page"] == 2 and len(one["items"]) == 1 and one["pages"] == one["total"]
    )
    step = api["caseworker"].get("/api/cases?process=home_care&step=township_review&status=running").json
    assert mine in {i["id"] for i in step["items"]}
    assert api["caseworker"].get(f"/api/cases?q=%23{mine}").json["items"][0]["id"] == mine
    bad = api["caseworker"].get("/api/cases?status=finished&page=0&started_from=2025-02-30")
    assert bad.status_code == 422 and set(bad.json["field_errors"]) == {"status", "page", "started_from"}
    unknown = browsers["caseworker"].get("/cases?process=no_such_process")
    assert unknown.status_code == 422 and "没有这个业务流程" in unknown.text
    assert "第 1 / " in browsers["approver"].get("/cases?per_page=1").text


def test_elder_list_has_paging_totals_and_filters(browsers, api):
    page = browsers["caseworker"].get("/elders?per_page=20")
    total = int(re.search(r"共 (\d+) 人", page.text).group(1))
    assert total > 20 and "第 1 / " in page.text and "下一页" in page.text
    listed = api["caseworker"].get("/api/elders?per_page=10&page=2").json
    assert listed["total"] == total and len(listed["items"]) == 10 and listed["page"] == 2
    assert all(e["residence_area_code"].startswith(XIANGYUN) for e in listed["items"])
    assert all(MASKED_ID.fullmatch(e["id_number"]) for e in listed["items"])
    assert len(api["caseworker"].get("/api/elders?limit=5").json["items"]) == 5  # the older parameter
    dibao = api["approver"].get("/api/elders?flag=dibao&per_page=200").json
    assert dibao["total"] >= 1 and all("dibao" in e["flags"] for e in dibao["items"])
    both = api["approver"].get("/api/elders?flag=tekun&flag=home_support&per_page=200").json
    assert all({"tekun", "home_support"} <= set(e["flags"]) for e in both["items"])
    assert api["caseworker"].get(f"/api/elders?area={FANTIAN}").status_code == 403
    assert api["approver"].get("/api/elders?level=dead").status_code == 422
    assert api["provider"].get("/api/elders").status_code == 403


def test_the_dashboard_shows_a_caseworker_only_their_township(browsers, api, two_townships):
    page = browsers["caseworker"].get("/dashboard")
    assert page.status_code == 200 and "祥云镇" in page.text and "番田镇" not in page.text
    assert 'data-chart="visits"' in page.text and "chart.umd.min.js" in page.text
    assert "<script>" not in page.text and "onclick" not in page.text and 'style="' not in page.text
    mine = api["caseworker"].get("/api/dashboard").json
    county = api["approver"].get("/api/dashboard").json
    assert mine["area"] == XIANGYUN and county["area"] == "410825"
    home_care = {p["process"]: p["running"] for p in county["open_cases"]}["home_care"]
    mine_home_care = {p["process"]: p["running"] for p in mine["open_cases"]}["home_care"]
    assert home_care > mine_home_care >= 1
    assert {p["area"] for p in county["visit_rates"]["monthly"]["parts"]} <= {"410825001", XIANGYUN, FANTIAN}
    assert api["caseworker"].get(f"/api/dashboard?area={FANTIAN}").status_code == 403
    assert browsers["caseworker"].get(f"/dashboard?area={FANTIAN}").status_code == 403
    assert browsers["caseworker2"].get(f"/dashboard/visits?area={XIANGYUN}").status_code == 403
    for role in ("provider", "facility_admin", "village_assistant", "assessor"):
        assert browsers[role].get("/dashboard").status_code == 403, role
    assert browsers["approver"].get("/dashboard?month=2025-13").status_code == 422
    # Every figure's list opens for the county.
    for url in (
        "/dashboard/visits?period=week",
        "/dashboard/visits?period=month",
        "/dashboard/waitlist?tier=special",
        "/dashboard/services",
        "/dashboard/adaptations",
        "/dashboard/facilities",
        "/reports/monthly",
    ):
        assert browsers["approver"].get(url).status_code == 200, url


def test_exports_read_back_masked_per_role_and_audited(browsers, two_townships, web_db):
    mine = two_townships["xiangyun"]["id"]
    before = len(_log(web_db, kind=LogKind.EXPORTED))
    book = _workbook(browsers["caseworker"].get("/cases.xlsx?process=home_care"))
    sheet = book[book.sheetnames[0]]
    headers = _header_row(sheet, "案件号")
    assert headers[:5] == ["案件号", "业务", "版本", "标题", "状态"] and "身份证号" in headers
    rows = _rows_after(sheet, "案件号")
    assert mine in [r[0] for r in rows] and two_townships["fantian"]["id"] not in [r[0] for r in rows]
    numbers = [r[headers.index("身份证号")] for r in rows]
    assert numbers and all(MASKED_ID.fullmatch(n) for n in numbers)
    audited = _workbook(browsers["auditor"].get("/cases.xlsx?process=home_care"))
    sheet = audited[audited.sheetnames[0]]
    numbers = [r[_header_row(sheet, "案件号").index("身份证号")] for r in _rows_after(sheet, "案件号")]
    assert numbers and all(FULL_ID.fullmatch(n) for n in numbers)
    elders_book = _workbook(browsers["caseworker"].get("/elders.xlsx?flag=dibao"))
    elder_sheet = elders_book[elders_book.sheetnames[0]]
    assert _header_row(elder_sheet, "档案号")[:3] == ["档案号", "姓名", "身份证号"]
    exported = _log(web_db, kind=LogKind.EXPORTED)[before:]
    assert [(e.username, e.target) for e in exported] == [
        ("caseworker", "案件列表"),
        ("auditor", "案件列表"),
        ("caseworker", "老人档案列表"),
    ]
    assert '"masked": true' in exported[0].detail and '"masked": false' in exported[1].detail
    assert browsers["caseworker"].get(f"/cases.xlsx?area={FANTIAN}").status_code == 403


def test_monthly_report_and_dashboard_workbooks(browsers):
    book = _workbook(browsers["approver"].get("/reports/monthly.xlsx"))
    assert book.sheetnames == [
        "分区汇总",
        "目标完成情况",
        "分散供养特困周探访",
        "六助服务",
        "公办机构轮候",
        "能力评估",
    ]
    summary = book["分区汇总"]
    headers = _header_row(summary, "区划")
    assert headers[:4] == ["区划", "探访关爱对象（人）", "本月已探访（人）", "月探访率"]
    areas = [r[0] for r in _rows_after(summary, "区划")]
    assert areas[:3] == ["温泉街道", "祥云镇", "番田镇"] and areas[-1].startswith("合计")
    mine = _workbook(browsers["caseworker"].get("/reports/monthly.xlsx"))
    assert [r[0] for r in _rows_after(mine["分区汇总"], "区划")][-1] == "合计（温县祥云镇）"
    board = _workbook(browsers["caseworker"].get("/dashboard.xlsx"))
    assert "探访率" in board.sheetnames and "逾期任务" in board.sheetnames
    assert browsers["caseworker"].get(f"/reports/monthly.xlsx?area={FANTIAN}").status_code == 403


def test_the_auditor_finds_a_tampered_event_and_reads_the_sign_in_log(browsers, api, two_townships, web_db):
    case_id = two_townships["fantian"]["id"]
    auditor = browsers["auditor"]
    assert "完整" in auditor.get(f"/audit/cases/{case_id}").text
    with session_factory(web_db[2]).begin() as s:
        s.execute(
            update(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == 1).values(comment="x")
        )
    page = auditor.get(f"/audit/cases/{case_id}")
    assert "已被改动：第一处断点——第1条记录（发起）内容被改动" in page.text
    area = auditor.post("/audit/verify", {"area": FANTIAN}, token_from="/audit/verify")
    assert area.status_code == 200 and f"#{case_id}" in area.text and "第一处断点" in area.text
    events = auditor.get(f"/audit?case={case_id}")
    assert events.status_code == 200 and "发起" in events.text
    log = auditor.get("/audit/log?kind=signed_in")
    assert log.status_code == 200 and "caseworker" in log.text
    denied = auditor.get("/audit/log?kind=denied")
    assert "越权访问被拒绝" in denied.text
    for role in ("caseworker", "approver", "provider"):
        assert browsers[role].get("/audit").status_code == 403, role
    book = _workbook(auditor.get("/audit/log.xlsx"))
    assert _header_row(book[book.sheetnames[0]], "时间")[:3] == ["时间", "类型", "用户名"]


def test_a_sample_is_drawn_and_reviewed_through_the_pages(browsers, web_db):
    auditor = browsers["auditor"]
    refused = auditor.post(
        "/audit/samples",
        {"process": "home_care", "month": "2020-01", "size": "5"},
        token_from="/audit/samples",
    )
    assert refused.status_code == 422 and "该月没有已办结的此类案件" in refused.text
    bad = auditor.post(
        "/audit/samples", {"process": "", "month": "x", "size": "abc"}, token_from="/audit/samples"
    )
    assert bad.status_code == 422
    assert (
        browsers["approver"]
        .post(
            "/audit/samples", {"process": "home_care", "month": "2026-01", "size": "1"}, token_from="/inbox"
        )
        .status_code
        == 403
    )


def test_every_supervision_page_needs_a_sign_in(anonymous):
    for url in (
        "/cases",
        "/cases.xlsx",
        "/dashboard",
        "/dashboard.xlsx",
        "/dashboard/visits",
        "/reports/monthly",
        "/reports/monthly.xlsx",
        "/elders.xlsx",
        "/audit",
        "/audit/log",
        "/audit/samples",
        "/audit/verify",
    ):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    assert anonymous.get("/api/cases").status_code == 401
    assert anonymous.get("/api/dashboard").status_code == 401


def test_the_dashboard_warns_when_the_calendar_lacks_a_year(app):
    # Deadlines on the board are counted in working days: a year the calendar does not know is said.
    # Own sign-ins at each date: the shared browsers' sessions would end idle at a jump of the clock.
    from datetime import UTC, datetime

    from workflows import clock

    with clock.using(clock.ManualClock(datetime(2099, 12, 2, 2, 0, tzinfo=UTC))):
        page = Browser(app, "approver").get("/dashboard").text
    assert "工作日历缺少 2099 年" in page and "工作日历缺少 2100 年" in page
    with clock.using(clock.ManualClock(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))):
        assert "工作日历缺少" not in Browser(app, "approver").get("/dashboard").text
