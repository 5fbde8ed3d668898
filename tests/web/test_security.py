"""Every page says what it may run (Content-Security-Policy and the usual headers); request bodies are
bounded in size and in nesting depth, answered in Chinese JSON, never a server error."""

import json

import pytest

from webapp.security import too_deep


def test_pages_and_the_api_carry_the_security_headers(browsers, api):
    for response in (browsers["caseworker"].get("/inbox"), api["caseworker"].get("/api/me")):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_page_runs_inline_script_or_handlers(browsers, api, make_elder):
    pages = ["/inbox", "/cases/new", "/elders", "/elders/new", "/inbox?scope=mine"]
    for url in pages:
        text = browsers["caseworker"].get(url).text
        assert "onchange=" not in text and "onclick=" not in text and "<script>" not in text, url


@pytest.mark.parametrize("url", ["/api/login", "/api/cases"])
def test_a_body_nested_100000_deep_is_a_422_not_a_500(app, api, url):
    body = "[" * 100_000 + "]" * 100_000
    client = app.test_client() if url == "/api/login" else api["caseworker"].client
    headers = {} if url == "/api/login" else api["caseworker"].headers
    response = client.post(url, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 422
    assert response.json["message"] == "请求内容嵌套过深（超过 32 层）"


def test_a_body_beyond_the_size_limit_is_a_413_in_chinese_json(app, api):
    body = json.dumps({"data": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    response = api["caseworker"].client.post(
        "/api/cases", data=body, content_type="application/json", headers=api["caseworker"].headers
    )
    assert response.status_code == 413 and response.json["message"] == "提交的内容过大（文件或数据超过上限）"


def test_the_depth_scan_ignores_brackets_inside_strings():
    assert not too_deep(json.dumps({"note": "[" * 100}).encode())
    assert too_deep(("[" * 33 + "]" * 33).encode()) and not too_deep(("[" * 32 + "]" * 32).encode())
