"""Demo home care, driven through the real use cases: applications at the township review and at county
approval, and an elder enrolled with the current service month open for the provider."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ... import clock
from ...models import User
from ...models.elders import Elder, ElderStatus
from ..assessment.demo import TOWNSHIP, assess_if_asked, ready, step, with_cases
from . import enrolment as home_care
from . import months

ROLES = ("caseworker", "village_assistant", "approver", "provider", "assessor")


def create(session: Session, users: dict[str, User], elders: list[Elder]) -> dict[str, int]:
    counts = {"home_care_cases": 0, "home_care_enrolments": 0}
    if not all(name in users for name in ROLES):
        return counts
    today = clock.today()
    taken = with_cases(session, elders)
    candidates = [
        e
        for e in elders
        if e.status == ElderStatus.ACTIVE
        and e.residence_area_code.startswith(TOWNSHIP)
        and e.dibao
        and e.id not in taken
    ]
    # Elders already assessed as moderately disabled or worse go straight to the township review.
    disabled = [
        e for e in candidates if (level := e.current_disability_level(today)) is not None and level.rank >= 2
    ]
    others = [e for e in candidates if e not in disabled]
    pool = disabled + others
    application = {
        "applicant_type": "proxy",
        "applicant_name": users["village_assistant"].display_name,
        "applicant_phone": "13903910001",
        "requested_services": ["meal", "cleaning", "personal_care"],
        "application_note": "演示：协理员代办",
    }
    stages = ("township_review", "county_approval", "enrolled")
    for stage, elder in zip(stages, pool, strict=False):
        case = home_care.apply_home_care(session, users["caseworker"], elder.id, application)
        counts["home_care_cases"] += 1
        assess_if_asked(session, users, case, 50)
        if stage == "township_review":
            continue
        review = {
            "decision": "pass",
            "home_visit_on": today.isoformat(),
            "verification": "入户核实：低保在册，需要照料",
        }
        if (
            not step(session, users["caseworker"], case, "township_review", review)
            or stage == "county_approval"
        ):
            continue
        step(session, users["approver"], case, "county_approval", {"decision": "approve", "comment": "同意"})
        task = ready(session, case, "dispatch_provider")
        if task is None:
            continue
        home_care.dispatch(session, users["caseworker"], task.id, {"provider_id": users["provider"].id})
        step(
            session,
            users["provider"],
            case,
            "provider_accept",
            {"decision": "accept", "planned_start_on": today.isoformat()},
        )
        enrolment = home_care.active_enrolment(session, elder.id)
        if enrolment is not None:
            months.open_month(session, enrolment, today.replace(day=1))  # this month, in progress
            counts["home_care_enrolments"] += 1
    return counts
