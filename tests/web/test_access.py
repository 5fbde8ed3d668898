"""Roles and areas, checked in `workflows` for pages and API alike: another township's case, task, elder or
document is refused (403) even by URL guessing, and so is work of another role."""

from __future__ import annotations

import pytest

from workflows import clock
from workflows.db import session_factory
from workflows.models import Role, User

from .conftest import APPLICATION, add_user, api_token
from .helpers import advance_to, open_task, start_case

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def xiangyun_case(api, browsers, make_elder):
    """A 祥云镇 case waiting for the township review, with a document."""
    case = start_case(api, make_elder())
    task = open_task(case, "township_review")
    import io

    browsers["caseworker"].post(
        f"/cases/{case['id']}/documents",
        {"file": (io.BytesIO(PNG), "a.png")},
        content_type="multipart/form-data",
    )
    documents = api["caseworker"].get(f"/api/cases/{case['id']}").json["documents"]
    assert documents
    return {"case": case, "task": task, "document": documents[0]["id"]}


def test_other_township_caseworker_gets_403_everywhere(browsers, api, xiangyun_case, elders_by_township):
    other = browsers["caseworker2"]
    case_id, task_id = xiangyun_case["case"]["id"], xiangyun_case["task"]["id"]
    for url in (
        f"/cases/{case_id}",
        f"/cases/{case_id}/diagram.json",
        f"/tasks/{task_id}",
        f"/documents/{xiangyun_case['document']}",
        f"/elders/{elders_by_township['xiangyun']}",
        f"/cases/new?process=home_care&elder_id={elders_by_township['xiangyun']}",
    ):
        response = other.get(url)
        assert response.status_code == 403, url
        assert "无权" in response.text, url
    for url, data in (
        (f"/tasks/{task_id}/claim", {}),
        (f"/tasks/{task_id}", {"f.decision": "pass"}),
        (f"/cases/{case_id}/comments", {"comment": "看看"}),
        (f"/tasks/{task_id}/release", {}),
    ):
        assert other.post(url, data).status_code == 403, url
    caller = api["caseworker2"]
    assert caller.get(f"/api/cases/{case_id}").status_code == 403
    assert caller.get(f"/api/tasks/{task_id}").status_code == 403
    assert caller.post(f"/api/tasks/{task_id}/claim").status_code == 403
    refused = caller.post(f"/api/tasks/{task_id}/complete", {"data": {"decision": "pass"}})
    assert refused.status_code == 403 and "无权" in refused.json["message"]
    assert caller.get(f"/api/elders/{elders_by_township['xiangyun']}").status_code == 403
    # ...and the case never shows in their inbox.
    listing = caller.get("/api/tasks?scope=all").json
    assert all(t["case_id"] != case_id for t in listing["items"])


def test_the_townships_own_caseworker_and_county_roles_may_read(browsers, api, xiangyun_case):
    case_id = xiangyun_case["case"]["id"]
    for who in ("caseworker", "approver", "auditor", "village_assistant"):
        assert browsers[who].get(f"/cases/{case_id}").status_code == 200, who
    assert api["auditor"].get(f"/api/cases/{case_id}").status_code == 200


def test_wrong_role_gets_403(browsers, api, xiangyun_case, elders_by_township):
    task_id = xiangyun_case["task"]["id"]
    # A review is the caseworker's: the village assistant may not see it, the assessor may not work it.
    assert browsers["village_assistant"].get(f"/tasks/{task_id}").status_code == 403
    assert browsers["assessor"].post(f"/tasks/{task_id}", {"f.decision": "pass"}).status_code == 403
    assert (
        api["assessor"].post(f"/api/tasks/{task_id}/complete", {"data": {"decision": "pass"}}).status_code
        == 403
    )
    # Auditors read but never work or claim.
    assert browsers["auditor"].get(f"/tasks/{task_id}").status_code == 200
    assert api["auditor"].post(f"/api/tasks/{task_id}/claim").status_code == 403
    assert (
        browsers["auditor"]
        .post(f"/cases/{xiangyun_case['case']['id']}/comments", {"comment": "x"})
        .status_code
        == 403
    )
    # Providers have no register of elders and start no cases.
    assert browsers["provider"].get("/elders").status_code == 403
    assert browsers["provider"].get(f"/elders/{elders_by_township['xiangyun']}").status_code == 403
    assert browsers["provider"].get("/cases/new").status_code == 403
    assert api["provider"].get("/api/elders").status_code == 403
    started = api["provider"].post(
        "/api/cases", {"process": "home_care", "elder_id": elders_by_township["xiangyun"]}
    )
    assert started.status_code == 403
    # Only supervisors reassign.
    caseworker_id = api["caseworker"].get("/api/me").json["id"]
    assert (
        api["caseworker"].post(f"/api/tasks/{task_id}/assign", {"assignee_id": caseworker_id}).status_code
        == 403
    )


def test_village_assistant_cannot_start_a_case_for_another_village(api, elders_by_township):
    response = api["village_assistant"].post(
        "/api/cases", {"process": "home_care", "elder_id": elders_by_township["fantian"], "data": {}}
    )
    assert response.status_code == 403
    assert "不在您的管辖范围" in response.json["message"]


def test_provider_works_only_the_provider_steps(api, make_elder):
    case = start_case(api, make_elder())
    task = advance_to(api, case, "provider_accept")
    accept = {"decision": "accept", "planned_start_on": clock.today().isoformat()}
    assert api["caseworker"].post(f"/api/tasks/{task['id']}/complete", {"data": accept}).status_code == 403
    done = api["provider"].post(f"/api/tasks/{task['id']}/complete", {"data": accept})
    assert done.status_code == 200


def test_providers_read_only_the_cases_dispatched_to_them(app, browsers, api, make_elder, web_db):
    # The register is closed to outside staff, and so are the cases of their area they have no part in.
    case = start_case(api, make_elder())
    for who in ("provider", "facility_admin"):
        denied = api[who].get(f"/api/cases/{case['id']}")
        assert denied.status_code == 403 and denied.json["message"] == "只能查看本机构经办的案件"
        assert browsers[who].get(f"/cases/{case['id']}").status_code == 403
        assert browsers[who].get(f"/cases/{case['id']}/diagram.json").status_code == 403
    accept = advance_to(api, case, "provider_accept")  # dispatched to the demo provider: now theirs to read
    assert api["provider"].get(f"/api/cases/{case['id']}").status_code == 200
    assert browsers["provider"].get(f"/cases/{case['id']}").status_code == 200
    assert api["facility_admin"].get(f"/api/cases/{case['id']}").status_code == 403
    # Another provider of the county sees neither the case nor its task in any of its lists.
    other_id = add_user(web_db, "provider_other", "温县另一家服务机构", Role.PROVIDER)
    try:
        other = app.test_client()
        headers = {"Authorization": f"Bearer {api_token(other, 'provider_other')}"}
        assert other.get(f"/api/cases/{case['id']}", headers=headers).status_code == 403
        assert other.get(f"/api/tasks/{accept['id']}", headers=headers).status_code == 403
        for scope in ("mine", "group", "all"):
            listed = other.get(f"/api/tasks?scope={scope}", headers=headers).json["items"]
            assert all(t["case_id"] != case["id"] for t in listed), scope
    finally:  # the database is shared: leave no extra provider for the dispatch lists of other tests
        with session_factory(web_db[2]).begin() as session:
            session.get(User, other_id).is_active = False
    mine = api["provider"].get("/api/tasks?scope=all").json["items"]
    assert any(t["case_id"] == case["id"] for t in mine)


def test_phone_numbers_in_case_data_are_masked_on_the_case_page_and_api(browsers, api, xiangyun_case):
    # The applicant's phone is personal data the case record does not need whole (as the elder's own).
    whole = APPLICATION["applicant_phone"]
    masked = whole[:3] + "****" + whole[-4:]
    data = api["approver"].get(f"/api/cases/{xiangyun_case['case']['id']}").json["data"]
    assert data["applicant_phone"] == masked and data["applicant_name"] == APPLICATION["applicant_name"]
    page = browsers["approver"].get(f"/cases/{xiangyun_case['case']['id']}").get_data(as_text=True)
    assert masked in page and whole not in page
