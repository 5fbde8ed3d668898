"""Administration pages, as administrators use them: users (add with a temporary password that must be
changed, edit, unlock, disable, reset by link), areas, organisations, the calendar and the log; each only
inside one's own area, and for administrators only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.web.conftest import PASSWORD, Browser, csrf_of
from workflows.models import User

from .conftest import OTHER_TOWNSHIP, TOWNSHIP

ADMIN_PAGES = (
    "/admin",
    "/admin/users",
    "/admin/areas",
    "/admin/organisations",
    "/admin/calendar",
    "/admin/log",
)


def _user_id(office, username: str) -> int:
    with office["sessions"]() as session:
        return session.scalar(select(User.id).where(User.username == username))


def test_administrators_have_their_pages_and_nobody_else_does(office):
    browsers = office["browsers"]
    for url in ADMIN_PAGES:
        assert browsers["admin"].get(url).status_code == 200, url
        assert browsers["town_admin"].get(url).status_code == 200, url
        for who in ("caseworker", "approver", "auditor", "provider", "facility_admin", "process_owner"):
            response = browsers[who].get(url)
            assert response.status_code == 403 and "只有系统管理员" in response.text, (who, url)
    assert browsers["admin"].get("/users").headers["Location"].endswith("/admin/users")
    assert browsers["admin"].get("/areas").headers["Location"].endswith("/admin/areas")
    nav = browsers["admin"].get("/inbox").text
    assert 'href="/admin"' in nav and 'href="/admin"' not in browsers["caseworker"].get("/inbox").text


def test_a_township_administrator_sees_and_changes_only_their_townships_accounts(office):
    town = office["browsers"]["town_admin"]
    listing = town.get("/admin/users").text
    assert "village_assistant" in listing and "caseworker2" not in listing and ">approver<" not in listing
    for other in ("caseworker2", "approver", "admin"):
        user_id = _user_id(office, other)
        assert town.get(f"/admin/users/{user_id}").status_code == 403
        assert town.post(f"/admin/users/{user_id}/unlock", token_from="/admin").status_code == 403
        assert (
            town.post(
                f"/admin/users/{user_id}/password", {"how": "temporary"}, token_from="/admin"
            ).status_code
            == 403
        )
    refused = town.post(
        "/admin/users/new",
        {
            "username": "fantian.x",
            "display_name": "番田某",
            "role": "caseworker",
            "area_code": OTHER_TOWNSHIP,
        },
        token_from="/admin/users/new",
    )
    assert refused.status_code == 403
    assert town.get("/admin/users/2147483647").status_code == 404
    assert town.get("/admin/users/99999999999").status_code == 404


def test_an_added_user_signs_in_with_the_temporary_password_and_must_change_it(office):
    admin = office["browsers"]["admin"]
    page = admin.post(
        "/admin/users/new",
        {
            "username": f"zhou.{office['kind']}",
            "display_name": "周敏（祥云镇经办人）",
            "role": "caseworker",
            "area_code": TOWNSHIP,
        },
        token_from="/admin/users/new",
    )
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    temporary = re.search(r'id="temporary-password">([^<]+)<', page.text).group(1)
    newcomer = Browser.__new__(Browser)
    newcomer.client = office["app"].test_client()
    login = newcomer.client.get("/login")
    signed_in = newcomer.client.post(
        "/login",
        data={"username": f"zhou.{office['kind']}", "password": temporary, "csrf_token": csrf_of(login.text)},
    )
    assert signed_in.status_code == 302
    # Everything leads to changing the password first.
    for url in ("/inbox", "/elders", "/admin/users"):
        forced = newcomer.client.get(url)
        assert forced.status_code == 302 and "/password" in forced.headers["Location"], url
    form = newcomer.client.get("/password")
    assert "临时密码" in form.text
    token = csrf_of(form.text)
    mismatch = newcomer.client.post(
        "/password",
        data={"csrf_token": token, "current": temporary, "new": "mine-12345", "again": "mine-1234"},
    )
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.text
    done = newcomer.client.post(
        "/password",
        data={"csrf_token": token, "current": temporary, "new": "mine-12345", "again": "mine-12345"},
    )
    assert done.status_code == 302
    assert newcomer.client.get("/inbox").status_code == 200


def test_refused_additions_keep_what_was_typed_beside_the_errors(office):
    admin = office["browsers"]["admin"]
    page = admin.post(
        "/admin/users/new",
        {"username": "caseworker", "display_name": "", "role": "emperor", "area_code": TOWNSHIP},
        token_from="/admin/users/new",
    )
    assert page.status_code == 422
    assert "用户名 caseworker 已被使用" in page.text and "未知角色：emperor" in page.text
    assert 'value="caseworker"' in page.text


def test_unlock_disable_enable_and_a_one_time_link(office):
    admin = office["browsers"]["admin"]
    user_id = _user_id(office, "assessor")
    outsider = office["app"].test_client()
    for _ in range(5):
        outsider.post(
            "/login",
            data={
                "username": "assessor",
                "password": "guess-guess",
                "csrf_token": csrf_of(outsider.get("/login").text),
            },
        )
    page = admin.get(f"/admin/users/{user_id}").text
    assert "锁定中" in page and "解除登录锁定" in page
    assert "assessor" in admin.get("/admin").text  # listed on the start page as locked
    assert admin.post(f"/admin/users/{user_id}/unlock", token_from="/admin").status_code == 302
    assert "锁定中" not in admin.get(f"/admin/users/{user_id}").text
    assert (
        admin.post(f"/admin/users/{user_id}/active", {"active": "false"}, token_from="/admin").status_code
        == 302
    )
    assert Browser.__init__ is not None
    refused = outsider.post(
        "/login",
        data={
            "username": "assessor",
            "password": PASSWORD,
            "csrf_token": csrf_of(outsider.get("/login").text),
        },
    )
    assert refused.status_code == 401
    admin.post(f"/admin/users/{user_id}/active", {"active": "true"}, token_from="/admin")
    issued = admin.post(f"/admin/users/{user_id}/password", {"how": "link"}, token_from="/admin")
    link = re.search(r'id="reset-link">http://[^/]+(/password/reset/[^<]+)<', issued.text).group(1)
    anonymous = office["app"].test_client()
    form = anonymous.get(link)
    assert (
        form.status_code == 200
        and "assessor" in form.text
        and form.headers["Referrer-Policy"] == "no-referrer"
    )
    set_it = anonymous.post(
        link, data={"csrf_token": csrf_of(form.text), "new": "new-pass-123", "again": "new-pass-123"}
    )
    assert set_it.status_code == 302
    assert anonymous.get(link).status_code == 404  # once only
    assert anonymous.get("/password/reset/not-a-real-token").status_code == 404
    back = office["app"].test_client()
    login = back.post(
        "/login",
        data={
            "username": "assessor",
            "password": "new-pass-123",
            "csrf_token": csrf_of(back.get("/login").text),
        },
    )
    assert login.status_code == 302
    # Put the shared account's password back for the other tests.
    with office["sessions"].begin() as session:
        from workflows import users

        users.set_password(session, "assessor", PASSWORD)


def test_editing_a_user_changes_role_area_and_organisation_and_logs_it(office):
    admin = office["browsers"]["admin"]
    user_id = _user_id(office, "xiyang")
    page = admin.get(f"/admin/users/{user_id}")
    assert "夕阳红" in page.text
    refused = admin.post(
        f"/admin/users/{user_id}",
        {
            "display_name": "夕阳红接单员",
            "role": "caseworker",
            "area_code": "410825",
            "organisation_id": str(office["ids"]["xiyang"]),
        },
        token_from=f"/admin/users/{user_id}",
    )
    assert refused.status_code == 422 and "乡镇经办人不能隶属于服务机构" in refused.text
    saved = admin.post(
        f"/admin/users/{user_id}",
        {
            "display_name": "夕阳红接单员（张）",
            "role": "provider",
            "area_code": "410825",
            "organisation_id": str(office["ids"]["xiyang"]),
        },
        token_from=f"/admin/users/{user_id}",
    )
    assert saved.status_code == 302
    history = admin.get(f"/admin/users/{user_id}").text
    assert "修改用户 xiyang：姓名 夕阳红接单员 → 夕阳红接单员（张）" in history
    assert "修改用户 xiyang" in admin.get("/admin/log").text
    assert "修改用户 xiyang" not in office["browsers"]["town_admin"].get("/admin/log").text


def test_areas_are_added_renamed_and_retired_on_the_page(office):
    admin = office["browsers"]["admin"]
    code = f"{TOWNSHIP}2{'1' if office['kind'] == 'sqlite' else '2'}9"
    added = admin.post("/admin/areas", {"code": code, "name": "新建村"}, token_from="/admin/areas")
    assert added.status_code == 302 and f"#area-{code}" in added.headers["Location"]
    assert f'id="area-{code}"' in admin.get("/admin/areas").text
    twice = admin.post("/admin/areas", {"code": code, "name": "新建村"}, token_from="/admin/areas")
    assert twice.status_code == 422 and f"行政区划代码 {code} 已存在" in twice.text
    admin.post(
        f"/admin/areas/{code}", {"action": "rename", "name": "新建村（社区）"}, token_from="/admin/areas"
    )
    in_use = admin.post(
        f"/admin/areas/{TOWNSHIP}201", {"action": "retire", "reason": "并村"}, token_from="/admin/areas"
    )
    assert in_use.status_code == 409 and "仍有" in in_use.text
    retired = admin.post(
        f"/admin/areas/{code}", {"action": "retire", "reason": "并入祥云村"}, token_from="/admin/areas"
    )
    assert retired.status_code == 302
    page = admin.get(f"/admin/areas/{code}").text
    assert "已撤销" in page and "撤销 " in page and "新建村（社区）" in page
    town = office["browsers"]["town_admin"]
    assert town.get(f"/admin/areas/{OTHER_TOWNSHIP}").status_code == 403
    assert (
        town.post(
            "/admin/areas", {"code": f"{OTHER_TOWNSHIP}299", "name": "x"}, token_from="/admin/areas"
        ).status_code
        == 422
    )


def test_organisations_are_registered_and_changed(office):
    admin = office["browsers"]["admin"]
    name = f"温县颐养之家{office['kind']}"
    made = admin.post(
        "/admin/organisations/new",
        {
            "kind": "provider",
            "name": name,
            "area_code": "410825",
            "phone": "0391-6111111",
            "contract_start": "2026-01-01",
            "contract_end": "2026-12-31",
            "services": ["meal", "bathing"],
            "service_areas": [TOWNSHIP],
        },
        token_from="/admin/organisations/new",
    )
    assert made.status_code == 302, made.text
    page = admin.get(made.headers["Location"]).text
    assert name in page and 'value="bathing" checked' in page and f'value="{TOWNSHIP}" checked' in page
    listing = admin.get("/admin/organisations?kind=provider").text
    assert name in listing and "祥云镇" in listing
    wrong = admin.post(
        made.headers["Location"],
        {
            "name": name,
            "area_code": "410825",
            "contract_start": "2026-12-31",
            "contract_end": "2026-01-01",
            "services": ["meal"],
        },
        token_from=made.headers["Location"],
    )
    assert wrong.status_code == 422 and "合同结束日期不能早于开始日期" in wrong.text
    home = admin.post(
        "/admin/organisations/new",
        {
            "kind": "facility",
            "name": f"温县第三福利院{office['kind']}",
            "area_code": "410825",
            "beds.nursing": "12",
            "beds.dementia": "x",
        },
        token_from="/admin/organisations/new?kind=facility",
    )
    assert home.status_code == 422 and "失智照护床位数应为0–10000的整数" in home.text
    assert office["browsers"]["town_admin"].get(made.headers["Location"]).status_code == 403


@pytest.mark.parametrize("how", ["text", "file"])
def test_a_year_of_holidays_is_entered_on_the_page_or_from_a_file(office, how):
    import io

    admin = office["browsers"]["admin"]
    year = 2033 if how == "text" else 2034
    lines = f"{year}-01-01 休 元旦\n{year}-02-01~{year}-02-03 休 春节\n"
    if how == "text":
        response = admin.post(
            f"/admin/calendar/{year}", {"days": lines, "notice": "测试"}, token_from=f"/admin/calendar/{year}"
        )
    else:
        response = admin.post(
            f"/admin/calendar/{year}",
            {"days": "", "notice": "测试", "file": (io.BytesIO(lines.encode("gb18030")), "节假日.csv")},
            token_from=f"/admin/calendar/{year}",
            content_type="multipart/form-data",
        )
    assert response.status_code == 200 and f"已录入 {year} 年放假和调休安排" in response.text
    overview = admin.get("/admin/calendar").text
    assert f">{year}<" in overview and "本县录入" in overview
    bad = admin.post(
        f"/admin/calendar/{year}", {"days": f"{year}-02-02 班 春节"}, token_from="/admin/calendar"
    )
    assert bad.status_code == 422 and "不需要登记为调休上班" in bad.text
    assert (
        office["browsers"]["town_admin"]
        .post(f"/admin/calendar/{year}", {"days": lines}, token_from="/admin")
        .status_code
        == 403
    )
    assert admin.get("/admin/calendar/1999").status_code == 404
