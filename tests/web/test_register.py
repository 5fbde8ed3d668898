"""Registering an elder on a page: village assistants and caseworkers, villages of their own area only;
errors in Chinese beside the fields with the input kept; a duplicate ID number points to the record."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from workflows.models import Elder, ElderChange

from .conftest import id_number


def error_of(html: str, path: str) -> str | None:
    match = re.search(r'data-path="' + re.escape(path) + r'"(.*?)(?=data-path=|$)', html, flags=re.S)
    assert match, f"no field {path}"
    found = re.search(r'class="error"[^>]*>([^<]+)<', match.group(1))
    return found.group(1) if found else None


def villages_offered(html: str) -> list[str]:
    select_html = html.split('id="id_f_residence_area_code"')[1].split("</select>")[0]
    return re.findall(r'<option value="(\d+)"', select_html)


GOOD = {
    "f.name": "甄玉芬",
    "f.phone": "13912340001",
    "f.hukou_type": "rural",
    "f.residence_area_code": "410825100201",
    "f.address": "7组12号",
    "f.living_arrangement": "living_alone",
    "f.support.dibao": "true",
    "f.support.empty_nest": "true",
    "f.guardian_name": "甄小军",
    "f.guardian_phone": "13812340002",
    "f.contacts.0.name": "甄小红",
    "f.contacts.0.relation": "女儿",
    "f.contacts.0.phone": "13712340003",
}


def test_the_elder_list_links_to_registration_for_those_who_register(browsers):
    for who in ("village_assistant", "caseworker"):
        assert 'href="/elders/new"' in browsers[who].get("/elders").text, who
    for who in ("approver", "auditor", "assessor"):
        assert 'href="/elders/new"' not in browsers[who].get("/elders").text, who
        assert browsers[who].get("/elders/new").status_code == 403, who
    assert browsers["provider"].get("/elders/new").status_code == 403


def test_the_form_has_the_register_fields_in_chinese_and_the_villages_of_ones_area(browsers):
    html = browsers["village_assistant"].get("/elders/new").text
    for label in (
        "身份证号",
        "姓名",
        "联系电话",
        "户籍类型",
        "居住村(社区)",
        "详细地址",
        "居住状况",
        "低保",
        "特困",
    ):
        assert f"{label}" in html, label
    assert villages_offered(html) == ["410825100201"]  # her own village
    assert 'name="f.support.three_category_household"' in html and "三类户" in html
    assert '<option value="living_alone"' in html and "与子女同住" in html
    caseworker = browsers["caseworker"].get("/elders/new").text
    assert villages_offered(caseworker) == ["410825100201", "410825100202", "410825100203"]  # 祥云镇


def test_a_refused_registration_shows_errors_beside_the_fields_and_keeps_the_input(browsers, db_session):
    va = browsers["village_assistant"]
    response = va.post(
        "/elders/new",
        {
            **GOOD,
            "f.id_number": "110101202311012171",  # wrong check character
            "f.living_arrangement": "",
            "f.support.tekun": "true",  # with 低保: one assistance status only
            "f.contacts.0.phone": "12345",
        },
        token_from="/elders/new",
    )
    assert response.status_code == 422
    html = response.text
    assert "老人信息有误，请按提示修改" in html
    assert error_of(html, "id_number").startswith("身份证号校验位错误")
    assert error_of(html, "living_arrangement") == "请填写居住状况"
    assert error_of(html, "support.tekun") == "低保、低保边缘、特困只能选其一"
    # The rows' own fields come first in the section; its error closes it.
    contacts = re.search(r'id="id_f_contacts_error" role="alert">([^<]+)<', html).group(1)
    assert contacts.startswith("第1位联系人：电话号码格式错误")
    assert error_of(html, "name") is None and error_of(html, "support.dibao") is None
    # What was typed is all still there.
    assert 'value="110101202311012171"' in html and 'value="甄玉芬"' in html and "7组12号" in html
    assert 'name="f.support.dibao" value="true" checked' in html
    assert 'name="f.contacts.0.name" value="甄小红"' in html
    assert re.search(r'<option value="410825100201"\s+selected', html)
    assert db_session.scalar(select(Elder).where(Elder.name == "甄玉芬")) is None

    under_60 = va.post(
        "/elders/new", {**GOOD, "f.id_number": id_number(date(1990, 1, 1), 1)}, token_from="/elders/new"
    )
    assert under_60.status_code == 422 and "未满60周岁" in error_of(under_60.text, "id_number")


def test_registering_then_a_duplicate_points_to_the_existing_record(browsers, db_session):
    number = id_number(date(1943, 8, 15), 582)
    va = browsers["village_assistant"]
    done = va.post("/elders/new", {**GOOD, "f.id_number": number}, token_from="/elders/new")
    assert done.status_code == 302
    elder = db_session.scalar(select(Elder).where(Elder.id_number == number))
    assert done.headers["Location"].endswith(f"/elders/{elder.id}")
    assert (elder.name, elder.dibao, elder.empty_nest, elder.tekun) == ("甄玉芬", True, True, False)
    assert elder.living_alone  # follows the living arrangement when not ticked
    assert elder.contact_list() == [{"name": "甄小红", "relation": "女儿", "phone": "13712340003"}]
    page = va.get(done.headers["Location"]).text
    assert "已登记：甄玉芬" in page and "甄玉芬" in page
    audited = db_session.scalars(select(ElderChange.field).where(ElderChange.elder_id == elder.id)).all()
    assert {"id_number", "name", "dibao"} <= set(audited)

    again = browsers["caseworker"].post(
        "/elders/new", {**GOOD, "f.id_number": number, "f.name": "甄玉芳"}, token_from="/elders/new"
    )
    assert again.status_code == 422
    pointer = f"已登记：老人档案 #{elder.id}（甄**，温县祥云镇祥云村），请勿重复登记"
    assert pointer in again.text and pointer in error_of(again.text, "id_number")
    assert f'href="/elders/{elder.id}"' in again.text  # a link to the record, which this caseworker may open
    assert 'value="甄玉芳"' in again.text
    # Another township's caseworker is told where it is, without a link into a file they may not read.
    elsewhere = browsers["caseworker2"].post(
        "/elders/new",
        {**GOOD, "f.id_number": number, "f.residence_area_code": "410825101201"},
        token_from="/elders/new",
    )
    assert elsewhere.status_code == 422 and pointer in elsewhere.text
    assert f'href="/elders/{elder.id}"' not in elsewhere.text


def test_a_village_outside_ones_area_is_refused(browsers):
    forged = browsers["village_assistant"].post(
        "/elders/new",
        {**GOOD, "f.id_number": id_number(date(1944, 2, 3), 11), "f.residence_area_code": "410825101201"},
        token_from="/elders/new",
    )
    assert forged.status_code in (403, 422) and "不在您的管辖范围" in forged.text
