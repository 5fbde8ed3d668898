"""The home-care journey in a real browser, on the shipped processes `home_care` (with its call activity to
`assessment`) and `home_care_month`:

a village assistant registers an elder and applies for home care for her, on a phone (first tries with
gaps refused field by field); the assessor scores the 26 items of the called assessment; the township
caseworker tells the result and reviews; the county approver approves (a send-back without a comment is
refused first); the caseworker dispatches to a provider chosen from a list; the provider accepts on a phone.
Then the clock moves into the first service month and the background job opens it; the provider records the
month's 六助 on a phone; the caseworker verifies and settles. The case pages show the marked diagrams and the
trail; a caseworker of another township is refused them (403)."""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import select

from workflows import clock, worker
from workflows.models import Case, CaseStatus, Elder, HumanTask, TaskStatus, User
from workflows.models.care import EnrolmentStatus, HomeCareEnrolment, HomeCareMonth, MonthStatus
from workflows.rules.idnumber import compute_check_char

from .conftest import Person, needs_chromium

ELDER_NAME = "甄秀云"
FIRST17 = "410825194803150" + "24"  # born 1948-03-15, a woman (even 17th digit)
ID_NUMBER = FIRST17 + compute_check_char(FIRST17)
WRONG_ID = FIRST17 + ("0" if ID_NUMBER[-1] != "0" else "1")
# The assessor's 26 scores (GB/T 42195-2022): 17 + 5 + 22 + 5 = 49 points, 中度失能.
SCORES = {
    "self_care": {
        "eating": 3,
        "grooming": 2,
        "bathing": 1,
        "upper_dressing": 2,
        "lower_dressing": 1,
        "bladder": 3,
        "bowel": 3,
        "toileting": 2,
    },
    "basic_mobility": {"bed_mobility": 2, "bed_chair_transfer": 2, "level_walking": 1, "stairs": 0},
    "mental_state": {
        "time_orientation": 3,
        "place_orientation": 3,
        "person_orientation": 4,
        "memory": 2,
        "comprehension": 3,
        "expression": 3,
        "aggressive_behaviour": 1,
        "depressive_symptoms": 1,
        "consciousness": 2,
    },
    "perception_social": {
        "vision": 1,
        "hearing": 1,
        "daily_affairs": 1,
        "transport_use": 0,
        "social_interaction": 2,
    },
}
# Into the first service month (services start with the month after the provider accepts).
IN_THE_MONTH = datetime(2026, 12, 21, 10, 0, tzinfo=clock.LOCAL)
# Four visits of 六助, 320 元 in all: over the 300 元 quota, so the month is flagged for a call-back.
SERVICES = (
    ("2026-12-03", "meal", "60", "60.00", "赵护理员", "送午餐到家，协助进食"),
    ("2026-12-08", "cleaning", "120", "90.00", "赵护理员", "打扫厨房和卫生间"),
    ("2026-12-12", "bathing", "60", "80.00", "钱护理员", "上门助浴"),
    ("2026-12-17", "medical", "180", "90.00", "钱护理员", "陪同到县医院复查右腿"),
)


def _row(person: Person, step_name: str, scope: str = "group"):
    """The person's inbox row of the elder's step."""
    page = person.page
    page.goto(f"/inbox?scope={scope}")
    row = page.locator("table.tasks tbody tr", has_text=ELDER_NAME).filter(has_text=step_name).first
    row.wait_for()
    return row


def _open(person: Person, step_name: str, scope: str = "group"):
    _row(person, step_name, scope).locator("a.task-name").click()
    person.page.wait_for_selector("form.taskform")


def _submit(page):
    page.click("form.taskform button.primary[type=submit]")
    page.wait_for_load_state("networkidle")


def _error(page, path: str) -> str:
    return page.locator(f'[data-path="{path}"] > .error').inner_text()


@needs_chromium
def test_home_care_journey(chromium, live_server, artifacts):
    base, sessions, journey_clock = live_server["url"], live_server["sessions"], live_server["clock"]
    today = journey_clock().astimezone(clock.LOCAL).date().isoformat()
    people: list[Person] = []
    try:
        # 1. The village assistant, on a phone, registers the elder from the elder list.
        assistant = Person(chromium, base, "village_assistant", artifacts, phone=True)
        people.append(assistant)
        page = assistant.page
        page.goto("/elders")
        page.click("#register-elder")
        page.wait_for_selector("form.register-form")
        page.fill("#id_f_id_number", WRONG_ID)
        page.fill("#id_f_name", ELDER_NAME)
        page.fill("#id_f_phone", "0391-6123456")
        page.select_option("#id_f_hukou_type", "rural")
        page.select_option("#id_f_residence_area_code", "410825100201")
        page.fill("#id_f_address", "3组25号")
        page.check("#id_f_support_dibao")
        page.check("#id_f_support_empty_nest")
        page.fill("#id_f_guardian_name", "甄小军")
        page.fill("#id_f_guardian_phone", "13812340002")
        page.fill("#id_f_contacts_0_name", "甄小红")
        page.fill("#id_f_contacts_0_relation", "女儿")
        page.fill("#id_f_contacts_0_phone", "13712340003")
        page.click("form.register-form button.primary[type=submit]")
        page.wait_for_load_state("networkidle")
        assert _error(page, "id_number").startswith("身份证号校验位错误")
        assert _error(page, "living_arrangement") == "请填写居住状况"
        assert page.input_value("#id_f_name") == ELDER_NAME and page.is_checked("#id_f_support_empty_nest")
        assert page.input_value("#id_f_contacts_0_phone") == "13712340003"
        assistant.shot("01_register_elder_errors_phone")
        page.fill("#id_f_id_number", ID_NUMBER)
        page.select_option("#id_f_living_arrangement", "living_alone")
        page.click("form.register-form button.primary[type=submit]")
        page.wait_for_url(re.compile(r".*/elders/\d+$"))
        assert f"已登记：{ELDER_NAME}" in page.locator(".flash-success").inner_text()
        elder_id = int(page.url.rsplit("/", 1)[-1])
        assistant.shot("02_elder_registered_phone")

        # 2. ...and applies for home care for her: a first try with gaps is refused field by field.
        page.locator("a.button", has_text="为该老人发起业务").click()
        page.check("input[name=process][value=home_care]")
        page.wait_for_url(re.compile(r".*process=home_care"))
        page.wait_for_selector("form.taskform")
        page.select_option("#id_f_applicant_type", "family")
        page.fill("#id_f_applicant_phone", "1381234")
        page.fill("#id_f_application_note", "老人独居，右腿行动不便，做饭和打扫有困难。")
        assistant.shot("03_application_form_phone")
        _submit(page)
        assert _error(page, "applicant_name") == "家属申请或代办时须填写申请人姓名"
        assert _error(page, "applicant_relation") == "家属申请时须填写与老人的关系"
        assert _error(page, "applicant_phone").startswith("电话号码格式错误")
        assert _error(page, "requested_services") == "请至少选择一项“六助”服务"
        assert page.input_value("#id_f_applicant_phone") == "1381234"
        assert page.input_value("#id_f_application_note").startswith("老人独居")
        assistant.shot("04_application_errors_phone")
        page.select_option("#id_f_applicant_type", "proxy")
        page.fill("#id_f_applicant_name", "李秀梅")
        page.fill("#id_f_applicant_phone", "13812345678")
        for service in ("meal", "cleaning", "bathing"):
            page.check(f'input[name="f.requested_services"][value={service}]')
        _submit(page)
        page.wait_for_url(re.compile(r".*/cases/\d+$"))
        case_id = int(page.url.rsplit("/", 1)[-1])
        assert "已发起" in page.locator(".flash-success").inner_text()
        page.wait_for_selector("#diagram[data-ready='1']")
        assert page.locator(".djs-element.step-current").count() == 1  # the assessment it calls
        assistant.shot("05_case_after_application_phone")

        # 3. The assessor scores the 26 items of the called assessment.
        assessor = Person(chromium, base, "assessor", artifacts)
        people.append(assessor)
        page = assessor.page
        _open(assessor, "现场评估（26项指标）")
        assert ELDER_NAME in page.locator(".instructions").inner_text()
        page.fill("#id_f_assessed_on", today)
        for group, items in SCORES.items():
            for key, score in items.items():
                page.check(f'input[name="f.{group}.{key}"][value="{score}"]')  # choices with their wording
        for flag in ("coma", "dementia", "psychiatric"):
            page.check(f'input[name="f.special_conditions.{flag}"][value=false]')
        page.fill("#id_f_special_conditions_falls", "1")
        for risk in ("choking", "self_harm", "wandering"):
            page.fill(f"#id_f_special_conditions_{risk}", "0")
        page.fill("#id_f_assessor_note", "入户评估，女儿在场，右腿骨折后行走困难。")
        assessor.shot("06_assessment_form_laptop")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 4. The township caseworker tells the result, then reviews on a home visit.
        caseworker = Person(chromium, base, "caseworker", artifacts)
        people.append(caseworker)
        page = caseworker.page
        _open(caseworker, "告知评估结果")
        assert "总分 49 分，中度失能" in page.locator(".instructions").inner_text()
        page.fill("#id_f_notified_on", today)
        page.select_option("#id_f_notify_method", "in_person")
        page.check('input[name="f.objection"][value=false]')
        _submit(page)
        row = _row(caseworker, "乡镇初审（入户核实）")
        assert row.locator(".due-badge").count() == 1
        caseworker.shot("07_inbox_group_laptop", full_page=False)
        row.locator("button", has_text="认领").click()
        page.wait_for_selector("form.taskform")
        assert "能力等级：中度失能" in page.locator(".instructions").inner_text()
        assert "助餐、助洁、助浴" in page.locator(".instructions").inner_text()
        page.select_option("#id_f_decision", "pass")
        page.fill("#id_f_home_visit_on", today)
        page.fill("#id_f_verification", "入户核实：低保在册，独居，右腿行动不便，无人日常照料，情况属实。")
        caseworker.shot("08_township_review_laptop")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 5. The county approver: a send-back without a comment is refused; then approves.
        approver = Person(chromium, base, "approver", artifacts)
        people.append(approver)
        page = approver.page
        _open(approver, "县级审批")
        assert "中度失能" in page.locator(".instructions").inner_text()
        page.select_option("#id_f_decision", "send_back")
        _submit(page)
        assert _error(page, "comment") == "此项为必填项"
        assert "表单填写有误" in page.locator(".flash-error").inner_text()
        approver.shot("09_approval_send_back_needs_comment_laptop")
        page.select_option("#id_f_decision", "approve")
        page.fill("#id_f_comment", "同意，按中度失能标准提供服务。")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 6. The caseworker dispatches: the providers that can serve this village, as a list.
        page = caseworker.page
        _open(caseworker, "派单（选择服务机构）")
        assert "月度服务额度 300 元" in page.locator(".instructions").inner_text()
        offered = page.locator("#id_f_provider_id option").all_inner_texts()
        assert offered == ["请选择", "温县康乐居家养老服务中心", "温县夕阳红家政服务有限公司"]
        page.select_option("#id_f_provider_id", label="温县康乐居家养老服务中心")
        page.fill("#id_f_dispatch_note", "老人右腿不便，上门时请多留意。")
        caseworker.shot("10_dispatch_laptop")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))

        # 7. The provider accepts, on a phone.
        provider = Person(chromium, base, "provider", artifacts, phone=True)
        people.append(provider)
        page = provider.page
        _open(provider, "服务机构接单", scope="mine")
        page.select_option("#id_f_decision", "accept")
        page.fill("#id_f_planned_start_on", "2026-12-01")
        provider.shot("11_provider_accept_phone")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))
        with sessions() as session:
            enrolment = session.scalar(
                select(HomeCareEnrolment).where(HomeCareEnrolment.elder_id == elder_id)
            )
            assert enrolment.status == EnrolmentStatus.ACTIVE and enrolment.next_month == date(2026, 12, 1)
            assert str(enrolment.monthly_quota) == "300.00"
            assert session.get(Case, case_id).status == CaseStatus.RUNNING  # the service period runs on

        # 8. Into the service month: the background job opens it, one short case per month.
        journey_clock.set(IN_THE_MONTH)
        with clock.using(journey_clock):
            done = worker.run_once(sessions)
        assert done.get("home_care_months", 0) >= 1
        with sessions() as session:
            month = session.scalar(select(HomeCareMonth).where(HomeCareMonth.enrolment_id == enrolment.id))
            assert month.month == date(2026, 12, 1) and month.case_id is not None
            month_case_id = month.case_id
            assert session.get(Case, month_case_id).parent_case_id == case_id

        # 9. The provider, on a phone, uploads the signed sheet and records the month's services (六助).
        _open(provider, "填报本月服务记录", scope="mine")
        instructions = page.locator(".instructions").inner_text()
        assert "2026年12月" in instructions and "本月服务额度 300 元" in instructions
        page.set_input_files(
            "form.upload input[type=file]",
            files=[{"name": "十二月服务签字单.png", "mimeType": "image/png", "buffer": page.screenshot()}],
        )
        page.click("form.upload button")
        page.wait_for_selector("form.taskform")
        assert "已上传 1 个文件" in page.locator(".flash-success").inner_text()
        for index, (day, kind, minutes, amount, staff, content) in enumerate(SERVICES):
            if index:
                page.click("button.add-row")
            page.fill(f"#id_f_services_{index}_service_date", day)
            page.select_option(f"#id_f_services_{index}_service_type", kind)
            page.fill(f"#id_f_services_{index}_minutes", minutes)
            page.fill(f"#id_f_services_{index}_amount", amount)
            page.fill(f"#id_f_services_{index}_staff_name", staff)
            page.fill(f"#id_f_services_{index}_content", content)
        provider.shot("12_record_services_phone")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))
        assert "已提交" in page.locator(".flash-success").inner_text()

        # 10. The township calls the elder back (the month is flagged: over the quota) and settles.
        page = caseworker.page
        page.goto(f"/cases/{month_case_id}")
        page.locator(".open-tasks a", has_text="电话回访核实").click()
        page.wait_for_selector("form.taskform")
        callback = page.locator(".instructions").inner_text()
        assert "服务 4 次，金额 320.00 元" in callback and "超出本月额度 300.00 元" in callback, callback
        page.fill("#id_f_callback_callback_on", IN_THE_MONTH.date().isoformat())
        page.check('input[name="f.callback.reached"][value=true]')
        page.select_option("#id_f_callback_services_confirmed", "confirmed")
        page.select_option("#id_f_callback_satisfaction", "satisfied")
        page.fill("#id_f_callback_callback_note", "电话联系老人女儿：四次服务属实，满意。")
        caseworker.shot("13_callback_laptop")
        _submit(page)
        page.goto(f"/cases/{month_case_id}")
        page.locator(".open-tasks a", has_text="月度核定结算").click()
        page.wait_for_selector("form.taskform")
        settle = page.locator(".instructions").inner_text()
        assert "服务 4 次，金额 320.00 元，额度 300.00 元，建议结算 300.00 元" in settle, settle
        page.fill("#id_f_settlement_amount", "320.00")
        _submit(page)
        assert _error(page, "settlement_amount") == "结算金额 320.00 元超出本月服务额度 300.00 元"
        caseworker.shot("14_settlement_over_quota_laptop")
        page.fill("#id_f_settlement_amount", "300.00")
        page.fill("#id_f_settlement_note", "服务属实；超出额度的 20 元不予结算。")
        _submit(page)
        page.wait_for_url(re.compile(r".*/inbox.*"))
        with sessions() as session:
            month = session.get(HomeCareMonth, month.id)
            assert month.status == MonthStatus.SETTLED and str(month.settlement_amount) == "300.00"
            assert month.flagged and month.callback is not None
            assert session.get(Case, month_case_id).status == CaseStatus.COMPLETED
            assert not session.scalars(
                select(HumanTask.id).where(
                    HumanTask.case_id.in_((case_id, month_case_id)), HumanTask.status == TaskStatus.READY
                )
            ).all()

        # 11. The case pages: the diagram in bpmn-js with the steps passed marked, and the trail.
        page.goto(f"/cases/{case_id}")
        page.wait_for_selector("#diagram[data-ready='1']")
        for step in ("capability_assessment", "township_review", "county_approval", "dispatch_provider"):
            assert page.locator(f'.djs-element.step-done[data-element-id="{step}"]').count() == 1, step
        timeline = page.locator("#timeline").inner_text()
        for text in (
            "现场评估（26项指标）",
            "告知评估结果",
            "乡镇初审（入户核实）",
            "县级审批",
            "同意，按中度失能标准提供服务。",
            "派单（选择服务机构）",
            "服务机构接单",
        ):
            assert text in timeline, text
        assert page.locator(".related a", has_text="居家上门服务 2026年12月").count() == 1
        caseworker.shot("15_case_page_laptop")
        page.goto(f"/cases/{case_id}")
        page.wait_for_selector("#diagram[data-ready='1']")
        caseworker.shot("15b_case_page_fold_laptop", full_page=False)
        page.goto(f"/cases/{month_case_id}")
        page.wait_for_selector("#diagram[data-ready='1']")
        for step in ("record_services", "callback_check", "township_settlement"):
            assert page.locator(f'.djs-element.step-done[data-element-id="{step}"]').count() == 1, step
        timeline = page.locator("#timeline").inner_text()
        for text in ("填报本月服务记录", "电话回访核实", "月度核定结算", "办结"):
            assert text in timeline, text
        assert page.locator("#documents a", has_text="十二月服务签字单.png").count() == 1
        caseworker.shot("16_month_case_page_laptop")
        assistant.page.goto(f"/cases/{case_id}")
        assistant.page.wait_for_selector("#diagram[data-ready='1']")
        assistant.shot("17_case_page_phone")

        # 12. A caseworker of another township may not open them, by URL guessing either.
        other = Person(chromium, base, "caseworker2", artifacts)
        people.append(other)
        for url in (f"/cases/{case_id}", f"/cases/{month_case_id}"):
            response = other.page.goto(url)
            assert response.status == 403, url
            assert "无权" in other.page.locator(".error-message").inner_text()
        other.shot("18_other_township_403_laptop")

        # 13. English on request, kept for the person.
        page = caseworker.page
        page.goto(f"/elders/{elder_id}")
        caseworker.shot("19_elder_page_laptop")
        page.click("button[name=lang][value=en]")
        page.wait_for_load_state("networkidle")
        assert page.locator("h2", has_text="Services this elder may be entitled to").count() == 1
        page.goto("/elders")
        assert page.locator("#register-elder").inner_text() == "＋ Register an elder"
        caseworker.shot("20_elder_list_english_laptop", full_page=False)

        with sessions() as session:
            elder = session.get(Elder, elder_id)
            assert (elder.id_number, elder.disability_level.value) == (ID_NUMBER, "moderate")
            assert session.scalar(select(User.id).where(User.username == "provider")) == enrolment.provider_id
        for person in people:
            assert not person.errors, f"JavaScript errors for {person.username}: {person.errors}"
    finally:
        for person in people:
            person.close()
