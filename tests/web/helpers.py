"""Small helpers shared by the web tests."""

from __future__ import annotations

import re

from .conftest import APPLICATION, PROCESS

MASKED_ID = re.compile(r"\b\d{4}\*{10}[0-9X]{4}\b")


def start_case(api, elder_id: int, data: dict | None = None) -> dict:
    """Start a test case as the village assistant (the application is filed at once); return its JSON."""
    response = api["village_assistant"].post(
        "/api/cases", {"process": PROCESS, "elder_id": elder_id, "data": data or APPLICATION}
    )
    assert response.status_code == 201, response.text
    return response.json


def open_task(case: dict, step: str) -> dict:
    found = [t for t in case["open_tasks"] if t["step"] == step]
    assert found, f"{step} not open: {[t['step'] for t in case['open_tasks']]}"
    return found[0]


def advance_to(api, case: dict, step: str) -> dict:
    """Complete the test diagram's steps through the API until `step` is open; return that task."""
    answers = {
        "township_review": ("caseworker", {"decision": "approve", "visit_date": "2026-11-20"}),
        "capability_assessment": (
            "assessor",
            {"assessed_on": "2026-11-21", "self_care": 10, "mobility": 5, "mental": 20, "perception": 8},
        ),
        "county_approval": ("approver", {"decision": "approve", "monthly_quota": 500}),
        "provider_accept": ("provider", {"accepted": True, "start_date": "2026-11-24"}),
    }
    while True:
        current = api["caseworker"].get(f"/api/cases/{case['id']}").json
        tasks = current["open_tasks"]
        assert tasks, "the case has no open task"
        task = tasks[0]
        if task["step"] == step:
            return task
        role, data = answers[task["step"]]
        response = api[role].post(f"/api/tasks/{task['id']}/complete", {"data": data})
        assert response.status_code == 200, response.text
