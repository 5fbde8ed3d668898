"""Correcting an elder's record on the page; signing out when idle without losing a half-filled task form;
and the defects of issue 15: refused comments and uploads stay on the case page, task instructions show
masked numbers to those who do not do the task, dates of past events are bounded by today."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from tests.web.conftest import PASSWORD, Browser, csrf_of
from workflows import clock, tasks
from workflows.models import Elder, HumanTask, TaskStatus

from . import world

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _edit_form(page_text: str) -> dict:
    """What the edit page's form would post as it stands: inputs, ticked boxes, selected options (not the
    template row the page clones from)."""
    data: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", page_text):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag))
        name = attrs.get("name", "")
        if not name.startswith("f.") or "__i__" in name:
            continue
        if attrs.get("type") in ("checkbox", "radio") and " checked" not in tag:
            continue
        data.setdefault(name, attrs.get("value", ""))
    for name, body in re.findall(r'<select[^>]*name="(f\.[^"]+)"[^>]*>(.*?)</select>', page_text, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        if chosen:
            data[name] = chosen.group(1)
    return data


def test_an_elders_record_is_corrected_with_its_history_and_a_death_asks_first(office):
    with office["sessions"].begin() as session:
        case_id = world.provider_order(session, name=f"更正{office['kind']}")
        from workflows.models import Case

        elder_id = session.get(Case, case_id).elder_id
    assistant = office["browsers"]["village_assistant"]
    url = f"/elders/{elder_id}/edit"
    page = assistant.get(url)
    assert page.status_code == 200 and "修改老人档案" in page.text
    posted = _edit_form(page.text)
    assert posted["f.name"] == f"更正{office['kind']}" and posted["f.status"] == "active"
    missing_reason = assistant.post(url, {**posted, "f.address": "人民路99号"}, token_from=url)
    assert (
        missing_reason.status_code == 422
        and "请填写修改原因" in missing_reason.text
        and 'value="人民路99号"' in missing_reason.text
    )
    saved = assistant.post(
        url, {**posted, "f.address": "人民路99号", "f.change_reason": "入户核实地址有误"}, token_from=url
    )
    assert saved.status_code == 302
    profile = assistant.get(f"/elders/{elder_id}").text
    assert "档案修改记录" in profile and "入户核实地址有误" in profile and "人民路99号" in profile
    # A death reaches the running home-care case: the page says which, and asks once more.
    death = {
        **posted,
        "f.address": "人民路99号",
        "f.status": "deceased",
        "f.deceased_on": clock.today().isoformat(),
        "f.change_reason": "村委会告知老人去世",
    }
    asked = assistant.post(url, death, token_from=url)
    assert asked.status_code == 200 and f"#{case_id}" in asked.text and "已核实，确认保存" in asked.text
    with office["sessions"]() as session:
        assert session.get(Elder, elder_id).status.value == "active"  # nothing saved yet
    confirmed = assistant.post(url, {**death, "confirm": "yes"}, token_from=url)
    assert confirmed.status_code == 302
    with office["sessions"]() as session:
        assert session.get(Elder, elder_id).status.value == "deceased"
    future = assistant.post(
        url,
        {**posted, "f.change_reason": "x", "f.status": "deceased", "f.deceased_on": "2099-01-01"},
        token_from=url,
    )
    assert future.status_code == 422 and "不能晚于今天" in future.text
    for who in ("caseworker2", "assessor", "provider", "auditor"):
        assert office["browsers"][who].get(url).status_code == 403, who


def test_a_task_page_shows_the_phone_in_full_only_to_those_who_do_the_task(office):
    from workflows.processes.visiting_care import visiting

    with office["sessions"].begin() as session:
        who = world.people(session)
        elder_id = world.new_elder(session, name=f"探访{office['kind']}", level=None)
        case = visiting.enrol_visiting_care(session, who["village_assistant"], elder_id, "独居")
        (confirm,) = tasks.ready_tasks(session, case.id)
        tasks.complete(
            session, who["caseworker"], confirm.id, {"decision": "approve", "visit_frequency": "monthly"}
        )
        visiting.open_due_visits(session)
        visit = session.scalar(
            select(HumanTask).where(
                HumanTask.elder_id == elder_id,
                HumanTask.task_spec == "record_visit",
                HumanTask.status == TaskStatus.READY,
            )
        )
    full, masked = "13912345678", "139****5678"
    doer = office["browsers"]["village_assistant"].get(f"/tasks/{visit.id}").text
    assert full in doer
    for reader in ("auditor", "admin", "approver", "process_owner"):
        text = office["browsers"][reader].get(f"/tasks/{visit.id}").text
        assert full not in text and masked in text, reader
    api = office["api"]["approver"].get(f"/api/tasks/{visit.id}").json
    assert full not in api["instructions"] and masked in api["instructions"]


def test_refused_comments_and_uploads_stay_on_the_case_page_with_the_input(office):
    with office["sessions"].begin() as session:
        case_id = world.provider_order(session, name=f"意见{office['kind']}")
    caseworker = office["browsers"]["caseworker"]
    url = f"/cases/{case_id}"
    empty = caseworker.post(f"{url}/comments", {"comment": "   "}, token_from=url)
    assert empty.status_code == 422 and "请填写意见内容" in empty.text and 'id="diagram"' in empty.text
    assert "返回待办" not in empty.text
    long = caseworker.post(f"{url}/comments", {"comment": "长" * 2001}, token_from=url)
    assert long.status_code == 422 and "意见最多" in long.text and "长" * 50 in long.text
    for name, body, says in (
        ("x.exe", b"MZ" + b"\x00" * 10, "不支持的文件类型"),
        ("x.pdf", b"not a pdf", "文件内容与扩展名 .pdf 不符"),
    ):
        refused = caseworker.post(
            f"{url}/documents",
            {"file": (io.BytesIO(body), name)},
            token_from=url,
            content_type="multipart/form-data",
        )
        assert refused.status_code == 422 and says in refused.text and 'id="upload-error"' in refused.text, (
            name
        )
    ok = caseworker.post(
        f"{url}/documents",
        {"file": (io.BytesIO(PNG), "a.png")},
        token_from=url,
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302


@pytest.fixture
def idle_app(office):
    """The office's database behind an app that signs out after the default 30 idle minutes."""
    from webapp import create_app

    app = create_app(
        {
            "DATABASE_URL": office["app"].config["DATABASE_URL"],
            "TESTING": True,
            "SECRET_KEY": "idle",
            "UPLOAD_DIR": office["app"].config["UPLOAD_DIR"],
        }
    )
    yield app
    app.extensions["db_engine"].dispose()


def test_idle_sign_out_keeps_the_task_form_as_a_draft_restored_on_return(office, idle_app):
    assert idle_app.config["IDLE_MINUTES"] == 30
    from workflows.processes.home_care import enrolment as home_care

    with office["sessions"].begin() as session:
        elder_id = world.new_elder(session, name=f"草稿{office['kind']}")
        case = home_care.apply_home_care(
            session,
            world.people(session)["village_assistant"],
            elder_id,
            {"applicant_type": "self", "requested_services": ["meal"]},
        )
        task = world._ready(session, case.id, "township_review")
    moment = clock.ManualClock(clock.now())
    with clock.using(moment):
        person = Browser(idle_app, "caseworker")
        page = person.get(f"/tasks/{task.id}")
        assert 'data-draft="/tasks/' in page.text and 'data-idle-seconds="1800"' in page.text
        token = csrf_of(page.text)
        typed = {"csrf_token": token, "f.decision": "pass", "f.verification": "入户核实：独居，子女在外地"}
        saved = person.client.post(f"/tasks/{task.id}/draft", data=typed)
        assert saved.status_code == 200 and "saved_at" in saved.json
        moment.advance(minutes=29)
        assert person.get("/inbox").status_code == 200  # still signed in, and the clock starts again
        moment.advance(minutes=31)
        more = {**typed, "f.verification": "入户核实：独居，子女在外地，需助餐", "f.comment": "稍后补充照片"}
        lapsed = person.client.post(f"/tasks/{task.id}", data=more)
        assert lapsed.status_code == 302 and "/login" in lapsed.headers["Location"]
        assert f"next=/tasks/{task.id}" in lapsed.headers["Location"].replace("%2F", "/")
        login = person.client.get(lapsed.headers["Location"])
        assert "您已 30 分钟未操作，系统已自动退出登录。" in login.text and "草稿" in login.text
        back = person.client.post(
            lapsed.headers["Location"],
            data={"username": "caseworker", "password": PASSWORD, "csrf_token": csrf_of(login.text)},
        )
        assert back.headers["Location"].endswith(f"/tasks/{task.id}")
        restored = person.get(f"/tasks/{task.id}").text
        assert "已恢复您上次未提交的内容" in restored and "需助餐" in restored and "稍后补充照片" in restored
        with office["sessions"]() as session:
            assert (
                session.get(HumanTask, task.id).status == TaskStatus.READY
            )  # the lapsed post did not submit
        # Submitted, the draft is gone.
        token = csrf_of(restored)
        done = person.client.post(
            f"/tasks/{task.id}",
            data={
                "csrf_token": token,
                "f.decision": "pass",
                "f.home_visit_on": clock.today().isoformat(),
                "f.verification": "入户核实",
            },
        )
        assert done.status_code == 302
        assert "草稿" not in person.get("/inbox").text
        # Someone else's task: no draft kept.
        other = Browser(idle_app, "caseworker2")
        assert other.client.post(
            f"/tasks/{task.id}/draft", data={"csrf_token": other.token(), "f.x": "y"}
        ).status_code in (403, 422)
        moment.advance(days=1)
        assert person.get("/inbox").status_code == 302  # a day later: signed out on the next request


def test_the_page_signs_out_by_itself_after_the_idle_period(office, idle_app):
    person = Browser(idle_app, "auditor")
    token = person.token()
    out = person.client.post("/session/idle", data={"csrf_token": token, "next": "/elders", "kept": ""})
    assert out.status_code == 302 and "next=/elders" in out.headers["Location"].replace("%2F", "/")
    assert person.get("/inbox").status_code == 302
    hostile = Browser(idle_app, "auditor").client.post(
        "/session/idle", data={"csrf_token": token, "next": "//evil.example"}
    )
    assert hostile.status_code in (302, 400) and "evil" not in hostile.headers.get("Location", "")
