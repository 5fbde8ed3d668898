"""Each role's own pages: a nursing home's waitlist and beds, a provider's orders and settlements, the
first page after signing in; another home's or provider's staff get 403 or 404."""

from __future__ import annotations

import re

from sqlalchemy import select

from workflows import clock
from workflows.models.admission import Facility

from . import world


def _facility_id(office, name: str) -> int:
    with office["sessions"]() as session:
        return session.scalar(select(Facility.id).where(Facility.name == name))


def test_a_home_sees_its_queue_with_explanations_and_registers_a_vacancy_that_starts_an_offer(office):
    with office["sessions"].begin() as session:
        first = world.queued_applicant(session, "温县社会福利中心", f"轮候甲{office['kind']}")
        world.queued_applicant(session, "温县社会福利中心", f"轮候乙{office['kind']}")
    home = _facility_id(office, "温县社会福利中心")
    staff = office["browsers"]["facility_admin"]
    assert staff.get("/facility").headers["Location"].endswith(f"/facility/{home}")
    page = staff.get(f"/facility/{home}").text
    assert f"轮候甲{office['kind']}" in page and "普通轮候" in page and "申请时间" in page
    assert re.search(r"第\d+位：优先保障，申请时间 \d{4}-\d{2}-\d{2}", page)  # 低保 and moderately disabled
    refused = staff.post(f"/facility/{home}/beds", {"bed_label": " "}, token_from=f"/facility/{home}/beds")
    assert refused.status_code == 422 and "请填写床位号" in refused.text
    future = staff.post(
        f"/facility/{home}/beds",
        {"bed_label": "1号楼", "vacated_on": "2099-01-01T08:00"},
        token_from=f"/facility/{home}/beds",
    )
    assert (
        future.status_code == 422 and "空床时间不能晚于现在" in future.text and 'value="1号楼"' in future.text
    )
    made = staff.post(
        f"/facility/{home}/beds",
        {"bed_label": f"3号楼{office['kind']}-1", "note": "原入住老人转院"},
        token_from=f"/facility/{home}/beds",
    )
    assert made.status_code == 302
    beds = staff.get(made.headers["Location"].split("#")[0]).text
    assert (
        f"3号楼{office['kind']}-1" in beds and "已通知申请人" in beds and "到场评估期限（5个工作日）" in beds
    )
    assert "自理床位" in beds and "护理床位" in beds
    queue = staff.get(f"/facility/{home}").text
    assert "正在通知的申请人" in queue and "已通知床位" in queue
    with office["sessions"]() as session:
        from workflows.models import Case

        assert session.get(Case, first).organisation_id is not None


def test_another_homes_staff_and_other_roles_are_kept_out(office):
    home = _facility_id(office, "温县社会福利中心")
    other = office["browsers"]["home2"]
    assert other.get(f"/facility/{home}").status_code == 403
    assert other.get(f"/facility/{home}/beds").status_code == 403
    assert other.post(f"/facility/{home}/beds", {"bed_label": "x"}, token_from="/inbox").status_code == 403
    assert (
        other.get("/facility")
        .headers["Location"]
        .endswith(f"/facility/{_facility_id(office, '温县第二社会福利院')}")
    )
    for who in ("caseworker", "provider", "village_assistant"):
        assert office["browsers"][who].get(f"/facility/{home}").status_code == 403, who
    assert office["browsers"]["approver"].get(f"/facility/{home}").status_code == 200
    assert (
        office["browsers"]["approver"]
        .post(f"/facility/{home}/beds", {"bed_label": "x"}, token_from="/inbox")
        .status_code
        == 403
    )
    assert office["browsers"]["facility_admin"].get("/facility/2147483647").status_code == 404


def test_a_provider_sees_its_orders_services_settlements_and_what_was_sent_back(office):
    name = f"订单{office['kind']}"
    today = clock.today()
    first = today.replace(day=1)
    with office["sessions"].begin() as session:
        case_id = world.provider_order(session, name=name, sent_back=True)
        records = [
            {
                "service_date": first.isoformat(),
                "service_type": "meal",
                "minutes": 60,
                "amount": "200.00",
                "staff_name": "陈红",
            },
            {
                "service_date": today.isoformat(),
                "service_type": "cleaning",
                "minutes": 90,
                "amount": "150.00",
                "staff_name": "陈红",
                "content": "打扫卧室",
            },
        ]
        month_id = world.settled_month(session, case_id, first, records, "300.00")
    provider = office["browsers"]["provider"]
    page = provider.get("/provider").text
    assert name in page and "服务中" in page and "助餐、助洁" in page
    assert "请补充入户照片" in page  # sent back by the county, with the reason
    assert "核减 50.00 元" in page and "350.00" in page
    detail = provider.get(f"/provider/months/{month_id}").text
    assert "打扫卧室" in detail and "陈红" in detail and "结算 300.00 元" in detail
    chosen = provider.get(f"/provider?month={first:%Y-%m}").text
    assert name in chosen
    assert provider.get("/provider?month=not-a-month").status_code == 200
    # Another provider sees none of it.
    other = office["browsers"]["xiyang"]
    assert name not in other.get("/provider").text
    assert other.get(f"/provider/months/{month_id}").status_code == 404
    assert other.get(f"/cases/{case_id}").status_code == 403
    for who in ("facility_admin", "caseworker", "admin"):
        assert office["browsers"][who].get("/provider").status_code == 403, who


def test_the_first_page_shows_ones_own_and_the_roles_waiting_tasks_with_counts(office):
    with office["sessions"].begin() as session:
        world.provider_order(session, name=f"首页{office['kind']}")
    caseworker = office["browsers"]["caseworker"]
    page = caseworker.get("/inbox").text
    assert 'id="mine"' in page and 'id="waiting"' in page and "待办任务" in page
    counts = re.findall(r'<span class="count-badge">(\d+)</span>', page)
    assert len(counts) == 2
    listed = caseworker.client.get("/api/tasks?scope=group")
    assert listed.status_code == 401  # pages' cookies are not API credentials
    auditor = office["browsers"]["auditor"].get("/inbox").text
    assert "监督审计只查阅，不认领任务。" in auditor
    # The filtered list is where it was.
    assert "共 " in caseworker.get("/inbox?scope=group").text


def test_the_admins_first_page_warns_about_a_missing_next_year_from_1_december(office):
    from datetime import UTC, datetime

    admin = office["browsers"]["admin"]
    with clock.using(lambda: datetime(2026, 11, 30, 4, 0, tzinfo=UTC)):
        assert "工作日历缺少" not in admin.get("/inbox").text
    with clock.using(lambda: datetime(2026, 12, 1, 4, 0, tzinfo=UTC)):
        page = admin.get("/inbox").text
        assert "工作日历缺少 2027 年的放假和调休安排" in page and "/admin/calendar" in page
        assert "工作日历缺少 2027 年" in admin.get("/admin").text
        assert "工作日历缺少" not in office["browsers"]["caseworker"].get("/inbox").text
