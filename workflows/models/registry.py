"""Areas (行政区划) and the people who work in them."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, ValueEnum


class AreaLevel(StrEnum):
    COUNTY = "county"  # 县/市辖区, 6-digit code
    TOWNSHIP = "township"  # 乡镇/街道, 9-digit code
    VILLAGE = "village"  # 村/社区, 12-digit code


class Role(StrEnum):
    VILLAGE_ASSISTANT = "village_assistant"
    CASEWORKER = "caseworker"
    ASSESSOR = "assessor"
    APPROVER = "approver"
    PROVIDER = "provider"
    FACILITY_ADMIN = "facility_admin"
    AUDITOR = "auditor"
    PROCESS_OWNER = "process_owner"
    ADMIN = "admin"


class Area(Base):
    """An administrative area. Codes are kept short (6/9/12 digits) so that a descendant's code starts
    with its ancestor's: scope checks are a prefix comparison that an index serves."""

    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[AreaLevel] = mapped_column(ValueEnum(AreaLevel))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    # A retired area keeps its code and history, but no one is registered in it or given it any more.
    retired_at: Mapped[datetime | None]

    parent: Mapped["Area | None"] = relationship(remote_side=[code])

    def contains(self, code: str) -> bool:
        return code.startswith(self.code)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[Role] = mapped_column(ValueEnum(Role))
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh")
    created_at: Mapped[datetime | None]
    # Consecutive failed sign-ins, and the lock they lead to (see users.authenticate).
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    # Outside staff (providers, nursing homes) work for one organisation and read only its work.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    # A temporary password an administrator issued: it must be replaced at the next sign-in.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default="0")

    area: Mapped[Area] = relationship()

    def covers(self, area_code: str | None) -> bool:
        """Whether an area lies inside this user's scope."""
        return area_code is not None and area_code.startswith(self.area_code)
