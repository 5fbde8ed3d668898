"""The task page: forms from JSON Schema, errors in Chinese beside the fields with the input kept, send-back
needs a comment, a task completed meanwhile is a clear 409 with nothing lost; documents and comments."""

from __future__ import annotations

import io
import re

import pytest

from webapp import forms

from .conftest import PROCESS
from .helpers import advance_to, open_task, start_case

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 128


def test_start_page_renders_every_kind_of_field(browsers, elders_by_township):
    page = browsers["village_assistant"].get(
        f"/cases/new?process={PROCESS}&elder_id={elders_by_township['xiangyun']}"
    )
    assert page.status_code == 200
    html = page.text
    assert (
        '<select id="id_f_applicant_relation"' in html
        and '<option value="proxy"' in html
        and "协理员代办" in html
    )
    assert html.count('name="f.services_wanted"') == 6 and "生活照料" in html  # enumNames as labels
    assert 'id="id_f_monthly_income"' in html and 'step="any"' in html
    assert 'id="id_f_household_size"' in html and 'max="20"' in html
    assert 'type="date"' in html
    assert '<textarea id="id_f_living_situation"' in html
    assert "<legend>监护人</legend>" in html and 'id="id_f_guardian_phone"' in html  # nested object
    assert 'data-repeat="f.family_members"' in html and "<template>" in html and "__i__" in html  # rows
    assert 'type="file" id="id_f_id_card_photo"' in html
    assert 'name="f.consent" value="true"' in html  # boolean as 是/否
    assert "老人档案编号：" + str(elders_by_township["xiangyun"]) in html  # instructions over case data


def test_refused_form_shows_chinese_errors_beside_fields_and_keeps_the_input(browsers, elders_by_township):
    va = browsers["village_assistant"]
    url = f"/cases/new?process={PROCESS}&elder_id={elders_by_township['xiangyun']}"
    response = va.post(
        url,
        {
            "process": PROCESS,
            "elder_id": elders_by_township["xiangyun"],
            "f.applicant_relation": "proxy",
            "f.services_wanted": ["meal", "bathing"],
            "f.monthly_income": "三百",
            "f.household_size": "50",
            "f.guardian.phone": "12345",
            "f.family_members.0.name": "",
            "f.family_members.3.name": "李四",
            "comment": "先交一部分",
        },
        token_from=url,
    )
    assert response.status_code == 422
    html = response.text
    assert "表单填写有误" in html

    def error_of(path):
        block = re.search(r'data-path="' + re.escape(path) + r'".*?(?=data-path=|$)', html, flags=re.S).group(
            0
        )
        found = re.search(r'class="error"[^>]*>([^<]+)<', block)
        return found.group(1) if found else None

    assert error_of("monthly_income") == "应为数字"
    assert error_of("living_situation") == "此项为必填项"
    assert error_of("consent") == "此项为必填项"
    # Typed values come back as typed, rows renumbered without the empty one.
    assert 'value="三百"' in html and 'value="50"' in html and 'value="12345"' in html
    assert re.search(r'name="f.services_wanted" value="bathing" checked', html)
    assert 'name="f.family_members.0.name" value="李四"' in html
    assert "先交一部分" in html
    # Fix the number: now the schema speaks, field by field.
    response = va.post(
        url,
        {
            "process": PROCESS,
            "elder_id": elders_by_township["xiangyun"],
            "f.applicant_relation": "proxy",
            "f.services_wanted": "meal",
            "f.monthly_income": "300",
            "f.household_size": "50",
            "f.guardian.phone": "12345",
            "f.family_members.0.name": "李四",
            "f.living_situation": "独居",
            "f.consent": "true",
        },
        token_from=url,
    )
    assert response.status_code == 422
    html = response.text
    assert error_of("household_size") == "不能大于 20"
    assert error_of("guardian.phone") == "格式不正确"
    assert error_of("family_members.0.relation") == "此项为必填项"


def test_nothing_is_started_when_the_first_form_is_refused(api, elders_by_township):
    before = api["caseworker"].get("/api/tasks?scope=all").json["total"]
    response = api["village_assistant"].post(
        "/api/cases",
        {
            "process": PROCESS,
            "elder_id": elders_by_township["xiangyun"],
            "data": {"applicant_relation": "proxy"},
        },
    )
    assert response.status_code == 422
    assert response.json["field_errors"]["services_wanted"] == "此项为必填项"
    assert api["caseworker"].get("/api/tasks?scope=all").json["total"] == before


def test_complete_through_the_page_then_a_second_submit_is_a_clear_conflict(
    browsers, api, elders_by_township
):
    case = start_case(api, elders_by_township["xiangyun"])
    task = open_task(case, "township_review")
    cw = browsers["caseworker"]
    page = cw.get(f"/tasks/{task['id']}")
    assert page.status_code == 200 and "乡镇初审" in page.text
    assert "申请服务：meal、cleaning" in page.text  # instructions rendered over the case data
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = {
        "csrf_token": token,
        "f.decision": "approve",
        "f.visit_date": "2026-11-20",
        "f.visit_notes": "属实",
    }
    first = cw.client.post(f"/tasks/{task['id']}", data=data)
    assert first.status_code == 302
    again = cw.client.post(f"/tasks/{task['id']}", data={**data, "f.visit_notes": "第二次提交的内容"})
    assert again.status_code == 409
    assert "已由王建华（祥云镇经办人）于" in again.text and "办理完成" in again.text
    assert "第二次提交的内容" in again.text  # what was typed is still on the page
    events = api["caseworker"].get(f"/api/cases/{case['id']}").json["events"]
    assert [e["task"] for e in events if e["kind"] == "task_completed"].count("乡镇初审") == 1


def test_send_back_requires_a_comment(browsers, api, elders_by_township):
    case = start_case(api, elders_by_township["xiangyun"])
    task = advance_to(api, case, "county_approval")
    approver = browsers["approver"]
    url = f"/tasks/{task['id']}"
    refused = approver.post(url, {"f.decision": "send_back", "f.monthly_quota": "300"}, token_from=url)
    assert refused.status_code == 422 and "必须填写意见" in refused.text
    assert 'value="300"' in refused.text
    sent = approver.post(
        url, {"f.decision": "send_back", "f.comment": "评估日期有误，请重审"}, token_from=url
    )
    assert sent.status_code == 302
    detail = api["caseworker"].get(f"/api/cases/{case['id']}").json
    assert [t["step"] for t in detail["open_tasks"]] == ["township_review"]
    assert any(e["kind"] == "sent_back" and e["comment"] == "评估日期有误，请重审" for e in detail["events"])
    # The caseworker's review is not pre-set to the approver's decision.
    review = browsers["caseworker"].get(f"/tasks/{detail['open_tasks'][0]['id']}").text
    assert 'value="send_back" selected' not in review


def test_file_field_upload_becomes_a_case_document(browsers, api, elders_by_township):
    case = start_case(api, elders_by_township["xiangyun"])
    task = advance_to(api, case, "provider_accept")
    api["provider"].post(
        f"/api/tasks/{task['id']}/complete", {"data": {"accepted": True, "start_date": "2026-11-24"}}
    )
    record = open_task(api["provider"].get(f"/api/cases/{case['id']}").json, "record_services")
    url = f"/tasks/{record['id']}"
    provider = browsers["provider"]
    bad = provider.post(
        url,
        {
            "f.month": "2026-11",
            "f.records.0.date": "2026-11-25",
            "f.records.0.service": "meal",
            "f.records.0.hours": "1",
            "f.satisfied": "true",
            "f.evidence": (io.BytesIO(b"MZ\x90\x00"), "签字单.png"),
        },
        token_from=url,
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "文件内容与扩展名 .png 不符" in bad.text
    ok = provider.post(
        url,
        {
            "f.month": "2026-11",
            "f.records.0.date": "2026-11-25",
            "f.records.0.service": "meal",
            "f.records.0.hours": "1.5",
            "f.satisfied": "true",
            "f.evidence": (io.BytesIO(PNG), "签字单.png"),
        },
        token_from=url,
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302, ok.text
    detail = api["caseworker"].get(f"/api/cases/{case['id']}").json
    assert detail["status"] == "completed"
    assert detail["data"]["records"] == [{"date": "2026-11-25", "service": "meal", "hours": "1.5"}]
    evidence = detail["data"]["evidence"]
    assert evidence.startswith("attachment:")
    download = browsers["caseworker"].get(f"/documents/{evidence.split(':')[1]}")
    assert download.status_code == 200 and download.data == PNG and download.mimetype == "image/png"
    assert [d["filename"] for d in detail["documents"]] == ["签字单.png"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.exe", b"MZ" + b"\x00" * 10, "不支持的文件类型"),
        ("x.pdf", b"not a pdf", "文件内容与扩展名 .pdf 不符"),
        ("empty.png", b"", "文件是空的"),
    ],
)
def test_uploads_are_checked_for_type_and_content(browsers, api, elders_by_township, name, content, message):
    case = start_case(api, elders_by_township["xiangyun"])
    response = browsers["caseworker"].post(
        f"/cases/{case['id']}/documents",
        {"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and message in response.text


def test_uploads_are_checked_for_size(app, browsers, api, elders_by_township):
    case = start_case(api, elders_by_township["xiangyun"])
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


def test_comments_go_to_the_timeline(browsers, api, elders_by_township):
    case = start_case(api, elders_by_township["xiangyun"])
    cw = browsers["caseworker"]
    assert cw.post(f"/cases/{case['id']}/comments", {"comment": "已电话联系家属"}).status_code == 302
    assert cw.post(f"/cases/{case['id']}/comments", {"comment": "  "}).status_code == 422
    page = cw.get(f"/cases/{case['id']}")
    assert "已电话联系家属" in page.text and "王建华（祥云镇经办人）" in page.text
    assert re.search(r"<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}</time>", page.text)


def test_case_page_shows_diagram_marks_timeline_data_and_related_cases(browsers, api, elders_by_township):
    first = start_case(api, elders_by_township["xiangyun"])
    case = start_case(api, elders_by_township["xiangyun"])
    advance_to(api, case, "capability_assessment")
    cw = browsers["caseworker"]
    page = cw.get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert 'id="diagram"' in page.text and "乡镇初审" in page.text
    assert f"/cases/{first['id']}" in page.text and "同一老人" in page.text  # related: same elder
    assert re.search(r"\d{4}\*{10}[0-9X]{4}", page.text)
    diagram = cw.get(f"/cases/{case['id']}/diagram.json").json
    assert '<bpmn:process id="home_care_test"' in diagram["xml"]
    assert {"application", "township_review"} <= set(diagram["completed"])
    assert diagram["current"] == ["capability_assessment"]


def test_elder_page_shows_profile_masked_matches_and_cases(browsers, api, elders_by_township, db_session):
    from workflows.models import Elder

    elder = db_session.get(Elder, elders_by_township["xiangyun"])
    start_case(api, elder.id)
    page = browsers["caseworker"].get(f"/elders/{elder.id}")
    assert page.status_code == 200
    assert elder.id_number not in page.text and elder.id_number[-4:] in page.text
    assert "政策找人" in page.text and "温县基本养老服务清单" in page.text
    assert "居家养老服务申请（测试流程）" in page.text
    listing = browsers["caseworker"].get("/elders?q=" + elder.name[:1])
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
    assert forms.flatten(schema, {"decision": "send_back", "rows": [{"x": 1}], "o": {"s": "y"}}) == {
        "f.rows.0.x": ["1"],
        "f.o.s": ["y"],
    }
