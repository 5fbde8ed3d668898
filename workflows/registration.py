"""Registering an elder from the registration form, and finding an elder's record from a page."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import access, elders, forms
from .errors import NotFound, ValidationFailed
from .models import Area, AreaLevel, Elder, User
from .models.base import is_row_id
from .models.elders import SUPPORT_FLAGS

# The support flags are one group on the form; the register takes them as top-level fields.
SUPPORT_GROUP = "support"


def registration_villages(session: Session, actor: User) -> list[Area]:
    """The villages (communities) inside the actor's area, where the actor may register an elder."""
    elders.require_role(actor, elders.WRITE_ROLES, "登记老人")
    return list(
        session.scalars(
            select(Area)
            .where(Area.level == AreaLevel.VILLAGE, elders.in_area(Area.code, actor.area_code))
            .order_by(Area.code)
        )
    )


def registration_form(session: Session, actor: User) -> tuple[dict, dict]:
    """The registration form (workflows/forms/elder_registration.json) with the villages the actor may
    register an elder in, and its UI hints."""
    villages = registration_villages(session, actor)
    township_names = {
        a.code: a.name for a in session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP))
    }
    schema = forms.load("elder_registration.json")
    schema["properties"]["residence_area_code"]["oneOf"] = [
        {"const": v.code, "title": f"{township_names.get(v.parent_code, '')}{v.name}"} for v in villages
    ]
    return schema, forms.load("elder_registration.ui.json")


def register_from_form(session: Session, actor: User, data: dict) -> Elder:
    """Register an elder from the registration form's data; field errors come back under the form's paths."""
    values = {k: v for k, v in data.items() if k != SUPPORT_GROUP}
    values.update(data.get(SUPPORT_GROUP) or {})
    try:
        return elders.register_elder(session, actor, values)
    except ValidationFailed as exc:
        exc.field_errors = {
            (f"{SUPPORT_GROUP}.{key}" if key in SUPPORT_FLAGS else key): message
            for key, message in exc.field_errors.items()
        }
        raise


def can_read_elder(session: Session, actor: User, elder_id: int) -> bool:
    """Whether the actor may open an elder's file (to link to it, e.g. from a duplicate's refusal)."""
    elder = session.get(Elder, elder_id)
    return (
        elder is not None
        and actor.is_active
        and actor.role in elders.READ_ROLES
        and access.covers(actor, elder.residence_area_code)
    )


def find_elder(session: Session, actor: User, elder_id: int) -> Elder:
    elder = session.get(Elder, elder_id) if is_row_id(elder_id) else None
    if elder is None:
        raise NotFound("老人档案不存在")
    return elders.get_elder(session, actor, elder_id)
