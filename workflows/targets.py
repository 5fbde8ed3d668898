"""The targets a county measures itself against, with the seeds' figures as defaults.

Each county may set its own value (`county_targets` rows); a target it has not set reads as the seeds say.
Rates are fractions (1 = 100 %), counts whole numbers, years calendar years.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import clock
from .errors import PermissionDenied, ValidationFailed
from .models import Area, AreaLevel, Role, User
from .models.supervision import CountyTarget

COUNTY_CODE_LENGTH = 6
SET_ROLES = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class TargetSpec:
    key: str
    label: str
    kind: str  # rate / count / year
    default: Decimal
    source: str  # where the default comes from


SPECS: dict[str, TargetSpec] = {
    spec.key: spec
    for spec in (
        TargetSpec(
            "monthly_visit_rate",
            "特殊困难老年人月探访率",
            "rate",
            Decimal("1"),
            "阳城县、鹤壁市、菏泽市方案：2025年底月探访率达到100%",
        ),
        TargetSpec(
            "weekly_visit_rate_home_support",
            "分散供养特困老年人周探访率",
            "rate",
            Decimal("1"),
            "温县方案第7条：分散供养特困老年人等重点对象周探访率达到100%",
        ),
        TargetSpec(
            "adaptation_households",
            "特殊困难老年人家庭适老化改造（户，规划期累计）",
            "count",
            Decimal("500"),
            "温县方案第16条：2025年底前完成不少于500户",
        ),
        TargetSpec(
            "adaptation_first_year", "适老化改造规划期起始年", "year", Decimal("2023"), "焦政办〔2023〕45号"
        ),
        TargetSpec(
            "adaptation_last_year", "适老化改造规划期截止年", "year", Decimal("2025"), "温县方案：到2025年"
        ),
        TargetSpec(
            "home_care_beds",
            "家庭养老床位（张，规划期累计）",
            "count",
            Decimal("226"),
            "温县方案第16条：建设226张以上家庭养老床位",
        ),
        TargetSpec(
            "institutional_support_rate",
            "生活不能自理特困人员集中供养率",
            "rate",
            Decimal("0.7"),
            "温县方案第13条：到2025年不低于70%",
        ),
        TargetSpec(
            "public_home_occupancy_rate",
            "公办养老机构入住率",
            "rate",
            Decimal("0.6"),
            "温县方案第14条：到2025年底达到60%以上",
        ),
    )
}


@dataclass(frozen=True)
class Target:
    spec: TargetSpec
    value: Decimal
    is_default: bool

    @property
    def label(self) -> str:
        return self.spec.label

    def shown(self) -> str:
        """The value as people write it: 100%, 500, 2025."""
        if self.spec.kind == "rate":
            return f"{(self.value * 100).normalize():f}%"
        return f"{self.value.normalize():f}"


def county_of(area_code: str) -> str:
    return area_code[:COUNTY_CODE_LENGTH]


def targets_for(session: Session, area_code: str) -> dict[str, Target]:
    """Every target of the county the area belongs to: its own value where set, the seeds' otherwise."""
    county = county_of(area_code)
    own = {
        row.key: row.value
        for row in session.scalars(select(CountyTarget).where(CountyTarget.county_code == county))
    }
    return {
        key: Target(spec, Decimal(own[key]) if key in own else spec.default, key not in own)
        for key, spec in SPECS.items()
    }


def yearly_adaptation_target(targets: dict[str, Target]) -> int:
    """The households a year of the plan period should reach: the period's total spread evenly, rounded up."""
    first = int(targets["adaptation_first_year"].value)
    last = int(targets["adaptation_last_year"].value)
    years = max(1, last - first + 1)
    return math.ceil(targets["adaptation_households"].value / years)


def parse_value(spec: TargetSpec, text: str) -> Decimal:
    """Read a target value as typed ("95%", "0.95", "500", "2025"), refusing what cannot be one."""
    raw = (text or "").strip().replace("％", "%")
    try:
        percent = spec.kind == "rate" and raw.endswith("%")
        value = Decimal(raw[:-1].strip()) / 100 if percent else Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise ValidationFailed(f"{spec.label}：请填写数字", field_errors={"value": "请填写数字"})
    if spec.kind == "rate" and not Decimal(0) <= value <= Decimal(1):
        message = "比率应在 0 到 100% 之间（如 95% 或 0.95）"
        raise ValidationFailed(f"{spec.label}：{message}", field_errors={"value": message})
    if spec.kind == "count" and (value < 0 or value != value.to_integral_value() or value > 10**9):
        message = "应为不小于0的整数"
        raise ValidationFailed(f"{spec.label}：{message}", field_errors={"value": message})
    if spec.kind == "year" and (value != value.to_integral_value() or not 2000 <= value <= 2100):
        message = "应为2000至2100之间的年份"
        raise ValidationFailed(f"{spec.label}：{message}", field_errors={"value": message})
    return value


def set_target(
    session: Session, actor: User | None, county_code: str, key: str, text: str, note: str = ""
) -> Target:
    """Set one of a county's targets (admins of that county, or the command line)."""
    spec = SPECS.get(key)
    if spec is None:
        raise ValidationFailed(
            f"未知的目标项：{key}（可设置：{'、'.join(SPECS)}）", field_errors={"key": "未知的目标项"}
        )
    area = session.get(Area, county_code)
    if area is None or area.level != AreaLevel.COUNTY:
        raise ValidationFailed(f"县级行政区划 {county_code} 不存在", field_errors={"county_code": "县不存在"})
    if actor is not None:
        if actor.role not in SET_ROLES or not actor.is_active:
            raise PermissionDenied("只有系统管理员可以设置考核目标")
        if not county_code.startswith(actor.area_code):
            raise PermissionDenied("无权设置其他县的考核目标")
    value = parse_value(spec, text)
    values = {
        "value": value,
        "note": (note or "").strip()[:500],
        "updated_at": clock.now(),
        "updated_by": actor.id if actor is not None else None,
    }
    mine = (CountyTarget.county_code == county_code, CountyTarget.key == key)
    if not session.execute(update(CountyTarget).where(*mine).values(**values)).rowcount:
        try:
            # A savepoint: an admin setting the same target at the same moment wins the insert, we update.
            with session.begin_nested():
                session.add(CountyTarget(county_code=county_code, key=key, **values))
        except IntegrityError:
            session.execute(update(CountyTarget).where(*mine).values(**values))
    session.flush()
    return Target(spec, value, False)
