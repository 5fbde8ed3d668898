"""Public nursing homes (公办养老机构), their waiting lists (轮候), vacant beds and the offers made from them.

The queue of a facility is the set of its entries that are still waiting; its order is always computed, never
stored: tier (特殊保障 → 优先保障 → 普通轮候), then application time, then entry id (so two applications of the
same tier made in the same minute are ordered by who was registered first, deterministically). Every offer,
skip, refusal and removal is appended to `waitlist_events`, so the queue can be explained and audited.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, ValueEnum


class Tier(StrEnum):
    """Queue tiers of seed 004 §三(三), in order of priority."""

    SPECIAL = "special"  # 特殊保障
    PRIORITY = "priority"  # 优先保障
    ORDINARY = "ordinary"  # 普通轮候


TIER_LABELS = {Tier.SPECIAL: "特殊保障", Tier.PRIORITY: "优先保障", Tier.ORDINARY: "普通轮候"}
TIER_RANK = {Tier.SPECIAL: 1, Tier.PRIORITY: 2, Tier.ORDINARY: 3}


class EntryStatus(StrEnum):
    WAITING = "waiting"  # in the queue, no offer outstanding
    OFFERED = "offered"  # in the queue, holding an offer (notified, assessment pending)
    ADMITTED = "admitted"
    REMOVED = "removed"  # too many declines/no-shows; may carry a ban
    WITHDRAWN = "withdrawn"  # the applicant withdrew (or the case was ended)
    NOT_ADMITTED = "not_admitted"  # the admission assessment found the applicant unsuitable


ACTIVE_STATUSES = (EntryStatus.WAITING, EntryStatus.OFFERED)

ENTRY_STATUS_LABELS = {
    EntryStatus.WAITING: "轮候中",
    EntryStatus.OFFERED: "已通知入住评估",
    EntryStatus.ADMITTED: "已入住",
    EntryStatus.REMOVED: "已移出轮候名单",
    EntryStatus.WITHDRAWN: "已撤回申请",
    EntryStatus.NOT_ADMITTED: "入住评估未通过",
}


class VacancyStatus(StrEnum):
    OPEN = "open"  # free, nobody holds an offer for it (nobody eligible was waiting)
    OFFERED = "offered"  # an offer for it is outstanding
    FILLED = "filled"
    CANCELLED = "cancelled"


class OfferStatus(StrEnum):
    PENDING = "pending"  # notified; waiting for the applicant to come for the admission assessment
    ARRIVED = "arrived"  # came; assessment under way
    ADMITTED = "admitted"
    DECLINED = "declined"
    NO_SHOW = "no_show"  # did not come within the deadline
    UNSUITABLE = "unsuitable"  # the admission assessment found them unsuitable
    CANCELLED = "cancelled"  # withdrawn by the system (case ended, vacancy cancelled)


# Outcomes that count towards the refusal limit.
REFUSALS = (OfferStatus.DECLINED, OfferStatus.NO_SHOW)

OFFER_STATUS_LABELS = {
    OfferStatus.PENDING: "已通知，待到场评估",
    OfferStatus.ARRIVED: "已到场评估",
    OfferStatus.ADMITTED: "已入住",
    OfferStatus.DECLINED: "放弃入住",
    OfferStatus.NO_SHOW: "逾期未到场",
    OfferStatus.UNSUITABLE: "入住评估未通过",
    OfferStatus.CANCELLED: "已撤销",
}


class QueueEventKind(StrEnum):
    JOINED = "joined"
    OFFERED = "offered"
    SKIPPED = "skipped"
    NOTIFIED = "notified"
    ARRIVED = "arrived"
    DECLINED = "declined"
    NO_SHOW = "no_show"
    UNSUITABLE = "unsuitable"
    ADMITTED = "admitted"
    REMOVED = "removed"
    WITHDRAWN = "withdrawn"
    VACANCY_REGISTERED = "vacancy_registered"
    VACANCY_OPEN = "vacancy_open"  # nobody to offer it to: stays open until someone joins
    DEADLINE_CHANGED = "deadline_changed"  # the arrival deadline moved with the working-day calendar


class Facility(Base):
    """A public nursing home that takes admissions from a waiting list."""

    __tablename__ = "facilities"
    # One home per organisation (a unique index: what SQLite can add to a table in use).
    __table_args__ = (Index("uq_facilities_organisation_id", "organisation_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    area_code: Mapped[str] = mapped_column(
        ForeignKey("areas.code"), index=True
    )  # where it is (usually a county)
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    beds: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    # The organisation whose staff run the home (their accounts see only this home's waitlist and cases).
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))


class WaitlistEntry(Base):
    """One application on one facility's waiting list, linked to its admission case."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        Index("ix_waitlist_entries_queue", "facility_id", "status", "tier_rank", "applied_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)  # the elder's village, for scope checks
    tier: Mapped[Tier] = mapped_column(ValueEnum(Tier, 16))
    tier_rank: Mapped[int] = mapped_column(Integer)  # TIER_RANK[tier], stored so the queue order is one index
    tier_reason: Mapped[str] = mapped_column(String(200), default="")
    applied_at: Mapped[datetime]
    joined_at: Mapped[datetime]
    status: Mapped[EntryStatus] = mapped_column(ValueEnum(EntryStatus, 16))
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    banned_until: Mapped[datetime | None]  # set on removal: no new application before this time


class BedVacancy(Base):
    """A bed that became free, registered by the facility; offered down the queue until filled."""

    __tablename__ = "bed_vacancies"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    bed_label: Mapped[str] = mapped_column(String(50))
    vacated_on: Mapped[datetime]  # when the bed became free (the 2-day notification rule counts from here)
    registered_at: Mapped[datetime]
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[VacancyStatus] = mapped_column(ValueEnum(VacancyStatus, 16), index=True)
    filled_at: Mapped[datetime | None]
    filled_by_entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entries.id"))
    note: Mapped[str] = mapped_column(Text, default="")


class WaitlistOffer(Base):
    """A vacant bed offered to one entry: when, until when, and how it ended."""

    __tablename__ = "waitlist_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    vacancy_id: Mapped[int] = mapped_column(ForeignKey("bed_vacancies.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1 for the vacancy's first offer, 2 for the next, ...
    offered_at: Mapped[datetime]
    respond_by: Mapped[datetime]  # end of the last working day for coming to the admission assessment
    status: Mapped[OfferStatus] = mapped_column(ValueEnum(OfferStatus, 16), index=True)
    responded_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id"))  # the SMS that notified


class WaitlistEvent(Base):
    """Append-only log of everything that happened to a queue: joins, offers, skips (with why), outcomes."""

    __tablename__ = "waitlist_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entries.id"), index=True)
    vacancy_id: Mapped[int | None] = mapped_column(ForeignKey("bed_vacancies.id"), index=True)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_offers.id"))
    kind: Mapped[QueueEventKind] = mapped_column(ValueEnum(QueueEventKind, 24))
    position: Mapped[int | None] = mapped_column(Integer)  # the entry's place in the queue at that moment
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
