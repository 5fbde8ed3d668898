"""Organisations outside the civil-affairs office that work cases: contracted home-care providers (their
service areas, contract period and the 六助 they offer) and public nursing homes (their beds by type).
Staff accounts are linked to one organisation (`users.organisation_id`) and read only its work."""

import json
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, ValueEnum
from .registry import Role


class OrganisationKind(StrEnum):
    PROVIDER = "provider"  # 服务机构 (居家上门服务)
    FACILITY = "facility"  # 公办养老机构

    @property
    def label(self) -> str:
        return {OrganisationKind.PROVIDER: "服务机构", OrganisationKind.FACILITY: "公办养老机构"}[self]

    @property
    def staff_role(self) -> Role:
        """The role of the accounts that work for an organisation of this kind."""
        return {OrganisationKind.PROVIDER: Role.PROVIDER, OrganisationKind.FACILITY: Role.FACILITY_ADMIN}[
            self
        ]


class Organisation(Base):
    """A provider or a nursing home; `area_code` is the area whose office contracts or runs it."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OrganisationKind] = mapped_column(ValueEnum(OrganisationKind, 16), index=True)
    name: Mapped[str] = mapped_column(String(100))
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    contact: Mapped[str] = mapped_column(String(64), default="")
    # Providers: the purchase contract's period (both days included) and the 六助 it covers (JSON list).
    contract_start: Mapped[date | None] = mapped_column(Date)
    contract_end: Mapped[date | None] = mapped_column(Date)
    services: Mapped[str] = mapped_column(Text, default="[]")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def service_list(self) -> list[str]:
        return json.loads(self.services or "[]")

    def under_contract(self, day: date) -> bool:
        """Whether the contract covers `day` (a provider without dates is not under contract)."""
        if self.contract_start is None or self.contract_end is None:
            return False
        return self.contract_start <= day <= self.contract_end


class OrganisationArea(Base):
    """One area a provider serves (the area and everything inside it)."""

    __tablename__ = "organisation_areas"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), primary_key=True)


class BedType(StrEnum):
    SELF_CARE = "self_care"  # 自理床位
    NURSING = "nursing"  # 护理床位（失能）
    DEMENTIA = "dementia"  # 失智照护床位

    @property
    def label(self) -> str:
        return BED_TYPE_LABELS[self]


BED_TYPE_LABELS = {
    BedType.SELF_CARE: "自理床位",
    BedType.NURSING: "护理床位",
    BedType.DEMENTIA: "失智照护床位",
}


class FacilityBeds(Base):
    """How many beds of one type a nursing home has (the facility's `beds` is their sum)."""

    __tablename__ = "facility_beds"

    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), primary_key=True)
    bed_type: Mapped[BedType] = mapped_column(ValueEnum(BedType, 16), primary_key=True)
    beds: Mapped[int] = mapped_column(Integer, default=0)
