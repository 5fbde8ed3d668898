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


# --------------------------------------------------------------------------------------------------
# Correcting a record


STATUS_CHOICES = [
    {"const": "active", "title": "在册"},
    {"const": "deceased", "title": "已故"},
    {"const": "moved_away", "title": "迁出本县"},
]


def edit_form(session: Session, actor: User) -> tuple[dict, dict]:
    """The registration form for correcting a record: the villages of the whole county (moving house is a
    hand-over to the new township), the record's status, and why it is changed."""
    elders.require_role(actor, elders.WRITE_ROLES, "修改老人档案")
    schema, ui = registration_form(session, actor)
    villages = session.scalars(
        select(Area)
        .where(
            Area.level == AreaLevel.VILLAGE,
            elders.in_area(Area.code, actor.area_code[:6]),
            Area.retired_at.is_(None),
        )
        .order_by(Area.code)
    )
    townships = {
        a.code: a.name for a in session.scalars(select(Area).where(Area.level == AreaLevel.TOWNSHIP))
    }
    schema["title"] = "修改老人档案"
    props = schema["properties"]
    props["residence_area_code"]["oneOf"] = [
        {"const": v.code, "title": f"{townships.get(v.parent_code, '')}{v.name}"} for v in villages
    ]
    props["status"] = {"type": "string", "title": "档案状态", "oneOf": STATUS_CHOICES}
    props["deceased_on"] = {
        "type": "string",
        "format": "date",
        "title": "死亡日期（已故时填写）",
        "x-latest": "today",
    }
    props["change_reason"] = {
        "type": "string",
        "title": "修改原因",
        "maxLength": 200,
        "description": "如：入户核实地址有误；低保新批（附民政证明）",
    }
    schema["required"] = [*schema.get("required", []), "status", "change_reason"]
    return schema, ui


def edit_values(elder: Elder) -> dict:
    """A record as the edit form's data (the support flags in their group)."""
    data = {
        key: getattr(elder, key)
        for key in (
            "id_number",
            "name",
            "phone",
            "hukou_type",
            "residence_area_code",
            "address",
            "living_arrangement",
            "severe_handicap_grade",
            "guardian_name",
            "guardian_phone",
            "status",
            "deceased_on",
        )
    }
    data = {
        k: (v.value if hasattr(v, "value") else v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in data.items()
    }
    data[SUPPORT_GROUP] = {flag: bool(getattr(elder, flag)) for flag in SUPPORT_FLAGS}
    data["contacts"] = elder.contact_list()
    return {k: v for k, v in data.items() if v is not None}


def changes_from_form(data: dict) -> tuple[dict, str]:
    """The edit form's data as a full set of changes (a field left empty clears it) and the reason."""
    support = data.get(SUPPORT_GROUP) or {}
    changes = {
        key: data.get(key)
        for key in (
            "id_number",
            "name",
            "phone",
            "hukou_type",
            "residence_area_code",
            "address",
            "living_arrangement",
            "severe_handicap_grade",
            "guardian_name",
            "guardian_phone",
            "status",
            "deceased_on",
        )
    }
    changes.update({flag: bool(support.get(flag)) for flag in SUPPORT_FLAGS})
    changes["contacts"] = data.get("contacts") or []
    return changes, (data.get("change_reason") or "").strip()


def update_from_form(session: Session, actor: User, elder_id: int, data: dict) -> Elder:
    """Correct a record from the edit form; field errors come back under the form's paths."""
    changes, reason = changes_from_form(data)
    if not reason:
        raise ValidationFailed("请填写修改原因", field_errors={"change_reason": "请填写修改原因"})
    try:
        return elders.update_elder(session, actor, elder_id, changes, reason)
    except ValidationFailed as exc:
        exc.field_errors = {
            (f"{SUPPORT_GROUP}.{key}" if key in SUPPORT_FLAGS else key): message
            for key, message in exc.field_errors.items()
        }
        raise
