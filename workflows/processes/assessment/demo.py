"""Demo assessments, driven through the real use cases: one completed, one waiting for the assessor."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, clock, tasks
from ...models import Case, HumanTask, User
from ...models.elders import Elder, ElderStatus
from ...rules.assessment import GROUPS, ITEMS
from . import assessments

TOWNSHIP = "410825100"  # 祥云镇: the demo caseworker's township
ROLES = ("caseworker", "assessor")


_NO_CONDITIONS = {
    "coma": False,
    "dementia": False,
    "psychiatric": False,
    "falls": 0,
    "choking": 0,
    "self_harm": 0,
    "wandering": 0,
}


def assessment_form(total: int, day: date, reason: str) -> dict:
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


def ready(session: Session, case: Case, spec: str) -> HumanTask | None:
    return next((t for t in tasks.ready_tasks(session, case.id) if t.task_spec == spec), None)


def step(session: Session, actor: User, case: Case, spec: str, data: dict) -> bool:
    task = ready(session, case, spec)
    if task is None:
        return False
    tasks.complete(session, actor, task.id, data)
    return True


def assess_if_asked(session: Session, users: dict[str, User], case: Case, total: int) -> None:
    """Complete an assessment step the case has reached (its own, or one called from another process)."""
    today = clock.today()
    task = ready(session, case, "conduct_assessment")
    if task is None:
        return
    reason = cases.case_data(case).get("assessment_reason") or "initial"
    assessments.submit_assessment(session, users["assessor"], task.id, assessment_form(total, today, reason))
    step(
        session,
        users["caseworker"],
        case,
        "notify_result",
        {"notified_on": today.isoformat(), "notify_method": "in_person", "objection": False},
    )


def create(session: Session, users: dict[str, User], elders: list[Elder]) -> dict[str, int]:
    """One assessment done, one waiting, for unassessed elders of the demo township."""
    counts = {"care_assessments": 0}
    if not all(name in users for name in ROLES):
        return counts
    today = clock.today()
    township = [
        e for e in elders if e.status == ElderStatus.ACTIVE and e.residence_area_code.startswith(TOWNSHIP)
    ]
    unassessed = [e for e in township if e.current_disability_level(today) is None and not e.dibao]
    if unassessed:
        case = assessments.request_assessment(
            session,
            users["caseworker"],
            unassessed[0].id,
            "initial",
            schedule_reassessment=False,
            note="演示：家属申请",
        )
        assess_if_asked(session, users, case, 58)
        counts["care_assessments"] += 1
    if len(unassessed) > 1:
        assessments.request_assessment(
            session, users["caseworker"], unassessed[1].id, "initial", note="演示：待评估"
        )
        counts["care_assessments"] += 1
    return counts


def with_cases(session: Session, elders: list[Elder]) -> set[int]:
    """The elders a demo of another process has already given a case (each demo picks other elders)."""
    return set(session.scalars(select(Case.elder_id).where(Case.elder_id.is_not(None))))
