"""Enrolments in purchased home care and visiting care, their service months and visits.

An enrolment is the long-lived relationship; each service month and each visit period is a short case
of its own (started by `workflows.jobs.care`), recorded here with its outcome.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..rules.assessment import DisabilityLevel
from .base import Base, ValueEnum


class EnrolmentStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class EndReason(StrEnum):
    DECEASED = "deceased"  # 身故
    MOVED_AWAY = "moved_away"  # 迁出
    WITHDRAWN = "withdrawn"  # 本人申请退出
    INELIGIBLE = "ineligible"  # 复评不再符合（能力等级）
    HOUSEHOLD = "household"  # 退出低保等经济困难类别
    REVIEWED = "reviewed"  # 年度复核后不再纳入（探访关爱）

    @property
    def label(self) -> str:
        return _END_LABELS[self]


_END_LABELS = {
    EndReason.DECEASED: "老人身故",
    EndReason.MOVED_AWAY: "迁出本县",
    EndReason.WITHDRAWN: "本人申请退出",
    EndReason.INELIGIBLE: "复评不再符合条件",
    EndReason.HOUSEHOLD: "不再属于保障的经济困难对象",
    EndReason.REVIEWED: "年度复核后不再纳入",
}


class MonthStatus(StrEnum):
    OPEN = "open"  # the provider records, the township verifies
    SETTLED = "settled"


class VisitFrequency(StrEnum):
    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"


class VisitStatus(StrEnum):
    DUE = "due"
    OVERDUE = "overdue"  # the period ended without a visit: flagged, the township supervises
    DONE = "done"
    DONE_LATE = "done_late"  # recorded after the period had been flagged overdue


class VisitMethod(StrEnum):
    PHONE = "phone"  # 电话探访
    ONLINE = "online"  # 视频（线上）探访
    ENCOUNTER = "encounter"  # 路遇探访
    HOME = "home"  # 入户探访


class HomeCareEnrolment(Base):
    """An elder receiving government-purchased home care (政府购买居家养老服务)."""

    __tablename__ = "home_care_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)  # the home_care case
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[EnrolmentStatus] = mapped_column(ValueEnum(EnrolmentStatus), index=True)
    disability_level: Mapped[DisabilityLevel] = mapped_column(ValueEnum(DisabilityLevel, 16))
    monthly_quota: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    provider_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    services: Mapped[str] = mapped_column(Text, default="[]")  # JSON text: the 六助 applied for
    assessment_valid_until: Mapped[date | None] = mapped_column(Date)
    started_on: Mapped[date] = mapped_column(Date)
    # The first day of the next service month to open a case for; the job advances it.
    next_month: Mapped[date] = mapped_column(Date, index=True)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[EndReason | None] = mapped_column(ValueEnum(EndReason, 16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class HomeCareMonth(Base):
    """One service month of an enrolment: its case, the provider's records checked, the settlement."""

    __tablename__ = "home_care_months"
    __table_args__ = (UniqueConstraint("enrolment_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("home_care_enrolments.id"), index=True)
    month: Mapped[date] = mapped_column(Date)  # the first day of the month
    # Set once the month's case has started (the row exists first, so a timer firing at start finds it).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    status: Mapped[MonthStatus] = mapped_column(ValueEnum(MonthStatus))
    service_count: Mapped[int] = mapped_column(Integer, default=0)
    service_total: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    flagged: Mapped[bool] = mapped_column(default=False)
    flags: Mapped[str] = mapped_column(Text, default="[]")  # JSON text: the reasons, in Chinese
    callback: Mapped[str | None] = mapped_column(Text)  # JSON text: the call-back record, when made
    settlement_amount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    settled_at: Mapped[datetime | None]
    settled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class VisitingEnrolment(Base):
    """An elder on the visiting-care list (特殊困难老年人探访关爱), visited once per period."""

    __tablename__ = "visiting_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)  # the visiting_care case
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[EnrolmentStatus] = mapped_column(ValueEnum(EnrolmentStatus), index=True)
    frequency: Mapped[VisitFrequency] = mapped_column(ValueEnum(VisitFrequency, 16))
    categories: Mapped[str] = mapped_column(Text, default="[]")  # JSON text: why the elder is on the list
    started_on: Mapped[date] = mapped_column(Date)
    # The first day of the next visit period to open a case for; the job advances it.
    next_period_start: Mapped[date] = mapped_column(Date, index=True)
    last_visited_on: Mapped[date | None] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[EndReason | None] = mapped_column(ValueEnum(EndReason, 16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Visit(Base):
    """One visit period of a visiting-care enrolment: due, done, or overdue (and visible as such)."""

    __tablename__ = "visits"
    __table_args__ = (UniqueConstraint("enrolment_id", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("visiting_enrolments.id"), index=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    # Set once the period's case has started (the row exists first: a past period's timer fires at start).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[VisitStatus] = mapped_column(ValueEnum(VisitStatus), index=True)
    visited_on: Mapped[date | None] = mapped_column(Date)
    method: Mapped[VisitMethod | None] = mapped_column(ValueEnum(VisitMethod, 16))
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    services: Mapped[str] = mapped_column(Text, default="[]")  # JSON text: the 8 service items provided
    findings: Mapped[str] = mapped_column(Text, default="{}")  # JSON text
    emergency: Mapped[bool] = mapped_column(default=False)
    referrals: Mapped[str] = mapped_column(Text, default="[]")  # JSON text: applications started for needs
    overdue_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
