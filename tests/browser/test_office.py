"""Running a county office in a real browser, on SQLite and on PostgreSQL: the administrator's pages (users
with a temporary password changed at first sign-in, areas, organisations, the working-day calendar moving
a deadline across the 2027 Spring Festival), a nursing home's waitlist and beds, a provider's orders, the
assessor's running score, correcting an elder's record, the first page after signing in, the case
diagram's zoom, and an idle sign-out that keeps a half-filled task form (server clock and page clock both
injected). Laptop (1366 px) and phone (390 px); no page may break its Content-Security-Policy.

Screenshots go to test-artifacts/office/, and to docs/screenshots/ with ELDERCARE_DOC_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from datetime import datetime

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.web.office import world
from tests.web.office.conftest import backends, database, populate
from workflows import clock, tasks
from workflows.db import make_engine, session_factory
from workflows.models import Base, Case, HumanTask, TaskStatus
from workflows.models.admission import Facility
from workflows.rules import workdays

from .conftest import ROOT, Person, _free_port, _on_clock, needs_chromium

DOCS = os.environ.get("ELDERCARE_DOC_SCREENSHOTS") == "1"
SPRING_2027 = "2027-01-01~2027-01-03 休 元旦\n2027-02-05~2027-02-11 休 春节\n2027-02-20 班 春节"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=clock.LOCAL)


@pytest.fixture(scope="module", params=backends())
def office_server(request, tmp_path_factory):
    """The app with the default idle sign-out (30 minutes), on the test's clock, over either database."""
    from webapp import create_app

    from .conftest import PASSWORD

    folder = tmp_path_factory.mktemp(f"office_browser_{request.param}")
    url, drop = database(request.param, folder)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    moment = clock.ManualClock(local(2026, 12, 1, 9, 0))
    with clock.using(moment), session_factory(engine).begin() as session:
        populate(session, PASSWORD)
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": f"office-{request.param}", "UPLOAD_DIR": str(folder / "up")}
    )
    app.wsgi_app = _on_clock(app.wsgi_app, moment)
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "sessions": session_factory(engine),
            "clock": moment,
            "kind": request.param,
        }
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["db_engine"].dispose()
        engine.dispose()
        workdays.use_entered_years({})
        if drop is not None:
            from sqlalchemy import text

            admin, name = drop
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture(scope="module")
def shots():
    folder = ROOT / "test-artifacts" / "office"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Shooter:
    """Screenshots of one backend's run: all to test-artifacts; the SQLite run's to docs when asked."""

    def __init__(self, folder, kind: str):
        self.folder, self.kind = folder, kind

    def __call__(self, person: Person, name: str, *, full_page: bool = True):
        path = self.folder / f"{self.kind}-{name}.png"
        person.page.screenshot(path=str(path), full_page=full_page)
        if DOCS and self.kind == "sqlite":
            shutil.copy(path, ROOT / "docs" / "screenshots" / f"{name}.png")


def _people(chromium, server, shots, names: dict[str, bool]) -> dict[str, Person]:
    return {name: Person(chromium, server["url"], name, shots, phone=phone) for name, phone in names.items()}


def _close(people):
    for person in people.values():
        assert person.errors == [], (person.username, person.errors)
        person.close()


def _submit(page):
    page.click("form.taskform button.primary[type=submit], form button.primary")
    page.wait_for_load_state("networkidle")


@needs_chromium
def test_an_administrator_runs_users_areas_and_organisations(chromium, office_server, shots):
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    moment.set(local(2026, 12, 1, 9, 0))
    people = _people(chromium, office_server, shots, {"admin": False})
    admin = people["admin"]
    page = admin.page
    try:
        # 1 December, 2027 not entered: the first page and the administration warn.
        page.goto("/inbox")
        assert "工作日历缺少 2027 年的放假和调休安排" in page.locator(".flash-warning").first.inner_text()
        page.goto("/admin")
        shoot(admin, "admin-start")
        # A new caseworker: the temporary password is shown once.
        page.goto("/admin/users/new")
        page.fill("#id_username", f"wang.{office_server['kind']}")
        page.fill("#id_display_name", "王芳（祥云镇经办人）")
        page.select_option("#id_role", "caseworker")
        page.select_option("#id_area_code", "410825100")
        page.click("form button.primary")
        temporary = page.locator("#temporary-password").inner_text()
        assert len(temporary) == 12
        shoot(admin, "admin-temporary-password")
        page.goto("/admin/users")
        shoot(admin, "admin-users")
        # The newcomer, on a phone, must change it before anything else.
        newcomer = Person.__new__(Person)
        newcomer.context = chromium.new_context(
            base_url=office_server["url"],
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        newcomer.page, newcomer.username, newcomer.errors = newcomer.context.new_page(), "newcomer", []
        newcomer.page.on("pageerror", lambda exc: newcomer.errors.append(str(exc)))
        people["newcomer"] = newcomer
        phone = newcomer.page
        phone.goto("/login")
        phone.fill("input[name=username]", f"wang.{office_server['kind']}")
        phone.fill("input[name=password]", temporary)
        phone.click("button.primary")
        phone.wait_for_url("**/password**")
        assert "临时密码" in phone.locator(".flash-warning").inner_text()
        shoot(newcomer, "first-sign-in-password-phone")
        phone.fill("#id_current", temporary)
        phone.fill("#id_new", "wang-own-2026")
        phone.fill("#id_again", "wang-own-2026")
        phone.click("button.primary")
        phone.wait_for_url("**/inbox**")
        assert "密码已修改" in phone.locator(".flash-success").inner_text()

        # Areas and organisations.
        page.goto("/admin/areas")
        page.fill("#id_code", "410825100204")
        page.fill("#id_name", "新华村")
        page.click("form button.primary")
        page.wait_for_url("**/admin/areas#area-410825100204")
        shoot(admin, "admin-areas")
        page.goto("/admin/organisations")
        page.click("text=温县康乐居家养老服务中心")
        assert page.locator("input[name=services][value=bathing]").is_checked()
        shoot(admin, "admin-organisation")

    finally:
        _close(people)


@needs_chromium
def test_a_home_a_provider_and_the_first_page_on_laptop_and_phone(chromium, office_server, shots):
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    moment.set(local(2026, 12, 14, 9, 0))
    with clock.using(moment), office_server["sessions"].begin() as session:
        for n in range(3):
            world.queued_applicant(session, "温县社会福利中心", f"轮候{'甲乙丙'[n]}")
        order = world.provider_order(session, name="订单老人", sent_back=True)
        first = clock.today().replace(day=1)
        records = [
            {
                "service_date": first.isoformat(),
                "service_type": "meal",
                "minutes": 60,
                "amount": "180.00",
                "staff_name": "陈红",
            },
            {
                "service_date": clock.today().isoformat(),
                "service_type": "cleaning",
                "minutes": 90,
                "amount": "150.00",
                "staff_name": "陈红",
                "content": "打扫卧室",
            },
        ]
        world.settled_month(session, order, first, records, "300.00")
        world.provider_order(session, name="待办老人")
        # Work for the caseworker's first page: two applications to review, one of them claimed.
        from workflows.processes.home_care import enrolment as home_care

        who = world.people(session)
        for n, name in enumerate(("冯桂芝", "郭长顺")):
            elder_id = world.new_elder(session, name=name)
            applied = home_care.apply_home_care(
                session,
                who["village_assistant"],
                elder_id,
                {"applicant_type": "self", "requested_services": ["meal"]},
            )
            if n == 0:
                review = session.scalar(
                    select(HumanTask).where(
                        HumanTask.case_id == applied.id, HumanTask.status == TaskStatus.READY
                    )
                )
                tasks.claim(session, who["caseworker"], review.id)
    people = _people(
        chromium,
        office_server,
        shots,
        {"facility_admin": False, "provider": True, "caseworker": True, "home2": False},
    )
    try:
        home = people["facility_admin"].page
        home.goto("/facility")
        home.wait_for_selector("#queue")
        assert "第1位" in home.locator("#queue").inner_text()
        shoot(people["facility_admin"], "facility-waitlist")
        home.click("text=床位与空床")
        home.fill("#id_bed_label", "3号楼201-1")
        home.fill("#id_note", "原入住老人转院")
        home.click("#vacancy-form button.primary")
        home.wait_for_load_state("networkidle")
        assert "已通知申请人" in home.locator("#vacancies").inner_text()
        shoot(people["facility_admin"], "facility-beds")
        assert people["home2"].page.goto(home.url).status == 403

        provider = people["provider"].page
        provider.goto("/provider")
        assert "订单老人" in provider.locator("#orders").inner_text()
        assert "请补充入户照片" in provider.locator("#sent-back").inner_text()
        assert "核减 30.00 元" in provider.locator("#months").inner_text()
        shoot(people["provider"], "provider-orders-phone")

        worker = people["caseworker"].page
        worker.goto("/inbox")
        assert (
            "冯桂芝" in worker.locator("#mine").inner_text()
            and "郭长顺" in worker.locator("#waiting").inner_text()
        )
        shoot(people["caseworker"], "start-page-phone")
        worker.set_viewport_size({"width": 1366, "height": 768})
        worker.goto("/inbox")
        shoot(people["caseworker"], "start-page")
    finally:
        _close(people)


@needs_chromium
def test_the_assessor_scores_along_and_the_server_agrees(chromium, office_server, shots):
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    moment.set(local(2026, 12, 15, 9, 0))
    from workflows.processes.home_care import enrolment as home_care

    with clock.using(moment), office_server["sessions"].begin() as session:
        elder_id = world.new_elder(session, name="评估老人", level=None)
        case = home_care.apply_home_care(
            session,
            world.people(session)["village_assistant"],
            elder_id,
            {"applicant_type": "self", "requested_services": ["meal"]},
        )
        task = session.scalar(
            select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
        )
    people = _people(chromium, office_server, shots, {"assessor": False})
    page = people["assessor"].page
    try:
        page.goto(f"/tasks/{task.id}")
        page.wait_for_selector(".score-panel")
        assert (
            "4分：独立使用器具将食物送进口中并咽下，没有呛咳"
            in page.locator('[data-path="self_care.eating"]').inner_text()
        )
        # Self-care all at 1, mobility at 1, the rest at their best: 8 + 4 + 28 + 15 = 55 → moderate.
        from workflows.rules.assessment import ITEMS

        for item in ITEMS:
            score = 1 if item.group.key in ("self_care", "basic_mobility") else item.max_score
            page.check(f'input[name="f.{item.group.key}.{item.key}"][value="{score}"]')
        assert page.locator(".score-total").inner_text() == "55 / 90"
        assert page.locator(".score-level").inner_text() == "中度失能"
        # Two falls in 30 days: one level up.
        page.fill("#id_f_special_conditions_falls", "2")
        page.dispatch_event("#id_f_special_conditions_falls", "input")
        assert page.locator(".score-level").inner_text() == "重度失能"
        assert "上调一个等级" in page.locator(".score-reasons").inner_text()
        for name in ("coma", "dementia", "psychiatric"):
            page.check(f'input[name="f.special_conditions.{name}"][value="false"]')
        for name in ("choking", "self_harm", "wandering"):
            page.fill(f"#id_f_special_conditions_{name}", "0")
        page.select_option("#id_f_assessment_reason", "initial")
        page.fill("#id_f_assessed_on", "2026-12-15")
        shoot(people["assessor"], "assessment-live-score", full_page=False)
        _submit(page)
        with office_server["sessions"]() as session:
            from workflows import cases as case_use

            data = case_use.case_data(session.get(Case, case.id))
        assert (data["assessment_result"]["total"], data["assessment_result"]["level"]) == (55, "severe")
    finally:
        _close(people)


@needs_chromium
def test_an_elder_is_corrected_and_a_death_is_confirmed_first(chromium, office_server, shots):
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    moment.set(local(2026, 12, 16, 9, 0))
    with clock.using(moment), office_server["sessions"].begin() as session:
        case_id = world.provider_order(session, name="档案老人")
        elder_id = session.get(Case, case_id).elder_id
    people = _people(chromium, office_server, shots, {"village_assistant": True})
    page = people["village_assistant"].page
    try:
        page.goto(f"/elders/{elder_id}")
        page.click("#edit-elder-link")
        page.fill("#id_f_address", "人民路18号")
        page.select_option("#id_f_status", "deceased")
        page.fill("#id_f_deceased_on", "2026-12-15")
        page.fill("#id_f_change_reason", "村委会告知老人12月15日去世")
        page.click("#edit-elder button.primary")
        page.wait_for_selector(".confirm-effects")
        assert f"#{case_id}" in page.locator(".confirm-effects").inner_text()
        shoot(people["village_assistant"], "elder-death-confirm-phone", full_page=False)
        page.check("input[name=confirm]")
        page.click("#edit-elder button.primary")
        page.wait_for_url(f"**/elders/{elder_id}")
        history = page.locator("#history").inner_text()
        assert "人民路18号" in history and "已故" in history
        shoot(people["village_assistant"], "elder-history-phone")
    finally:
        _close(people)


@needs_chromium
def test_idle_sign_out_keeps_the_half_filled_form(chromium, office_server, shots):
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    moment.set(local(2026, 12, 17, 9, 0))
    from workflows.processes.home_care import enrolment as home_care

    with clock.using(moment), office_server["sessions"].begin() as session:
        elder_id = world.new_elder(session, name="草稿老人")
        case = home_care.apply_home_care(
            session,
            world.people(session)["village_assistant"],
            elder_id,
            {"applicant_type": "self", "requested_services": ["meal"]},
        )
        task = session.scalar(
            select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
        )
    people = _people(chromium, office_server, shots, {"caseworker": False, "caseworker2": True})
    page = people["caseworker"].page
    try:
        # The server's clock: the form is typed, kept as a draft, and the session lapses meanwhile.
        page.goto(f"/tasks/{task.id}")
        page.select_option("#id_f_decision", "pass")
        page.fill("#id_f_verification", "入户核实：独居，子女在外地，行动不便")
        page.wait_for_selector("#draft-status:has-text('草稿已自动保存')")
        moment.advance(minutes=31)
        page.fill("#id_f_verification", "入户核实：独居，子女在外地，行动不便，需助餐")
        _submit(page)
        page.wait_for_url("**/login**")
        assert (
            "已自动退出登录" in page.locator(".flash-info").inner_text()
            and "草稿" in page.locator(".flash-info").inner_text()
        )
        shoot(people["caseworker"], "idle-signed-out")
        page.fill("input[name=username]", "caseworker")
        from .conftest import PASSWORD

        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(f"**/tasks/{task.id}")
        assert "已恢复您上次未提交的内容" in page.locator(".draft-note").inner_text()
        assert page.input_value("#id_f_verification").endswith("需助餐")
        shoot(people["caseworker"], "draft-restored")

        # The page's own clock: left alone for the idle period, it saves and signs out by itself.
        other = people["caseworker2"].page
        with office_server["sessions"].begin() as session:
            elder_2 = world.new_elder(session, name="草稿丙", village="410825101201")
            case_2 = home_care.apply_home_care(
                session,
                world.people(session)["caseworker2"],
                elder_2,
                {"applicant_type": "self", "requested_services": ["meal"]},
            )
            task_2 = session.scalar(
                select(HumanTask).where(HumanTask.case_id == case_2.id, HumanTask.status == TaskStatus.READY)
            )
        people["caseworker2"].sign_in()  # the server's clock moved on: a fresh session
        other.clock.install()
        other.goto(f"/tasks/{task_2.id}")
        other.fill("#id_f_verification", "电话核实：子女同意")
        other.clock.run_for(2000)  # the typing pause after which the draft is saved
        other.wait_for_selector("#draft-status:has-text('草稿已自动保存')")
        other.clock.fast_forward("30:05")
        other.clock.run_for(6000)
        other.wait_for_url("**/login**")
        assert "已自动退出登录" in other.locator(".flash-info").inner_text()
        shoot(people["caseworker2"], "idle-signed-out-phone")
        with office_server["sessions"]() as session:
            from workflows import drafts
            from workflows.models import User

            user = session.scalar(select(User).where(User.username == "caseworker2"))
            kept = drafts.load(session, user, task_2.id)
        assert kept is not None and kept.fields["f.verification"] == ["电话核实：子女同意"]
    finally:
        _close(people)


def _in_view(holder: dict, box: dict) -> bool:
    """Whether a step shows in the diagram's box: at least half of it, or of the box when it is larger."""
    width = min(holder["x"] + holder["width"], box["x"] + box["width"]) - max(holder["x"], box["x"])
    height = min(holder["y"] + holder["height"], box["y"] + box["height"]) - max(holder["y"], box["y"])
    if width <= 0 or height <= 0:
        return False
    smaller = min(box["width"] * box["height"], holder["width"] * holder["height"])
    return width * height >= smaller / 2


@needs_chromium
def test_the_case_diagram_opens_readable_on_the_current_step_and_zooms(chromium, office_server, shots):
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    moment.set(local(2026, 12, 18, 9, 0))
    with clock.using(moment), office_server["sessions"].begin() as session:
        case_id = world.provider_order(session, name="流程图老人")
    people = _people(chromium, office_server, shots, {"approver": False, "caseworker": True})
    try:
        for who in ("approver", "caseworker"):
            page = people[who].page
            page.goto(f"/cases/{case_id}")
            page.wait_for_selector("#diagram[data-ready='1']")
            zoom = float(page.get_attribute("#diagram", "data-zoomed"))
            assert zoom >= 0.85 or who == "approver", zoom  # readable at once on a phone
            holder = page.locator("#diagram").bounding_box()
            marked = page.locator("#diagram .step-current")
            steps = [marked.nth(i).bounding_box() for i in range(marked.count())]
            assert steps, "no current step marked"

            assert any(_in_view(holder, box) for box in steps if box), (holder, steps)
            page.click("[data-zoom=in]")
            assert float(page.get_attribute("#diagram", "data-zoomed")) > zoom
            page.click("[data-zoom=fit]")
            fitted = float(page.get_attribute("#diagram", "data-zoomed"))
            page.click("[data-zoom=current]")
            assert float(page.get_attribute("#diagram", "data-zoomed")) >= fitted
            shoot(people[who], "case-diagram" + ("-phone" if who == "caseworker" else ""), full_page=False)
        assert re.search(r"^\d", str(case_id))
    finally:
        _close(people)


@needs_chromium
def test_entering_2027_moves_an_offer_past_the_spring_festival(chromium, office_server, shots):
    """Last of the module: its clock goes into 2027."""
    shoot = Shooter(shots, office_server["kind"])
    moment = office_server["clock"]
    people = _people(chromium, office_server, shots, {"admin": False})
    admin = people["admin"]
    page = admin.page
    try:
        # An offer made before 2027 was entered, counted on weekdays: its deadline moves past the festival.
        moment.set(local(2027, 1, 20, 9, 0))
        with clock.using(moment), office_server["sessions"].begin() as session:
            world.queued_applicant(session, "温县社会福利中心", "春节前申请")
        moment.set(local(2027, 2, 3, 10, 0))
        staff = Person(chromium, office_server["url"], "facility_admin", shots)
        people["facility_admin"] = staff
        with office_server["sessions"]() as session:
            home = session.scalar(select(Facility.id).where(Facility.name == "温县社会福利中心"))
        staff.page.goto(f"/facility/{home}/beds")
        staff.page.fill("#id_bed_label", "2号楼105-2")
        staff.page.click("#vacancy-form button.primary")
        staff.page.wait_for_load_state("networkidle")
        assert "2027-02-10" in staff.page.locator("#offers").inner_text()
        with office_server["sessions"]() as session:
            from workflows.models.admission import WaitlistOffer

            case_id = session.scalar(select(WaitlistOffer.case_id).order_by(WaitlistOffer.id.desc()).limit(1))
        moment.set(local(2027, 2, 4, 9, 0))
        admin.sign_in()  # two months on: signed out when idle, as anyone would be
        page.goto("/admin/calendar/2027")
        page.fill("#id_notice", "测试通知（非正式数据）")
        page.fill("#id_days", SPRING_2027)
        page.click("#calendar-form button.primary")
        page.wait_for_selector("#entered")
        moved = page.locator("#entered").inner_text()
        assert f"#{case_id}" in moved and "2027-02-10 → 2027-02-17" in moved
        shoot(admin, "admin-calendar-entered")
        staff.sign_in()
        staff.page.goto(f"/facility/{home}/beds")
        assert "2027-02-17" in staff.page.locator("#offers").inner_text()
        admin.page.goto(f"/cases/{case_id}")
        assert "期限调整" in page.locator("#timeline").inner_text()
    finally:
        _close(people)
