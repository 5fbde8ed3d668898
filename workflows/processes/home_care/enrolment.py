"""Government-purchased home care for low-income disabled elders (政府为经济困难失能老年人购买居家养老服务).

Applying starts a `home_care` case; its diagram checks eligibility, calls the capability assessment, takes
the township's review and the county's approval, dispatches a provider and enrols the elder. Every service
month is then a short `home_care_month` case, opened by `open_due_months` (the `care` job): the provider
records the 六助 it delivered, the township checks, calls back and settles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, clock, elders, enrolments, organisations, tasks
from ...clock import as_date
from ...errors import Conflict, NotFound, ValidationFailed
from ...models import Case, CaseStatus, Role, User
from ...models.base import is_row_id
from ...models.care import EnrolmentStatus, HomeCareEnrolment
from ...models.elders import Elder, ElderStatus
from ...models.organisations import Organisation
from ...rules.assessment import AssessmentReason, DisabilityLevel
from ...rules.phone import PhoneError, validate_phone
from .helpers import SIX_HELPS, amount

PROCESS_KEY = "home_care"
APPLY_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN})
WITHDRAW_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.APPROVER, Role.ADMIN})
APPLICANT_TYPES = {"self": "本人", "family": "家属", "proxy": "村(居)协理员代办"}
HOUSEHOLD_LABELS = {
    "tekun": "特困人员",
    "dibao": "低保对象",
    "near_dibao": "低保边缘家庭",
    "none": "一般家庭",
}


# --------------------------------------------------------------------------------------------------
# Applying


def household_of(elder: Elder) -> str:
    """The elder's economic-hardship category, as the `home_care_households` table reads it."""
    for flag in ("tekun", "dibao", "near_dibao"):
        if getattr(elder, flag):
            return flag
    return "none"


def clean_application(data: Mapping) -> tuple[dict, dict[str, str]]:
    """Check an application: who applies, how to reach them, which 六助 are asked for."""
    errors: dict[str, str] = {}
    out: dict = {}
    kind = str(data.get("applicant_type") or "").strip()
    if kind not in APPLICANT_TYPES:
        errors["applicant_type"] = "申请方式须为本人、家属或村(居)协理员代办"
    out["applicant_type"] = kind
    name = str(data.get("applicant_name") or "").strip()
    if kind in ("family", "proxy") and not name:
        errors["applicant_name"] = "家属申请或代办时须填写申请人姓名"
    elif len(name) > 32:
        errors["applicant_name"] = "申请人姓名过长：最多32个字"
    out["applicant_name"] = name
    relation = str(data.get("applicant_relation") or "").strip()
    if kind == "family" and not relation:
        errors["applicant_relation"] = "家属申请时须填写与老人的关系"
    out["applicant_relation"] = relation
    phone = str(data.get("applicant_phone") or "").strip()
    if phone:
        try:
            phone = validate_phone(phone)
        except PhoneError as exc:
            errors["applicant_phone"] = str(exc)
    elif kind != "self":
        errors["applicant_phone"] = "请填写申请人联系电话"
    out["applicant_phone"] = phone
    services = data.get("requested_services") or []
    if isinstance(services, str):
        services = [services]
    unknown = [s for s in services if s not in SIX_HELPS]
    if not services:
        errors["requested_services"] = "请至少选择一项“六助”服务"
    elif unknown:
        errors["requested_services"] = f"不是“六助”服务项目：{'、'.join(map(str, unknown))}"
    out["requested_services"] = [s for s in SIX_HELPS if s in services]
    note = str(data.get("application_note") or "").strip()
    if len(note) > 500:
        errors["application_note"] = "申请说明过长：最多500字"
    out["application_note"] = note
    return out, errors


def application_seed(elder: Elder, application: Mapping, today: date) -> dict:
    """The case data a home-care application starts from: the applicant's form and the elder's record."""
    level = elder.current_disability_level(today)
    household = household_of(elder)
    return {
        **application,
        "requested_services_label": "、".join(SIX_HELPS[s] for s in application["requested_services"]),
        "elder_name": elder.name,
        "elder_age": elder.age_on(today),
        "age": elder.age_on(today),
        "household": household,
        "household_label": HOUSEHOLD_LABELS[household],
        "disability_level": level.value if level else None,
        "disability_level_label": level.label if level else "无有效评估",
        "assessment_valid_until": elder.disability_valid_until.isoformat() if level else None,
        "assessment_reason": (
            AssessmentReason.INITIAL.value
            if elder.disability_assessed_on is None
            else AssessmentReason.ROUTINE.value
        ),
        "schedule_reassessment": False,  # the enrolment reassesses on its own timer
        "applied_on": today.isoformat(),
        "declined_providers": [],
    }


def running_application(session: Session, elder_id: int) -> Case | None:
    return session.scalar(
        select(Case).where(
            Case.process_key == PROCESS_KEY, Case.elder_id == elder_id, Case.status == CaseStatus.RUNNING
        )
    )


def already_applied(session: Session, elder_id: int) -> str | None:
    """One running application per elder (the core asks this, under a lock, before starting one)."""
    running = running_application(session, elder_id)
    if running is None:
        return None
    return f"{session.get(Elder, elder_id).name}已有在办的居家养老服务申请（案件 #{running.id}）"


def active_enrolment(session: Session, elder_id: int) -> HomeCareEnrolment | None:
    return session.scalar(
        select(HomeCareEnrolment).where(
            HomeCareEnrolment.elder_id == elder_id, HomeCareEnrolment.status == EnrolmentStatus.ACTIVE
        )
    )


def apply_home_care(session: Session, actor: User, elder_id: int, data: Mapping) -> Case:
    """Check an application (the elder, family, or the village assistant as proxy) and start its case."""
    elders.require_role(actor, APPLY_ROLES, "代办居家养老服务申请")
    elder = elders.get_elder(session, actor, elder_id)
    application, errors = clean_application(data)
    if errors:
        raise ValidationFailed("申请信息有误，请按提示修改", field_errors=errors)
    if elder.status != ElderStatus.ACTIVE:
        raise Conflict(f"{elder.name}的档案状态为{elders.STATUS_LABELS[elder.status]}，不能申请")
    enrolment = active_enrolment(session, elder.id)
    if enrolment is not None:
        raise Conflict(
            f"{elder.name}已在享受政府购买居家养老服务（自 {enrolment.started_on.isoformat()} 起）"
        )
    return cases.start_case(  # which refuses a second running application (`already_applied`)
        session,
        actor,
        PROCESS_KEY,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=application_seed(elder, application, clock.today()),
        title=f"居家养老服务申请：{elder.name}",
    )


def refer(session: Session, actor: User, elder_id: int, note: str = "") -> tuple[Case | None, str]:
    """Apply on an elder's behalf after a visit found the need; return the case, or why none was started."""
    if active_enrolment(session, elder_id) is not None:
        return None, "已在享受政府购买居家养老服务"
    running = running_application(session, elder_id)
    if running is not None:
        return None, f"已有在办申请（案件 #{running.id}）"
    application = {
        "applicant_type": "proxy",
        "applicant_name": actor.display_name,
        "applicant_phone": "",
        "requested_services": ["personal_care"],
        "application_note": f"探访发现需求：{note}" if note else "探访发现需求，协理员代办",
    }
    elder = elders.get_elder(session, actor, elder_id)
    seed = application_seed(elder, application, clock.today())
    case = cases.start_case(
        session,
        actor,
        PROCESS_KEY,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=seed,
        title=f"居家养老服务申请（探访转介）：{elder.name}",
    )
    return case, ""


# --------------------------------------------------------------------------------------------------
# Dispatching a provider


def provider_choices(session: Session, case: Case) -> list[User]:
    """The provider accounts a case may be dispatched to: active, covering the elder's area, not declined,
    and, for an account of an organisation, one under contract today that serves the elder's area and
    offers every 六助 applied for."""
    data = cases.case_data(case)
    declined = set(data.get("declined_providers") or [])
    services = data.get("requested_services") or []
    users = session.scalars(
        select(User).where(User.role == Role.PROVIDER, User.is_active.is_(True)).order_by(User.id)
    )
    return [
        u
        for u in users
        if u.id not in declined
        and case.area_code
        and u.covers(case.area_code)
        and _organisation_problem(session, u, case.area_code, services) is None
    ]


def _organisation_problem(session: Session, provider: User, area_code: str | None, services) -> str | None:
    organisation = session.get(Organisation, provider.organisation_id) if provider.organisation_id else None
    return organisations.why_not_dispatchable(session, organisation, area_code, services, clock.today())


def check_provider(session: Session, provider_id, area_code: str | None, declined=(), services=None) -> User:
    """The provider account a dispatch names, or a field error saying why it cannot take the order."""
    provider = session.get(User, provider_id) if is_row_id(provider_id) else None
    if provider is None or provider.role != Role.PROVIDER:
        raise ValidationFailed(
            "派单失败", field_errors={"provider_id": "请选择一家服务机构（账号编号不存在）"}
        )
    if not provider.is_active:
        raise ValidationFailed(
            "派单失败", field_errors={"provider_id": f"{provider.display_name}的账号已停用"}
        )
    if area_code and not provider.covers(area_code):
        raise ValidationFailed(
            "派单失败", field_errors={"provider_id": f"{provider.display_name}不在老人所在辖区服务"}
        )
    if provider.id in set(declined or ()):
        raise ValidationFailed(
            "派单失败", field_errors={"provider_id": f"{provider.display_name}已拒单或未响应，请选择其他机构"}
        )
    if services is not None:
        problem = _organisation_problem(session, provider, area_code, services)
        if problem:
            raise ValidationFailed("派单失败", field_errors={"provider_id": problem})
    return provider


def dispatch(session: Session, actor: User, task_id: str, data: dict) -> cases.Outcome:
    """Complete the dispatch step after checking the chosen provider.

    The checks themselves run inside `tasks.complete` (declared in the process), for every caller.
    """
    return tasks.complete(session, actor, task_id, data)


def assign_provider(session: Session, case, payload: Mapping) -> int:
    """Give the case's open provider steps to the provider named in the message (effect of a throw), and
    the case to the provider's organisation (its staff read it; no other organisation's do)."""
    area = case.area_code
    provider = check_provider(session, payload.get("provider_id"), area)
    cases.entrust(session, case, provider.organisation_id)
    return cases.assign_open_steps(session, case.id, Role.PROVIDER.value, provider.id)


# --------------------------------------------------------------------------------------------------
# The enrolment (effects of the home_care diagram's messages)


def enrol(session: Session, case, payload: Mapping) -> HomeCareEnrolment:
    """Create the enrolment when the provider has accepted; services start with the next calendar month."""
    elder_id = int(payload["elder_id"])
    if active_enrolment(session, elder_id) is not None:
        raise Conflict("该老人已在享受政府购买居家养老服务，不能重复纳入")
    today, now = clock.today(), clock.now()
    until = payload.get("assessment_valid_until")
    enrolment = HomeCareEnrolment(
        elder_id=elder_id,
        case_id=case.id,
        area_code=case.area_code,
        status=EnrolmentStatus.ACTIVE,
        disability_level=DisabilityLevel(payload["disability_level"]),
        monthly_quota=amount(payload["monthly_quota"]),
        provider_id=int(payload["provider_id"]),
        services=json.dumps(list(payload.get("services") or []), ensure_ascii=False),
        assessment_valid_until=as_date(until) if until else None,
        started_on=today,
        next_month=clock.first_of_next_month(today),
        created_at=now,
        updated_at=now,
    )
    session.add(enrolment)
    session.flush()
    return enrolment


def _enrolment_of_case(session: Session, case) -> HomeCareEnrolment:
    enrolment = session.scalar(
        select(HomeCareEnrolment)
        .where(HomeCareEnrolment.case_id == case.id)
        .order_by(HomeCareEnrolment.id.desc())
    )
    if enrolment is None:
        raise NotFound(f"案件 #{case.id} 没有对应的居家养老服务登记")
    return enrolment


def update_enrolment(session: Session, case, payload: Mapping) -> HomeCareEnrolment:
    """After a yearly reassessment: the new level, quota and assessment validity."""
    enrolment = _enrolment_of_case(session, case)
    enrolment.disability_level = DisabilityLevel(payload["disability_level"])
    enrolment.monthly_quota = amount(payload["monthly_quota"])
    until = payload.get("assessment_valid_until")
    enrolment.assessment_valid_until = as_date(until) if until else None
    enrolment.updated_at = clock.now()
    session.flush()
    return enrolment


def end_enrolment(session: Session, case, payload: Mapping) -> HomeCareEnrolment | None:
    """End the enrolment (death, moving away, withdrawal, loss of eligibility); no further months open."""
    return enrolments.end_active(session, HomeCareEnrolment, case, payload)


def withdraw(session: Session, actor: User, elder_id: int, reason: str) -> list[int]:
    """Record the elder's request to leave the service: the enrolment case ends it."""
    return enrolments.request_withdrawal(
        session,
        actor,
        elder_id,
        reason,
        message="home_care_withdrawn",
        roles=WITHDRAW_ROLES,
        action="办理退出",
        nothing_running="{name}没有正在享受的政府购买居家养老服务",
    )


# --------------------------------------------------------------------------------------------------
# What the process declares


def start_for_elder(session: Session, actor: User, elder: Elder, data: Mapping) -> Case:
    """Start an application from the application form (the starter of the process)."""
    return apply_home_care(session, actor, elder.id, data)


def application_errors(data: Mapping) -> dict[str, str]:
    return clean_application(data)[1]


def check_dispatch(session: Session, actor: User, task, case, data: Mapping) -> None:
    """Step check of `dispatch_provider`: a provider that serves the area and has not declined this case."""
    current = cases.case_data(session.get(Case, case.id))
    check_provider(
        session,
        data.get("provider_id"),
        case.area_code,
        current.get("declined_providers"),
        current.get("requested_services") or [],
    )


def provider_options(session: Session, case: Case) -> list[tuple[int, str]]:
    choices = provider_choices(session, case)
    names = organisations.organisation_names(session, [u.organisation_id for u in choices])
    return [(u.id, _provider_label(u, names.get(u.organisation_id))) for u in choices]


def _provider_label(provider: User, organisation: str | None) -> str:
    """An account by its organisation's name (and the person, when the account is a person's)."""
    if organisation is None or organisation == provider.display_name:
        return provider.display_name
    return f"{organisation}（{provider.display_name}）"


# Titles of the facts the home-care processes work out themselves (no form writes them), for the case page.
DATA_TITLES = {
    "applied_on": "申请日期",
    "household_label": "困难类别",
    "eligibility_reason": "资格审核结果",
    "monthly_quota": "月度服务额度（元）",
    "month_label": "服务月份",
}


def data_labels(session: Session, data: Mapping) -> dict:
    """Labels for a case's data: computed facts, and the provider accounts it names by id."""
    properties: dict = {key: {"title": title} for key, title in DATA_TITLES.items()}
    ids = [data.get("provider_id"), *(data.get("declined_providers") or [])]
    ids = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
    if ids:
        names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())
        choices = [{"const": user_id, "title": name} for user_id, name in names.items()]
        properties["provider_id"] = {"title": "服务机构", "oneOf": choices}
        properties["declined_providers"] = {"title": "已拒单或未响应的服务机构", "items": {"oneOf": choices}}
    return {"type": "object", "properties": properties}
