import json
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from workflows.rules.assessment import DisabilityLevel
from workflows.rules.catalogue import (
    DATA_DIR,
    AmountKind,
    CatalogueError,
    ElderFacts,
    MatchOptions,
    MatchStatus,
    ServiceType,
    list_jurisdictions,
    load_catalogue,
    match_elder,
)

ON = date(2025, 6, 1)
SEEDS = Path("/work/shared/seeds")
SEED_FILES = {
    "wenxian": "000_d4f3a1b82a3e90a4.txt",
    "yangcheng": "001_a393b14d709502fa.txt",
    "huitong": "002_986ab5af1626f0ee.txt",
    "hebi_urban": "003_1d3b4e9bec569f5b.txt",
}
ALL = ["wenxian", "yangcheng", "huitong", "hebi_urban", "hebi_county"]


def by_key(matches):
    """Index matches by (item number, part)."""
    return {(match.item.number, match.part): match for match in matches}


def eligible(matches):
    return {key: match for key, match in by_key(matches).items() if match.status is MatchStatus.ELIGIBLE}


# The transcription -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "count", "effective_from"),
    [
        ("wenxian", 22, date(2023, 1, 1)),
        ("yangcheng", 30, date(2024, 12, 18)),
        ("huitong", 27, date(2024, 7, 18)),
        ("hebi_urban", 22, date(2024, 6, 4)),
        ("hebi_county", 22, date(2024, 6, 4)),
    ],
)
def test_each_catalogue_has_all_items_numbered_in_order(jurisdiction, count, effective_from):
    catalogue = load_catalogue(jurisdiction, ON)
    assert [item.number for item in catalogue.items] == list(range(1, count + 1))
    assert catalogue.effective_from == effective_from
    assert all(item.lead_departments for item in catalogue.items)
    assert all(item.type in set(ServiceType) for item in catalogue.items)


def test_jurisdictions_are_listed_with_chinese_names():
    assert list_jurisdictions() == {
        "hebi_urban": "鹤壁市市区",
        "hebi_county": "鹤壁市两县（浚县、淇县）",
        "huitong": "会同县",
        "wenxian": "温县",
        "yangcheng": "阳城县",
    }


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed texts not available")
@pytest.mark.parametrize("jurisdiction", list(SEED_FILES))
def test_every_transcribed_cell_is_verbatim_from_the_seed(jurisdiction):
    source = re.sub(r"\s", "", (SEEDS / SEED_FILES[jurisdiction]).read_text(encoding="utf-8"))
    for item in load_catalogue(jurisdiction, ON).items:
        for text in (
            item.recipient,
            item.name,
            item.content,
            item.standard,
            item.funder,
            *item.lead_departments,
        ):
            if text:
                assert re.sub(r"\s", "", text) in source, (item.number, text)


@pytest.mark.parametrize("path", sorted(DATA_DIR.glob("catalogue_*.json")), ids=lambda path: path.stem)
def test_every_figure_in_a_rule_is_printed_in_its_item(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    for item in data["items"]:
        text = "".join(filter(None, (item.get("standard"), item.get("content"))))
        for benefit in (item["rule"] or {}).get("benefits", ()):
            for case in benefit["cases"]:
                if "amount" in case:
                    assert case["amount"] in text, (path.name, item["number"], case["amount"])
                if case["kind"] in ("exact", "floor") and "amount" not in case:
                    assert "multiple_of" in case
                if case["kind"] == "floor" and "amount" in case:
                    assert "不低于" in text, (path.name, item["number"])


@pytest.mark.parametrize(
    ("jurisdiction", "number", "inherited", "recipient"),
    [
        ("wenxian", 2, True, "达到待遇享受年龄的老年人"),
        ("wenxian", 13, True, "特困老年人"),
        ("wenxian", 14, False, None),
        ("yangcheng", 18, True, "经济困难的老年人"),
        ("huitong", 13, True, "80周岁及以上老年人"),
        ("hebi_urban", 12, True, "特困老年人"),
    ],
)
def test_empty_recipient_cells_inherit_from_the_row_above(jurisdiction, number, inherited, recipient):
    item = load_catalogue(jurisdiction, ON).item(number)
    assert item.recipient_inherited is inherited
    if recipient:
        assert item.recipient == recipient


def test_yangcheng_items_without_a_name_keep_null_and_a_note():
    catalogue = load_catalogue("yangcheng", ON)
    for number in range(5, 10):
        item = catalogue.item(number)
        assert item.name is None
        assert item.title == f"第{number}项（原表未列名称）"
        assert any("未列服务项目名称" in note for note in item.notes)
    assert catalogue.item(16).number_inferred and catalogue.item(16).name == "高龄补贴"
    assert catalogue.item(30).lead_departments == ("国网阳城供电公司", "县民政局")


def test_merged_standard_cells_stay_not_stated():
    assert load_catalogue("wenxian", ON).item(13).standard is None
    assert load_catalogue("hebi_urban", ON).item(12).standard is None


# Matching typical elders --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jurisdiction", "facts", "expected"),
    [
        # A 92-year-old on 低保 in 阳城, severely disabled, living alone.
        (
            "yangcheng",
            ElderFacts(
                age=92, hukou="urban", dibao=True, living_alone=True, disability_level=DisabilityLevel.SEVERE
            ),
            {
                (16, None): ("2400.00", AmountKind.EXACT, "year"),
                (17, None): ("70.00", AmountKind.FLOOR, "month"),
                (19, None): ("100.00", AmountKind.FLOOR, "month"),
                (24, None): (None, AmountKind.SEE_STANDARD, None),
            },
        ),
        # An 85-year-old on 低保 in 温县, moderately disabled.
        (
            "wenxian",
            ElderFacts(age=85, dibao=True, disability_level=DisabilityLevel.MODERATE),
            {
                (7, None): ("50.00", AmountKind.FLOOR, "month"),
                (9, None): ("60.00", AmountKind.FLOOR, "month"),
                (14, None): ("60.00", AmountKind.FLOOR, "month"),
                (20, "资助参保"): ("80.00", AmountKind.FLOOR, "year"),
            },
        ),
        # An 82-year-old local resident of 会同 on 低保, completely disabled.
        (
            "huitong",
            ElderFacts(age=82, dibao=True, disability_level=DisabilityLevel.COMPLETE),
            {
                (12, None): ("20.00", AmountKind.FLOOR, "month"),
                (15, None): (None, AmountKind.NOT_STATED, None),
                (17, None): (None, AmountKind.NOT_STATED, None),
            },
        ),
        # A 91-year-old in 鹤壁's urban districts, a 1st-grade disabled person on 低保.
        (
            "hebi_urban",
            ElderFacts(age=91, dibao=True, handicap_grade=1),
            {
                (7, None): ("200.00", AmountKind.EXACT, "month"),
                (9, None): ("60.00", AmountKind.FLOOR, "month"),
                (17, "困难残疾人生活补贴"): ("75.00", AmountKind.EXACT, "month"),
            },
        ),
        # The same elder in one of 鹤壁's two counties gets the county standard.
        (
            "hebi_county",
            ElderFacts(age=91, dibao=True, handicap_grade=1),
            {(7, None): ("100.00", AmountKind.EXACT, "month")},
        ),
    ],
)
def test_typical_elder_of_each_jurisdiction(jurisdiction, facts, expected):
    matches = eligible(match_elder(facts, load_catalogue(jurisdiction, ON), ON))
    for key, (amount, kind, period) in expected.items():
        match = matches[key]
        assert match.amount == (Decimal(amount) if amount else None), key
        assert match.amount_kind is kind, key
        assert match.period == period, key
        assert match.reason


def test_reason_names_the_age_band():
    matches = by_key(match_elder(ElderFacts(age=92), load_catalogue("yangcheng", ON), ON))
    assert matches[(16, None)].reason == "年满92周岁，符合高龄补贴90-99周岁档"


@pytest.mark.parametrize(
    ("age", "amount"),
    [
        (79, None),
        (80, "800.00"),
        (89, "800.00"),
        (90, "2400.00"),
        (99, "2400.00"),
        (100, "3600.00"),
        (104, "3600.00"),
    ],
)
def test_yangcheng_advanced_age_bands(age, amount):
    match = by_key(match_elder(ElderFacts(age=age), load_catalogue("yangcheng", ON), ON)).get((16, None))
    assert (match.amount if match else None) == (Decimal(amount) if amount else None)


@pytest.mark.parametrize(
    ("jurisdiction", "amounts"),
    [("hebi_urban", ["100.00", "200.00", "500.00"]), ("hebi_county", ["50.00", "100.00", "300.00"])],
)
def test_hebi_city_and_county_standards(jurisdiction, amounts):
    catalogue = load_catalogue(jurisdiction, ON)
    got = [by_key(match_elder(ElderFacts(age=age), catalogue, ON))[(7, None)].amount for age in (85, 95, 100)]
    assert got == [Decimal(amount) for amount in amounts]


def test_age_is_taken_on_the_matching_date():
    catalogue = load_catalogue("yangcheng", ON)
    elder = ElderFacts(birth_date=date(1935, 6, 2))
    assert by_key(match_elder(elder, catalogue, date(2025, 6, 1)))[(16, None)].amount == Decimal("800.00")
    assert by_key(match_elder(elder, catalogue, date(2025, 6, 2)))[(16, None)].amount == Decimal("2400.00")


def test_floor_is_shown_as_floor():
    match = by_key(match_elder(ElderFacts(age=95), load_catalogue("huitong", ON), ON))[(13, None)]
    assert (match.amount, match.amount_kind, match.period) == (Decimal("60.00"), AmountKind.FLOOR, "month")


def test_huitong_allowance_needs_local_hukou():
    matches = by_key(match_elder(ElderFacts(age=95, local_hukou=False), load_catalogue("huitong", ON), ON))
    assert (13, None) not in matches


def test_standard_without_figure_is_not_stated():
    elder = ElderFacts(age=75, near_dibao=True, disability_level=DisabilityLevel.SEVERE)
    match = by_key(match_elder(elder, load_catalogue("huitong", ON), ON))[(17, None)]
    assert match.amount is None
    assert match.amount_kind is AmountKind.NOT_STATED
    assert "标准未列明" in match.note


@pytest.mark.parametrize("jurisdiction", ["wenxian", "hebi_urban"])
def test_choose_higher_between_nursing_subsidies(jurisdiction):
    elder = ElderFacts(age=75, dibao=True, handicap_grade=1, disability_level=DisabilityLevel.SEVERE)
    catalogue = load_catalogue(jurisdiction, ON)
    nursing = 14 if jurisdiction == "wenxian" else 13
    matches = by_key(match_elder(elder, catalogue, ON))
    assert (nursing, None) not in matches
    kept = matches[(17, "重度残疾人护理补贴")]
    assert kept.amount == Decimal("75.00")
    assert "择高" in kept.note

    both = by_key(match_elder(elder, catalogue, ON, options=MatchOptions(choose_higher=False)))
    assert both[(nursing, None)].amount == Decimal("60.00")
    assert (17, "重度残疾人护理补贴") in both


def test_nursing_subsidy_alone_when_not_severely_handicapped():
    elder = ElderFacts(age=75, dibao=True, disability_level=DisabilityLevel.SEVERE)
    matches = by_key(match_elder(elder, load_catalogue("wenxian", ON), ON))
    assert matches[(14, None)].amount == Decimal("60.00")
    assert "择高" not in (matches[(14, None)].note or "")


def test_items_without_rule_are_listed_for_manual_check():
    catalogue = load_catalogue("wenxian", ON)
    matches = by_key(match_elder(ElderFacts(age=70), catalogue, ON))
    assert matches[(19, None)].status is MatchStatus.NEEDS_REVIEW
    assert matches[(19, None)].note == "需人工核实"
    quiet = by_key(
        match_elder(ElderFacts(age=70), catalogue, ON, options=MatchOptions(include_unverifiable=False))
    )
    assert (19, None) not in quiet


def test_matches_record_the_catalogue_version():
    matches = match_elder(ElderFacts(age=85), load_catalogue("hebi_urban", ON), ON)
    assert {match.catalogue_version for match in matches} == {"hebi-2024-06-04"}


# Configuration ------------------------------------------------------------------------------------------


def test_tekun_care_subsidy_is_a_multiple_of_the_nursing_subsidy():
    catalogue = load_catalogue("yangcheng", ON)
    for level, amount in [
        (DisabilityLevel.MILD, "100.00"),
        (DisabilityLevel.MODERATE, "200.00"),
        (DisabilityLevel.COMPLETE, "300.00"),
    ]:
        elder = ElderFacts(age=70, tekun=True, home_support=True, disability_level=level)
        match = by_key(match_elder(elder, catalogue, ON))[(22, "护理补贴")]
        assert (match.amount, match.amount_kind) == (Decimal(amount), AmountKind.FLOOR)


def test_unassessed_tekun_elder_needs_assessment_first():
    elder = ElderFacts(age=70, tekun=True, home_support=True)
    match = by_key(match_elder(elder, load_catalogue("yangcheng", ON), ON))[(22, "护理补贴")]
    assert match.status is MatchStatus.NEEDS_REVIEW
    assert match.amount is None


def test_local_reference_amounts_resolve_multiples():
    elder = ElderFacts(
        age=70, hukou="rural", tekun=True, home_support=True, disability_level=DisabilityLevel.SEVERE
    )
    catalogue = load_catalogue("wenxian", ON)
    unconfigured = by_key(match_elder(elder, catalogue, ON))
    assert unconfigured[(12, "基本生活标准")].amount is None
    assert "未配置" in unconfigured[(12, "基本生活标准")].note

    options = MatchOptions(
        reference_amounts={"dibao_standard_rural": Decimal("500"), "minimum_wage": Decimal("2000")}
    )
    configured = by_key(match_elder(elder, catalogue, ON, options=options))
    assert configured[(12, "基本生活标准")].amount == Decimal("650.00")
    assert configured[(12, "照料护理标准")].amount == Decimal("666.67")
    assert configured[(12, "照料护理标准")].amount_kind is AmountKind.FLOOR


def test_self_care_tekun_standard_refers_to_the_disability_care_subsidy():
    elder = ElderFacts(age=70, tekun=True, home_support=True, disability_level=DisabilityLevel.INTACT)
    match = by_key(match_elder(elder, load_catalogue("hebi_urban", ON), ON))[(11, "照料护理标准")]
    assert (match.amount, match.amount_kind) == (Decimal("75.00"), AmountKind.FLOOR)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (MatchOptions(), False),
        (MatchOptions(extend_to_near_dibao=True), True),
    ],
)
def test_extension_to_near_dibao_is_configuration(options, expected):
    elder = ElderFacts(age=75, near_dibao=True, disability_level=DisabilityLevel.SEVERE)
    matches = by_key(match_elder(elder, load_catalogue("wenxian", ON), ON, options=options))
    assert ((14, None) in matches) is expected


@pytest.mark.parametrize(("needs_qualifier", "expected"), [(True, False), (False, True)])
def test_service_subsidy_reading_for_dibao_is_configuration(needs_qualifier, expected):
    elder = ElderFacts(age=70, dibao=True, disability_level=DisabilityLevel.INTACT)
    options = MatchOptions(service_subsidy_needs_qualifier_for_dibao=needs_qualifier)
    matches = by_key(match_elder(elder, load_catalogue("hebi_urban", ON), ON, options=options))
    assert ((9, None) in matches) is expected


def test_long_term_care_insurance_only_in_pilot_areas():
    elder = ElderFacts(age=75, disability_level=DisabilityLevel.SEVERE)
    catalogue = load_catalogue("hebi_urban", ON)
    assert (15, None) not in by_key(match_elder(elder, catalogue, ON))
    assert (15, None) in by_key(
        match_elder(elder, catalogue, ON, options=MatchOptions(ltc_insurance_pilot=True))
    )


def test_elder_without_age_is_refused():
    with pytest.raises(CatalogueError, match="出生日期或年龄"):
        match_elder(ElderFacts(), load_catalogue("wenxian", ON), ON)


# Versions -----------------------------------------------------------------------------------------------


@pytest.fixture
def versioned_dir(tmp_path):
    """A data folder with 阳城's catalogue and a revised version from 2026 paying 3000 元 at 90-99."""
    shutil.copy(DATA_DIR / "catalogue_yangcheng.json", tmp_path / "catalogue_yangcheng.json")
    data = json.loads((DATA_DIR / "catalogue_yangcheng.json").read_text(encoding="utf-8"))
    data["version"] = "yangcheng-2026"
    data["effective_from"] = "2026-01-01"
    allowance = next(item for item in data["items"] if item["number"] == 16)
    for case in allowance["rule"]["benefits"][0]["cases"]:
        if case["amount"] == "2400":
            case["amount"] = "3000"
    allowance["standard"] = allowance["standard"].replace("2400", "3000")
    (tmp_path / "catalogue_yangcheng_2026.json").write_text(
        json.dumps(data, ensure_ascii=False), encoding="utf-8"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("on", "version", "amount"),
    [
        (date(2024, 12, 18), "yangcheng-2024-12-18", "2400.00"),
        (date(2025, 12, 31), "yangcheng-2024-12-18", "2400.00"),
        (date(2026, 1, 1), "yangcheng-2026", "3000.00"),
        (date(2026, 7, 1), "yangcheng-2026", "3000.00"),
    ],
)
def test_version_in_force_on_the_date_is_used(versioned_dir, on, version, amount):
    catalogue = load_catalogue("yangcheng", on, data_dir=versioned_dir)
    assert catalogue.version == version
    match = by_key(match_elder(ElderFacts(age=92), catalogue, on))[(16, None)]
    assert match.amount == Decimal(amount)
    assert match.catalogue_version == version


def test_no_catalogue_before_the_first_version():
    with pytest.raises(CatalogueError, match="2024-12-18"):
        load_catalogue("yangcheng", date(2024, 12, 17))


def test_unknown_jurisdiction_is_refused():
    with pytest.raises(CatalogueError, match="未找到"):
        load_catalogue("nowhere", ON)


def test_two_versions_on_the_same_day_are_refused(versioned_dir):
    data = json.loads((versioned_dir / "catalogue_yangcheng_2026.json").read_text(encoding="utf-8"))
    data["version"] = "yangcheng-2026-bis"
    (versioned_dir / "catalogue_yangcheng_2026b.json").write_text(
        json.dumps(data, ensure_ascii=False), encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match="两个版本"):
        load_catalogue("yangcheng", ON, data_dir=versioned_dir)


def test_rule_with_unknown_condition_is_refused(tmp_path):
    data = json.loads((DATA_DIR / "catalogue_wenxian.json").read_text(encoding="utf-8"))
    data["items"][6]["rule"]["when"] = "very_old"
    (tmp_path / "catalogue_wenxian.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CatalogueError, match="very_old"):
        load_catalogue("wenxian", ON, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"kind": "about"}, "金额类型"),
        ({"amount": 50}, "字符串"),
        ({"amount": "fifty"}, "规则格式错误"),
        ({"period": "week"}, "发放周期"),
        ({"when": {"level": ["tired"]}}, "规则格式错误"),
    ],
)
def test_malformed_cases_are_refused(tmp_path, change, fragment):
    data = json.loads((DATA_DIR / "catalogue_wenxian.json").read_text(encoding="utf-8"))
    data["items"][6]["rule"]["benefits"][0]["cases"][0].update(change)
    (tmp_path / "catalogue_wenxian.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CatalogueError, match=fragment):
        load_catalogue("wenxian", ON, data_dir=tmp_path)
