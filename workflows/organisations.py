"""Organisations that work cases for the office: contracted providers and public nursing homes.

An administrator registers them inside their area and links staff accounts to them (`users.update_user`);
a provider's service areas, contract period and 六助 decide which orders it can be given, and a nursing
home's beds by type are its stock. Staff of an organisation read only its own work (see `cases.may_read`).
Every change is written to the administration log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from . import admin_log, clock
from .errors import NotFound, PermissionDenied, ValidationFailed
from .models import User
from .models.admission import Facility
from .models.base import is_row_id
from .models.organisations import (
    BED_TYPE_LABELS,
    BedType,
    FacilityBeds,
    Organisation,
    OrganisationArea,
    OrganisationKind,
)
from .models.registry import Area
from .rules.care import SIX_HELPS
from .rules.phone import PhoneError, validate_phone
from .users import manages, require_admin

MAX_BEDS = 10_000
FIELD_LABELS = {
    "kind": "类别",
    "name": "名称",
    "area_code": "所属区划",
    "address": "地址",
    "phone": "电话",
    "contact": "联系人",
    "contract_start": "合同开始",
    "contract_end": "合同结束",
    "services": "提供的服务",
    "service_areas": "服务区域",
    "beds": "床位",
    "is_active": "启用",
}


@dataclass
class OrganisationView:
    """An organisation as its page shows it."""

    organisation: Organisation
    service_areas: list[Area]
    beds: dict[BedType, int]
    facility: Facility | None
    staff: list[User]

    @property
    def total_beds(self) -> int:
        return sum(self.beds.values())


def get_organisation(session: Session, actor: User | None, organisation_id) -> Organisation:
    require_admin(actor)
    organisation = session.get(Organisation, organisation_id) if is_row_id(organisation_id) else None
    if organisation is None:
        raise NotFound("机构不存在")
    if not manages(actor, organisation.area_code):
        raise PermissionDenied("无权管理其他辖区的机构")
    return organisation


def list_organisations(session: Session, actor: User | None, kind: str | None = None) -> list[Organisation]:
    """The organisations registered inside the administrator's area."""
    require_admin(actor)
    query = select(Organisation).order_by(Organisation.kind, Organisation.name, Organisation.id)
    if actor is not None:
        query = query.where(Organisation.area_code.startswith(actor.area_code, autoescape=True))
    if kind:
        query = (
            query.where(Organisation.kind == kind) if kind in set(OrganisationKind) else query.where(False)
        )
    return list(session.scalars(query))


def view(session: Session, actor: User | None, organisation_id) -> OrganisationView:
    organisation = get_organisation(session, actor, organisation_id)
    return _view(session, organisation)


def _view(session: Session, organisation: Organisation) -> OrganisationView:
    codes = list(
        session.scalars(
            select(OrganisationArea.area_code)
            .where(OrganisationArea.organisation_id == organisation.id)
            .order_by(OrganisationArea.area_code)
        )
    )
    facility = facility_of(session, organisation.id)
    return OrganisationView(
        organisation=organisation,
        service_areas=[session.get(Area, code) for code in codes],
        beds=bed_counts(session, facility.id) if facility is not None else {},
        facility=facility,
        staff=list(
            session.scalars(
                select(User).where(User.organisation_id == organisation.id).order_by(User.username)
            )
        ),
    )


def facility_of(session: Session, organisation_id: int | None) -> Facility | None:
    if organisation_id is None:
        return None
    return session.scalar(select(Facility).where(Facility.organisation_id == organisation_id))


def bed_counts(session: Session, facility_id: int) -> dict[BedType, int]:
    rows = session.execute(
        select(FacilityBeds.bed_type, FacilityBeds.beds).where(FacilityBeds.facility_id == facility_id)
    ).all()
    found = dict(rows)
    return {bed_type: found.get(bed_type, 0) for bed_type in BedType}


# --------------------------------------------------------------------------------------------------
# Registering and changing


def create_organisation(session: Session, actor: User | None, data: Mapping) -> Organisation:
    """Register a provider or a nursing home inside the administrator's area."""
    require_admin(actor)
    values, errors = _clean(session, actor, data, creating=True)
    if errors:
        raise ValidationFailed("机构信息有误：" + "；".join(errors.values()), field_errors=errors)
    now = clock.now()
    organisation = Organisation(
        kind=values["kind"],
        name=values["name"],
        area_code=values["area_code"],
        address=values["address"],
        phone=values["phone"],
        contact=values["contact"],
        contract_start=values.get("contract_start"),
        contract_end=values.get("contract_end"),
        services=json.dumps(values.get("services", []), ensure_ascii=False),
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(organisation)
    session.flush()
    _set_areas(session, organisation, values.get("service_areas", []))
    if organisation.kind == OrganisationKind.FACILITY:
        facility = Facility(
            name=organisation.name,
            area_code=organisation.area_code,
            address=organisation.address,
            phone=organisation.phone,
            beds=0,
            is_active=True,
            created_at=now,
            organisation_id=organisation.id,
        )
        session.add(facility)
        session.flush()
        _set_beds(session, facility, values.get("beds", {}))
    admin_log.record(
        session,
        actor,
        "organisation",
        organisation.id,
        "added",
        f"登记{organisation.kind.label}：{organisation.name}",
        changes={key: (None, value) for key, value in values.items()},
    )
    return organisation


def update_organisation(
    session: Session, actor: User | None, organisation_id, changes: Mapping
) -> Organisation:
    """Change an organisation's details, service areas, contract, services or beds; or disable it."""
    organisation = get_organisation(session, actor, organisation_id)
    if session.get_bind().dialect.name == "postgresql":  # two administrators at once: one after the other
        session.execute(select(Organisation.id).where(Organisation.id == organisation.id).with_for_update())
        session.refresh(organisation)
    before = _values(session, organisation)
    merged = {**before, **changes, "kind": organisation.kind.value}
    values, errors = _clean(session, actor, merged, creating=False)
    if "is_active" in changes and not isinstance(changes["is_active"], bool):
        errors["is_active"] = "应为是或否"
    if errors:
        raise ValidationFailed("机构信息有误：" + "；".join(errors.values()), field_errors=errors)
    values["is_active"] = changes.get("is_active", organisation.is_active)
    changed = {key: (before.get(key), value) for key, value in values.items() if before.get(key) != value}
    if not changed:
        return organisation
    for key in (
        "name",
        "area_code",
        "address",
        "phone",
        "contact",
        "contract_start",
        "contract_end",
        "is_active",
    ):
        setattr(organisation, key, values.get(key))
    organisation.services = json.dumps(values.get("services", []), ensure_ascii=False)
    organisation.updated_at = clock.now()
    session.flush()
    if "service_areas" in changed:
        _set_areas(session, organisation, values["service_areas"])
    facility = facility_of(session, organisation.id)
    if facility is not None:
        facility.name, facility.address, facility.phone = (
            organisation.name,
            organisation.address,
            organisation.phone,
        )
        facility.area_code, facility.is_active = organisation.area_code, organisation.is_active
        if "beds" in changed:
            _set_beds(session, facility, values["beds"])
        session.flush()
    admin_log.record(
        session,
        actor,
        "organisation",
        organisation.id,
        "changed",
        f"修改{organisation.kind.label} {organisation.name}：" + "、".join(FIELD_LABELS[k] for k in changed),
        changes=changed,
    )
    return organisation


def _values(session: Session, organisation: Organisation) -> dict:
    shown = _view(session, organisation)
    values = {
        "kind": organisation.kind.value,
        "name": organisation.name,
        "area_code": organisation.area_code,
        "address": organisation.address,
        "phone": organisation.phone,
        "contact": organisation.contact,
        "is_active": organisation.is_active,
    }
    if organisation.kind == OrganisationKind.PROVIDER:
        values.update(
            contract_start=organisation.contract_start,
            contract_end=organisation.contract_end,
            services=organisation.service_list(),
            service_areas=[a.code for a in shown.service_areas],
        )
    else:
        values["beds"] = {t.value: n for t, n in shown.beds.items()}
    return values


def _clean(
    session: Session, actor: User | None, data: Mapping, *, creating: bool
) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    out: dict = {}
    try:
        kind = OrganisationKind(data.get("kind"))
    except ValueError:
        errors["kind"] = "类别须为服务机构或公办养老机构"
        kind = None
    out["kind"] = kind
    name = _text(data.get("name"))
    if not name or len(name) > 100:
        errors["name"] = "请填写机构名称（最多100个字）"
    out["name"] = name
    code = data.get("area_code")
    area = session.get(Area, code) if isinstance(code, str) and code else None
    if area is None:
        errors["area_code"] = "请选择所属区划"
    elif not manages(actor, code):
        errors["area_code"] = "只能在本人管辖的区划内登记机构"
    elif area.retired_at is not None:
        errors["area_code"] = f"行政区划 {area.name} 已撤销"
    out["area_code"] = code
    address = _text(data.get("address"))
    if len(address) > 255:
        errors["address"] = "地址最多255个字"
    out["address"] = address
    contact = _text(data.get("contact"))
    if len(contact) > 64:
        errors["contact"] = "联系人最多64个字"
    out["contact"] = contact
    phone = _text(data.get("phone"))
    if phone:
        try:
            phone = validate_phone(phone)
        except PhoneError as exc:
            errors["phone"] = str(exc)
    out["phone"] = phone
    if kind == OrganisationKind.PROVIDER:
        out.update(_clean_provider(session, actor, data, errors))
    elif kind == OrganisationKind.FACILITY:
        out["beds"] = _clean_beds(data.get("beds"), errors)
    return out, errors


def _clean_provider(session: Session, actor: User | None, data: Mapping, errors: dict[str, str]) -> dict:
    out: dict = {}
    for key in ("contract_start", "contract_end"):
        value = data.get(key)
        if value in (None, ""):
            out[key] = None
            continue
        try:
            out[key] = value if isinstance(value, date) else date.fromisoformat(str(value).strip())
        except ValueError:
            errors[key] = "日期格式应为 YYYY-MM-DD"
            out[key] = None
    start, end = out["contract_start"], out["contract_end"]
    if (start is None) != (end is None):
        errors.setdefault("contract_end", "合同开始和结束日期须同时填写")
    elif start and end and end < start:
        errors["contract_end"] = "合同结束日期不能早于开始日期"
    services = data.get("services") or []
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        errors["services"] = "服务项目格式不正确"
        services = []
    unknown = [s for s in services if s not in SIX_HELPS]
    if unknown:
        errors["services"] = f"不是“六助”服务项目：{'、'.join(unknown)}"
    out["services"] = [key for key in SIX_HELPS if key in services]
    codes = data.get("service_areas") or []
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        errors["service_areas"] = "服务区域格式不正确"
        codes = []
    cleaned = []
    for code in dict.fromkeys(codes):
        area = session.get(Area, code)
        if area is None:
            errors["service_areas"] = f"行政区划代码 {code} 不存在"
        elif not manages(actor, code):
            errors["service_areas"] = f"{area.name} 不在本人管辖的区划内"
        elif area.retired_at is not None:
            errors["service_areas"] = f"{area.name} 已撤销"
        else:
            cleaned.append(code)
    out["service_areas"] = sorted(cleaned)
    return out


def _clean_beds(value, errors: dict[str, str]) -> dict[str, int]:
    if value in (None, ""):
        value = {}
    if not isinstance(value, Mapping):
        errors["beds"] = "床位格式不正确"
        return {}
    out = {}
    for bed_type in BedType:
        count = value.get(bed_type.value, 0)
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count.strip())
        if count in (None, ""):
            count = 0
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_BEDS:
            errors[f"beds.{bed_type.value}"] = f"{BED_TYPE_LABELS[bed_type]}数应为0–{MAX_BEDS}的整数"
            count = 0
        out[bed_type.value] = count
    stray = sorted(set(value) - {t.value for t in BedType})
    if stray:
        errors["beds"] = f"未知的床位类型：{'、'.join(map(str, stray))}"
    return out


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _set_areas(session: Session, organisation: Organisation, codes: Iterable[str]) -> None:
    session.execute(delete(OrganisationArea).where(OrganisationArea.organisation_id == organisation.id))
    session.add_all(OrganisationArea(organisation_id=organisation.id, area_code=code) for code in codes)
    session.flush()


def _set_beds(session: Session, facility: Facility, beds: Mapping[str, int]) -> None:
    session.execute(delete(FacilityBeds).where(FacilityBeds.facility_id == facility.id))
    session.add_all(
        FacilityBeds(facility_id=facility.id, bed_type=BedType(key), beds=count)
        for key, count in beds.items()
    )
    facility.beds = sum(beds.values())
    session.flush()


def link_facility(
    session: Session, actor: User | None, organisation: Organisation, facility: Facility
) -> None:
    """Make an organisation the operator of a nursing home registered before organisations existed."""
    if organisation.kind != OrganisationKind.FACILITY:
        raise ValidationFailed("只有公办养老机构可以关联养老院")
    facility.organisation_id = organisation.id
    session.flush()
    admin_log.record(
        session, actor, "organisation", organisation.id, "linked", f"关联养老机构 {facility.name}"
    )


# --------------------------------------------------------------------------------------------------
# What the processes ask


def serves(session: Session, organisation: Organisation, area_code: str | None) -> bool:
    """Whether a provider's service areas cover `area_code`."""
    if not area_code:
        return False
    codes = session.scalars(
        select(OrganisationArea.area_code).where(OrganisationArea.organisation_id == organisation.id)
    )
    return any(area_code.startswith(code) for code in codes)


def why_not_dispatchable(
    session: Session,
    organisation: Organisation | None,
    area_code: str | None,
    services: Iterable[str],
    day: date,
) -> str | None:
    """Why an order for `services` in `area_code` cannot go to this organisation on `day` (None: it can)."""
    if organisation is None:
        return None
    if organisation.kind != OrganisationKind.PROVIDER:
        return f"{organisation.name}不是服务机构"
    if not organisation.is_active:
        return f"{organisation.name}已停用"
    if not organisation.under_contract(day):
        return f"{organisation.name}的购买服务合同不在有效期内"
    if not serves(session, organisation, area_code):
        return f"{organisation.name}的服务区域不含老人所在地"
    missing = [SIX_HELPS.get(s, s) for s in services if s not in organisation.service_list()]
    if missing:
        return f"{organisation.name}不提供：{'、'.join(missing)}"
    return None


def organisation_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(
        session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))).all()
    )


def staff_count(session: Session, organisation_id: int) -> int:
    return (
        session.scalar(select(func.count()).select_from(User).where(User.organisation_id == organisation_id))
        or 0
    )
