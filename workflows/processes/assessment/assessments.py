"""Capability assessments (老年人能力综合评估, GB/T 42195-2022) as cases: request one for an elder, check the
assessor's form, and record the result on the elder when the diagram throws `record_assessment`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, clock, elders, tasks
from ...clock import as_date
from ...errors import Conflict, DomainError, ValidationFailed
from ...models import Case, CaseEvent, CaseStatus, CaseWait, EventKind, HumanTask, Role, TaskStatus, User
from ...models.elders import Assessment, Elder, ElderStatus
from ...rules.assessment import (
    GROUPS,
    ITEMS,
    AssessmentError,
    AssessmentReason,
    AssessmentResult,
    DisabilityLevel,
)
from .helpers import risk_event_count

PROCESS_KEY = "assessment"
# Who may ask for an assessment: the village assistant (for an elder of the village), the township, the assessor.
REQUEST_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ASSESSOR, Role.ADMIN})
# The steps of an assessment, wherever it runs (its own case or a call from another process).
STEPS = ("conduct_assessment", "notify_result")
# An assessment date may lie a little in the past (entered after the visit), never in the future.
MAX_BACKDATE_DAYS = 30


def assessment_seed(elder: Elder, reason: AssessmentReason | str, *, schedule_reassessment: bool) -> dict:
    """The case data an assessment starts from: who is assessed, why, and whether to follow up on expiry."""
    reason = AssessmentReason(reason)
    return {
        "elder_name": elder.name,
        "elder_age": elder.age_on(clock.today()),
        "assessment_reason": reason.value,
        "schedule_reassessment": schedule_reassessment,
    }


def in_progress(session: Session, elder_id: int) -> HumanTask | None:
    """The open step of an assessment of this elder (in any case), if one is under way."""
    return session.scalar(
        select(HumanTask).where(
            HumanTask.elder_id == elder_id,
            HumanTask.task_spec.in_(STEPS),
            HumanTask.status == TaskStatus.READY,
        )
    )


def already_assessing(session: Session, elder_id: int) -> str | None:
    """One assessment in progress per elder, in any case (the core asks this, under a lock, before
    starting an assessment case)."""
    busy = in_progress(session, elder_id)
    if busy is None:
        return None
    return f"{session.get(Elder, elder_id).name}有正在进行的能力评估（案件 #{busy.case_id}），请勿重复申请"


def request_assessment(
    session: Session,
    actor: User | None,
    elder_id: int,
    reason: AssessmentReason | str = AssessmentReason.INITIAL,
    *,
    schedule_reassessment: bool = True,
    note: str = "",
) -> Case:
    """Start an assessment case for an elder (`actor` None: started by the system, e.g. on expiry)."""
    if actor is not None:
        elders.require_role(actor, REQUEST_ROLES, "申请能力评估")
        elder = elders.get_elder(session, actor, elder_id)
    else:
        elder = session.get(Elder, elder_id)
        if elder is None:
            raise DomainError(f"老人档案 #{elder_id} 不存在")
    try:
        reason = AssessmentReason(reason)
    except ValueError:
        raise ValidationFailed(
            "评估类型不正确", field_errors={"reason": "评估类型须为首次评估、常规评估、即时评估或复评"}
        ) from None
    if elder.status != ElderStatus.ACTIVE:
        raise Conflict(f"{elder.name}的档案状态为{elders.STATUS_LABELS[elder.status]}，不能评估")
    data = assessment_seed(elder, reason, schedule_reassessment=schedule_reassessment)
    if note:
        data["request_note"] = note
    return cases.start_case(  # which refuses while another assessment is in progress (`already_assessing`)
        session,
        actor,
        PROCESS_KEY,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=data,
        title=f"能力评估（{reason.label}）：{elder.name}",
    )


def check_assessment_form(elder: Elder, data: Mapping, today: date) -> dict[str, str]:
    """Check what the JSON Schema cannot: the date, and every item against its group and range."""
    errors: dict[str, str] = {}
    try:
        day = as_date(data.get("assessed_on"))
    except ValueError:
        errors["assessed_on"] = "请填写评估日期（YYYY-MM-DD）"
    else:
        if day > today:
            errors["assessed_on"] = "评估日期不能晚于今天"
        elif day < today - timedelta(days=MAX_BACKDATE_DAYS):
            errors["assessed_on"] = f"评估日期不能早于{MAX_BACKDATE_DAYS}天前，请按实际入户评估日期填写"
        elif day < elder.birth_date:
            errors["assessed_on"] = "评估日期不能早于出生日期"
    for group in GROUPS:
        errors.update(_group_errors(group, data.get(group.key)))
    try:
        risk_event_count(data.get("special_conditions"))
    except AssessmentError as exc:
        errors["special_conditions"] = str(exc)
    return errors


def _group_errors(group, scores) -> dict[str, str]:
    """Field errors for one group of items, keyed like the form's fields (`self_care.eating`)."""
    if not isinstance(scores, Mapping):
        return {group.key: f"请填写“{group.name}”各项得分"}
    own = [item for item in ITEMS if item.group is group]
    errors = {
        f"{group.key}.{key}": "不属于本组的评估项目" for key in sorted(set(scores) - {i.key for i in own})
    }
    for item in own:
        score = scores.get(item.key)
        if score is None:
            errors[f"{group.key}.{item.key}"] = "此项为必填项"
        elif isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= item.max_score:
            errors[f"{group.key}.{item.key}"] = f"“{item.name}”的得分须为0–{item.max_score}的整数"
    return errors


def submit_assessment(session: Session, actor: User, task_id: str, data: dict) -> cases.Outcome:
    """Complete the assessor's step after checking the form; nothing is written when it is refused.

    The checks themselves run inside `tasks.complete` (declared with the process), for every caller.
    """
    return tasks.complete(session, actor, task_id, data)


def _assessor_of(session: Session, case_id: int) -> User | None:
    """The person who completed the latest on-site assessment step of the case."""
    actor_id = session.scalar(
        select(CaseEvent.actor_id)
        .where(
            CaseEvent.case_id == case_id,
            CaseEvent.task_spec == "conduct_assessment",
            CaseEvent.kind == EventKind.TASK_COMPLETED,
        )
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )
    return session.get(User, actor_id) if actor_id is not None else None


def record_result(session: Session, case, payload: Mapping, actor: User | None) -> Assessment:
    """Store the result a diagram threw on the elder's record, and end older cases waiting to reassess."""
    assessor = _assessor_of(session, case.id) or actor
    if assessor is None:
        raise DomainError("找不到完成现场评估的评估员，无法记录评估结果")
    level = DisabilityLevel(payload["level"])
    result = AssessmentResult(
        subtotals={},
        total=int(payload["total"]),
        base_level=level,
        level=level,
        adjustments=list(payload.get("adjustments") or []),
    )
    assessment = elders.record_assessment(
        session,
        assessor,
        int(payload["elder_id"]),
        result,
        as_date(payload["assessed_on"]),
        payload["reason"],
        case.id,
        items=dict(payload["items"]),
        valid_months=int(payload.get("valid_months") or 12),
    )
    supersede_waiting(session, assessment.elder_id, except_case_id=case.id, assessment_id=assessment.id)
    return assessment


def supersede_waiting(
    session: Session, elder_id: int, *, except_case_id: int, assessment_id: int
) -> list[int]:
    """Tell earlier assessment cases of the elder, waiting to start a reassessment, that a newer result exists."""
    waiting = session.scalars(
        select(Case.id)
        .join(CaseWait, CaseWait.case_id == Case.id)
        .where(
            CaseWait.event_name == "assessment_superseded",
            Case.elder_id == elder_id,
            Case.status == CaseStatus.RUNNING,
            Case.id != except_case_id,
        )
    ).all()
    moved = []
    for case_id in waiting:
        moved += cases.deliver_message(
            session, "assessment_superseded", {"assessment_id": assessment_id}, case_id=case_id
        )
    return moved


def start_routine(session: Session, case, payload: Mapping) -> Case | None:
    """Start the next (routine) assessment when a result nears expiry; skip elders no longer on the register."""
    elder = session.get(Elder, int(payload["elder_id"]))
    if elder is None or elder.status != ElderStatus.ACTIVE or in_progress(session, elder.id) is not None:
        return None
    return request_assessment(
        session,
        None,
        elder.id,
        payload.get("reason") or AssessmentReason.ROUTINE,
        schedule_reassessment=True,
        note=f"上次评估有效期至 {payload.get('previous_valid_until', '')}，按期常规评估",
    )


def check_assessment_step(session: Session, actor: User, task, case, data: Mapping) -> None:
    """Step check of `conduct_assessment`: the date and every item, against the elder assessed."""
    errors = check_assessment_form(session.get(Elder, case.elder_id), data, clock.today())
    if errors:
        raise ValidationFailed("评估表填写有误，请按提示修改", field_errors=errors)


def start_for_elder(session: Session, actor: User, elder: Elder, data: Mapping) -> Case:
    """Start an assessment from the application form (the starter of the process)."""
    return request_assessment(
        session,
        actor,
        elder.id,
        data.get("reason") or AssessmentReason.INITIAL,
        note=str(data.get("note") or ""),
    )


# Titles of the facts an assessment works out itself (no form writes them), for the case page.
DATA_TITLES = {
    "disability_level_label": "能力等级",
    "assessment_valid_until": "评估有效期至",
    "total": "能力评估总分",
    "request_note": "申请说明",
}


def data_labels(session: Session, data: Mapping) -> dict:
    return {"type": "object", "properties": {key: {"title": title} for key, title in DATA_TITLES.items()}}
