"""Home adaptation (家庭适老化改造): starting applications, objections during the public notice, the household file.

The steps themselves are the `home_adaptation` diagram; this module holds what happens around them: an
application pre-filled from the elder register, an objection (异议) lodged while the plan is on public notice
(it sends the case back to planning), the national item list for forms, and the household file (一户一档).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, clock, elders
from ...clock import today
from ...errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from ...models import Case, CaseEvent, CaseStatus, EventKind, Role, User
from ...rules import housing
from ...rules.phone import validate_phone

PROCESS_KEY = "home_adaptation"
START_ROLES = {Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN}
OBJECTION_ROLES = {Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.APPROVER, Role.ADMIN}

# The household category an elder's register flags suggest, most specific first.
_CATEGORY_FLAGS = (
    ("tekun", "tekun"),
    ("dibao", "dibao"),
    ("near_dibao", "near_dibao"),
    ("three_category_household", "three_category_household"),
)


def already_applied(session: Session, elder_id: int) -> str | None:
    """One application under way per elder (the core asks this, under a lock, before starting one)."""
    running = session.scalar(
        select(Case.id).where(
            Case.process_key == PROCESS_KEY, Case.elder_id == elder_id, Case.status == CaseStatus.RUNNING
        )
    )
    return None if running is None else f"该老人已有正在办理的适老化改造申请（案件 {running}）"


def start_application(session: Session, actor: User, elder_id: int) -> Case:
    """Start an adaptation application for an elder, pre-filled from the register (the assistant confirms it)."""
    if actor.role not in START_ROLES:
        raise PermissionDenied("只有养老协理员或乡镇经办人可以发起适老化改造申请")
    elder = elders.applicant(session, actor, elder_id)
    day = today()
    level = elder.current_disability_level(day)
    category = next((cat for flag, cat in _CATEGORY_FLAGS if getattr(elder, flag)), "other")
    data = {
        "elder_name": elder.name,
        "elder_age": elder.age_on(day),
        "household_category": category,
        "disability_level": level.value if level is not None else "none",
        "handicapped": elder.severe_handicap,
        "address": elder.address,
    }
    phone = next((p for p in (elder.phone, elder.guardian_phone) if p), None)
    if phone:
        data["contact_phone"] = phone
    return cases.start_case(  # which refuses a second application under way (`already_applied`)
        session,
        actor,
        PROCESS_KEY,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=data,
        title=f"{elder.name} 家庭适老化改造",
    )


def lodge_objection(
    session: Session,
    actor: User,
    *,
    case_id: int | None = None,
    elder_id: int | None = None,
    reason: str,
    objector: str = "",
    objector_phone: str = "",
) -> list[int]:
    """Record an objection to a plan on public notice; the case goes back to planning. Returns the case ids."""
    if actor.role not in OBJECTION_ROLES:
        raise PermissionDenied("您的角色不能登记公示异议")
    if case_id is None and elder_id is None:
        raise ValidationFailed("请指明案件或老年人", field_errors={"case_id": "此项为必填项"})
    errors = {}
    if not (reason or "").strip():
        errors["reason"] = "请填写异议内容"
    if objector_phone:
        try:
            objector_phone = validate_phone(objector_phone)
        except ValueError as exc:
            errors["objector_phone"] = str(exc)
    if errors:
        raise ValidationFailed("异议登记有误", field_errors=errors)
    if case_id is not None:
        case = cases.get_case(session, actor, case_id)
        if case.process_key != PROCESS_KEY:
            raise NotFound("该案件不是适老化改造案件")
    payload = {
        "reason": reason.strip(),
        "objector": objector.strip() or "匿名",
        "objector_phone": objector_phone,
        "lodged_at": clock.now().isoformat(),
        "lodged_by": actor.display_name,
    }
    delivered = cases.deliver_message(
        session, "adaptation_objection", payload, actor=actor, elder_id=elder_id, case_id=case_id
    )
    if not delivered:
        raise Conflict("该户改造方案不在公示期内，无法登记异议")
    return delivered


def item_catalogue() -> list[dict]:
    """The national list of 30 items with group and kind labels and the configured indicative unit prices."""
    groups = housing.adaptation_groups()
    return [
        {
            **item,
            "group_name": groups[item["group"]],
            "kind_name": housing.KIND_LABELS[item["kind"]],
            "label": housing.item_label(item),
        }
        for item in housing.adaptation_items().values()
    ]


# The household file: what each step contributed, in the order of the procedure.
_FILE_SECTIONS = (
    (
        "application",
        "申请",
        (
            "household_category",
            "elder_age",
            "disability_level",
            "handicapped",
            "applicant_name",
            "applicant_relation",
            "contact_phone",
            "address",
            "needs",
            "application_form",
            "eligibility_basis",
        ),
    ),
    (
        "home_assessment",
        "入户评估",
        (
            "assessed_on",
            "capability_level",
            "assessment_report_no",
            "environment_risks",
            "environment_notes",
            "recommended_items",
            "home_photo",
        ),
    ),
    (
        "adaptation_plan",
        "改造方案",
        ("plan", "plan_summary", "subsidy_cap", "signed_by", "signer_name", "signed_on", "signature_scan"),
    ),
    (
        "carry_out_works",
        "施工",
        (
            "contractor_name",
            "started_on",
            "finished_on",
            "before_photo_1",
            "before_photo_2",
            "before_photo_3",
            "after_photo_1",
            "after_photo_2",
            "after_photo_3",
            "works_note",
        ),
    ),
    (
        "acceptance_inspection",
        "验收",
        (
            "acceptance_result",
            "inspected_on",
            "inspectors",
            "elder_confirmed",
            "acceptance_note",
            "acceptance_record",
        ),
    ),
    ("subsidy_payment", "补助拨付", ("paid_amount", "paid_on", "voucher_no", "payee")),
    ("satisfaction_callback", "回访", ("called_on", "callback_method", "satisfaction", "callback_note")),
    ("archive_household_file", "归档", ("file_no", "documents_complete", "archive_note")),
)


def household_file(session: Session, actor: User, case_id: int) -> dict:
    """The household file (一户一档) of an adaptation case: each step's record, reviews, notice and objections."""
    case = cases.get_case(session, actor, case_id)
    if case.process_key != PROCESS_KEY:
        raise NotFound("该案件不是适老化改造案件")
    data = cases.case_data(case)
    events = list(
        session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq))
    )
    reviews, objections, notice_started = [], [], None
    for event in events:
        detail = json.loads(event.detail or "{}")
        if event.task_spec in ("township_review", "county_review") and event.kind in (
            EventKind.TASK_COMPLETED,
            EventKind.SENT_BACK,
        ):
            submitted = detail.get("data", {})
            reviews.append(
                {
                    "step": event.task_name,
                    "decision": submitted.get("decision"),
                    "comment": event.comment,
                    "at": event.at.isoformat(),
                    "by": event.actor_id,
                }
            )
        if event.kind == EventKind.MESSAGE_RECEIVED and detail.get("message") == "adaptation_objection":
            objections.append({**detail.get("payload", {}), "at": event.at.isoformat()})
        if event.task_spec == "adaptation_plan" and event.kind == EventKind.TASK_COMPLETED:
            notice_started = event.at.isoformat()
    return {
        "case_id": case.id,
        "elder_id": case.elder_id,
        "title": case.title,
        "status": case.status.value,
        "started_at": case.started_at.isoformat(),
        "ended_at": case.ended_at.isoformat() if case.ended_at else None,
        "sections": [
            {"step": step, "name": name, "record": {k: data[k] for k in keys if k in data}}
            for step, name, keys in _FILE_SECTIONS
        ],
        "reviews": reviews,
        "public_notice": {
            "last_started_at": notice_started,
            "days": housing.setting("adaptation", "public_notice_days"),
            "objections": objections,
        },
    }


# --------------------------------------------------------------------------------------------------
# Refusals: the diagram decided that a submission cannot be accepted (each returns the message and the
# field errors; the submission is refused and nothing of its step is written).


def refuse_application(payload: Mapping) -> tuple[str, dict[str, str]]:
    reason = payload.get("reason") or "不符合家庭适老化改造申请条件"
    return reason, {payload.get("field") or "household_category": reason}


def refuse_plan(payload: Mapping) -> tuple[str, dict[str, str]]:
    problems = dict(payload.get("problems") or {})
    message = "；".join(problems.values()) or payload.get("problem") or "改造方案有误"
    return f"改造方案未通过核算：{message}", problems or {"plan": message}


def refuse_payment(payload: Mapping) -> tuple[str, dict[str, str]]:
    subsidy = housing.to_amount(payload.get("subsidy"))
    paid = housing.to_amount(payload.get("paid_amount"))
    message = f"拨付金额应为核定补助 {housing.yuan(subsidy)}" + (
        f"，填写的是 {housing.yuan(paid)}" if paid is not None else ""
    )
    return message, {"paid_amount": message}
