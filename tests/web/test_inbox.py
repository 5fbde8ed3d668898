"""The inbox: scopes, filters with counts, search, masked IDs, overdue, claim/release/reassign, one query."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from workflows import clock, inbox
from workflows.models import Elder

from .conftest import PASSWORD
from .helpers import MASKED_ID, open_task, start_case


def test_group_queue_lists_the_township_task_with_the_id_masked(browsers, api, make_elder, db_session):
    elder = db_session.get(Elder, make_elder(name="范秀琴"))
    case = start_case(api, elder.id)
    task = open_task(case, "township_review")
    page = browsers["caseworker"].get("/inbox?scope=group")
    assert page.status_code == 200
    assert task["id"] in page.text and elder.name in page.text
    assert elder.id_number not in page.text
    assert MASKED_ID.search(page.text)
    # The API masks too.
    items = api["caseworker"].get("/api/tasks?scope=group").json["items"]
    row = next(i for i in items if i["id"] == task["id"])
    assert row["elder_id_number"] == elder.id_number[:4] + "*" * 10 + elder.id_number[-4:]
    # Another township's caseworker does not see it.
    assert task["id"] not in browsers["caseworker2"].get("/inbox?scope=all").text


def test_filters_counts_and_search(browsers, api, make_elder, db_session):
    elder = db_session.get(Elder, make_elder(name="卜凤仙"))
    case = start_case(api, elder.id)
    task = open_task(case, "township_review")
    listing = api["caseworker"].get("/api/tasks?scope=group").json
    counts = {dim: {f["value"]: f["count"] for f in facets} for dim, facets in listing["counts"].items()}
    assert counts["process"]["home_care"] >= 1 and sum(counts["process"].values()) == listing["total"]
    assert counts["step"]["township_review"] >= 1
    assert counts["township"]["410825100"] == listing["total"]
    assert sum(counts["due"].values()) == listing["total"]
    # Search by name and by a fragment of the ID number.
    by_name = api["caseworker"].get("/api/tasks", query_string={"scope": "group", "q": elder.name}).json
    assert task["id"] in {i["id"] for i in by_name["items"]}
    by_id = (
        api["caseworker"].get("/api/tasks", query_string={"scope": "group", "q": elder.id_number[-6:]}).json
    )
    assert task["id"] in {i["id"] for i in by_id["items"]}
    nobody = api["caseworker"].get("/api/tasks", query_string={"scope": "group", "q": "不存在的人"}).json
    assert nobody["total"] == 0 and nobody["items"] == []
    # Filters narrow; their facet stays countable.
    step = api["caseworker"].get("/api/tasks?scope=group&step=conduct_assessment").json
    assert step["total"] == 0
    page = browsers["caseworker"].get("/inbox?scope=group&step=township_review&sort=newest")
    assert page.status_code == 200 and 'class="selected"' in page.text
    assert browsers["caseworker"].get("/inbox?scope=nonsense").status_code == 422
    assert api["caseworker"].get("/api/tasks?due=later").status_code == 422


def test_overdue_tasks_are_highlighted(browsers, api, make_elder):
    case = start_case(api, make_elder())
    task = open_task(case, "township_review")
    later = clock.ManualClock(clock.now() + timedelta(days=30))
    with clock.using(later):
        page = browsers["caseworker"].get("/inbox?scope=group&due=overdue")
        token = api["caseworker"].client.post(
            "/api/login", json={"username": "caseworker", "password": PASSWORD}
        )
        listing = (
            api["caseworker"]
            .client.get(
                "/api/tasks?scope=group&due=overdue",
                headers={"Authorization": "Bearer " + token.json["token"]},
            )
            .json
        )
    assert task["id"] in page.text
    assert 'class="due-overdue"' in page.text and "已逾期" in page.text
    assert any(i["id"] == task["id"] and i["due_state"] == "overdue" for i in listing["items"])
    # Now, the same task is not overdue.
    assert task["id"] not in browsers["caseworker"].get("/inbox?scope=group&due=overdue").text


def test_claim_release_and_reassign(browsers, api, make_elder, users):
    case = start_case(api, make_elder())
    task = open_task(case, "township_review")
    cw = browsers["caseworker"]
    assert cw.post(f"/tasks/{task['id']}/claim").status_code == 302
    assert task["id"] in cw.get("/inbox?scope=mine").text
    assert task["id"] not in cw.get("/inbox?scope=group").text
    assert cw.post(f"/tasks/{task['id']}/release").status_code == 302
    assert task["id"] in cw.get("/inbox?scope=group").text
    # A supervisor hands it to the caseworker; the task page offers only people who can work it.
    page = browsers["approver"].get(f"/tasks/{task['id']}")
    assert "王建华" in page.text and "赵丽娟" not in page.text.split("改派给")[1].split("</select>")[0]
    assigned = browsers["approver"].post(
        f"/tasks/{task['id']}/assign", {"assignee_id": users["caseworker"].id}
    )
    assert assigned.status_code == 302
    mine = api["caseworker"].get("/api/tasks?scope=mine").json["items"]
    assert any(i["id"] == task["id"] for i in mine)
    wrong = browsers["approver"].post(f"/tasks/{task['id']}/assign", {"assignee_id": users["caseworker2"].id})
    assert wrong.status_code == 422 and "不能办理此任务" in wrong.text
    events = api["caseworker"].get(f"/api/cases/{case['id']}").json["events"]
    assert [e["kind"] for e in events].count("claimed") == 1
    assert "assigned" in [e["kind"] for e in events] and "released" in [e["kind"] for e in events]


def test_a_page_is_one_query_plus_the_counts(app, users, db_session):
    engine = db_session.get_bind()
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        actor = db_session.get(type(users["caseworker"]), users["caseworker"].id)
        statements.clear()
        for scope in inbox.Scope:
            for extra in ({}, {"q": "王"}, {"due": "overdue", "sort": "elder"}):
                statements.clear()
                inbox.list_inbox(db_session, actor, inbox.InboxFilter.parse({"scope": scope.value, **extra}))
                assert len(statements) == 2, statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
