"""The home-care journey in a real browser: a village assistant applies for an elder (on a phone), the
township caseworker reviews, the assessor scores, the county approver approves (a send-back without a
comment is refused first), the provider accepts and records a month of services on a phone; the case page
shows the marked diagram and the trail; a caseworker of another township is refused the case (403).

Diagram: tests/browser/journey/home_care_test.bpmn (the shipped bpmn/home_care does not deploy yet)."""

from __future__ import annotations

import re

from sqlalchemy import select

from workflows.models import Case, CaseStatus, HumanTask, TaskStatus

from .conftest import Person, needs_chromium

PROCESS = "home_care_test"


def _open_task_from_inbox(person: Person, elder_name: str, step_name: str, scope: str = "group"):
    page = person.page
    page.goto(f"/inbox?scope={scope}")
    row = page.locator("table.tasks tbody tr", has_text=elder_name).filter(has_text=step_name).first
    row.wait_for()
    return row


def _submit(page):
    page.click("form.taskform button.primary[type=submit]")
    page.wait_for_load_state("networkidle")


@needs_chromium
def test_home_care_journey(chromium, live_server, artifacts):
    base, elder = live_server["url"], live_server["elder"]
    people: list[Person] = []
    try:
        # 1. The village assistant applies on a phone: a first try with gaps is refused field by field.
        assistant = Person(chromium, base, "village_assistant", artifacts, phone=True)
        people.append(assistant)
        page = assistant.page
        page.goto("/cases/new")
        page.check(f"input[name=process][value={PROCESS}]")
        page.wait_for_url(re.compile(r".*process=" + PROCESS))
        page.fill("input[name=q]", elder["name"])
        page.click("form.search button")
        page.locator(".pick-list a", has_text=elder["name"]).first.click()
        page.wait_for_selector("form.taskform")
        page.select_option("#id_f_applicant_relation", "proxy")
        page.check('input[name="f.services_wanted"][value=meal]')
        page.check('input[name="f.services_wanted"][value=cleaning]')
        page.fill("#id_f_household_size", "50")
        page.fill("#id_f_family_members_0_name", "李小红")
        assistant.shot("01_application_form_phone")
        _submit(page)
        # Errors in Chinese beside each field; what was typed is still there.
        assert page.locator('[data-path="living_situation"] .error').inner_text() == "此项为必填项"
        assert page.locator('[data-path="consent"] .error').inner_text() == "此项为必填项"
        assert page.locator('[data-path="household_size"] .error').inner_text() == "不能大于 20"
        assert page.is_checked('input[name="f.services_wanted"][value=cleaning]')
        assert page.input_value("#id_f_family_members_0_name") == "李小红"
        assistant.shot("02_application_errors_phone")
        page.fill("#id_f_monthly_income", "420.50")
        page.fill("#id_f_household_size", "2")
        page.fill("#id_f_living_situation", "老人独居，右腿行动不便，需要助餐和打扫卫生。")
        page.fill("#id_f_guardian_name", "王小明")
        page.fill("#id_f_guardian_phone", "13812345678")
        page.select_option("#id_f_family_members_0_relation", "child")
        page.check('input[name="f.consent"][value=true]')
        _submit(page)
        page.wait_for_url(re.compile(r".*/cases/\d+$"))
        case_id = int(page.url.rsplit("/", 1)[-1])
        assert "已发起" in page.locator(".flash-success").inner_text()
        assistant.shot("03_case_after_application_phone")

        # 2. The township caseworker claims the review from the group queue and passes it.
        caseworker = Person(chromium, base, "caseworker", artifacts)
        people.append(caseworker)
        page = caseworker.page
        row = _open_task_from_inbox(caseworker, elder["name"], "乡镇初审")
        assert row.locator(".due-badge").count() == 1
        caseworker.shot("04_inbox_group_laptop", full_page=False)
        row.locator("button", has_text="认领").click()
        page.wait_for_selector("form.taskform")
        assert "meal、cleaning" in page.locator(".instructions").inner_text()
        page.fill("#id_f_visit_date", "2026-11-20")
        page.fill("#id_f_visit_notes", "已入户核实，情况属实。")
        page.select_option("#id_f_decision", "approve")
        caseworker.shot("05_review_task_laptop")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 3. The assessor scores.
        assessor = Person(chromium, base, "assessor", artifacts)
        people.append(assessor)
        page = assessor.page
        _open_task_from_inbox(assessor, elder["name"], "能力评估").locator("a.task-name").click()
        page.fill("#id_f_assessed_on", "2026-11-21")
        page.fill("#id_f_self_care", "14")
        page.fill("#id_f_mobility", "6")
        page.fill("#id_f_mental", "20")
        page.fill("#id_f_perception", "8")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 4. The approver: sending back without a comment is refused; then approves.
        approver = Person(chromium, base, "approver", artifacts)
        people.append(approver)
        page = approver.page
        _open_task_from_inbox(approver, elder["name"], "县民政局审批").locator("a.task-name").click()
        assert "48" in page.locator(".instructions").inner_text()  # the score the script added up
        page.select_option("#id_f_decision", "send_back")
        _submit(page)
        assert "必须填写意见" in page.locator('[data-path="comment"] .error').inner_text()
        approver.shot("06_approval_send_back_needs_comment_laptop")
        page.select_option("#id_f_decision", "approve")
        page.fill("#id_f_monthly_quota", "600")
        page.fill("#id_f_comment", "同意，按中度失能标准提供服务。")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 5. The provider, on a phone, accepts and records the month's services with evidence.
        provider = Person(chromium, base, "provider", artifacts, phone=True)
        people.append(provider)
        page = provider.page
        page.goto("/inbox?scope=group")
        provider.shot("07_provider_inbox_phone")
        row = (
            page.locator("table.tasks tbody tr", has_text="服务机构接单").filter(has_text=elder["name"]).first
        )
        row.locator("a.task-name").click()
        page.check('input[name="f.accepted"][value=true]')
        page.fill("#id_f_start_date", "2026-11-24")
        page.fill("#id_f_caregiver", "赵护理员")
        _submit(page)
        page.wait_for_selector("#id_f_month")  # went straight on to recording services
        page.fill("#id_f_month", "2026-11")
        page.fill("#id_f_records_0_date", "2026-11-25")
        page.select_option("#id_f_records_0_service", "meal")
        page.fill("#id_f_records_0_hours", "1.5")
        page.click("button.add-row")
        page.fill("#id_f_records_1_date", "2026-11-27")
        page.select_option("#id_f_records_1_service", "cleaning")
        page.fill("#id_f_records_1_hours", "2")
        page.fill("#id_f_records_1_note", "打扫厨房和卫生间")
        evidence = page.screenshot()
        page.set_input_files(
            "#id_f_evidence", files=[{"name": "服务签字单.png", "mimeType": "image/png", "buffer": evidence}]
        )
        page.check('input[name="f.satisfied"][value=true]')
        provider.shot("08_record_services_phone")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))
        assert "已提交" in page.locator(".flash-success").inner_text()

        with live_server["engine"].connect() as conn:
            status = conn.execute(select(Case.status).where(Case.id == case_id)).scalar_one()
            open_tasks = conn.execute(
                select(HumanTask.id).where(HumanTask.case_id == case_id, HumanTask.status == TaskStatus.READY)
            ).all()
        assert CaseStatus(status) == CaseStatus.COMPLETED and not open_tasks

        # 6. The case page: the diagram marked in bpmn-js, the trail, the data and the evidence.
        page = caseworker.page
        page.goto(f"/cases/{case_id}")
        page.wait_for_selector("#diagram[data-ready='1']")
        assert page.locator(".djs-element.step-done").count() >= 6
        timeline = page.locator("#timeline").inner_text()
        for text in (
            "填写申请",
            "乡镇初审",
            "能力评估",
            "县民政局审批",
            "同意，按中度失能标准提供服务。",
            "办结",
        ):
            assert text in timeline
        assert page.locator("#documents a", has_text="服务签字单.png").count() == 1
        caseworker.shot("09_case_page_laptop")
        caseworker.page.goto(f"/cases/{case_id}")
        page.wait_for_selector("#diagram[data-ready='1']")
        caseworker.shot("09b_case_page_fold_laptop", full_page=False)
        assistant.page.goto(f"/cases/{case_id}")
        assistant.page.wait_for_selector("#diagram[data-ready='1']")
        assistant.shot("10_case_page_phone")

        # 7. A caseworker of another township may not open it, by URL guessing either.
        other = Person(chromium, base, "caseworker2", artifacts)
        people.append(other)
        response = other.page.goto(f"/cases/{case_id}")
        assert response.status == 403
        assert "无权" in other.page.locator(".error-message").inner_text()
        other.shot("11_other_township_403_laptop")

        # 8. English on request, kept for the person.
        page = caseworker.page
        page.goto(f"/elders/{elder['id']}")
        caseworker.shot("12_elder_page_laptop")
        page.click("button[name=lang][value=en]")
        page.wait_for_load_state("networkidle")
        assert page.locator("h2", has_text="Services this elder may be entitled to").count() == 1
        page.goto("/inbox?scope=all")
        caseworker.shot("13_inbox_english_laptop", full_page=False)

        for person in people:
            assert not person.errors, f"JavaScript errors for {person.username}: {person.errors}"
    finally:
        for person in people:
            person.close()
