"""Starting cases and working tasks on the pages, on the shipped processes: the application form of each
starter, forms from JSON Schema, errors in Chinese beside the fields with the input kept, send-back needs a
comment, the dispatch offers only valid providers, a task completed meanwhile is a clear 409 with nothing
lost; documents and comments."""

from __future__ import annotations

import io
import re
import time

import pytest
from sqlalchemy import func, select

from webapp import forms
from workflows import clock
from workflows.db import session_factory
from workflows.models import Case, Role, User
from workflows.processes.home_care import enrolment as home_care
from workflows.processes.home_care import months

from .conftest import PROCESS, add_user
from .helpers import advance_to, answers, open_task, start_case

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 128


def error_of(html: str, path: str) -> str | None:
    """The error shown beside the field at `path` (None when it has none)."""
    match = re.search(r'data-path="' + re.escape(path) + r'"(.*?)(?=data-path=|$)', html, flags=re.S)
    assert match, f"no field {path}"
    found = re.search(r'class="error"[^>]*>([^<]+)<', match.group(1))
    return found.group(1) if found else None


def test_start_page_offers_the_startable_processes_and_the_application_form(browsers, make_elder):
    elder_id = make_elder()
    va = browsers["village_assistant"]
    listing = va.get(f"/cases/new?elder_id={elder_id}").text
    offered = set(re.findall(r'name="process" value="([a-z_]+)"', listing))
    # Periodic cases are opened by the background job; admission is taken by the township.
    assert offered == {"home_care", "home_adaptation", "visiting_care", "assessment"}
    assert "home_care" in re.findall(
        r'name="process" value="([a-z_]+)"', browsers["caseworker"].get("/cases/new").text
    )
    assert "admission" in re.findall(
        r'name="process" value="([a-z_]+)"', browsers["caseworker"].get("/cases/new").text
    )

    html = va.get(f"/cases/new?process={PROCESS}&elder_id={elder_id}").text
    assert "居家养老服务申请" in html and "请核实老人身份证件" in html  # the starter's title, instructions
    assert '<select id="id_f_applicant_type"' in html and "村(居)协理员代办" in html
    assert (
        html.count('type="checkbox" name="f.requested_services"') == 6 and "生活照料" in html
    )  # 六助 as tick boxes
    assert '<textarea id="id_f_application_note"' in html
    assert 'id="id_f_applicant_phone"' in html


def test_refused_application_shows_chinese_errors_beside_fields_and_keeps_the_input(
    browsers, make_elder, db_session
):
    elder_id = make_elder()
    va = browsers["village_assistant"]
    url = f"/cases/new?process={PROCESS}&elder_id={elder_id}"
    response = va.post(
        url,
        {
            "process": PROCESS,
            "elder_id": elder_id,
            "f.applicant_type": "family",
            "f.applicant_phone": "12345",
            "f.application_note": "老人独居，右腿不便",
            "comment": "先交一部分",
        },
        token_from=url,
    )
    assert response.status_code == 422
    html = response.text
    assert "表单填写有误" in html
    assert error_of(html, "applicant_name") == "家属申请或代办时须填写申请人姓名"
    assert error_of(html, "applicant_relation") == "家属申请时须填写与老人的关系"
    assert "电话号码格式错误" in error_of(html, "applicant_phone")
    assert error_of(html, "requested_services") == "请至少选择一项“六助”服务"
    assert error_of(html, "applicant_type") is None
    # What was typed comes back as typed.
    assert re.search(r'<option value="family"\s+selected', html)
    assert 'value="12345"' in html and "老人独居，右腿不便</textarea>" in html and "先交一部分" in html
    assert db_session.scalar(select(func.count()).select_from(Case).where(Case.elder_id == elder_id)) == 0

    ok = va.post(
        url,
        {
            "process": PROCESS,
            "elder_id": elder_id,
            "f.applicant_type": "family",
            "f.applicant_name": "王小明",
            "f.applicant_relation": "儿子",
            "f.applicant_phone": "13812345678",
            "f.requested_services": ["meal", "bathing"],
            "comment": "家属已签字",
        },
        token_from=url,
    )
    assert ok.status_code == 302 and re.search(r"/cases/\d+$", ok.headers["Location"])
    case = db_session.scalar(select(Case).where(Case.elder_id == elder_id))
    assert case.process_key == "home_care" and case.started_by is not None
    page = va.get(ok.headers["Location"]).text
    assert "家属已签字" in page  # the remark is on the case's trail

    # One running application per elder: the second is refused, in Chinese, on the same page.
    again = va.post(
        url,
        {
            "process": PROCESS,
            "elder_id": elder_id,
            "f.applicant_type": "self",
            "f.requested_services": "meal",
        },
        token_from=url,
    )
    assert again.status_code == 422 and f"已有在办的居家养老服务申请（案件 #{case.id}）" in again.text


def test_nothing_is_started_when_the_application_is_refused(api, make_elder, db_session):
    elder_id = make_elder()
    response = api["village_assistant"].post(
        "/api/cases", {"process": PROCESS, "elder_id": elder_id, "data": {"applicant_type": "proxy"}}
    )
    assert response.status_code == 422
    assert response.json["field_errors"] == {
        "requested_services": "请至少选择一项“六助”服务",
        "applicant_name": "家属申请或代办时须填写申请人姓名",
        "applicant_phone": "请填写申请人联系电话",
    }
    assert db_session.scalar(select(func.count()).select_from(Case).where(Case.elder_id == elder_id)) == 0


def test_other_starters_take_their_own_forms(browsers, api, make_elder, web_db, db_session):
    elder_id = make_elder()
    # Visiting care: the assistant's survey note goes to the township's confirmation.
    visit = api["village_assistant"].post(
        "/api/cases", {"process": "visiting_care", "elder_id": elder_id, "data": {"note": "独居，子女在外地"}}
    )
    assert visit.status_code == 201, visit.json
    assert visit.json["data"]["request_note"] == "独居，子女在外地"
    assert [t["step"] for t in visit.json["open_tasks"]] == ["confirm_enrolment"]
    # An assessment request takes its reason.
    bad = api["village_assistant"].post(
        "/api/cases", {"process": "assessment", "elder_id": elder_id, "data": {"reason": "sometime"}}
    )
    assert bad.status_code == 422 and bad.json["field_errors"] == {"reason": "不是允许的选项"}
    # Admission is taken by the township, not the village.
    refused = api["village_assistant"].post(
        "/api/cases", {"process": "admission", "elder_id": elder_id, "data": {"facility_id": 1}}
    )
    assert refused.status_code == 403 and refused.json["message"] == "您的角色不能发起公办养老机构入住申请"
    # Admission: the township picks a facility from a list; the register's facts are not asked.
    with session_factory(web_db[2]).begin() as session:
        from workflows.processes.admission import waitlist

        approver = session.scalar(select(User).where(User.username == "approver"))
        facility = waitlist.create_facility(session, approver, name="温县社会福利中心", area_code="410825")
        facility_id = facility.id
    cw = browsers["caseworker"]
    form = cw.get(f"/cases/new?process=admission&elder_id={elder_id}").text
    assert '<select id="id_f_facility_id"' in form and f'<option value="{facility_id}"' in form
    assert (
        "温县社会福利中心" in form
        and 'id="id_f_hukou_type"' not in form
        and 'id="id_f_elder_age"' not in form
    )
    url = f"/cases/new?process=admission&elder_id={elder_id}"
    applied = cw.post(
        url,
        {
            "process": "admission",
            "elder_id": elder_id,
            "f.facility_id": str(facility_id),
            "f.violent_tendency": "false",
            "f.mental_state_stable": "true",
            "f.infectious_disease": "false",
            "f.voluntary": "true",
        },
        token_from=url,
    )
    assert applied.status_code == 302, applied.text
    case = db_session.scalar(select(Case).where(Case.elder_id == elder_id, Case.process_key == "admission"))
    assert case is not None and "温县社会福利中心" in case.title


def test_forms_render_every_kind_of_field(browsers, api, make_elder):
    # Nested groups, bounded integers, a date and yes/no: the assessor's 26-item form.
    case = start_case(api, make_elder(level=None))
    task = open_task(case, "conduct_assessment")
    html = browsers["assessor"].get(f"/tasks/{task['id']}").text
    assert "<legend>一、自理能力（8项，满分32分）</legend>" in html
    # Each item's scores as choices with the standard's description of each (a bounded integer underneath).
    assert 'name="f.self_care.eating" value="4"' in html and "4分：独立使用器具将食物送进口中并咽下" in html
    assert 'id="id_f_special_conditions_falls"' in html and 'inputmode="numeric"' in html
    assert 'type="date"' in html and 'id="id_f_assessed_on"' in html
    assert 'name="f.special_conditions.coma" value="true"' in html  # boolean as 是/否
    assert re.search(r'<option value="initial"\s+selected', html)  # pre-filled from the case data
    # A file field: the adaptation application the assistant fills in after starting it.
    started = browsers["village_assistant"].post(
        "/cases/new",
        {"process": "home_adaptation", "elder_id": make_elder()},
        token_from="/cases/new",
    )
    assert started.status_code == 302 and "/tasks/" in started.headers["Location"]
    html = browsers["village_assistant"].get(started.headers["Location"]).text
    assert 'type="file" id="id_f_application_form"' in html
    assert re.search(r'<option value="dibao"\s+selected', html)  # pre-filled from the register
    # Repeated rows and single tick boxes: the registration form.
    html = browsers["village_assistant"].get("/elders/new").text
    assert 'data-repeat="f.contacts"' in html and "<template>" in html and "__i__" in html
    assert 'type="checkbox" id="id_f_support_dibao" name="f.support.dibao" value="true"' in html


def test_complete_through_the_page_then_a_second_submit_is_a_clear_conflict(browsers, api, make_elder):
    case = start_case(api, make_elder())
    task = open_task(case, "township_review")
    cw = browsers["caseworker"]
    page = cw.get(f"/tasks/{task['id']}")
    assert page.status_code == 200 and "乡镇初审（入户核实）" in page.text
    assert "申请服务：助餐、助洁" in page.text  # instructions rendered over the case data
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = {
        "csrf_token": token,
        "f.decision": "pass",
        "f.home_visit_on": clock.today().isoformat(),
        "f.verification": "属实",
    }
    first = cw.client.post(f"/tasks/{task['id']}", data=data)
    assert first.status_code == 302
    again = cw.client.post(f"/tasks/{task['id']}", data={**data, "f.verification": "第二次提交的内容"})
    assert again.status_code == 409
    assert "已由王建华（祥云镇经办人）于" in again.text and "办理完成" in again.text
    assert "第二次提交的内容" in again.text  # what was typed is still on the page
    events = api["caseworker"].get(f"/api/cases/{case['id']}").json["events"]
    assert [e["task"] for e in events if e["kind"] == "task_completed"].count("乡镇初审（入户核实）") == 1


def test_a_month_without_services_is_reported_through_the_page(browsers, api, make_elder, web_db):
    # The repeated section left with its one empty row is an empty list (the month is then flagged for a
    # call-back), not a required field left out.
    case = start_case(api, make_elder())
    accept = advance_to(api, case, "provider_accept")
    done = api["provider"].post(
        f"/api/tasks/{accept['id']}/complete", {"data": answers(api)["provider_accept"][1]}
    )
    assert done.status_code == 200, done.text
    with session_factory(web_db[2]).begin() as session:
        enrolment = home_care.active_enrolment(session, session.get(Case, case["id"]).elder_id)
        month_case_id = months.open_month(session, enrolment, clock.today()).case_id
    task = open_task(api["provider"].get(f"/api/cases/{month_case_id}").json, "record_services")
    provider = browsers["provider"]
    page = provider.get(f"/tasks/{task['id']}").text
    assert '<input type="hidden" name="f.services" value=""' in page
    # What a browser sends: the marker, the untouched row's empty fields, the reason.
    posted = {name: "" for name in re.findall(r'name="(f\.services[^"]*)"', page) if "__i__" not in name}
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    sent = provider.client.post(
        f"/tasks/{task['id']}", data={**posted, "csrf_token": token, "f.no_service_reason": "老人住院"}
    )
    assert sent.status_code == 302, sent.text
    month = api["caseworker"].get(f"/api/cases/{month_case_id}").json
    assert month["data"]["services"] == []
    assert month["data"]["month_check"]["flags"] == ["本月未提供任何一类“六助”服务"]
    assert [t["step"] for t in month["open_tasks"]] == ["callback_check"]


def test_send_back_requires_a_comment(browsers, api, make_elder):
    case = start_case(api, make_elder())
    task = advance_to(api, case, "county_approval")
    approver = browsers["approver"]
    url = f"/tasks/{task['id']}"
    refused = approver.post(url, {"f.decision": "send_back"}, token_from=url)
    assert refused.status_code == 422 and error_of(refused.text, "comment") == "此项为必填项"
    assert re.search(r'<option value="send_back"\s+selected', refused.text)
    sent = approver.post(
        url, {"f.decision": "send_back", "f.comment": "入户照片不清，请重审"}, token_from=url
    )
    assert sent.status_code == 302
    detail = api["caseworker"].get(f"/api/cases/{case['id']}").json
    assert [t["step"] for t in detail["open_tasks"]] == ["township_review"]
    assert any(e["kind"] == "sent_back" and e["comment"] == "入户照片不清，请重审" for e in detail["events"])
    # The caseworker's review is not pre-set to an earlier decision.
    review = browsers["caseworker"].get(f"/tasks/{detail['open_tasks'][0]['id']}").text
    assert not re.search(r'value="(send_back|pass)"\s+selected', review)


@pytest.fixture(scope="module")
def more_providers(web_db):
    """A second county-wide provider, and one that serves 番田镇 only."""
    return {
        "county": add_user(web_db, "provider_county2", "温县夕阳红家政服务有限公司", Role.PROVIDER),
        "fantian": add_user(web_db, "provider_fantian", "番田镇爱心助老服务站", Role.PROVIDER, "410825101"),
    }


def test_dispatch_offers_only_the_providers_that_can_take_the_case(
    app, browsers, api, make_elder, users, more_providers
):
    from .conftest import Browser

    case = start_case(api, make_elder())
    task = advance_to(api, case, "dispatch_provider")
    cw = browsers["caseworker"]
    url = f"/tasks/{task['id']}"
    html = cw.get(url).text
    options = dict(
        re.findall(r'<option value="(\d+)"\s*>([^<]+)</option>', html.split('id="id_f_provider_id"')[1])
    )
    assert options == {
        str(users["provider"].id): "温县康乐居家养老服务中心",
        str(more_providers["county"]): "温县夕阳红家政服务有限公司",
    }
    # A forged choice is refused by the step's own check, beside the field.
    forged = cw.post(url, {"f.provider_id": str(more_providers["fantian"])}, token_from=url)
    assert (
        forged.status_code == 422
        and error_of(forged.text, "provider_id") == "番田镇爱心助老服务站不在老人所在辖区服务"
    )
    assert cw.post(url, {"f.provider_id": str(more_providers["county"])}, token_from=url).status_code == 302
    # The second provider declines; the dispatch comes back without it.
    second = Browser(app, "provider_county2")
    accept = open_task(api["caseworker"].get(f"/api/cases/{case['id']}").json, "provider_accept")
    declined = second.post(
        f"/tasks/{accept['id']}",
        {"f.decision": "decline", "f.decline_reason": "人手不足"},
        token_from=f"/tasks/{accept['id']}",
    )
    assert declined.status_code == 302
    again = open_task(api["caseworker"].get(f"/api/cases/{case['id']}").json, "dispatch_provider")
    html = cw.get(f"/tasks/{again['id']}").text
    options = re.findall(
        r'<option value="(\d+)"', html.split('id="id_f_provider_id"')[1].split("</select>")[0]
    )
    assert options == [str(users["provider"].id)]


def test_file_field_upload_becomes_a_case_document(browsers, api, make_elder):
    va = browsers["village_assistant"]
    started = va.post(
        "/cases/new", {"process": "home_adaptation", "elder_id": make_elder()}, token_from="/cases/new"
    )
    url = started.headers["Location"]
    form = {
        "f.household_category": "dibao",
        "f.elder_age": "80",
        "f.disability_level": "moderate",
        "f.handicapped": "false",
        "f.contact_phone": "13912345678",
        "f.address": "3组25号",
        "f.needs": "卫生间加装扶手",
    }
    bad = va.post(
        url,
        {**form, "f.application_form": (io.BytesIO(b"MZ\x90\x00"), "申请表.png")},
        token_from=url,
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "文件内容与扩展名 .png 不符" in bad.text
    assert "3组25号</textarea>" in bad.text  # the rest of the form is kept
    ok = va.post(
        url,
        {**form, "f.application_form": (io.BytesIO(PNG), "申请表.png")},
        token_from=url,
        content_type="multipart/form-data",
    )
    assert ok.status_code in (302, 303), ok.text
    case_id = int(re.search(r"/cases/(\d+)", va.get(url).text).group(1))
    detail = api["caseworker"].get(f"/api/cases/{case_id}").json
    evidence = detail["data"]["application_form"]
    assert evidence.startswith("attachment:")
    download = browsers["caseworker"].get(f"/documents/{evidence.split(':')[1]}")
    body = download.data
    download.close()  # the file it streams stays open until the response is closed
    assert download.status_code == 200 and body == PNG and download.mimetype == "image/png"
    assert [d["filename"] for d in detail["documents"]] == ["申请表.png"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.exe", b"MZ" + b"\x00" * 10, "不支持的文件类型"),
        ("x.pdf", b"not a pdf", "文件内容与扩展名 .pdf 不符"),
        ("empty.png", b"", "文件是空的"),
    ],
)
def test_uploads_are_checked_for_type_and_content(browsers, api, make_elder, name, content, message):
    case = start_case(api, make_elder())
    response = browsers["caseworker"].post(
        f"/cases/{case['id']}/documents",
        {"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and message in response.text


def test_uploads_are_checked_for_size(app, browsers, api, make_elder):
    case = start_case(api, make_elder())
    app.config["UPLOAD_MAX_BYTES"] = 1024
    try:
        response = browsers["caseworker"].post(
            f"/cases/{case['id']}/documents",
            {"file": (io.BytesIO(b"%PDF-" + b"0" * 2000), "big.pdf")},
            content_type="multipart/form-data",
        )
    finally:
        app.config["UPLOAD_MAX_BYTES"] = 10 * 1024 * 1024
    assert response.status_code == 422 and "文件过大" in response.text


def test_comments_go_to_the_timeline(browsers, api, make_elder):
    case = start_case(api, make_elder())
    cw = browsers["caseworker"]
    assert cw.post(f"/cases/{case['id']}/comments", {"comment": "已电话联系家属"}).status_code == 302
    assert cw.post(f"/cases/{case['id']}/comments", {"comment": "  "}).status_code == 422
    page = cw.get(f"/cases/{case['id']}")
    assert "已电话联系家属" in page.text and "王建华（祥云镇经办人）" in page.text
    assert re.search(r"<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}</time>", page.text)


def test_case_page_shows_diagram_marks_timeline_data_and_related_cases(browsers, api, make_elder):
    elder_id = make_elder(level=None)
    visit = (
        api["village_assistant"]
        .post("/api/cases", {"process": "visiting_care", "elder_id": elder_id, "data": {}})
        .json
    )
    case = start_case(api, elder_id)
    cw = browsers["caseworker"]
    page = cw.get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert 'id="diagram"' in page.text and "现场评估（26项指标）" in page.text  # the open step
    assert f"/cases/{visit['id']}" in page.text and "同一老人" in page.text  # related: same elder
    assert re.search(r"\d{4}\*{10}[0-9X]{4}", page.text)
    diagram = cw.get(f"/cases/{case['id']}/diagram.json").json
    assert '<bpmn:process id="home_care"' in diagram["xml"]
    assert {"check_household", "check_eligibility"} <= set(diagram["completed"])
    # The open step is inside the called assessment: its call activity is what this diagram marks.
    assert diagram["current"] == ["capability_assessment"]


def test_elder_page_shows_profile_masked_matches_and_cases(browsers, api, make_elder, db_session):
    from workflows.models import Elder

    elder = db_session.get(Elder, make_elder(name="邢桂芝"))
    start_case(api, elder.id)
    page = browsers["caseworker"].get(f"/elders/{elder.id}")
    assert page.status_code == 200
    assert elder.id_number not in page.text and elder.id_number[-4:] in page.text
    assert "政策找人" in page.text and "温县基本养老服务清单" in page.text
    assert "居家养老服务申请：邢桂芝" in page.text
    listing = browsers["caseworker"].get("/elders?q=邢桂")
    assert listing.status_code == 200 and elder.name in listing.text


def test_instructions_are_rendered_in_a_sandbox():
    assert (
        str(forms.render_instructions("你好 {{ name }}", {"name": "<b>王</b>"}))
        == "你好 &lt;b&gt;王&lt;/b&gt;"
    )
    leaked = str(forms.render_instructions("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}))
    assert "subclasses" in leaked and "<class" not in leaked  # refused, shown as text


def test_posted_values_parse_to_schema_types():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "number"},
            "i": {"type": "integer"},
            "b": {"type": "boolean"},
            "d": {"type": "string", "format": "date"},
            "rows": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "o": {"type": "object", "properties": {"s": {"type": "string"}}},
        },
    }
    values = forms.compact(
        schema,
        {
            "f.n": ["1.25"],
            "f.i": ["3"],
            "f.b": ["false"],
            "f.d": ["2026-02-30"],
            "f.rows.0.x": [""],
            "f.rows.5.x": ["7"],
            "f.tags": ["a", "b"],
            "f.o.s": ["x"],
        },
    )
    data, errors = forms.parse(schema, values)
    from decimal import Decimal

    assert data == {
        "n": Decimal("1.25"),
        "i": 3,
        "b": False,
        "rows": [{"x": 7}],
        "tags": ["a", "b"],
        "o": {"s": "x"},
    }
    assert errors == {"d": "日期格式应为 YYYY-MM-DD"}
    # A list on the page left empty (its marker posted, nothing else) is an empty list; one not on the
    # page is left out.
    empty, _ = forms.parse(
        schema, forms.compact(schema, {"f.rows": [""], "f.rows.0.x": [""], "f.tags": [""]})
    )
    assert empty == {"rows": [], "tags": []}
    assert forms.parse(schema, {"f.n": ["1"]})[0] == {"n": 1}
    assert forms.flatten(schema, {"decision": "send_back", "rows": [{"x": 1}], "o": {"s": "y"}}) == {
        "f.rows.0.x": ["1"],
        "f.o.s": ["y"],
    }


def test_instructions_are_text_a_process_owner_cannot_put_html_or_script_in():
    shown = str(forms.render_instructions('请核实<img src=x onerror="alert(1)">**身份证**', {}))
    assert "<img" not in shown and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in shown
    assert "<strong>身份证</strong>" in shown
    listed = str(forms.render_instructions("请准备：\n- 户口簿\n- 低保证明\n然后提交。", {}))
    assert listed == "请准备：<br><ul><li>户口簿</li><li>低保证明</li></ul><br>然后提交。"
    huge = str(forms.render_instructions("{% for i in range(100000) %}很长的说明{% endfor %}", {}))
    assert len(huge) < 25_000 and huge.endswith("……")


def test_instructions_that_run_away_are_stopped_and_shown_as_text():
    started = time.monotonic()
    looping = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}完"
    shown = str(forms.render_instructions(looping, {}))
    assert time.monotonic() - started < 5 and shown.startswith("{% for i in range(100000) %}")
