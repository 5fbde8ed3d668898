"""Every page and API call needs a signed-in person; CSRF on every form; language per person."""

from __future__ import annotations

import re

from sqlalchemy import select

from workflows.db import session_factory
from workflows.models import Role, User

from .conftest import PASSWORD, Browser, add_user, csrf_of

# The one-time password link is opened signed out; its token is the credential (tests/web/office).
PUBLIC = {
    "auth.login",
    "auth.language",
    "account.reset_password",
    "static",
    "vendor",
    "healthz",
    "favicon",
    "api.login",
    "api.openapi",
}


def _url_for_rule(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(
            r"<(?:[a-z]+:)?" + arg + ">",
            "1"
            if rule._converters[arg].__class__.__name__ == "IntegerConverter"
            else "00000000-0000-0000-0000-000000000000",
            url,
        )
    return url


def test_every_page_requires_login(app, anonymous):
    checked = 0
    token = csrf_of(anonymous.get("/login").text)
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or rule.endpoint.startswith("api."):
            continue
        url = _url_for_rule(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method in ("POST", "PUT", "PATCH", "DELETE") else None
            response = anonymous.client.open(url, method=method, data=data)
            assert response.status_code == 302, (method, url, response.status_code)
            assert "/login" in response.headers["Location"], (method, url)
            checked += 1
    assert checked >= 15


def test_every_api_call_requires_a_token(app, anonymous):
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in PUBLIC:
            continue
        url = _url_for_rule(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = anonymous.client.open(url, method=method, json={})
            assert response.status_code == 401, (method, url, response.status_code)
            assert response.json["message"] and "field_errors" in response.json
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 12


def test_sign_in_and_out(app):
    client = app.test_client()
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    wrong = client.post(
        "/login", data={"username": "caseworker", "password": "nope", "csrf_token": csrf_of(page.text)}
    )
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    ok = client.post(
        "/login", data={"username": "caseworker", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert ok.status_code == 302
    inbox = client.get("/inbox")
    assert inbox.status_code == 200 and "王建华" in inbox.text
    out = client.post("/logout", data={"csrf_token": csrf_of(inbox.text)})
    assert out.status_code == 302
    assert client.get("/inbox").status_code == 302


def test_login_redirects_only_within_the_site(app):
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login?next=https://evil.example/x",
        data={"username": "caseworker", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert response.headers["Location"] in ("/inbox", "/")


def test_forms_carry_csrf_tokens_and_posts_without_them_are_refused(app, browsers, api, make_elder):
    from .helpers import open_task, start_case

    case = start_case(api, make_elder())
    task = open_task(case, "township_review")
    cw = browsers["caseworker"]
    page = cw.get(f"/tasks/{task['id']}")
    forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", page.text, flags=re.S)
    assert len(forms) >= 3  # the task form, claim, upload, language, logout
    for form in forms:
        assert 'name="csrf_token"' in form
    refused = cw.client.post(f"/tasks/{task['id']}", data={"f.decision": "pass"})
    assert refused.status_code == 400 and "CSRF" in refused.text
    assert cw.client.post(f"/tasks/{task['id']}/claim").status_code == 400
    assert cw.client.post("/logout").status_code == 400
    login = app.test_client().post("/login", data={"username": "caseworker", "password": PASSWORD})
    assert login.status_code == 400 and "CSRF" in login.text


def test_language_is_chinese_by_default_and_english_on_request(app, db_session):
    person = Browser(app, "auditor")
    assert "待办任务" in person.get("/inbox").text
    response = person.post("/language", {"lang": "en", "next": "/inbox"})
    assert response.status_code == 302
    page = person.get("/inbox")
    assert "Tasks" in page.text and 'lang="en"' in page.text
    assert db_session.query(User).filter_by(username="auditor").one().locale == "en"
    # A new sign-in of the same person comes back in English.
    assert "Tasks" in Browser(app, "auditor").get("/inbox").text
    person.post("/language", {"lang": "zh", "next": "/inbox"})
    assert "待办任务" in person.get("/inbox").text


def test_every_marked_text_has_an_english_entry():
    from pathlib import Path

    from webapp.i18n import LABELS
    from webapp.messages_en import MESSAGES

    root = Path(__file__).resolve().parents[2] / "webapp"
    marked = set()
    for path in [*root.rglob("*.html"), *root.rglob("*.py")]:
        marked |= {
            m.group(2) for m in re.finditer(r"""_\(\s*(["'])(.+?)\1""", path.read_text(encoding="utf-8"))
        }
    for labels in LABELS.values():
        marked |= set(labels.values())
    missing = sorted(t for t in marked if t not in MESSAGES and re.search(r"[\u4e00-\u9fff]", t))
    assert not missing, missing


def test_repeated_failed_sign_ins_lock_the_account_on_the_page_and_the_api(app, web_db):
    # The failures are counted although each sign-in is refused (the refusal's request still commits).
    add_user(web_db, "guessed.at", "被猜密码的人", Role.AUDITOR)
    page = app.test_client()

    def sign_in(password: str):
        return page.post(
            "/login",
            data={
                "username": "guessed.at",
                "password": password,
                "csrf_token": csrf_of(page.get("/login").text),
            },
        )

    for _ in range(2):
        assert sign_in("guess-1234").status_code == 401
    assert "再错 2 次，账号将锁定 15 分钟" in sign_in("guess-1234").text
    assert "再错 1 次，账号将锁定 15 分钟" in sign_in("guess-1234").text
    api = app.test_client()
    refused = api.post("/api/login", json={"username": "guessed.at", "password": "guess-1234"})
    assert refused.status_code == 401 and refused.json["message"].startswith(
        "连续登录失败次数过多，账号已暂时锁定"
    )
    locked = sign_in(PASSWORD)  # the right password, too late
    assert locked.status_code == 401 and "账号已暂时锁定" in locked.text
    with session_factory(web_db[2])() as session:
        user = session.scalar(select(User).where(User.username == "guessed.at"))
        assert user.locked_until is not None
