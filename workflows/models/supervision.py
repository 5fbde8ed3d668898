"""Supervision: the county's targets, the office log (sign-ins, refusals, exports) and review samples (抽查).

Also the indexes the case list and the dashboard read through, declared here beside the tables they serve
so that the core models stay as they are.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, ValueEnum
from .care import Visit
from .elders import Elder
from .process import Case, HumanTask

# The case list sorts by start (newest first) and narrows by area; the dashboard counts open tasks by
# process and step, and overdue ones by township and role, from the index alone.
Index("ix_cases_started_at", Case.started_at)
Index("ix_cases_status_process", Case.status, Case.process_key, Case.area_code)
Index(
    "ix_human_tasks_supervision",
    HumanTask.status,
    HumanTask.area_code,
    HumanTask.process_key,
    HumanTask.task_spec,
    HumanTask.role,
    HumanTask.due_at,
    HumanTask.case_id,
)
# Visits in a period (the visit rates), read from the index alone.
Index("ix_visits_visited_on", Visit.visited_on, Visit.elder_id)
# The dashboard's counts by capability level, expiry and 特困 support, from the index alone.
Index(
    "ix_elders_supervision",
    Elder.residence_area_code,
    Elder.status,
    Elder.disability_level,
    Elder.disability_valid_until,
    Elder.tekun,
    Elder.institutional_support,
)


class CountyTarget(Base):
    """One target a county set for itself (a rate, a count, an amount); unset targets use the seeds' value."""

    __tablename__ = "county_targets"
    __table_args__ = (UniqueConstraint("county_code", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class LogKind(StrEnum):
    SIGNED_IN = "signed_in"
    SIGN_IN_REFUSED = "sign_in_refused"  # wrong password, unknown name, locked or disabled account
    DENIED = "denied"  # a page or API call refused for role or area
    EXPORTED = "exported"  # a list, the dashboard or a report downloaded as a workbook
    SAMPLED = "sampled"  # a review sample drawn
    VERIFIED = "verified"  # a hash-chain check run over an area
    DEPLOYED = "deployed"  # a new version of a process deployed
    MIGRATION = (
        "migration"  # running cases asked to move to another version (each move is in its case's trail)
    )


class OfficeLog(Base):
    """Append-only log of what people did outside any one case: signing in, being refused, exporting."""

    __tablename__ = "office_log"
    __table_args__ = (
        Index("ix_office_log_at", "at"),
        Index("ix_office_log_area_at", "area_code", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[LogKind] = mapped_column(ValueEnum(LogKind, 24), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # As typed at sign-in (an unknown name too), so guessing at names shows in the log.
    username: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str | None] = mapped_column(String(32))
    # The person's area (for scoping the log); none for a name that matches nobody.
    area_code: Mapped[str | None] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(8), default="web")  # web / api / cli
    address: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300), default="")  # the page, call or export
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON text


class SampleItemOutcome(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"  # checked, nothing wrong
    PROBLEM = "problem"  # checked, a problem found (described in the note)


class ReviewSample(Base):
    """A draw of N random closed cases of one process and month, for an auditor's spot check (抽查)."""

    __tablename__ = "review_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    process_key: Mapped[str] = mapped_column(String(100))
    month: Mapped[date] = mapped_column(Date)  # first day of the month whose closed cases were drawn from
    requested: Mapped[int] = mapped_column(Integer)
    population: Mapped[int] = mapped_column(Integer)  # how many closed cases there were to draw from
    seed: Mapped[str] = mapped_column(String(64))  # the draw can be repeated from it
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class ReviewItem(Base):
    """One case of a sample and what the check of it found."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("sample_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("review_samples.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[SampleItemOutcome] = mapped_column(ValueEnum(SampleItemOutcome, 16))
    note: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
