"""What a nursing home's pages show: its queue with the explanation of every place, the offers under way
with their two deadlines (notify within 2 days of the bed coming free; the applicant comes within 5
working days), its beds by type, and the history of every vacancy with who was offered it and how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import access, clock, organisations
from ...elders import mask_name
from ...errors import NotFound, PermissionDenied
from ...models import Elder, Role, User
from ...models.admission import (
    OFFER_STATUS_LABELS,
    TIER_LABELS,
    BedVacancy,
    Facility,
    OfferStatus,
    VacancyStatus,
    WaitlistEntry,
    WaitlistOffer,
)
from ...models.base import is_row_id
from ...models.organisations import BED_TYPE_LABELS
from ...models.outbox import OutboxMessage, OutboxStatus
from . import waitlist

VACANCY_STATUS_LABELS = {
    VacancyStatus.OPEN: "空置（暂无可通知的申请人）",
    VacancyStatus.OFFERED: "已通知申请人",
    VacancyStatus.FILLED: "已入住",
    VacancyStatus.CANCELLED: "已撤销",
}
# Who sees a home's pages: its own staff, and the county's office (to supervise); who registers beds.
READERS = {Role.FACILITY_ADMIN, Role.ADMIN, Role.APPROVER, Role.AUDITOR}


@dataclass
class OfferLine:
    """One offer, as the home follows it up."""

    offer_id: int
    entry_id: int
    case_id: int
    elder_name: str
    tier_label: str
    bed_label: str
    seq: int
    offered_at: datetime
    notify_by: datetime  # the bed came free (or passed on) + 2 days
    notified_at: datetime | None  # when the SMS went out
    notice_status: str | None
    respond_by: datetime  # 5 working days
    status: OfferStatus
    status_label: str
    reason: str | None

    @property
    def notified_in_time(self) -> bool:
        return self.notified_at is not None and self.notified_at <= self.notify_by

    def days_left(self, now: datetime) -> int:
        return (clock.local_date(self.respond_by) - clock.local_date(now)).days


@dataclass
class VacancyView:
    vacancy: BedVacancy
    status_label: str
    registered_by: str | None
    offers: list[OfferLine] = field(default_factory=list)
    filled_by: str | None = None


@dataclass
class FacilityPage:
    facility: Facility
    beds: dict[str, int]  # bed type label -> count
    queue: list[waitlist.Position]
    offers: list[OfferLine]
    vacancies: list[VacancyView]
    can_register: bool


def readable_facilities(session: Session, actor: User) -> list[Facility]:
    """The homes whose pages the actor may open (a home's own staff: their home only)."""
    if actor.role not in READERS:
        return []
    return waitlist.list_facilities(session, actor)


def facility_for(session: Session, actor: User, facility_id) -> Facility:
    """A home whose pages the actor may open, or 403/404."""
    if not actor.is_active or actor.role not in READERS:
        raise PermissionDenied("您的角色不能查看养老机构的轮候和床位")
    facility = session.get(Facility, facility_id) if is_row_id(facility_id) else None
    if facility is None:
        raise NotFound("养老机构不存在")
    if not waitlist.sees_facility(actor, facility):
        raise PermissionDenied("只能查看本机构（本辖区）的轮候和床位")
    return facility


def page(session: Session, actor: User, facility_id) -> FacilityPage:
    """Everything the waitlist and beds pages of a home show."""
    facility = facility_for(session, actor, facility_id)
    counts = organisations.bed_counts(session, facility.id)
    beds = {BED_TYPE_LABELS[t]: n for t, n in counts.items() if n}
    vacancies = [
        _vacancy_view(session, actor, v)
        for v in session.scalars(
            select(BedVacancy)
            .where(BedVacancy.facility_id == facility.id)
            .order_by(BedVacancy.id.desc())
            .limit(100)
        )
    ]
    offers = [
        line
        for view in vacancies
        for line in view.offers
        if line.status in (OfferStatus.PENDING, OfferStatus.ARRIVED)
    ]
    return FacilityPage(
        facility=facility,
        beds=beds,
        queue=waitlist.waitlist(session, actor, facility),
        offers=sorted(offers, key=lambda o: o.respond_by),
        vacancies=vacancies,
        can_register=actor.role in waitlist.FACILITY_ROLES and waitlist.sees_facility(actor, facility),
    )


def _vacancy_view(session: Session, actor: User, vacancy: BedVacancy) -> VacancyView:
    days = int(waitlist.setting("notify_within_days"))
    registered_by = session.get(User, vacancy.registered_by) if vacancy.registered_by else None
    view = VacancyView(
        vacancy=vacancy,
        status_label=VACANCY_STATUS_LABELS[vacancy.status],
        registered_by=registered_by.display_name if registered_by else None,
    )
    free_since = vacancy.vacated_on
    for offer in session.scalars(
        select(WaitlistOffer).where(WaitlistOffer.vacancy_id == vacancy.id).order_by(WaitlistOffer.seq)
    ):
        entry = session.get(WaitlistEntry, offer.entry_id)
        elder = session.get(Elder, entry.elder_id)
        message = session.get(OutboxMessage, offer.message_id) if offer.message_id else None
        sent = message.sent_at if message is not None and message.status == OutboxStatus.SENT else None
        name = elder.name if access.covers(actor, entry.area_code) else mask_name(elder.name)
        view.offers.append(
            OfferLine(
                offer_id=offer.id,
                entry_id=entry.id,
                case_id=offer.case_id,
                elder_name=name,
                tier_label=TIER_LABELS[entry.tier],
                bed_label=vacancy.bed_label,
                seq=offer.seq,
                offered_at=offer.offered_at,
                notify_by=free_since + timedelta(days=days),
                notified_at=sent,
                notice_status=message.status.value if message is not None else None,
                respond_by=offer.respond_by,
                status=offer.status,
                status_label=OFFER_STATUS_LABELS[offer.status],
                reason=offer.reason,
            )
        )
        if offer.responded_at is not None:
            free_since = offer.responded_at
        if offer.status == OfferStatus.ADMITTED:
            view.filled_by = name
    return view
