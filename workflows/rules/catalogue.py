"""Basic elder-care service catalogues (基本养老服务清单) and matching elders to them (政策找人).

Each catalogue is a JSON file under `rules/data/`, transcribed from the published table: every item with its
number, recipient group, name, content, type, standard, funder and lead departments, exactly as printed.
Where a printed cell is empty because it was merged with the row above, the recipient is inherited and
marked `recipient_inherited`; other empty cells stay null. Where the table gives no figure, none is made up.

On top of the transcription an item may carry a machine-readable `rule` (who is eligible, what amount);
`rule: null` means eligibility cannot be decided from an elder's attributes, and matching lists the item as
needing manual verification (需人工核实). Rule syntax, in short:

    "rule": {"when": <condition>, "reason": "年满{age}周岁…", "verify": [{"unless": <condition>, "note": "…"}],
             "benefits": [{"part": "…", "choose_higher_with": {"item": 17, "part": "…"},
                           "cases": [{"when": <condition>, "amount": "800", "kind": "exact", "period": "year",
                                      "multiple_of": {"item": 19} | {"reference": "dibao_standard"},
                                      "factor": "2" | "1/3", "variant": "urban", "reason": "…", "note": "…",
                                      "review": "…"}]}]}

`when` decides eligibility; a `verify` entry whose `unless` does not hold, or a case's `review`, keeps the
match but marks it 需人工核实 with the note (for conditions the elder's facts cannot settle). Reasons may use
{age}, {level} and {flags}. Amounts are strings (never floats) and must be figures printed in the item.

A condition is a predicate name (see PREDICATES), or one of {"all": [...]}, {"any": [...]}, {"not": c},
{"age": [min, max|null]}, {"level": [...]}, {"handicap_grade": [...]}, {"hukou": "rural"|"urban"},
{"care_type": "full_self_care"|"half_care"|"full_care"}, {"option": "<MatchOptions field>"}.
Each benefit part yields the first case whose `when` holds. Amount kinds: `exact` (the amount), `floor`
(不低于 X 元: at least X, the county may pay more), `not_stated` (the table gives no figure: "标准未列明"),
`see_standard` (a service or privilege, or an amount depending on things outside the elder's facts; the
standard text is the answer).

Versions: a jurisdiction may have several catalogue files; `load_catalogue(j, on)` picks the one with the
latest `effective_from` not after `on`, so a new version never changes answers computed for earlier dates.

鹤壁市 (seed 003) publishes ONE catalogue whose 高龄津贴 has two standards, 市区 (100/200/500 元) and 两县
(50/100/300 元). We keep it as one data file (one document, one version history) with two *variants* that are
exposed as two jurisdictions, `hebi_urban` (市区) and `hebi_county` (两县: 浚县、淇县). Cases that differ
carry `"variant"`; everything else is shared, so a revision of the city table is made once. Which areas
belong to which variant is area configuration, not catalogue data.

Configuration (MatchOptions) covers the places where the printed text allows more than one reading; each
field's comment gives the default and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import age_on

DATA_DIR = Path(__file__).resolve().parent / "data"
CENT = Decimal("0.01")


class CatalogueError(ValueError):
    """A catalogue that cannot be found, is not in force, or whose data is malformed."""


class ServiceType(StrEnum):
    """The three kinds of basic elder-care service."""

    MATERIAL_HELP = "material_help"
    CARE_SERVICE = "care_service"
    CARING_SERVICE = "caring_service"

    @property
    def label(self) -> str:
        """Return the Chinese name as printed in the catalogues."""
        return _TYPE_LABELS[self]


_TYPE_LABELS = {
    ServiceType.MATERIAL_HELP: "物质帮助",
    ServiceType.CARE_SERVICE: "照护服务",
    ServiceType.CARING_SERVICE: "关爱服务",
}
_TYPES_BY_LABEL = {label: kind for kind, label in _TYPE_LABELS.items()}


class AmountKind(StrEnum):
    """How to read a matched amount."""

    EXACT = "exact"
    FLOOR = "floor"
    NOT_STATED = "not_stated"
    SEE_STANDARD = "see_standard"


class MatchStatus(StrEnum):
    """Whether the rules settle eligibility or a person has to check."""

    ELIGIBLE = "eligible"
    NEEDS_REVIEW = "needs_review"

    @property
    def label(self) -> str:
        """Return the Chinese label."""
        return "符合条件" if self is MatchStatus.ELIGIBLE else "需人工核实"


class CareType(StrEnum):
    """Care categories of 特困 support (全自理/半护理/全护理)."""

    FULL_SELF_CARE = "full_self_care"
    HALF_CARE = "half_care"
    FULL_CARE = "full_care"


@dataclass(frozen=True)
class Item:
    """One row of a catalogue, as printed, plus its optional rule."""

    number: int
    name: str | None
    recipient: str | None
    content: str | None
    type: ServiceType | None
    standard: str | None
    funder: str | None
    lead_departments: tuple[str, ...]
    recipient_inherited: bool = False
    number_inferred: bool = False
    notes: tuple[str, ...] = ()
    # Excluded from comparison and hashing: a rule is plain JSON data, and an item is identified by the rest.
    rule: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def title(self) -> str:
        """Return the item's name, or a placeholder naming its number when the table prints none."""
        return self.name if self.name else f"第{self.number}项（原表未列名称）"


@dataclass(frozen=True)
class Catalogue:
    """One version of one jurisdiction's catalogue."""

    jurisdiction: str
    jurisdiction_name: str
    title: str
    document: str
    version: str
    effective_from: date
    variant: str | None
    items: tuple[Item, ...]
    source: str = ""
    notes: tuple[str, ...] = ()

    def item(self, number: int) -> Item:
        """Return the item with this number."""
        for item in self.items:
            if item.number == number:
                return item
        raise CatalogueError(f"{self.title}中没有第{number}项")


@dataclass(frozen=True)
class ElderFacts:
    """What matching needs to know about an elder; give `birth_date` (preferred) or `age`."""

    birth_date: date | None = None
    age: int | None = None
    sex: str | None = None
    hukou: str | None = None  # "rural" / "urban"
    local_hukou: bool = True
    dibao: bool = False
    near_dibao: bool = False
    tekun: bool = False
    home_support: bool = False
    institutional_support: bool = False
    living_alone: bool = False
    empty_nest: bool = False
    left_behind: bool = False
    severe_handicap: bool = False
    handicap_grade: int | None = None  # 1-4 from the disability certificate, None without one
    family_planning_special: bool = False
    entitled_veteran_family: bool = False
    disability_level: DisabilityLevel | None = None

    def age_on(self, day: date) -> int:
        """Return the age in full years on `day`."""
        if self.birth_date is not None:
            return age_on(self.birth_date, day)
        if self.age is not None:
            return self.age
        raise CatalogueError("匹配服务项目需要老年人的出生日期或年龄")


def _default_care_types() -> dict[DisabilityLevel, CareType]:
    return {
        DisabilityLevel.INTACT: CareType.FULL_SELF_CARE,
        DisabilityLevel.MILD: CareType.FULL_SELF_CARE,
        DisabilityLevel.MODERATE: CareType.HALF_CARE,
        DisabilityLevel.SEVERE: CareType.FULL_CARE,
        DisabilityLevel.COMPLETE: CareType.FULL_CARE,
    }


@dataclass(frozen=True)
class MatchOptions:
    """County configuration for readings the printed catalogues leave open."""

    # 经济困难老年人: the tables never define it. Default: 特困, 低保 and 低保边缘 households.
    economic_hardship_flags: frozenset[str] = frozenset({"tekun", "dibao", "near_dibao"})
    # 失能 in recipient groups: GB/T 42195 calls every level below intact 失能. Default: mild and worse.
    disabled_levels: frozenset[DisabilityLevel] = frozenset(
        {DisabilityLevel.MILD, DisabilityLevel.MODERATE, DisabilityLevel.SEVERE, DisabilityLevel.COMPLETE}
    )
    # 经认定生活不能自理: default moderate, severe and complete (the levels process 1 treats as needing care).
    unable_to_self_care_levels: frozenset[DisabilityLevel] = frozenset(
        {DisabilityLevel.MODERATE, DisabilityLevel.SEVERE, DisabilityLevel.COMPLETE}
    )
    # 特困 care categories by assessed level. Default: intact/mild 全自理, moderate 半护理, severe/complete 全护理.
    care_type_by_level: Mapping[DisabilityLevel, CareType] = field(default_factory=_default_care_types)
    # "有条件的地方可扩大到低保边缘…" (温县/鹤壁 养老服务补贴 and 护理补贴): an option the county may take.
    # Default False: the printed list does not say the county has taken it.
    extend_to_near_dibao: bool = False
    # "有条件的地方可将改造对象范围扩大到低保对象中的失能、高龄、残疾老年人家庭" (温县/鹤壁 适老化改造). Default False.
    extend_adaptation_to_dibao: bool = False
    # "低保对象、计划生育特殊家庭的高龄、失能、残疾老年人": does 高龄/失能/残疾 qualify 低保对象 too?
    # Default True (it qualifies both, the reading of the national list); False: any 低保 elder qualifies.
    service_subsidy_needs_qualifier_for_dibao: bool = True
    # 择高: where a seed says the higher of two subsidies applies, keep only the higher one. Default True.
    choose_higher: bool = True
    # Local reference figures (e.g. "dibao_standard", "minimum_wage"; a key suffixed "_rural"/"_urban" wins
    # for that hukou) used by multiples like "不低于当地低保标准的1.3倍". Default none: shown as not stated.
    reference_amounts: Mapping[str, Decimal] = field(default_factory=dict)
    # 鹤壁 item 15 (长期护理保险) applies only in pilot areas; the table notes 鹤壁 is not one. Default False.
    ltc_insurance_pilot: bool = False
    # List items with `rule: null` as 需人工核实. Default True, as the 政策找人 lists require.
    include_unverifiable: bool = True


@dataclass(frozen=True)
class Match:
    """One catalogue item (or one part of it) an elder is, or may be, entitled to."""

    item: Item
    reason: str
    amount: Decimal | None
    amount_kind: AmountKind
    period: str | None
    note: str | None = None
    status: MatchStatus = MatchStatus.ELIGIBLE
    part: str | None = None
    catalogue_version: str = ""


_REFERENCE_LABELS = {"dibao_standard": "当地最低生活保障标准", "minimum_wage": "当地最低工资标准"}
# Names a rule condition may use: the elder's own flags plus facts derived through MatchOptions.
PREDICATES = frozenset(
    {
        "dibao",
        "near_dibao",
        "tekun",
        "home_support",
        "institutional_support",
        "living_alone",
        "empty_nest",
        "left_behind",
        "family_planning_special",
        "entitled_veteran_family",
        "local_hukou",
        "severe_handicap",
        "handicapped",
        "advanced_age",
        "disabled",
        "unable_to_self_care",
        "economic_hardship",
        "special_difficulty",
        "assessed",
    }
)
_OPTION_NAMES = frozenset(MatchOptions.__dataclass_fields__)


# Loading -----------------------------------------------------------------------------------------------


def load_catalogue(jurisdiction: str, on: date, *, data_dir: Path | None = None) -> Catalogue:
    """Return the version of a jurisdiction's catalogue in force on `on`."""
    versions = _versions(jurisdiction, data_dir or DATA_DIR)
    in_force = [version for version in versions if version.effective_from <= on]
    if not in_force:
        raise CatalogueError(
            f"{versions[0].jurisdiction_name}在 {on.isoformat()} 尚无生效的基本养老服务清单"
            f"（最早版本自 {versions[0].effective_from.isoformat()} 起施行）"
        )
    return in_force[-1]


def list_jurisdictions(*, data_dir: Path | None = None) -> dict[str, str]:
    """Return the jurisdictions that have a catalogue, with their Chinese names."""
    names: dict[str, str] = {}
    for path in sorted((data_dir or DATA_DIR).glob("catalogue_*.json")):
        for key, info in _read_file(path)["jurisdictions"].items():
            names[key] = info["name"]
    return names


def _versions(jurisdiction: str, data_dir: Path) -> list[Catalogue]:
    """Return every version of a jurisdiction's catalogue, oldest first."""
    versions = [
        _build_catalogue(path, jurisdiction)
        for path in sorted(data_dir.glob("catalogue_*.json"))
        if jurisdiction in _read_file(path)["jurisdictions"]
    ]
    if not versions:
        raise CatalogueError(f"未找到辖区“{jurisdiction}”的基本养老服务清单")
    versions.sort(key=lambda catalogue: catalogue.effective_from)
    for earlier, later in zip(versions, versions[1:], strict=False):
        if earlier.effective_from == later.effective_from:
            raise CatalogueError(
                f"{later.jurisdiction_name}有两个版本同自 {later.effective_from.isoformat()} 起施行："
                f"{earlier.version}、{later.version}"
            )
    return versions


@cache
def _read_file(path: Path) -> dict[str, Any]:
    """Read and check one catalogue file (cached: the files are data shipped with the code)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CatalogueError(f"无法读取服务清单文件 {path.name}：{error}") from error
    for key in ("title", "version", "effective_from", "jurisdictions", "items"):
        if key not in data:
            raise CatalogueError(f"服务清单文件 {path.name} 缺少字段 {key}")
    numbers = [item["number"] for item in data["items"]]
    if len(numbers) != len(set(numbers)):
        raise CatalogueError(f"服务清单文件 {path.name} 中有重复的项目编号")
    for item in data["items"]:
        if item.get("rule") is None:
            continue
        where = f"{path.name} 第{item['number']}项"
        try:
            _check_rule(item["rule"], where)
        except CatalogueError:
            raise
        except (ValueError, ArithmeticError, KeyError, TypeError) as error:
            raise CatalogueError(f"{where}：规则格式错误（{error!r}）") from error
    return data


@cache
def _build_catalogue(path: Path, jurisdiction: str) -> Catalogue:
    """Build the Catalogue of one file for one of its jurisdictions."""
    data = _read_file(path)
    info = data["jurisdictions"][jurisdiction]
    items = tuple(_build_item(raw) for raw in data["items"])
    return Catalogue(
        jurisdiction=jurisdiction,
        jurisdiction_name=info["name"],
        title=data["title"],
        document=data.get("document", ""),
        version=data["version"],
        effective_from=date.fromisoformat(data["effective_from"]),
        variant=info.get("variant"),
        items=items,
        source=data.get("source", ""),
        notes=tuple(data.get("notes", ())),
    )


def _build_item(raw: Mapping[str, Any]) -> Item:
    """Build an Item from its JSON object."""
    type_text = raw.get("type")
    if type_text is not None and type_text not in _TYPES_BY_LABEL:
        raise CatalogueError(f"第{raw['number']}项的服务类型“{type_text}”不是物质帮助/照护服务/关爱服务之一")
    return Item(
        number=raw["number"],
        name=raw.get("name"),
        recipient=raw.get("recipient"),
        content=raw.get("content"),
        type=_TYPES_BY_LABEL[type_text] if type_text else None,
        standard=raw.get("standard"),
        funder=raw.get("funder"),
        lead_departments=tuple(raw.get("lead_departments", ())),
        recipient_inherited=raw.get("recipient_inherited", False),
        number_inferred=raw.get("number_inferred", False),
        notes=tuple(raw.get("notes", ())),
        rule=raw.get("rule"),
    )


def _check_rule(rule: Mapping[str, Any], where: str) -> None:
    """Raise CatalogueError if a rule uses unknown keys, predicates, kinds or options."""
    _check_keys(rule, {"when", "reason", "verify", "benefits"}, where)
    _check_condition(rule.get("when"), where)
    for verify in rule.get("verify", ()):
        _check_keys(verify, {"unless", "note"}, where)
        _check_condition(verify.get("unless"), where)
    if not rule.get("benefits"):
        raise CatalogueError(f"{where}：规则缺少 benefits")
    for benefit in rule["benefits"]:
        _check_keys(benefit, {"part", "cases", "choose_higher_with"}, where)
        for case in benefit["cases"]:
            _check_keys(
                case,
                {
                    "when",
                    "reason",
                    "amount",
                    "kind",
                    "period",
                    "note",
                    "review",
                    "multiple_of",
                    "factor",
                    "variant",
                },
                where,
            )
            _check_condition(case.get("when"), where)
            if case.get("kind") not in set(AmountKind):
                raise CatalogueError(f"{where}：未知的金额类型 {case.get('kind')!r}")
            if case.get("period") not in (None, "month", "year"):
                raise CatalogueError(f"{where}：未知的发放周期 {case.get('period')!r}")
            if case.get("amount") is not None:
                # Amounts are strings so that no float ever touches money.
                if not isinstance(case["amount"], str):
                    raise CatalogueError(f'{where}：金额须写成字符串（如 "60"），实为 {case["amount"]!r}')
                Decimal(case["amount"])
            _factor(case.get("factor", "1"))


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise CatalogueError(f"{where}：规则中有未知字段 {sorted(unknown)}")


def _check_condition(condition: Any, where: str) -> None:
    """Raise CatalogueError if a condition is not in the rule language."""
    if condition is None:
        return
    if isinstance(condition, str):
        if condition not in PREDICATES:
            raise CatalogueError(f"{where}：未知的条件 {condition!r}")
        return
    if not isinstance(condition, dict) or len(condition) != 1:
        raise CatalogueError(f"{where}：条件须为名称或只含一个键的对象：{condition!r}")
    ((key, value),) = condition.items()
    if key in ("all", "any"):
        for part in value:
            _check_condition(part, where)
    elif key == "not":
        _check_condition(value, where)
    elif key == "option":
        if value not in _OPTION_NAMES:
            raise CatalogueError(f"{where}：未知的配置项 {value!r}")
    elif key == "care_type":
        CareType(value)
    elif key == "level":
        for level in value:
            DisabilityLevel(level)
    elif key not in ("age", "handicap_grade", "hukou"):
        raise CatalogueError(f"{where}：未知的条件 {key!r}")


# Matching ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    facts: ElderFacts
    options: MatchOptions
    age: int
    catalogue: Catalogue


def match_elder(
    elder: ElderFacts, catalogue: Catalogue, on: date, *, options: MatchOptions | None = None
) -> list[Match]:
    """List the catalogue items an elder is entitled to on `on`, and those a person must check."""
    ctx = _Context(elder, options or MatchOptions(), elder.age_on(on), catalogue)
    matches: list[Match] = []
    for item in catalogue.items:
        if item.rule is None:
            if ctx.options.include_unverifiable:
                matches.append(
                    Match(
                        item=item,
                        reason=f"服务对象：{item.recipient or '未列明'}；资格无法由老年人信息自动判断",
                        amount=None,
                        amount_kind=AmountKind.SEE_STANDARD,
                        period=None,
                        note="需人工核实",
                        status=MatchStatus.NEEDS_REVIEW,
                        catalogue_version=catalogue.version,
                    )
                )
            continue
        matches.extend(_match_item(item, ctx))
    if ctx.options.choose_higher:
        matches = _choose_higher(matches)
    return matches


def _match_item(item: Item, ctx: _Context) -> list[Match]:
    """Return the matches one ruled item gives, empty if the elder is not eligible."""
    rule = item.rule
    assert rule is not None
    if not _holds(rule.get("when"), ctx):
        return []
    rule_reviews = [
        verify["note"] for verify in rule.get("verify", ()) if not _holds(verify.get("unless"), ctx)
    ]
    matches = []
    for benefit in rule["benefits"]:
        case = next((case for case in benefit["cases"] if _case_applies(case, ctx)), None)
        if case is None:
            continue
        amount, kind, amount_note = _resolve_amount(item, case, ctx)
        review_notes = [*rule_reviews, *([case["review"]] if case.get("review") else [])]
        notes = [case.get("note"), amount_note, *review_notes]
        if kind is AmountKind.SEE_STANDARD and not case.get("note"):
            notes.insert(0, item.standard or item.content)
        reason_template = case.get("reason") or rule.get("reason") or f"属于服务对象：{item.recipient}"
        matches.append(
            Match(
                item=item,
                reason=_render(reason_template, ctx),
                amount=amount,
                amount_kind=kind,
                period=case.get("period"),
                note=_join_notes(notes),
                status=MatchStatus.NEEDS_REVIEW if review_notes else MatchStatus.ELIGIBLE,
                part=benefit.get("part"),
                catalogue_version=ctx.catalogue.version,
            )
        )
    return matches


def _case_applies(case: Mapping[str, Any], ctx: _Context) -> bool:
    if case.get("variant") is not None and case["variant"] != ctx.catalogue.variant:
        return False
    return _holds(case.get("when"), ctx)


def _resolve_amount(
    item: Item, case: Mapping[str, Any], ctx: _Context
) -> tuple[Decimal | None, AmountKind, str | None]:
    """Return the amount, its kind and an explanatory note for one case."""
    kind = AmountKind(case["kind"])
    if kind is AmountKind.NOT_STATED:
        return None, kind, None if "标准未列明" in (case.get("note") or "") else "标准未列明"
    if kind is AmountKind.SEE_STANDARD:
        return None, kind, None
    factor_text = case.get("factor", "1")
    factor = _factor(factor_text)
    if case.get("amount") is not None:
        return _times(Decimal(case["amount"]), factor), kind, None
    source = case.get("multiple_of")
    if source is None:
        raise CatalogueError(f"第{item.number}项：金额类型为 {kind} 却未给出金额")
    if "reference" in source:
        base = _reference_amount(source["reference"], ctx)
        label = _REFERENCE_LABELS.get(source["reference"], source["reference"])
        if base is None:
            return (
                None,
                AmountKind.NOT_STATED,
                f"不低于{label}的{factor_text}倍；{label}未在清单中列明（未配置）",
            )
        return _times(base, factor), kind, f"按{label}（{base}元）的{factor_text}倍计"
    referenced = ctx.catalogue.item(source["item"])
    base_amount, base_kind = _static_amount(referenced, source.get("part"), ctx)
    if base_amount is None:
        return None, AmountKind.NOT_STATED, f"按“{referenced.title}”标准的{factor_text}倍计，该标准未列明金额"
    combined = AmountKind.FLOOR if AmountKind.FLOOR in (kind, base_kind) else kind
    return (
        _times(base_amount, factor),
        combined,
        f"按“{referenced.title}”标准（{base_amount}元）的{factor_text}倍计",
    )


def _factor(text: str) -> Fraction:
    """Read a multiple such as "1.3", "2" or "1/3" exactly."""
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError) as error:
        raise CatalogueError(f"无法识别的倍数 {text!r}") from error


def _times(amount: Decimal, factor: Fraction) -> Decimal:
    """Multiply an amount by an exact factor and round to the cent (half up, as payments are)."""
    value = amount * factor.numerator / factor.denominator
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _static_amount(item: Item, part: str | None, ctx: _Context) -> tuple[Decimal | None, AmountKind]:
    """Return the figure an item's (part's) standard states, for multiples that refer to it."""
    if item.rule is None:
        return None, AmountKind.NOT_STATED
    for benefit in item.rule["benefits"]:
        if benefit.get("part") != part:
            continue
        for case in benefit["cases"]:
            if case.get("variant") not in (None, ctx.catalogue.variant) or case.get("amount") is None:
                continue
            return Decimal(case["amount"]).quantize(CENT), AmountKind(case["kind"])
    return None, AmountKind.NOT_STATED


def _reference_amount(name: str, ctx: _Context) -> Decimal | None:
    amounts = ctx.options.reference_amounts
    if ctx.facts.hukou and f"{name}_{ctx.facts.hukou}" in amounts:
        return Decimal(amounts[f"{name}_{ctx.facts.hukou}"])
    return Decimal(amounts[name]) if name in amounts else None


def _choose_higher(matches: list[Match]) -> list[Match]:
    """Keep only the higher of two subsidies the catalogue says are chosen between (择高)."""
    index_by_key = {(match.item.number, match.part): index for index, match in enumerate(matches)}
    notes: dict[int, str] = {}
    dropped: set[int] = set()
    for index, match in enumerate(matches):
        for benefit in match.item.rule["benefits"] if match.item.rule else ():
            partner_ref = benefit.get("choose_higher_with")
            if partner_ref is None or benefit.get("part") != match.part:
                continue
            partner = index_by_key.get((partner_ref["item"], partner_ref.get("part")))
            if partner is None or {index, partner} & dropped:
                continue
            other = matches[partner]
            pair = f"“{_match_label(match)}”与“{_match_label(other)}”只能择高申领其一"
            if match.amount is None or other.amount is None:
                notes[index] = notes[partner] = f"{pair}，金额未列明，需人工比较"
                continue
            keep, drop = (partner, index) if other.amount > match.amount else (index, partner)
            dropped.add(drop)
            notes[keep] = (
                f"择高：{pair}，按清单所列金额取较高者（{matches[keep].amount}元 ≥ {matches[drop].amount}元）"
            )
    return [
        _with_note(match, notes[index]) if index in notes else match
        for index, match in enumerate(matches)
        if index not in dropped
    ]


def _join_notes(notes: list[str | None]) -> str | None:
    """Join the non-empty notes with "；", without doubling a sentence's own full stop."""
    parts = [note.rstrip("。；;") for note in notes if note]
    return "；".join(parts) or None


def _match_label(match: Match) -> str:
    return f"{match.item.title}·{match.part}" if match.part else match.item.title


def _with_note(match: Match, note: str) -> Match:
    return replace(match, note=_join_notes([match.note, note]))


_FLAG_LABELS = {
    "living_alone": "独居",
    "empty_nest": "空巢",
    "left_behind": "留守",
    "disabled": "失能",
    "severe_handicap": "重残",
    "family_planning_special": "计划生育特殊家庭",
}


def _render(template: str, ctx: _Context) -> str:
    """Fill a reason template's {age}, {level} and {flags} from the elder's facts."""
    level = ctx.facts.disability_level
    flags = "、".join(label for name, label in _FLAG_LABELS.items() if _predicate(name, ctx))
    return template.format(age=ctx.age, level=level.label if level else "未评估", flags=flags)


def _holds(condition: Any, ctx: _Context) -> bool:
    """Evaluate a rule condition against an elder's facts and the county options."""
    if condition is None:
        return True
    if isinstance(condition, str):
        return _predicate(condition, ctx)
    ((key, value),) = condition.items()
    facts = ctx.facts
    if key == "all":
        return all(_holds(part, ctx) for part in value)
    if key == "any":
        return any(_holds(part, ctx) for part in value)
    if key == "not":
        return not _holds(value, ctx)
    if key == "age":
        low, high = value
        return ctx.age >= low and (high is None or ctx.age <= high)
    if key == "level":
        return facts.disability_level is not None and facts.disability_level.value in value
    if key == "handicap_grade":
        return facts.handicap_grade in value
    if key == "hukou":
        return facts.hukou == value
    if key == "care_type":
        level = facts.disability_level
        return level is not None and ctx.options.care_type_by_level.get(level) == value
    if key == "option":
        return bool(getattr(ctx.options, value))
    raise CatalogueError(f"未知的条件 {key!r}")


def _predicate(name: str, ctx: _Context) -> bool:
    facts, options = ctx.facts, ctx.options
    level = facts.disability_level
    if name == "advanced_age":
        return ctx.age >= 80
    if name == "assessed":
        return level is not None
    if name == "disabled":
        return level in options.disabled_levels
    if name == "unable_to_self_care":
        return level in options.unable_to_self_care_levels
    if name == "handicapped":
        return facts.handicap_grade is not None or facts.severe_handicap
    if name == "severe_handicap":
        return facts.severe_handicap or facts.handicap_grade in (1, 2)
    if name == "economic_hardship":
        return any(getattr(facts, flag) for flag in options.economic_hardship_flags)
    if name == "special_difficulty":
        return any(
            _predicate(flag, ctx)
            for flag in (
                "living_alone",
                "empty_nest",
                "left_behind",
                "disabled",
                "severe_handicap",
                "family_planning_special",
            )
        )
    if name in PREDICATES:
        return bool(getattr(facts, name))
    raise CatalogueError(f"未知的条件 {name!r}")
