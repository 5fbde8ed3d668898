"""Small helpers shared by the web tests: start a home-care case and take it to a step through the API."""

from __future__ import annotations

import re

from workflows import clock

from .conftest import APPLICATION, PROCESS, item_scores

MASKED_ID = re.compile(r"\b\d{4}\*{10}[0-9X]{4}\b")


def start_case(api, elder_id: int, data: dict | None = None) -> dict:
    """Apply for home care as the village assistant; return the new case's JSON."""
    response = api["village_assistant"].post(
        "/api/cases", {"process": PROCESS, "elder_id": elder_id, "data": data or APPLICATION}
    )
    assert response.status_code == 201, response.text
    return response.json


def open_task(case: dict, step: str) -> dict:
    found = [t for t in case["open_tasks"] if t["step"] == step]
    assert found, f"{step} not open: {[t['step'] for t in case['open_tasks']]}"
    return found[0]


def assessment_data(total: int = 50) -> dict:
    """The assessor's 26-item form, grouped as `conduct_assessment` groups it, adding up to `total`."""
    from workflows.rules.assessment import GROUPS, ITEMS

    scores = item_scores(total)
    return {
        "assessed_on": clock.today().isoformat(),
        "assessment_reason": "initial",
        **{g.key: {i.key: scores[i.key] for i in ITEMS if i.group is g} for g in GROUPS},
        "special_conditions": {
            "coma": False,
            "dementia": False,
            "psychiatric": False,
            "falls": 0,
            "choking": 0,
            "self_harm": 0,
            "wandering": 0,
        },
    }


def answers(api) -> dict[str, tuple[str, dict]]:
    """Who completes each home-care step, and with what, to move a case on."""
    today = clock.today().isoformat()
    provider_id = api["provider"].get("/api/me").json["id"]
    return {
        "conduct_assessment": ("assessor", assessment_data(50)),
        "notify_result": (
            "caseworker",
            {"notified_on": today, "notify_method": "in_person", "objection": False},
        ),
        "township_review": (
            "caseworker",
            {"decision": "pass", "home_visit_on": today, "verification": "入户核实：低保在册，独居"},
        ),
        "county_approval": ("approver", {"decision": "approve"}),
        "dispatch_provider": ("caseworker", {"provider_id": provider_id}),
        "provider_accept": ("provider", {"decision": "accept", "planned_start_on": today}),
    }


def advance_to(api, case: dict, step: str) -> dict:
    """Complete the home-care steps through the API until `step` is open; return that task."""
    steps = answers(api)
    while True:
        current = api["caseworker"].get(f"/api/cases/{case['id']}").json
        tasks = current["open_tasks"]
        assert tasks, "the case has no open task"
        task = tasks[0]
        if task["step"] == step:
            return task
        role, data = steps[task["step"]]
        response = api[role].post(f"/api/tasks/{task['id']}/complete", {"data": data})
        assert response.status_code == 200, response.text
