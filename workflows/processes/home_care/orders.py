"""What a provider's pages show of its own work: the orders it was given (enrolments, and dispatches still
to accept), the services it recorded month by month, the settlements, and what was sent back and why.

A provider account of an organisation sees the whole organisation's work; an account not linked to one,
its own. Nothing of another provider's shows, whatever id is typed into a URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ... import cases
from ...errors import NotFound, PermissionDenied
from ...models import Case, CaseEvent, EventKind, HumanTask, Role, TaskStatus, User
from ...models.base import is_row_id
from ...models.care import EnrolmentStatus, HomeCareEnrolment, HomeCareMonth, MonthStatus
from ...models.elders import Elder
from ...models.organisations import Organisation
from .helpers import SIX_HELPS, amount
from .months import MONTH_PROCESS_KEY, month_label

STATUS_LABELS = {EnrolmentStatus.ACTIVE: "服务中", EnrolmentStatus.ENDED: "已终止"}
MONTH_STATUS_LABELS = {MonthStatus.OPEN: "待填报/核定", MonthStatus.SETTLED: "已结算"}


@dataclass
class Order:
    case_id: int
    elder_name: str
    area_code: str
    services: str
    level_label: str | None
    quota: Decimal | None
    status_label: str
    started_on: date | None
    ended_on: date | None = None
    end_reason: str | None = None
    waiting_task: str | None = None  # an open step of the provider's (accept the order)


@dataclass
class Service:
    day: str
    kind: str
    minutes: str
    amount: str
    staff: str
    content: str


@dataclass
class Month:
    id: int
    case_id: int | None
    month: date
    label: str
    elder_name: str
    status_label: str
    settled: bool
    service_count: int
    service_total: Decimal
    settlement: Decimal | None
    settled_at: datetime | None
    flags: list[str]
    services: list[Service] = field(default_factory=list)

    @property
    def cut(self) -> Decimal | None:
        """How much less than recorded was settled (a settled month only)."""
        if self.settlement is None:
            return None
        return self.service_total - self.settlement


@dataclass
class SentBack:
    case_id: int
    at: datetime
    step: str | None
    by: str | None
    reason: str | None
    elder_name: str


@dataclass
class ProviderPage:
    name: str
    orders: list[Order]
    months: list[Month]
    sent_back: list[SentBack]
    month_totals: dict[str, tuple[int, Decimal, Decimal]]  # label -> (services, recorded, settled)


def _require_provider(actor: User) -> None:
    if not actor.is_active or actor.role != Role.PROVIDER:
        raise PermissionDenied("只有服务机构可以查看本机构的订单与结算")


def _accounts(session: Session, actor: User) -> list[int]:
    """The provider accounts whose work this person sees: their organisation's, or their own."""
    if actor.organisation_id is None:
        return [actor.id]
    return list(session.scalars(select(User.id).where(User.organisation_id == actor.organisation_id)))


def _names(session: Session, elder_ids) -> dict[int, str]:
    ids = {i for i in elder_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Elder.id, Elder.name).where(Elder.id.in_(ids))).all())


def page(session: Session, actor: User, month: date | None = None) -> ProviderPage:
    """A provider's orders, months (all, or one month), settlements and what was sent back."""
    _require_provider(actor)
    accounts = _accounts(session, actor)
    organisation = session.get(Organisation, actor.organisation_id) if actor.organisation_id else None
    enrolments = list(
        session.scalars(
            select(HomeCareEnrolment)
            .where(HomeCareEnrolment.provider_id.in_(accounts))
            .order_by(HomeCareEnrolment.status, HomeCareEnrolment.started_on.desc())
        )
    )
    names = _names(session, [e.elder_id for e in enrolments])
    orders = [
        Order(
            case_id=e.case_id,
            elder_name=names.get(e.elder_id, ""),
            area_code=e.area_code,
            services="、".join(SIX_HELPS.get(s, s) for s in json.loads(e.services or "[]")),
            level_label=e.disability_level.label if e.disability_level else None,
            quota=e.monthly_quota,
            status_label=STATUS_LABELS[e.status],
            started_on=e.started_on,
            ended_on=e.ended_on,
            end_reason=e.end_reason.label if e.end_reason else None,
        )
        for e in enrolments
    ]
    orders = _to_accept(session, actor, accounts) + orders
    months = _months(session, accounts, {e.id: e for e in enrolments}, names, month)
    totals: dict[str, tuple[int, Decimal, Decimal]] = {}
    for m in months:
        count, recorded, settled = totals.get(m.label, (0, Decimal("0.00"), Decimal("0.00")))
        totals[m.label] = (count + m.service_count, recorded + m.service_total, settled + (m.settlement or 0))
    return ProviderPage(
        name=organisation.name if organisation else actor.display_name,
        orders=orders,
        months=months,
        sent_back=_sent_back(session, actor, accounts),
        month_totals=totals,
    )


def _to_accept(session: Session, actor: User, accounts: list[int]) -> list[Order]:
    """Dispatches waiting for the provider to accept (no enrolment yet)."""
    rows = session.execute(
        select(HumanTask, Case)
        .join(Case, Case.id == HumanTask.case_id)
        .where(
            HumanTask.status == TaskStatus.READY,
            HumanTask.role == Role.PROVIDER.value,
            Case.process_key != MONTH_PROCESS_KEY,
            _theirs(actor, accounts),
        )
        .order_by(HumanTask.created_at)
    ).all()
    names = _names(session, [c.elder_id for _t, c in rows])
    out = []
    for task, case in rows:
        data = cases.case_data(case)
        out.append(
            Order(
                case_id=case.id,
                elder_name=names.get(case.elder_id, ""),
                area_code=case.area_code or "",
                services=data.get("requested_services_label") or "",
                level_label=data.get("disability_level_label"),
                quota=amount(data["monthly_quota"]) if data.get("monthly_quota") not in (None, "") else None,
                status_label="待接单",
                started_on=None,
                waiting_task=task.id,
            )
        )
    return out


def _theirs(actor: User, accounts: list[int]):
    """Cases given to the actor's organisation, or (no organisation) whose provider step is the actor's."""
    if actor.organisation_id is not None:
        return Case.organisation_id == actor.organisation_id
    return or_(HumanTask.assignee_id.in_(accounts), HumanTask.completed_by.in_(accounts))


def _months(
    session: Session, accounts: list[int], enrolments: dict[int, HomeCareEnrolment], names, month: date | None
) -> list[Month]:
    if not enrolments:
        return []
    query = (
        select(HomeCareMonth)
        .where(HomeCareMonth.enrolment_id.in_(list(enrolments)))
        .order_by(HomeCareMonth.month.desc(), HomeCareMonth.id)
    )
    if month is not None:
        query = query.where(HomeCareMonth.month == month.replace(day=1))
    out = []
    for row in session.scalars(query.limit(500)):
        enrolment = enrolments[row.enrolment_id]
        out.append(_month_view(session, row, names.get(enrolment.elder_id, "")))
    return out


def _month_view(session: Session, row: HomeCareMonth, elder_name: str) -> Month:
    case = session.get(Case, row.case_id) if row.case_id else None
    data = cases.case_data(case) if case is not None else {}
    records = data.get("services") or []
    check = data.get("month_check") or {}
    recorded = [
        Service(
            day=str(r.get("service_date") or ""),
            kind=SIX_HELPS.get(r.get("service_type"), str(r.get("service_type") or "")),
            minutes=str(r.get("minutes") or ""),
            amount=str(r.get("amount") or ""),
            staff=str(r.get("staff_name") or ""),
            content=str(r.get("content") or ""),
        )
        for r in records
        if isinstance(r, dict)
    ]
    settled = row.status == MonthStatus.SETTLED
    total = row.service_total if settled else _sum(records)
    return Month(
        id=row.id,
        case_id=row.case_id,
        month=row.month,
        label=month_label(row.month),
        elder_name=elder_name,
        status_label=MONTH_STATUS_LABELS[row.status],
        settled=settled,
        service_count=row.service_count if settled else len(recorded),
        service_total=total,
        settlement=row.settlement_amount,
        settled_at=row.settled_at,
        flags=json.loads(row.flags or "[]") if settled else list(check.get("flags") or []),
        services=recorded,
    )


def _sum(records) -> Decimal:
    total = Decimal("0.00")
    for r in records:
        try:
            total += amount(r.get("amount", 0)) if isinstance(r, dict) else 0
        except ValueError:
            continue
    return total


def _sent_back(session: Session, actor: User, accounts: list[int]) -> list[SentBack]:
    """Steps of the provider's cases sent back (退回), with who sent them and why."""
    theirs = (
        select(Case.id).where(Case.organisation_id == actor.organisation_id)
        if actor.organisation_id is not None
        else select(HumanTask.case_id).where(
            or_(HumanTask.assignee_id.in_(accounts), HumanTask.completed_by.in_(accounts))
        )
    )
    rows = session.execute(
        select(CaseEvent, Case.elder_id)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.case_id.in_(theirs), CaseEvent.kind == EventKind.SENT_BACK)
        .order_by(CaseEvent.at.desc())
        .limit(200)
    ).all()
    people = dict(session.execute(select(User.id, User.display_name)).all()) if rows else {}
    names = _names(session, [elder for _e, elder in rows])
    return [
        SentBack(e.case_id, e.at, e.task_name, people.get(e.actor_id), e.comment, names.get(elder, ""))
        for e, elder in rows
    ]


def month_detail(session: Session, actor: User, month_id) -> Month:
    """One service month of the provider's, with every service recorded (404 for another provider's)."""
    _require_provider(actor)
    row = session.get(HomeCareMonth, month_id) if is_row_id(month_id) else None
    enrolment = session.get(HomeCareEnrolment, row.enrolment_id) if row is not None else None
    if enrolment is None or enrolment.provider_id not in _accounts(session, actor):
        raise NotFound("服务月记录不存在")
    return _month_view(session, row, _names(session, [enrolment.elder_id]).get(enrolment.elder_id, ""))


def months_with_work(session: Session, actor: User) -> list[date]:
    """The months the provider has service months in (for choosing one), newest first."""
    _require_provider(actor)
    accounts = _accounts(session, actor)
    return list(
        session.scalars(
            select(HomeCareMonth.month)
            .join(HomeCareEnrolment, HomeCareEnrolment.id == HomeCareMonth.enrolment_id)
            .where(HomeCareEnrolment.provider_id.in_(accounts))
            .distinct()
            .order_by(HomeCareMonth.month.desc())
        )
    )
