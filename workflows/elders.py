"""The elder register: register, correct, find and assess older residents, each change audited."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import access, cases, clock, registry
from .errors import NotFound, PermissionDenied, RegistryError, ValidationFailed
from .models import Case, CaseStatus, CaseWait
from .models.base import is_row_id
from .models.elders import (
    SUPPORT_FLAGS,
    Assessment,
    Elder,
    ElderChange,
    ElderStatus,
    HukouType,
    LivingArrangement,
    Sex,
)
from .models.registry import Area, AreaLevel, Role, User
from .rules.assessment import (
    AssessmentError,
    AssessmentReason,
    DisabilityLevel,
    check_items,
    level_for_total,
    valid_until,
)
from .rules.idnumber import IdNumberError, mask_id_number, parse_id_number
from .rules.phone import PhoneError, mask_phone, validate_phone
from .users import ROLE_LABELS

# 老年人权益保障法 art. 2: an older person (老年人) is a citizen aged 60 or over.
MIN_AGE = 60

# Who may read the register, change it, and record assessments. Providers and facility staff see the
# elders of their orders and admissions through those cases, not the whole register of an area.
READ_ROLES = frozenset(
    {Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ASSESSOR, Role.APPROVER, Role.AUDITOR, Role.ADMIN}
)
WRITE_ROLES = frozenset({Role.VILLAGE_ASSISTANT, Role.CASEWORKER, Role.ADMIN})
ASSESS_ROLES = frozenset({Role.ASSESSOR, Role.CASEWORKER, Role.ADMIN})


# Chinese field names, used in messages and as the canonical roster headers.
FIELD_LABELS = {
    "name": "姓名",
    "id_number": "身份证号",
    "sex": "性别",
    "birth_date": "出生日期",
    "phone": "联系电话",
    "hukou_type": "户籍类型",
    "hukou_area_code": "户籍地",
    "residence_area_code": "居住村(社区)",
    "address": "详细地址",
    "living_arrangement": "居住状况",
    "dibao": "低保",
    "near_dibao": "低保边缘",
    "tekun": "特困",
    "home_support": "分散供养",
    "institutional_support": "集中供养",
    "living_alone": "独居",
    "empty_nest": "空巢",
    "left_behind": "留守",
    "severe_handicap": "重度残疾",
    "severe_handicap_grade": "残疾等级",
    "family_planning_special": "计生特殊家庭",
    "entitled_veteran_family": "优抚对象",
    "three_category_household": "三类户",
    "contacts": "联系人",
    "guardian_name": "监护人姓名",
    "guardian_phone": "监护人电话",
    "status": "状态",
    "deceased_on": "死亡日期",
    "disability_level": "失能等级",
    "disability_assessed_on": "评估日期",
    "disability_valid_until": "评估有效期至",
    "items": "评估项目得分",
    "total": "总分",
    "level": "评估等级",
    "reason": "评估类型",
    "assessed_on": "评估日期",
}

HUKOU_LABELS = {HukouType.RURAL: "农村", HukouType.URBAN: "城镇"}
LIVING_LABELS = {
    LivingArrangement.LIVING_ALONE: "独居",
    LivingArrangement.WITH_SPOUSE: "与配偶同住",
    LivingArrangement.WITH_CHILDREN: "与子女同住",
    LivingArrangement.INSTITUTION: "入住机构",
    LivingArrangement.OTHER: "其他",
}
STATUS_LABELS = {ElderStatus.ACTIVE: "在册", ElderStatus.DECEASED: "已故", ElderStatus.MOVED_AWAY: "迁出"}

# Spellings seen in county spreadsheets, beside the labels above and the English values.
_HUKOU_ALIASES = {
    "农业": HukouType.RURAL,
    "农业户口": HukouType.RURAL,
    "农村户口": HukouType.RURAL,
    "农村户籍": HukouType.RURAL,
    "农": HukouType.RURAL,
    "非农": HukouType.URBAN,
    "非农业": HukouType.URBAN,
    "非农业户口": HukouType.URBAN,
    "城镇户口": HukouType.URBAN,
    "城镇户籍": HukouType.URBAN,
    "城市": HukouType.URBAN,
}
_LIVING_ALIASES = {
    "独自居住": LivingArrangement.LIVING_ALONE,
    "一人居住": LivingArrangement.LIVING_ALONE,
    "与配偶居住": LivingArrangement.WITH_SPOUSE,
    "与配偶同住": LivingArrangement.WITH_SPOUSE,
    "夫妻同住": LivingArrangement.WITH_SPOUSE,
    "与老伴同住": LivingArrangement.WITH_SPOUSE,
    "与子女居住": LivingArrangement.WITH_CHILDREN,
    "与子女同住": LivingArrangement.WITH_CHILDREN,
    "随子女居住": LivingArrangement.WITH_CHILDREN,
    "机构": LivingArrangement.INSTITUTION,
    "养老机构": LivingArrangement.INSTITUTION,
    "入住养老机构": LivingArrangement.INSTITUTION,
    "敬老院": LivingArrangement.INSTITUTION,
    "机构养老": LivingArrangement.INSTITUTION,
}
_TRUE = {"是", "y", "yes", "true", "1", "√", "✓", "✔", "有"}
_FALSE = {"否", "n", "no", "false", "0", "×", "✗", "无"}
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "壹": 1, "贰": 2, "叁": 3, "肆": 4}

# Written on registration (and by roster imports); birth date and sex come from the ID number.
REGISTERED_FIELDS = (
    "id_number",
    "name",
    "sex",
    "birth_date",
    "phone",
    "hukou_type",
    "hukou_area_code",
    "residence_area_code",
    "address",
    "living_arrangement",
    *SUPPORT_FLAGS,
    "severe_handicap_grade",
    "contacts",
    "guardian_name",
    "guardian_phone",
)
# What a form or roster row gives (birth date and sex are derived from the ID number, not typed).
REGISTER_FIELDS = frozenset(REGISTERED_FIELDS) - {"sex", "birth_date"}
UPDATE_FIELDS = REGISTER_FIELDS | {"status", "deceased_on"}
# Audited on every change.
_RECORD_FIELDS = (*REGISTERED_FIELDS, "status", "deceased_on")


class DuplicateElder(RegistryError):
    """The ID number is already on the register; `existing_id` is the record that holds it."""

    status = 409

    def __init__(self, message: str, *, existing_id: int):
        super().__init__(message, field_errors={"id_number": message})
        self.existing_id = existing_id


def mask_name(name: str) -> str:
    """Hide all but the first character of a name: 张三丰 -> 张**."""
    name = (name or "").strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def in_area(column, area_code: str):
    """Return a condition that a code column lies inside `area_code` (a prefix, as a range an index serves)."""
    # Codes are digits only, and ':' sorts right after '9'.
    return and_(column >= area_code, column < area_code + ":")


def area_path(session: Session, code: str | None) -> str:
    """Return an area's name with its ancestors', e.g. 温县祥云镇祥云村."""
    names: list[str] = []
    while code:
        area = session.get(Area, code)
        if area is None:
            names.append(code)
            break
        names.append(area.name)
        code = area.parent_code
    return "".join(reversed(names))


def clean_elder(
    data: Mapping[str, Any],
    *,
    areas: Mapping[str, AreaLevel],
    today: date,
    fields: Iterable[str] = REGISTER_FIELDS,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check and normalise an elder's data; return the clean values and {field: Chinese message}."""
    allowed = set(fields)
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key in data:
        if key not in allowed:
            errors[key] = "不能填写或修改此项"

    name = _text(data.get("name"))
    if not name:
        errors["name"] = "请填写姓名"
    elif len(name) > 32:
        errors["name"] = "姓名过长：最多32个字"
    elif re.search(r"\d", name):
        errors["name"] = "姓名不能含数字"
    else:
        out["name"] = name

    raw_id = data.get("id_number")
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        # An ID number typed into a number cell keeps 15 significant digits: the tail is already lost.
        errors["id_number"] = "身份证号被存成了数字，末几位已丢失：请将该列设为文本后重新填写"
    elif not _text(raw_id):
        errors["id_number"] = "请填写身份证号"
    else:
        try:
            info = parse_id_number(_text(raw_id), today=today)
        except IdNumberError as exc:
            errors["id_number"] = str(exc)
        else:
            age = info.age_on(today)
            if age < MIN_AGE:
                errors["id_number"] = f"未满{MIN_AGE}周岁（按身份证号计算现年{age}周岁），不能登记为老年人"
            out.update(id_number=info.number, birth_date=info.birth_date, sex=Sex(info.sex))

    out["phone"] = _clean_phone(data.get("phone"), "phone", errors)

    hukou = _text(data.get("hukou_type"))
    if not hukou:
        errors["hukou_type"] = "请填写户籍类型（农村或城镇）"
    else:
        value = _choice(hukou, HukouType, HUKOU_LABELS, _HUKOU_ALIASES)
        if value is None:
            errors["hukou_type"] = f"户籍类型“{hukou}”无法识别：请填写“农村”或“城镇”"
        out["hukou_type"] = value

    hukou_area = _text(data.get("hukou_area_code"))
    if hukou_area and hukou_area not in areas:
        errors["hukou_area_code"] = f"行政区划代码 {hukou_area} 不存在"
    out["hukou_area_code"] = hukou_area or None

    residence = _text(data.get("residence_area_code"))
    if not residence:
        errors["residence_area_code"] = "请填写居住村(社区)"
    elif residence not in areas:
        errors["residence_area_code"] = f"行政区划代码 {residence} 不存在"
    elif areas[residence] != AreaLevel.VILLAGE:
        errors["residence_area_code"] = "居住地须填到村(社区)一级（12位代码）"
    else:
        out["residence_area_code"] = residence

    address = _text(data.get("address"))
    if len(address) > 255:
        errors["address"] = "详细地址过长：最多255个字"
    out["address"] = address

    living = _text(data.get("living_arrangement"))
    arrangement = None
    if not living:
        errors["living_arrangement"] = "请填写居住状况"
    else:
        arrangement = _choice(living, LivingArrangement, LIVING_LABELS, _LIVING_ALIASES)
        if arrangement is None:
            choices = "、".join(LIVING_LABELS.values())
            errors["living_arrangement"] = f"居住状况“{living}”无法识别：请填写{choices}之一"
    out["living_arrangement"] = arrangement

    flags: dict[str, bool | None] = {}
    for flag in SUPPORT_FLAGS:
        try:
            flags[flag] = _flag(data.get(flag))
        except ValueError:
            errors[flag] = "请填写“是”或“否”"
            flags[flag] = False
    if flags["living_alone"] is None:
        # Living alone is a living arrangement first; the flag follows it unless stated.
        flags["living_alone"] = arrangement == LivingArrangement.LIVING_ALONE
    out.update({flag: bool(value) for flag, value in flags.items()})

    grade = None
    raw_grade = data.get("severe_handicap_grade")
    if _text(raw_grade):
        grade = _grade(raw_grade)
        if grade is None:
            errors["severe_handicap_grade"] = "残疾等级须为1至4级（一级最重）"
    out["severe_handicap_grade"] = grade

    out["contacts"] = _clean_contacts(data.get("contacts"), errors)
    guardian = _text(data.get("guardian_name"))
    if len(guardian) > 32:
        errors["guardian_name"] = "监护人姓名过长：最多32个字"
    out["guardian_name"] = guardian or None
    out["guardian_phone"] = _clean_phone(data.get("guardian_phone"), "guardian_phone", errors)
    if out["guardian_phone"] and not guardian and "guardian_name" not in errors:
        errors["guardian_name"] = "填写了监护人电话，请同时填写监护人姓名"

    if "status" in allowed:
        _clean_status(data, out, errors, today)

    _check_consistency(out, arrangement, errors)
    return out, errors


def _check_consistency(
    out: dict[str, Any], arrangement: LivingArrangement | None, errors: dict[str, str]
) -> None:
    """Refuse flag combinations that cannot both be true, naming the field to correct."""

    def flag_error(field: str, message: str) -> None:
        errors.setdefault(field, message)

    assistance = [flag for flag in ("dibao", "near_dibao", "tekun") if out[flag]]
    if len(assistance) > 1:
        # 特困 people are not also on 低保, and 低保边缘 means "just above 低保": one household, one status.
        flag_error(assistance[-1], "低保、低保边缘、特困只能选其一")
    if out["home_support"] and not out["tekun"]:
        flag_error("home_support", "分散供养仅适用于特困人员：请同时选择特困，或取消分散供养")
    if out["institutional_support"] and not out["tekun"]:
        flag_error("institutional_support", "集中供养仅适用于特困人员：请同时选择特困，或取消集中供养")
    if out["home_support"] and out["institutional_support"]:
        flag_error("institutional_support", "分散供养与集中供养只能选其一")
    if out["tekun"] and not (out["home_support"] or out["institutional_support"]):
        flag_error("tekun", "特困人员须选择供养方式：分散供养或集中供养")
    if out["severe_handicap_grade"] is not None and not out["severe_handicap"]:
        flag_error("severe_handicap_grade", "只有重度残疾才填写残疾等级")
    if arrangement is None:
        return
    label = LIVING_LABELS[arrangement]
    if out["living_alone"] and arrangement not in (LivingArrangement.LIVING_ALONE, LivingArrangement.OTHER):
        flag_error("living_alone", f"居住状况为“{label}”，与独居矛盾")
    if not out["living_alone"] and arrangement == LivingArrangement.LIVING_ALONE:
        flag_error("living_alone", "居住状况为“独居”，独居应为“是”")
    if out["empty_nest"] and arrangement == LivingArrangement.WITH_CHILDREN:
        flag_error("empty_nest", "空巢老人不与子女同住，与居住状况“与子女同住”矛盾")
    if out["institutional_support"] and arrangement != LivingArrangement.INSTITUTION:
        flag_error("living_arrangement", "集中供养的特困人员居住状况应为“入住机构”")
    if out["home_support"] and arrangement == LivingArrangement.INSTITUTION:
        flag_error("living_arrangement", "分散供养的特困人员居住在家中，居住状况不能为“入住机构”")


def _clean_status(data: Mapping[str, Any], out: dict[str, Any], errors: dict[str, str], day: date) -> None:
    raw = _text(data.get("status")) or ElderStatus.ACTIVE.value
    status = _choice(raw, ElderStatus, STATUS_LABELS, {})
    if status is None:
        errors["status"] = "状态须为在册、已故或迁出"
    out["status"] = status
    deceased_on = data.get("deceased_on")
    if isinstance(deceased_on, str) and deceased_on.strip():
        try:
            deceased_on = date.fromisoformat(deceased_on.strip())
        except ValueError:
            errors["deceased_on"] = "死亡日期格式应为 YYYY-MM-DD"
            deceased_on = None
    elif isinstance(deceased_on, datetime):
        deceased_on = deceased_on.date()
    elif not isinstance(deceased_on, date):
        deceased_on = None
    out["deceased_on"] = deceased_on
    if status == ElderStatus.DECEASED and deceased_on is None:
        errors.setdefault("deceased_on", "状态为已故时须填写死亡日期")
    if status != ElderStatus.DECEASED and deceased_on is not None:
        errors.setdefault("deceased_on", "只有已故老人才填写死亡日期")
    if deceased_on is not None and deceased_on > day:
        errors.setdefault("deceased_on", "死亡日期不能晚于今天")
    birth = out.get("birth_date")
    if deceased_on is not None and birth is not None and deceased_on < birth:
        errors.setdefault("deceased_on", "死亡日期不能早于出生日期")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Enum):
        return str(value.value)
    return str(value).strip()


def _choice(text: str, enum_cls, labels: Mapping, aliases: Mapping):
    text = re.sub(r"\s+", "", text)
    for member in enum_cls:
        if text.lower() == member.value or text == labels.get(member):
            return member
    return aliases.get(text)


def _flag(value: Any) -> bool | None:
    """Read a yes/no cell: None when blank, so that a default can apply."""
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(text)


def _grade(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= 4 else None
    text = re.sub(r"\s+", "", _text(value)).removesuffix("级")
    number = _CN_DIGITS.get(text)
    if number is None and text.isdigit():
        number = int(text)
    return number if number is not None and 1 <= number <= 4 else None


def _clean_phone(value: Any, field: str, errors: dict[str, str]) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        return validate_phone(text)
    except PhoneError as exc:
        errors[field] = str(exc)
        return None


def _clean_contacts(value: Any, errors: dict[str, str]) -> str:
    if value is None or value == "":
        return "[]"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            errors["contacts"] = "联系人格式错误"
            return "[]"
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        errors["contacts"] = "联系人格式错误：应为姓名、关系、电话的列表"
        return "[]"
    contacts = []
    for number, item in enumerate(value, start=1):
        name, relation = _text(item.get("name")), _text(item.get("relation"))
        if not name:
            errors["contacts"] = f"第{number}位联系人：请填写姓名"
            break
        if len(name) > 32 or len(relation) > 16:
            errors["contacts"] = f"第{number}位联系人：姓名或关系过长"
            break
        try:
            phone = validate_phone(_text(item.get("phone")))
        except PhoneError as exc:
            errors["contacts"] = f"第{number}位联系人：{exc}"
            break
        contacts.append({"name": name, "relation": relation, "phone": phone})
    return json.dumps(contacts, ensure_ascii=False)


def _describe_errors(errors: Mapping[str, str]) -> str:
    parts = [f"{FIELD_LABELS.get(field, field)}：{message}" for field, message in errors.items()]
    return "老人信息有误，请修改后重新提交。" + "；".join(parts)


def _area_levels(session: Session, codes: Iterable[str | None]) -> dict[str, AreaLevel]:
    wanted = {_text(code) for code in codes if _text(code)}
    if not wanted:
        return {}
    rows = session.execute(select(Area.code, Area.level).where(Area.code.in_(wanted)))
    return {code: level for code, level in rows}


def require_role(actor: User, roles: frozenset[Role], doing: str) -> None:
    """Refuse an inactive actor, or one whose role is not among `roles`; `doing` words the action."""
    if not actor.is_active:
        raise PermissionDenied("账号已停用")
    if actor.role not in roles:
        raise PermissionDenied(f"您的角色（{ROLE_LABELS.get(actor.role, actor.role)}）不能{doing}")


def require_area(session: Session, actor: User, area_code: str) -> None:
    """Refuse an actor whose area does not cover `area_code`, naming both areas."""
    if not access.covers(actor, area_code):
        raise PermissionDenied(
            f"无权操作：该老人居住在{area_path(session, area_code)}，"
            f"不在您的管辖范围（{area_path(session, actor.area_code)}）内"
        )


def _load(session: Session, actor: User, elder_id: int, roles: frozenset[Role], doing: str) -> Elder:
    require_role(actor, roles, doing)
    elder = session.get(Elder, elder_id) if is_row_id(elder_id) else None
    if elder is None:
        raise NotFound(f"老人档案 #{elder_id} 不存在")
    require_area(session, actor, elder.residence_area_code)
    return elder


def audit_text(value: Any) -> str | None:
    """Return how a value is written into the change history."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def duplicate_message(session: Session, existing: Elder) -> str:
    """Return the Chinese refusal for a duplicate ID number, pointing at the record that holds it."""
    place = area_path(session, existing.residence_area_code)
    return format_duplicate(existing.id, existing.id_number, existing.name, place)


def format_duplicate(elder_id: int, id_number: str, name: str, place: str) -> str:
    """Word the refusal of an ID number already registered as elder `elder_id` (name masked)."""
    return f"身份证号 {mask_id_number(id_number)} 已登记：老人档案 #{elder_id}（{mask_name(name)}，{place}），请勿重复登记"


def register_elder(session: Session, actor: User, data: Mapping[str, Any]) -> Elder:
    """Check and register a new elder, auditing every field written."""
    require_role(actor, WRITE_ROLES, "登记老人")
    day = clock.today()
    areas = _area_levels(session, [data.get("residence_area_code"), data.get("hukou_area_code")])
    values, errors = clean_elder(data, areas=areas, today=day)
    if errors:
        raise RegistryError(_describe_errors(errors), field_errors=errors)
    require_area(session, actor, values["residence_area_code"])
    existing = session.scalar(select(Elder).where(Elder.id_number == values["id_number"]))
    if existing is not None:
        raise DuplicateElder(duplicate_message(session, existing), existing_id=existing.id)

    now = clock.now()
    elder = Elder(**values, status=ElderStatus.ACTIVE, created_at=now, updated_at=now, created_by=actor.id)
    session.add(elder)
    try:
        # A savepoint, so that losing a race on the unique ID number leaves the caller's transaction usable.
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(Elder).where(Elder.id_number == values["id_number"]))
        if existing is None:
            raise
        raise DuplicateElder(duplicate_message(session, existing), existing_id=existing.id) from None
    for field in _RECORD_FIELDS:
        value = getattr(elder, field)
        if value is None or (field == "contacts" and value == "[]"):
            continue
        session.add(
            ElderChange(
                elder_id=elder.id,
                at=now,
                actor_id=actor.id,
                field=field,
                old_value=None,
                new_value=audit_text(value),
                reason="新登记",
            )
        )
    session.flush()
    return elder


def _change_fields(session: Session, elder: Elder, actor: User, new_values, reason: str, now) -> bool:
    """Set each changed field and audit it as old -> new; return whether anything changed."""
    changed = False
    for field, new in new_values:
        old = getattr(elder, field)
        if audit_text(old) == audit_text(new):
            continue
        setattr(elder, field, new)
        session.add(
            ElderChange(
                elder_id=elder.id,
                at=now,
                actor_id=actor.id,
                field=field,
                old_value=audit_text(old),
                new_value=audit_text(new),
                reason=reason,
            )
        )
        changed = True
    return changed


def update_elder(
    session: Session, actor: User, elder_id: int, changes: Mapping[str, Any], reason: str = ""
) -> Elder:
    """Change an elder's record, auditing each changed field as old -> new."""
    elder = _load(session, actor, elder_id, WRITE_ROLES, "修改老人档案")
    current = {field: getattr(elder, field) for field in UPDATE_FIELDS}
    merged = {**current, **changes}
    if "living_arrangement" in changes and "living_alone" not in changes:
        merged["living_alone"] = None  # follow the new arrangement, as on registration
    day = clock.today()
    areas = _area_levels(session, [merged.get("residence_area_code"), merged.get("hukou_area_code")])
    values, errors = clean_elder(merged, areas=areas, today=day, fields=UPDATE_FIELDS)
    if errors:
        raise RegistryError(_describe_errors(errors), field_errors=errors)
    if values["id_number"] != elder.id_number:
        existing = session.scalar(
            select(Elder).where(Elder.id_number == values["id_number"], Elder.id != elder.id)
        )
        if existing is not None:
            raise DuplicateElder(duplicate_message(session, existing), existing_id=existing.id)
    # A new residence outside the actor's area is allowed: moving house is a hand-over to that township.

    now = clock.now()
    reason = (reason or "").strip()
    changed = _change_fields(
        session, elder, actor, ((field, values[field]) for field in _RECORD_FIELDS), reason, now
    )
    if changed:
        elder.updated_at = now
        session.flush()
    if current["status"] != elder.status and elder.status != ElderStatus.ACTIVE:
        _tell_running_cases(session, actor, elder)
    return elder


def _tell_running_cases(session: Session, actor: User, elder: Elder) -> None:
    """Deliver the messages the processes declare for an elder leaving the register (each process's cases
    end or withdraw on them) to this elder's running cases, in the same transaction."""
    reason = "老人已故" if elder.status == ElderStatus.DECEASED else "老人已迁出"
    payload = {
        "elder_id": elder.id,
        "reason": reason,
        "on": (elder.deceased_on or clock.today()).isoformat(),
        "by": actor.username,
    }
    for name in registry.current().leaving_messages(elder.status.value):
        cases.deliver_message(session, name, payload, elder_id=elder.id)


@dataclass
class LeavingEffect:
    """A running case an elder's leaving the register reaches (what the register will tell it)."""

    case_id: int
    title: str
    process_key: str
    current_step: str
    message: str


def leaving_effects(session: Session, actor: User, elder_id: int, status: str) -> list[LeavingEffect]:
    """The running cases that saving the elder as deceased or moved away would reach, before it is saved:
    each waits for a message its process declares for that (see `Process.leaving`)."""
    elder = _load(session, actor, elder_id, WRITE_ROLES, "修改老人档案")
    if status == ElderStatus.ACTIVE.value or status == elder.status.value:
        return []
    names = registry.current().leaving_messages(status)
    if not names:
        return []
    rows = session.execute(
        select(Case.id, Case.title, Case.process_key, Case.current_step, CaseWait.event_name)
        .join(CaseWait, CaseWait.case_id == Case.id)
        .where(Case.elder_id == elder.id, Case.status == CaseStatus.RUNNING, CaseWait.event_name.in_(names))
        .order_by(Case.id)
    ).all()
    return [LeavingEffect(*row) for row in rows]


def list_change_views(session: Session, actor: User, elder_id: int) -> list[dict]:
    """An elder's change history as pages show it: who, when, which field, old → new (numbers masked)."""
    changes = list_changes(session, actor, elder_id)
    ids = {c.actor_id for c in changes if c.actor_id is not None}
    names = (
        dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()) if ids else {}
    )
    views = []
    registered = [c for c in changes if c.reason == "新登记"]
    for c in reversed(changes):
        if c.reason == "新登记":
            continue  # the fields written on registration: one line below
        views.append(
            {
                "at": c.at,
                "who": names.get(c.actor_id, "系统"),
                "field": c.field,
                "label": FIELD_LABELS.get(c.field, c.field),
                "old": _shown(c.field, c.old_value),
                "new": _shown(c.field, c.new_value),
                "reason": c.reason,
            }
        )
    if registered:
        first = registered[0]
        views.append(
            {
                "at": first.at,
                "who": names.get(first.actor_id, "系统"),
                "field": "registered",
                "label": "登记",
                "old": "—",
                "new": f"登记 {len(registered)} 项信息",
                "reason": "新登记",
            }
        )
    return views


def _shown(field: str, value: str | None) -> str:
    """A history value for reading: numbers masked, codes in words."""
    if value is None or value == "":
        return "—"
    if field == "id_number":
        return mask_id_number(value)
    if field in ("phone", "guardian_phone"):
        return mask_phone(value)
    if field == "contacts":
        try:
            people = json.loads(value)
        except ValueError:
            return "—"
        return (
            "；".join(
                f"{p.get('name', '')}（{p.get('relation', '')}）{mask_phone(p.get('phone') or '')}"
                for p in people
            )
            or "—"
        )
    if value in ("true", "false"):
        return "是" if value == "true" else "否"
    labels = {
        "hukou_type": {k.value: v for k, v in HUKOU_LABELS.items()},
        "living_arrangement": {k.value: v for k, v in LIVING_LABELS.items()},
        "status": {k.value: v for k, v in STATUS_LABELS.items()},
        "disability_level": {k.value: k.label for k in DisabilityLevel},
    }
    return labels.get(field, {}).get(value, value)


def applicant(session: Session, actor: User, elder_id: int) -> Elder:
    """The elder an application is made for: on the register, alive and living here, in the actor's area."""
    elder = session.get(Elder, elder_id) if is_row_id(elder_id) else None
    if elder is None:
        raise NotFound("老年人不存在")
    access.require_area(actor, elder.residence_area_code)
    if elder.status != ElderStatus.ACTIVE:
        raise ValidationFailed(
            "该老人不在册（已故或迁出），不能申请", field_errors={"elder_id": "该老人不在册"}
        )
    return elder


def get_elder(session: Session, actor: User, elder_id: int) -> Elder:
    """Return one elder's record if the actor may read it."""
    return _load(session, actor, elder_id, READ_ROLES, "查看老人档案")


def list_changes(session: Session, actor: User, elder_id: int) -> list[ElderChange]:
    """Return an elder's change history, oldest first."""
    _load(session, actor, elder_id, READ_ROLES, "查看老人档案")
    query = (
        select(ElderChange).where(ElderChange.elder_id == elder_id).order_by(ElderChange.at, ElderChange.id)
    )
    return list(session.scalars(query))


def search_elders(session: Session, actor: User, q: str, limit: int = 20) -> list[Elder]:
    """Find elders in the actor's area by a fragment of their name or ID number."""
    require_role(actor, READ_ROLES, "查看老人档案")
    limit = max(1, min(int(limit), 200))
    q = re.sub(r"\s+", "", q or "")
    query = select(Elder).where(in_area(Elder.residence_area_code, actor.area_code))
    if q:
        id_fragment = q.upper()
        query = query.where(
            or_(
                Elder.name.contains(q, autoescape=True),
                Elder.id_number.contains(id_fragment, autoescape=True),
            )
        ).order_by(
            # Exact ID and exact name first, then names that start with the query.
            case(
                (Elder.id_number == id_fragment, 0),
                (Elder.name == q, 1),
                (Elder.name.startswith(q, autoescape=True), 2),
                else_=3,
            ),
            Elder.name,
            Elder.id,
        )
    else:
        query = query.order_by(Elder.name, Elder.id)
    return list(session.scalars(query.limit(limit)))


def record_assessment(
    session: Session,
    actor: User,
    elder_id: int,
    result: Any,
    assessed_on: date,
    reason: AssessmentReason | str,
    case_id: int | None = None,
    *,
    items: Mapping[str, int] | None = None,
    valid_months: int = 12,
) -> Assessment:
    """Store an assessment and, if it is the latest, make its level the elder's current one."""
    elder = _load(session, actor, elder_id, ASSESS_ROLES, "记录能力评估")
    errors: dict[str, str] = {}
    try:
        reason = AssessmentReason(reason)
    except ValueError:
        errors["reason"] = "评估类型须为首次评估、常规评估、即时评估或复评"
    if not isinstance(assessed_on, date) or isinstance(assessed_on, datetime):
        errors["assessed_on"] = "请填写评估日期"
    elif assessed_on > clock.today():
        errors["assessed_on"] = "评估日期不能晚于今天"
    elif assessed_on < elder.birth_date:
        errors["assessed_on"] = "评估日期不能早于出生日期"
    elif elder.deceased_on is not None and assessed_on > elder.deceased_on:
        errors["assessed_on"] = "评估日期不能晚于老人的死亡日期"

    total = getattr(result, "total", None)
    if isinstance(total, bool) or not isinstance(total, int):
        errors["total"] = "总分须为整数"
        base = None
    else:
        try:
            base = level_for_total(total)
        except AssessmentError as exc:
            errors["total"] = str(exc)
            base = None

    scores = items if items is not None else getattr(result, "items", None)
    if scores is None:
        errors["items"] = "缺少各评估项目得分"
    else:
        scores = dict(scores)
        try:
            check_items(scores)
        except AssessmentError as exc:
            errors["items"] = str(exc)
        else:
            if "total" not in errors and sum(scores.values()) != total:
                errors["total"] = f"总分 {total} 与各项得分之和 {sum(scores.values())} 不符"

    try:
        level = DisabilityLevel(getattr(result, "level", None))
    except ValueError:
        errors["level"] = "评估等级须为能力完好、轻度、中度、重度或完全失能"
        level = None
    if level is not None and base is not None and level.rank < base.rank:
        # Adjustments only ever raise a level; a lower one means the result was tampered with or mistyped.
        errors["level"] = f"评估等级不能低于按总分确定的等级（{base.label}）"
    if errors:
        raise RegistryError(_describe_errors(errors), field_errors=errors)

    adjustments = [str(item) for item in (getattr(result, "adjustments", None) or [])]
    now = clock.now()
    assessment = Assessment(
        elder_id=elder.id,
        assessed_on=assessed_on,
        reason=reason,
        items=json.dumps(scores, ensure_ascii=False),
        total=total,
        level=level,
        adjustments=json.dumps(adjustments, ensure_ascii=False),
        valid_until=valid_until(assessed_on, valid_months),
        assessor_id=actor.id,
        case_id=case_id,
        created_at=now,
    )
    session.add(assessment)
    session.flush()

    # A late-entered older assessment joins the history without replacing the current level.
    if elder.disability_assessed_on is None or assessed_on >= elder.disability_assessed_on:
        note = f"能力评估 #{assessment.id}（{reason.label}）"
        new_values = (
            ("disability_level", level),
            ("disability_assessed_on", assessed_on),
            ("disability_valid_until", assessment.valid_until),
        )
        _change_fields(session, elder, actor, new_values, note, now)
        elder.updated_at = now
        session.flush()
    return assessment
