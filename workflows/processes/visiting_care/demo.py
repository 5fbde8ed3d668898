"""Demo visiting care, driven through the real use cases: elders enrolled in the demo village, with a visit
done, one due and one overdue (escalated to the township)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from ... import clock
from ...models import Case, User
from ...models.elders import Elder, ElderStatus
from ..assessment.demo import ready, step, with_cases
from . import visiting

VILLAGE = "410825100201"  # 祥云村: the demo village assistant's village
ROLES = ("caseworker", "village_assistant")


def create(session: Session, users: dict[str, User], elders: list[Elder]) -> dict[str, int]:
    counts = {"visiting_enrolments": 0, "visits": 0}
    if not all(name in users for name in ROLES):
        return counts
    today = clock.today()
    taken = with_cases(session, elders)
    village = [e for e in elders if e.status == ElderStatus.ACTIVE and e.residence_area_code == VILLAGE]
    vulnerable = [
        e for e in village if e.id not in taken and (e.living_alone or e.empty_nest or e.home_support)
    ]
    enrolments = []
    for elder in vulnerable[:3]:
        case = visiting.enrol_visiting_care(session, users["village_assistant"], elder.id, "演示：摸排登记")
        step(
            session,
            users["caseworker"],
            case,
            "confirm_enrolment",
            {"decision": "approve", "visit_frequency": "monthly"},
        )
        enrolment = visiting.active_enrolment(session, elder.id)
        if enrolment is not None:
            enrolments.append(enrolment)
            counts["visiting_enrolments"] += 1
    counts["visits"] += visiting.open_due_visits(session)
    if enrolments:  # the first elder was visited this period
        visit = visiting.open_visit(
            session, enrolments[0], enrolments[0].next_period_start - timedelta(days=1)
        )
        case = session.get(Case, visit.case_id)
        task = ready(session, case, "record_visit")
        if task is not None:
            visiting.submit_visit(
                session,
                users["village_assistant"],
                task.id,
                {
                    "visited_on": today.isoformat(),
                    "method": "home",
                    "services_provided": ["health_management", "home_safety", "emotional_support"],
                    "findings": {
                        "health_status": "fair",
                        "home_safety_risk": False,
                        "emergency": False,
                        "needs": [],
                        "notes": "演示：精神状况良好，叮嘱按时服药",
                    },
                },
            )
    if len(enrolments) > 1:  # the second missed last period: overdue, escalated to the township
        enrolment = enrolments[1]
        current = visiting.period_of(today, enrolment.frequency)[0]
        visiting.open_visit(session, enrolment, current - timedelta(days=1))  # its deadline has passed
        counts["visits"] += 1
    session.flush()
    return counts
