"""The JSON API: tokens, the use cases, and errors as {message (Chinese), field_errors} with 401/403/404/409/422."""

from __future__ import annotations

from datetime import date, timedelta

from workflows import clock, tokens
from workflows.models import User
from workflows.rules.idnumber import compute_check_char

from .conftest import APPLICATION, PASSWORD, PROCESS
from .helpers import MASKED_ID, advance_to, open_task, start_case


def _id_number(birth: date, seq: int) -> str:
    first17 = f"410825{birth:%Y%m%d}{seq:03d}"
    return first17 + compute_check_char(first17)


def test_login_gives_a_token_and_bad_credentials_get_401(app):
    client = app.test_client()
    ok = client.post("/api/login", json={"username": "caseworker", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json["token"].startswith("ec_") and ok.json["token_type"] == "Bearer"
    bad = client.post("/api/login", json={"username": "caseworker", "password": "wrong"})
    assert bad.status_code == 401 and bad.json == {"message": "用户名或密码错误", "field_errors": {}}
    malformed = client.post("/api/login", data="not json", content_type="application/json")
    assert malformed.status_code == 422 and malformed.json["message"] == "请求体应为 JSON 对象"
    me = client.get("/api/me", headers={"Authorization": "Bearer " + ok.json["token"]})
    assert me.json["username"] == "caseworker" and me.json["area_code"] == "410825100"
    out = client.post("/api/logout", headers={"Authorization": "Bearer " + ok.json["token"]})
    assert out.status_code == 200
    again = client.get("/api/me", headers={"Authorization": "Bearer " + ok.json["token"]})
    assert again.status_code == 401 and again.json["message"] == "访问令牌无效，请重新登录"


def test_tokens_are_stored_hashed_and_expire(app, db_session):
    user = db_session.query(User).filter_by(username="approver").one()
    secret, record = tokens.issue_token(db_session, user, ttl=timedelta(seconds=-1))
    db_session.commit()
    assert record.token_hash != secret and len(record.token_hash) == 64 and secret not in record.token_hash
    expired = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert expired.status_code == 401 and expired.json["message"] == "访问令牌已过期，请重新登录"
    garbage = app.test_client().get("/api/me", headers={"Authorization": "Bearer ec_nothing"})
    assert garbage.status_code == 401


def test_start_a_case_read_it_and_work_its_tasks(api, make_elder):
    case = start_case(api, make_elder())
    assert case["status"] == "running" and case["version"] == 1 and case["process"] == PROCESS
    assert case["data"]["requested_services"] == ["meal", "cleaning"]
    assert (case["data"]["household"], case["data"]["eligibility"]) == ("dibao", "eligible")
    assert [e["kind"] for e in case["events"]] == ["started"]
    task = open_task(case, "township_review")
    assert task["due_at"] and task["due_at"].endswith("+08:00")

    group = api["caseworker"].get("/api/tasks?scope=group").json
    assert any(i["id"] == task["id"] for i in group["items"])
    for item in group["items"]:
        assert MASKED_ID.fullmatch(item["elder_id_number"])

    detail = api["caseworker"].get(f"/api/tasks/{task['id']}").json
    assert detail["form"]["properties"]["decision"]["oneOf"][0] == {
        "const": "pass",
        "title": "同意，报县民政局审批",
    }
    assert detail["case"]["id"] == case["id"] and detail["can_complete"] and detail["can_claim"]
    assert "助餐、助洁" in detail["instructions"]

    claimed = api["caseworker"].post(f"/api/tasks/{task['id']}/claim")
    assert claimed.status_code == 200 and claimed.json["assignee_id"] is not None
    assert any(i["id"] == task["id"] for i in api["caseworker"].get("/api/tasks?scope=mine").json["items"])

    invalid = api["caseworker"].post(f"/api/tasks/{task['id']}/complete", {"data": {"decision": "maybe"}})
    assert invalid.status_code == 422
    assert invalid.json["field_errors"] == {
        "decision": "不是允许的选项",
        "home_visit_on": "此项为必填项",
        "verification": "此项为必填项",
    }
    assert invalid.json["message"] == "表单填写有误，请按提示修改"

    review = {"decision": "pass", "home_visit_on": clock.today().isoformat(), "verification": "属实"}
    done = api["caseworker"].post(f"/api/tasks/{task['id']}/complete", {"data": review, "comment": "已入户"})
    assert done.status_code == 200
    assert [t["step"] for t in done.json["next_tasks"]] == ["county_approval"]
    assert done.json["next_tasks"][0]["role"] == "approver"

    twice = api["caseworker"].post(f"/api/tasks/{task['id']}/complete", {"data": review})
    assert twice.status_code == 409 and "已由王建华（祥云镇经办人）于" in twice.json["message"]
    assert api["caseworker"].post(f"/api/tasks/{task['id']}/claim").status_code == 409

    after = api["caseworker"].get(f"/api/cases/{case['id']}").json
    assert any(e["comment"] == "已入户" for e in after["events"])
    assert after["open_tasks"][0]["step"] == "county_approval"


def test_send_back_without_comment_is_422(api, make_elder):
    case = start_case(api, make_elder())
    task = advance_to(api, case, "county_approval")
    refused = api["approver"].post(f"/api/tasks/{task['id']}/complete", {"data": {"decision": "send_back"}})
    assert refused.status_code == 422 and refused.json["field_errors"] == {"comment": "此项为必填项"}
    sent = api["approver"].post(
        f"/api/tasks/{task['id']}/complete", {"data": {"decision": "send_back", "comment": "请补充入户照片"}}
    )
    assert sent.status_code == 200 and sent.json["next_tasks"][0]["step"] == "township_review"


def test_a_periodic_process_cannot_be_started_by_hand(api, make_elder):
    refused = api["caseworker"].post(
        "/api/cases", {"process": "home_care_month", "elder_id": make_elder(), "data": {}}
    )
    assert refused.status_code == 422 and "自动发起" in refused.json["message"]


def test_not_found_and_bad_requests(api):
    assert api["caseworker"].get("/api/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    missing = api["caseworker"].get("/api/cases/999999")
    assert missing.status_code == 404 and missing.json == {"message": "案件不存在", "field_errors": {}}
    nowhere = api["caseworker"].get("/api/nowhere")
    assert nowhere.status_code == 404 and nowhere.json["message"] == "页面不存在"
    assert api["caseworker"].client.delete("/api/tasks", headers=api["caseworker"].headers).status_code == 405
    bad_scope = api["caseworker"].get("/api/tasks?scope=everything")
    assert bad_scope.status_code == 422 and bad_scope.json["field_errors"] == {"scope": "不是允许的选项"}
    no_elder = api["village_assistant"].post(
        "/api/cases", {"process": PROCESS, "elder_id": 99999999, "data": APPLICATION}
    )
    assert no_elder.status_code == 404
    no_process = api["village_assistant"].post("/api/cases", {"process": "nope", "elder_id": 1, "data": {}})
    assert no_process.status_code in (403, 404)


def test_ids_beyond_any_row_are_not_found_rather_than_server_errors(api, browsers, make_elder):
    # Beyond PostgreSQL's integers, and beyond SQLite's: the drivers would fail on them, so they must not
    # reach them.
    task_id = open_task(start_case(api, make_elder()), "township_review")["id"]
    for huge in (2**40, 2**70):
        for path in (f"/api/cases/{huge}", f"/api/elders/{huge}"):
            answer = api["caseworker"].get(path)
            assert answer.status_code == 404 and answer.json["message"].startswith(("案件", "老人档案")), path
        started = api["village_assistant"].post(
            "/api/cases", {"process": PROCESS, "elder_id": huge, "data": {}}
        )
        assert started.status_code == 404
        reassigned = api["approver"].post(f"/api/tasks/{task_id}/assign", {"assignee_id": huge})
        assert reassigned.status_code == 404 and reassigned.json["message"] == "用户不存在"
        for path in (
            f"/cases/{huge}",
            f"/documents/{huge}",
            f"/elders/{huge}",
            f"/cases/new?elder_id={huge}",
        ):
            assert browsers["caseworker"].get(path).status_code == 404, path


def test_elders_search_and_register(api, elders_by_township):
    found = api["caseworker"].get("/api/elders?q=").json["items"]
    assert found and all(e["residence_area_code"].startswith("410825100") for e in found)
    assert all(MASKED_ID.fullmatch(e["id_number"]) for e in found)
    data = {
        "name": "测试老人",
        "id_number": _id_number(date(1948, 5, 6), 771),
        "phone": "13912345678",
        "hukou_type": "rural",
        "residence_area_code": "410825100201",
        "address": "5组8号",
        "living_arrangement": "living_alone",
        "dibao": True,
    }
    created = api["village_assistant"].post("/api/elders", data)
    assert created.status_code == 201, created.json
    assert created.json["id_number"] == data["id_number"][:4] + "*" * 10 + data["id_number"][-4:]
    assert created.json["phone"] == "139****5678" and "dibao" in created.json["flags"]
    duplicate = api["village_assistant"].post("/api/elders", data)
    assert duplicate.status_code == 409 and "已登记" in duplicate.json["message"]
    invalid = api["village_assistant"].post("/api/elders", {**data, "id_number": "110101202311012171"})
    assert invalid.status_code == 422 and "id_number" in invalid.json["field_errors"]
    elsewhere = api["village_assistant"].post(
        "/api/elders",
        {**data, "id_number": _id_number(date(1948, 5, 7), 773), "residence_area_code": "410825101201"},
    )
    assert elsewhere.status_code == 403
    assert api["caseworker"].get(f"/api/elders/{created.json['id']}").status_code == 200
    assert api["caseworker2"].get(f"/api/elders/{created.json['id']}").status_code == 403


def test_processes_list(api):
    items = api["caseworker"].get("/api/processes").json["items"]
    assert {k: v for k, v in next(i for i in items if i["key"] == PROCESS).items() if k != "deployed_at"} == {
        "key": PROCESS,
        "name": "政府购买居家养老服务",
        "version": 1,
    }
