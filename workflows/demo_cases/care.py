"""Demo cases for assessment, purchased home care and visiting care, driven through the real use cases.

States shown: a completed assessment and one waiting for the assessor; home-care applications at the
township review and at county approval; an elder enrolled with the current service month open for the
provider; visiting-care elders with a visit done, one due and one overdue (escalated to the township).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from .. import assessments, cases, elders, home_care, tasks, visiting
from ..models import Case, HumanTask, User
from ..models.elders import Elder, ElderStatus
from ..rules.assessment import GROUPS, ITEMS

TOWNSHIP = "410825100"  # 祥云镇: the demo caseworker's township
VILLAGE = "410825100201"  # 祥云村: the demo village assistant's village

_NO_CONDITIONS = {
    "coma": False,
    "dementia": False,
    "psychiatric": False,
    "falls": 0,
    "choking": 0,
    "self_harm": 0,
    "wandering": 0,
}


def _assessment_form(total: int, day: date, reason: str) -> dict:
    scores = {item.key: item.max_score for item in ITEMS}
    missing = sum(scores.values()) - total
    for item in ITEMS:
        cut = min(missing, scores[item.key])
        scores[item.key] -= cut
        missing -= cut
    form = {group.key: {i.key: scores[i.key] for i in ITEMS if i.group is group} for group in GROUPS}
    return {
        "assessed_on": day.isoformat(),
        "assessment_reason": reason,
        **form,
        "special_conditions": dict(_NO_CONDITIONS),
        "assessor_note": "演示数据：入户评估，家属在场",
    }


def _ready(session: Session, case: Case, spec: str) -> HumanTask | None:
    return next((t for t in tasks.ready_tasks(session, case.id) if t.task_spec == spec), None)


def _step(session: Session, actor: User, case: Case, spec: str, data: dict) -> bool:
    task = _ready(session, case, spec)
    if task is None:
        return False
    tasks.complete(session, actor, task.id, data)
    return True


def _assess_if_asked(session: Session, users: dict[str, User], case: Case, total: int) -> None:
    """Complete an assessment step the case has reached (its own, or one called from another process)."""
    today = elders.today()
    task = _ready(session, case, "conduct_assessment")
    if task is None:
        return
    reason = cases.case_data(case).get("assessment_reason") or "initial"
    assessments.submit_assessment(session, users["assessor"], task.id, _assessment_form(total, today, reason))
    _step(
        session,
        users["caseworker"],
        case,
        "notify_result",
        {"notified_on": today.isoformat(), "notify_method": "in_person", "objection": False},
    )


def create(session: Session, users: dict[str, User], elders_list: list[Elder]) -> dict[str, int]:
    counts = {
        "care_assessments": 0,
        "home_care_cases": 0,
        "home_care_enrolments": 0,
        "visiting_enrolments": 0,
        "visits": 0,
    }
    if not all(
        name in users for name in ("caseworker", "village_assistant", "approver", "provider", "assessor")
    ):
        return counts
    active = [e for e in elders_list if e.status == ElderStatus.ACTIVE]
    township = [e for e in active if e.residence_area_code.startswith(TOWNSHIP)]
    used: set[int] = set()
    # Each part takes what the registry offers (fewer cases when it holds fewer suitable elders).
    _assessment_demo(session, users, township, used, counts)
    _home_care_demo(session, users, township, used, counts)
    _visiting_demo(session, users, [e for e in active if e.residence_area_code == VILLAGE], used, counts)
    return counts


def _assessment_demo(session, users, township, used, counts) -> None:
    today = elders.today()
    unassessed = [e for e in township if e.current_disability_level(today) is None and not e.dibao]
    if unassessed:
        elder = unassessed[0]
        case = assessments.request_assessment(
            session,
            users["caseworker"],
            elder.id,
            "initial",
            schedule_reassessment=False,
            note="演示：家属申请",
        )
        _assess_if_asked(session, users, case, 58)
        used.add(elder.id)
        counts["care_assessments"] += 1
    if len(unassessed) > 1:
        assessments.request_assessment(
            session, users["caseworker"], unassessed[1].id, "initial", note="演示：待评估"
        )
        used.add(unassessed[1].id)
        counts["care_assessments"] += 1


def _home_care_demo(session, users, township, used, counts) -> None:
    today = elders.today()
    candidates = [e for e in township if e.dibao and e.id not in used]
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
        used.add(elder.id)
        counts["home_care_cases"] += 1
        _assess_if_asked(session, users, case, 50)
        if stage == "township_review":
            continue
        review = {
            "decision": "pass",
            "home_visit_on": today.isoformat(),
            "verification": "入户核实：低保在册，需要照料",
        }
        if (
            not _step(session, users["caseworker"], case, "township_review", review)
            or stage == "county_approval"
        ):
            continue
        _step(session, users["approver"], case, "county_approval", {"decision": "approve", "comment": "同意"})
        task = _ready(session, case, "dispatch_provider")
        if task is None:
            continue
        home_care.dispatch(session, users["caseworker"], task.id, {"provider_id": users["provider"].id})
        _step(
            session,
            users["provider"],
            case,
            "provider_accept",
            {"decision": "accept", "planned_start_on": today.isoformat()},
        )
        enrolment = home_care.active_enrolment(session, elder.id)
        if enrolment is not None:
            home_care.open_month(session, enrolment, today.replace(day=1))  # this month, in progress
            counts["home_care_enrolments"] += 1


def _visiting_demo(session, users, village, used, counts) -> None:
    today = elders.today()
    vulnerable = [
        e for e in village if e.id not in used and (e.living_alone or e.empty_nest or e.home_support)
    ]
    enrolments = []
    for elder in vulnerable[:3]:
        case = visiting.enrol_visiting_care(session, users["village_assistant"], elder.id, "演示：摸排登记")
        _step(
            session,
            users["caseworker"],
            case,
            "confirm_enrolment",
            {"decision": "approve", "visit_frequency": "monthly"},
        )
        enrolment = visiting.active_enrolment(session, elder.id)
        if enrolment is not None:
            used.add(elder.id)
            enrolments.append(enrolment)
            counts["visiting_enrolments"] += 1
    counts["visits"] += visiting.open_due_visits(session)
    if enrolments:  # the first elder was visited this period
        visit = visiting.open_visit(
            session, enrolments[0], enrolments[0].next_period_start - timedelta(days=1)
        )
        case = session.get(Case, visit.case_id)
        task = _ready(session, case, "record_visit")
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
