"""Elders (老年人档案), the append-only history of their records, and their capability assessments.

Register in `workflows/models/__init__.py` with:
    from .elders import Assessment, Elder, ElderChange, ElderStatus, HukouType, LivingArrangement, Sex
"""

import json
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..rules.assessment import AssessmentReason, DisabilityLevel
from ..rules.idnumber import age_on
from .base import Base, ValueEnum


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class HukouType(StrEnum):
    RURAL = "rural"  # 农村（农业）户籍
    URBAN = "urban"  # 城镇（非农业）户籍


class LivingArrangement(StrEnum):
    LIVING_ALONE = "living_alone"
    WITH_SPOUSE = "with_spouse"
    WITH_CHILDREN = "with_children"
    INSTITUTION = "institution"
    OTHER = "other"


class ElderStatus(StrEnum):
    ACTIVE = "active"
    DECEASED = "deceased"
    MOVED_AWAY = "moved_away"


# The support flags (see DOMAIN.md glossary), in the order forms and rosters show them.
SUPPORT_FLAGS: tuple[str, ...] = (
    "dibao",
    "near_dibao",
    "tekun",
    "home_support",
    "institutional_support",
    "living_alone",
    "empty_nest",
    "left_behind",
    "severe_handicap",
    "family_planning_special",
    "entitled_veteran_family",
    "three_category_household",
)


class Elder(Base):
    """One older resident on the county's register, with the attributes that drive eligibility."""

    __tablename__ = "elders"
    __table_args__ = (
        CheckConstraint(
            "severe_handicap_grade IS NULL OR (severe_handicap_grade >= 1 AND severe_handicap_grade <= 4)",
            name="severe_handicap_grade",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[Sex] = mapped_column(ValueEnum(Sex, 8))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20))
    hukou_type: Mapped[HukouType] = mapped_column(ValueEnum(HukouType, 8))
    hukou_area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"))
    # The village or community the elder lives in: every scope check and area list filters on it.
    residence_area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    living_arrangement: Mapped[LivingArrangement] = mapped_column(ValueEnum(LivingArrangement, 16))

    dibao: Mapped[bool] = mapped_column(default=False)
    near_dibao: Mapped[bool] = mapped_column(default=False)
    tekun: Mapped[bool] = mapped_column(default=False)
    home_support: Mapped[bool] = mapped_column(default=False)
    institutional_support: Mapped[bool] = mapped_column(default=False)
    living_alone: Mapped[bool] = mapped_column(default=False)
    empty_nest: Mapped[bool] = mapped_column(default=False)
    left_behind: Mapped[bool] = mapped_column(default=False)
    severe_handicap: Mapped[bool] = mapped_column(default=False)
    severe_handicap_grade: Mapped[int | None] = mapped_column(Integer)
    family_planning_special: Mapped[bool] = mapped_column(default=False)
    entitled_veteran_family: Mapped[bool] = mapped_column(default=False)
    three_category_household: Mapped[bool] = mapped_column(default=False)  # 防返贫监测三类户

    # JSON text: [{"name": ..., "relation": ..., "phone": ...}, ...]
    contacts: Mapped[str] = mapped_column(Text, default="[]")
    guardian_name: Mapped[str | None] = mapped_column(String(64))
    guardian_phone: Mapped[str | None] = mapped_column(String(20))

    # Copied from the latest assessment so that eligibility queries need no join; the history is in assessments.
    disability_level: Mapped[DisabilityLevel | None] = mapped_column(ValueEnum(DisabilityLevel, 16))
    disability_assessed_on: Mapped[date | None] = mapped_column(Date)
    disability_valid_until: Mapped[date | None] = mapped_column(Date)

    status: Mapped[ElderStatus] = mapped_column(ValueEnum(ElderStatus, 16), default=ElderStatus.ACTIVE)
    deceased_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def age_on(self, day: date) -> int:
        """Return the age in full years (周岁) on `day`."""
        return age_on(self.birth_date, day)

    def contact_list(self) -> list[dict]:
        """Return the contacts as a list of {name, relation, phone}."""
        return json.loads(self.contacts or "[]")

    def current_disability_level(self, day: date) -> DisabilityLevel | None:
        """Return the assessed level if its assessment is still valid on `day`, else None."""
        if self.disability_level is None or self.disability_valid_until is None:
            return None
        return self.disability_level if day <= self.disability_valid_until else None


class ElderChange(Base):
    """Append-only history of an elder's record: who changed which field from what to what, and why."""

    __tablename__ = "elder_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")


class Assessment(Base):
    """One capability assessment (GB/T 42195-2022) of an elder."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id"), index=True)
    assessed_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[AssessmentReason] = mapped_column(ValueEnum(AssessmentReason, 16))
    items: Mapped[str] = mapped_column(Text, default="{}")  # JSON text: {item key: score}
    total: Mapped[int] = mapped_column(Integer)
    level: Mapped[DisabilityLevel] = mapped_column(ValueEnum(DisabilityLevel, 16))
    adjustments: Mapped[str] = mapped_column(
        Text, default="[]"
    )  # JSON text: the reasons the level was raised
    valid_until: Mapped[date] = mapped_column(Date)
    assessor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]

    def item_scores(self) -> dict[str, int]:
        """Return the item scores as a dict."""
        return json.loads(self.items or "{}")
