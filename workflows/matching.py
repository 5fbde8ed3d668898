"""政策找人: the catalogue items a registered elder qualifies for, in the catalogue of their jurisdiction.

The rules and catalogues are in `workflows.rules.catalogue`; this module connects them to the registry:
which jurisdiction an elder belongs to (by the residence area code), and which facts the record gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import access, clock, deadlines
from .errors import NotFound, PermissionDenied
from .models import Elder, User
from .rules.assessment import DisabilityLevel
from .rules.catalogue import (
    AmountKind,
    Catalogue,
    ElderFacts,
    Match,
    MatchOptions,
    MatchStatus,
    load_catalogue,
    match_elder,
)
from .rules.idnumber import mask_id_number, parse_id_number

# County codes (GB/T 2260) of the jurisdictions that publish a catalogue. 鹤壁's urban districts and its
# two counties have different standards (see the catalogue data), so they map to different keys.
JURISDICTION_BY_AREA = {
    "410825": "wenxian",  # 温县
    "140522": "yangcheng",  # 阳城县
    "431225": "huitong",  # 会同县
    "410602": "hebi_urban",  # 鹤山区
    "410603": "hebi_urban",  # 山城区
    "410611": "hebi_urban",  # 淇滨区
    "410621": "hebi_county",  # 浚县
    "410622": "hebi_county",  # 淇县
}


def _today() -> date:
    return deadlines.local_date(clock.now())


def jurisdiction_for(area_code: str | None) -> str:
    """The catalogue jurisdiction of an area (by its county code)."""
    if area_code:
        found = JURISDICTION_BY_AREA.get(area_code[:6])
        if found:
            return found
    raise ValueError(f"行政区划 {area_code or '（空）'} 没有配置基本养老服务清单，请用 --jurisdiction 指定")


def facts_of(elder: Elder) -> ElderFacts:
    """The facts matching needs, as the registry records them (an expired assessment does not count)."""
    level = elder.disability_level
    if (
        level is not None
        and elder.disability_valid_until is not None
        and elder.disability_valid_until < _today()
    ):
        level = None
    return ElderFacts(
        birth_date=elder.birth_date,
        sex=elder.sex.value if elder.sex else None,
        hukou=elder.hukou_type.value if elder.hukou_type else None,
        dibao=elder.dibao,
        near_dibao=elder.near_dibao,
        tekun=elder.tekun,
        home_support=elder.home_support,
        institutional_support=elder.institutional_support,
        living_alone=elder.living_alone,
        empty_nest=elder.empty_nest,
        left_behind=elder.left_behind,
        severe_handicap=elder.severe_handicap,
        handicap_grade=elder.severe_handicap_grade,
        family_planning_special=elder.family_planning_special,
        entitled_veteran_family=elder.entitled_veteran_family,
        disability_level=DisabilityLevel(level) if level else None,
    )


@dataclass
class MatchResult:
    elder: Elder
    catalogue: Catalogue
    on: date
    matches: list[Match]

    @property
    def eligible(self) -> list[Match]:
        return [m for m in self.matches if m.status == MatchStatus.ELIGIBLE]

    @property
    def to_review(self) -> list[Match]:
        return [m for m in self.matches if m.status != MatchStatus.ELIGIBLE]

    def render_text(self) -> str:
        """A plain-text report for the command line."""
        lines = [
            f"{self.elder.name}（{mask_id_number(self.elder.id_number)}）",
            f"清单：{self.catalogue.title}（{self.catalogue.version}，自 {self.catalogue.effective_from} 起施行），"
            f"按 {self.on} 计算",
            "",
            f"符合条件的项目（{len(self.eligible)} 项）：",
        ]
        lines += [f"  {describe(m)}" for m in self.eligible] or ["  （无）"]
        lines += ["", f"需人工核实的项目（{len(self.to_review)} 项）："]
        lines += [f"  {describe(m)}" for m in self.to_review] or ["  （无）"]
        return "\n".join(lines)


def describe(match: Match) -> str:
    """One line: item, amount (exact, floor, or not stated) and reason."""
    period = {"month": "/月", "year": "/年"}.get(match.period or "", "")
    if match.amount_kind == AmountKind.EXACT and match.amount is not None:
        amount = f"{match.amount:.2f} 元{period}"
    elif match.amount_kind == AmountKind.FLOOR and match.amount is not None:
        amount = f"不低于 {match.amount:.2f} 元{period}"
    elif match.amount_kind == AmountKind.NOT_STATED:
        amount = "标准未列明"
    else:
        amount = "按清单标准"
    title = f"第{match.item.number}项 {match.item.title}" + (f"（{match.part}）" if match.part else "")
    note = f"；{match.note}" if match.note else ""
    return f"{title}：{amount} —— {match.reason}{note}"


def match_for_elder(
    session: Session,
    elder: Elder,
    *,
    on: date | None = None,
    jurisdiction: str | None = None,
    options: MatchOptions | None = None,
) -> MatchResult:
    """Match a registered elder against the catalogue in force on `on` in their jurisdiction."""
    on = on or _today()
    catalogue = load_catalogue(jurisdiction or jurisdiction_for(elder.residence_area_code), on)
    return MatchResult(elder, catalogue, on, match_elder(facts_of(elder), catalogue, on, options=options))


def match_registered_elder(
    session: Session,
    id_number: str,
    *,
    actor: User | None = None,
    on: date | None = None,
    jurisdiction: str | None = None,
) -> MatchResult:
    """Find an elder by ID number and match them (`eldercare match`)."""
    number = parse_id_number(id_number).number
    elder = session.scalar(select(Elder).where(Elder.id_number == number))
    if elder is None:
        raise NotFound(f"登记册中没有身份证号为 {mask_id_number(number)} 的老年人")
    if actor is not None and not access.covers(actor, elder.residence_area_code):
        raise PermissionDenied("无权查看其他辖区的老年人")
    return match_for_elder(session, elder, on=on, jurisdiction=jurisdiction)
