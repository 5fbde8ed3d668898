"""The request's writes are committed inside the request: a failure found only at commit reaches the error
handlers (a 409 page or JSON saying nothing was saved), never a 500 after a redirect was prepared."""

from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from workflows import clock
from workflows.models import Case

from .helpers import open_task, start_case


@contextmanager
def commits_fail_with(app, error: Exception):
    """Make every commit of the app's sessions fail (as a concurrent writer's or an outage would)."""

    def fail(session):
        raise error

    factory = app.extensions["db_sessions"]
    factory.class_ = type("FailingSession", (Session,), {})
    event.listen(factory.class_, "before_commit", fail)
    try:
        yield
    finally:
        factory.class_ = Session


def _review(task, token):
    return {
        "csrf_token": token,
        "f.decision": "pass",
        "f.home_visit_on": clock.today().isoformat(),
        "f.verification": "入户核实属实",
    }


def test_a_conflict_found_at_commit_is_the_409_page_and_nothing_is_saved(app, browsers, api, make_elder):
    case = start_case(api, make_elder())
    task = open_task(case, "township_review")
    cw = browsers["caseworker"]
    page = cw.get(f"/tasks/{task['id']}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    with commits_fail_with(app, IntegrityError("INSERT", {}, Exception("duplicate key"))):
        response = cw.client.post(f"/tasks/{task['id']}", data=_review(task, token))
    assert response.status_code == 409
    assert "数据刚被其他人更新，您的操作未保存，请刷新后重试" in response.text
    # Nothing of the step was written: the task is still open, and completing it now works.
    again = api["caseworker"].get(f"/api/cases/{case['id']}").json
    assert [t["step"] for t in again["open_tasks"]] == ["township_review"]
    assert cw.client.post(f"/tasks/{task['id']}", data=_review(task, token)).status_code == 302


def test_the_api_answers_503_json_when_the_database_cannot_commit(app, api, make_elder, db_session):
    elder = make_elder()
    application = {"applicant_type": "self", "requested_services": ["meal"]}
    with commits_fail_with(app, OperationalError("COMMIT", {}, Exception("database is locked"))):
        response = api["village_assistant"].post(
            "/api/cases", {"process": "home_care", "elder_id": elder, "data": application}
        )
    assert response.status_code == 503
    assert response.json == {"message": "数据库暂时不可用，您的操作未保存，请稍后重试", "field_errors": {}}
    assert db_session.scalar(select(func.count()).select_from(Case).where(Case.elder_id == elder)) == 0
