"""The home-care service month: one short `home_care_month` case per enrolment and month, opened by the
process's job; the provider records the 六助 it delivered, the township checks, calls back and settles."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import cases, clock, elders, enrolments, tasks
from ...clock import as_date, month_end
from ...errors import NotFound, ValidationFailed
from ...models import Case, User
from ...models.care import HomeCareEnrolment, HomeCareMonth, MonthStatus
from ...models.elders import Elder
from ...rules.assessment import DisabilityLevel
from .helpers import SIX_HELPS, amount

MONTH_PROCESS_KEY = "home_care_month"
# As in the month diagram's timer `end_of_day(month_end, 5)`.
RECORDS_DAYS_AFTER_MONTH = 5


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
    # Written with its case in one insert (the job opens thousands); the month's unique key still refuses
    # a second one, rolling the case back with it.
    month = HomeCareMonth(
        enrolment_id=enrolment.id,
        month=first,
        status=MonthStatus.OPEN,
        created_at=clock.now(),
        case_id=case.id,
    )
    session.add(month)
    # The diagram's deadline (5 days after the month) is a date, not a fixed number of days: show it in the inbox.
    enrolments.set_due(
        session, case.id, "record_services", month_end(first) + timedelta(days=RECORDS_DAYS_AFTER_MONTH)
    )
    session.flush()
    return month


def open_due_months(session: Session, *, limit: int = 50) -> int:
    """Open every service month that has begun for an active enrolment (one batch); return how many."""

    def open_next(session: Session, enrolment: HomeCareEnrolment) -> date:
        open_month(session, enrolment, enrolment.next_month)
        return clock.first_of_next_month(enrolment.next_month)

    return enrolments.open_due(
        session, HomeCareEnrolment, HomeCareEnrolment.next_month, open_next, limit=limit
    )


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

    The checks themselves run inside `tasks.complete` (declared in the process), for every caller.
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

    The checks themselves run inside `tasks.complete` (declared in the process), for every caller.
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


def check_services_step(session: Session, actor: User, task, case, data: Mapping) -> None:
    """Step check of `record_services`: every record inside the month, not in the future, a 六助."""
    month_start = cases.case_data(session.get(Case, case.id))["month_start"]
    errors = check_services(data.get("services"), month_start, clock.today())
    if errors:
        raise ValidationFailed("服务记录有误，请按提示修改", field_errors=errors)


def check_settlement_step(session: Session, actor: User, task, case, data: Mapping) -> None:
    """Step check of `township_settlement`: within the quota and the services verified."""
    errors = check_settlement(
        cases.case_data(session.get(Case, case.id))["month_check"], data.get("settlement_amount")
    )
    if errors:
        raise ValidationFailed("结算金额有误", field_errors=errors)
