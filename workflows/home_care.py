"""Government-purchased home care for low-income disabled elders (政府为经济困难失能老年人购买居家养老服务).

Applying starts a `home_care` case; its diagram checks eligibility, calls the capability assessment, takes
the township's review and the county's approval, dispatches a provider and enrols the elder. Every service
month is then a short `home_care_month` case, opened by `open_due_months` (the `care` job): the provider
records the 六助 it delivered, the township checks, calls back and settles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import cases, clock, elders, enrolments, tasks
from .diagram_functions.care import LOCAL, SIX_HELPS, amount, as_date, month_end
from .errors import Conflict, NotFound, ValidationFailed
from .models import Case, CaseStatus, HumanTask, Role, TaskStatus, User
from .models.base import is_row_id
from .models.care import EndReason, EnrolmentStatus, HomeCareEnrolment, HomeCareMonth, MonthStatus
from .models.elders import Elder, ElderStatus
from .rules.assessment import AssessmentReason, DisabilityLevel
from .rules.phone import PhoneError, validate_phone

PROCESS_KEY = "home_care"
MONTH_PROCESS_KEY = "home_care_month"
APPLY_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN})
WITHDRAW_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.APPROVER, Role.ADMIN})
APPLICANT_TYPES = {"self": "本人", "family": "家属", "proxy": "村(居)协理员代办"}
# As in the month diagram's timer `end_of_day(month_end, 5)`.
RECORDS_DAYS_AFTER_MONTH = 5
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
    running = running_application(session, elder.id)
    if running is not None:
        raise Conflict(f"{elder.name}已有在办的居家养老服务申请（案件 #{running.id}）")
    return cases.start_case(
        session,
        actor,
        PROCESS_KEY,
        area_code=elder.residence_area_code,
        elder_id=elder.id,
        data=application_seed(elder, application, elders.today()),
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
    seed = application_seed(elder, application, elders.today())
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
    """The provider accounts a case may be dispatched to (active, covering the elder's area, not declined)."""
    declined = set(cases.case_data(case).get("declined_providers") or [])
    users = session.scalars(
        select(User).where(User.role == Role.PROVIDER, User.is_active.is_(True)).order_by(User.id)
    )
    return [u for u in users if u.id not in declined and case.area_code and u.covers(case.area_code)]


def check_provider(session: Session, provider_id, area_code: str | None, declined=()) -> User:
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
    return provider


def dispatch(session: Session, actor: User, task_id: str, data: dict) -> cases.Outcome:
    """Complete the dispatch step after checking the chosen provider.

    The checks themselves run inside `tasks.complete` (workflows/step_checks), for every caller.
    """
    return tasks.complete(session, actor, task_id, data)


def assign_provider(session: Session, case, payload: Mapping) -> int:
    """Give the case's open provider steps to the provider named in the message (effect of a throw)."""
    area = case.area_code
    provider = check_provider(session, payload.get("provider_id"), area)
    result = session.execute(
        update(HumanTask)
        .where(
            HumanTask.case_id == case.id,
            HumanTask.role == Role.PROVIDER.value,
            HumanTask.status == TaskStatus.READY,
        )
        .values(assignee_id=provider.id, claimed_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


# --------------------------------------------------------------------------------------------------
# The enrolment (effects of the home_care diagram's messages)


def first_of_next_month(day: date) -> date:
    return month_end(day) + timedelta(days=1)


def enrol(session: Session, case, payload: Mapping) -> HomeCareEnrolment:
    """Create the enrolment when the provider has accepted; services start with the next calendar month."""
    elder_id = int(payload["elder_id"])
    if active_enrolment(session, elder_id) is not None:
        raise Conflict("该老人已在享受政府购买居家养老服务，不能重复纳入")
    today, now = elders.today(), clock.now()
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
        next_month=first_of_next_month(today),
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


def month_label(first: date) -> str:
    return f"{first.year}年{first.month}月"


def month_seed(enrolment: HomeCareEnrolment, elder: Elder, provider: User | None, first: date) -> dict:
    level = DisabilityLevel(enrolment.disability_level)
    return {
        "enrolment_id": enrolment.id,
        "elder_name": elder.name,
        "disability_level": level.value,
        "disability_level_label": level.label,
        "provider_id": enrolment.provider_id,
        "provider_name": provider.display_name if provider else "",
        "month_start": first.isoformat(),
        "month_end": month_end(first).isoformat(),
        "month_label": month_label(first),
    }


def open_month(session: Session, enrolment: HomeCareEnrolment, first: date) -> HomeCareMonth:
    """Open the service month starting `first` for an enrolment (one short case per month); idempotent."""
    first = first.replace(day=1)
    existing = session.scalar(
        select(HomeCareMonth).where(HomeCareMonth.enrolment_id == enrolment.id, HomeCareMonth.month == first)
    )
    if existing is not None:
        return existing
    elder = session.get(Elder, enrolment.elder_id)
    provider = session.get(User, enrolment.provider_id)
    month = HomeCareMonth(
        enrolment_id=enrolment.id, month=first, status=MonthStatus.OPEN, created_at=clock.now()
    )
    session.add(month)
    session.flush()
    case = cases.start_case(
        session,
        None,
        MONTH_PROCESS_KEY,
        area_code=enrolment.area_code,
        elder_id=enrolment.elder_id,
        data=month_seed(enrolment, elder, provider, first),
        title=f"居家上门服务 {month_label(first)}：{elder.name}",
        parent_case_id=enrolment.case_id,
    )
    month.case_id = case.id
    # The diagram's deadline (5 days after the month) is a date, not a fixed number of days: show it in the inbox.
    set_due(session, case.id, "record_services", month_end(first) + timedelta(days=RECORDS_DAYS_AFTER_MONTH))
    session.flush()
    return month


def set_due(session: Session, case_id: int, task_spec: str, day: date) -> None:
    """Give an open step whose deadline depends on the case (a period's end) its due date: end of that day."""
    session.execute(
        update(HumanTask)
        .where(
            HumanTask.case_id == case_id,
            HumanTask.task_spec == task_spec,
            HumanTask.status == TaskStatus.READY,
        )
        .values(due_at=datetime.combine(day, time(23, 59, 59), LOCAL))
        .execution_options(synchronize_session=False)
    )


def open_due_months(session: Session, *, limit: int = 50) -> int:
    """Open every service month that has begun for an active enrolment (one batch); return how many."""
    query = (
        select(HomeCareEnrolment)
        .where(
            HomeCareEnrolment.status == EnrolmentStatus.ACTIVE, HomeCareEnrolment.next_month <= elders.today()
        )
        .order_by(HomeCareEnrolment.next_month, HomeCareEnrolment.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    opened = 0
    for enrolment in session.scalars(query).all():
        opened += 1
        if close_if_off_register(session, enrolment):
            continue
        open_month(session, enrolment, enrolment.next_month)
        enrolment.next_month = first_of_next_month(enrolment.next_month)
        enrolment.updated_at = clock.now()
    session.flush()
    return opened


def close_if_off_register(session: Session, enrolment) -> bool:
    """End an enrolment whose elder the register shows as deceased or moved away, through its case.

    The register should have delivered `elder_died` / `elder_moved_away` already; this catches a missed
    message before a period is opened for someone no longer there. Works for both kinds of enrolment.
    """
    elder = session.get(Elder, enrolment.elder_id)
    if elder.status == ElderStatus.ACTIVE:
        return False
    if elder.status == ElderStatus.DECEASED:
        name, reason = "elder_died", EndReason.DECEASED
        payload = {"on": elder.deceased_on.isoformat() if elder.deceased_on else None, "source": "老人档案"}
    else:
        name, reason, payload = "elder_moved_away", EndReason.MOVED_AWAY, {"source": "老人档案"}
    if not cases.deliver_message(session, name, payload, case_id=enrolment.case_id):
        # The enrolment's case no longer waits for it (ended by hand): close the record itself.
        enrolment.status = EnrolmentStatus.ENDED
        enrolment.end_reason = reason
        enrolment.ended_on = elders.today()
        enrolment.updated_at = clock.now()
    session.flush()
    return True


def check_services(services, month_start, today: date) -> dict[str, str]:
    """Field errors for a month's service records: each inside the service month, not in the future, a 六助."""
    first = as_date(month_start)
    last = month_end(first)
    errors: dict[str, str] = {}
    if not isinstance(services, list):
        return {"services": "服务记录格式不正确"}
    for index, record in enumerate(services):
        where = f"services.{index}"
        if not isinstance(record, Mapping):
            errors[where] = "服务记录格式不正确"
            continue
        try:
            day = as_date(record.get("service_date"))
        except ValueError:
            errors[f"{where}.service_date"] = "请填写服务日期（YYYY-MM-DD）"
        else:
            if not first <= day <= last:
                errors[f"{where}.service_date"] = (
                    f"服务日期 {day.isoformat()} 不在本服务月（{month_label(first)}）内"
                )
            elif day > today:
                errors[f"{where}.service_date"] = f"服务日期 {day.isoformat()} 晚于今天，不能预先填报"
        if record.get("service_type") not in SIX_HELPS:
            errors[f"{where}.service_type"] = "服务类别须为“六助”之一"
        try:
            amount(record.get("amount"))
        except ValueError:
            errors[f"{where}.amount"] = "服务金额应为不超过两位小数的非负数（元）"
    return errors


def record_services(session: Session, actor: User, task_id: str, data: dict) -> cases.Outcome:
    """Complete the provider's monthly record after checking every record; nothing is written when refused.

    The checks themselves run inside `tasks.complete` (workflows/step_checks), for every caller.
    """
    return tasks.complete(session, actor, task_id, data)


def check_settlement(month_check: Mapping, value) -> dict[str, str]:
    """Field errors for a settlement amount: a valid amount, within the quota and the verified services."""
    try:
        settled = amount(value)
    except ValueError:
        return {"settlement_amount": "结算金额应为不超过两位小数的非负数（元）"}
    quota, total = amount(month_check["quota"]), amount(month_check["service_total"])
    if settled > quota:
        return {"settlement_amount": f"结算金额 {settled} 元超出本月服务额度 {quota} 元"}
    if settled > total:
        return {"settlement_amount": f"结算金额 {settled} 元超出本月服务记录金额 {total} 元"}
    return {}


def settle(session: Session, actor: User, task_id: str, data: dict) -> cases.Outcome:
    """Complete the township's settlement after checking the amount.

    The checks themselves run inside `tasks.complete` (workflows/step_checks), for every caller.
    """
    return tasks.complete(session, actor, task_id, data)


def record_settlement(session: Session, case, payload: Mapping, actor: User | None) -> HomeCareMonth:
    """Store a settled month (effect of the month diagram's `settle_home_care_month`)."""
    month = session.scalar(
        select(HomeCareMonth).where(
            HomeCareMonth.enrolment_id == int(payload["enrolment_id"]),
            HomeCareMonth.month == as_date(payload["month_start"]),
        )
    )
    if month is None:
        raise NotFound("找不到该服务月的登记")
    check = payload["month_check"]
    errors = check_settlement(check, payload.get("settlement_amount"))
    if errors:
        raise ValidationFailed("结算金额有误", field_errors=errors)
    month.status = MonthStatus.SETTLED
    month.service_count = int(check["service_count"])
    month.service_total = amount(check["service_total"])
    month.flagged = bool(check["flagged"])
    month.flags = json.dumps(list(check["flags"]), ensure_ascii=False)
    month.callback = json.dumps(payload["callback"], ensure_ascii=False) if payload.get("callback") else None
    month.settlement_amount = amount(payload["settlement_amount"])
    month.settled_at = clock.now()
    month.settled_by = actor.id if actor is not None else None
    session.flush()
    return month


def settled_total(session: Session, area_code: str, first: date) -> Decimal:
    """What the settled months of an area cost in one month (for the county's payment)."""
    rows = session.scalars(
        select(HomeCareMonth.settlement_amount)
        .join(HomeCareEnrolment, HomeCareEnrolment.id == HomeCareMonth.enrolment_id)
        .where(
            HomeCareMonth.month == first.replace(day=1),
            HomeCareMonth.status == MonthStatus.SETTLED,
            elders.in_area(HomeCareEnrolment.area_code, area_code),
        )
    )
    return sum((r or Decimal("0") for r in rows), Decimal("0.00"))
