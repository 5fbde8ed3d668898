import csv
import json
from datetime import date, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from workflows.elders import register_elder
from workflows.errors import PermissionDenied, RegistryError
from workflows.models import Area, AreaLevel
from workflows.models.elders import Elder, ElderChange
from workflows.roster import RosterProblem, check_roster, import_roster
from workflows.rules.idnumber import compute_check_char, mask_id_number

from .registry_world import XIANGYUN_VILLAGE, make_id

HEADER = [
    "姓名",
    "身份证号",
    "联系电话",
    "户籍类型",
    "居住村(社区)",
    "详细地址",
    "居住状况",
    "低保",
    "低保边缘",
    "特困",
    "分散供养",
    "集中供养",
    "独居",
    "空巢",
    "留守",
    "重度残疾",
    "残疾等级",
    "计生特殊家庭",
    "优抚对象",
    "三类户",
]
ENGLISH_HEADER = [
    "name",
    "id_number",
    "phone",
    "hukou_type",
    "residence_area_code",
    "address",
    "living_arrangement",
    "dibao",
    "near_dibao",
    "tekun",
    "home_support",
    "institutional_support",
    "living_alone",
    "empty_nest",
    "left_behind",
    "severe_handicap",
    "severe_handicap_grade",
    "family_planning_special",
    "entitled_veteran_family",
    "three_category_household",
]


def row(
    name,
    id_number,
    *,
    phone="13812345678",
    hukou="农村",
    village=XIANGYUN_VILLAGE,
    living="与配偶同住",
    **flags,
):
    """Return one roster row in HEADER order; flags by English key, e.g. tekun="是", severe_handicap_grade=2."""
    cells = [name, id_number, phone, hukou, village, "1组1号", living]
    defaults = {"severe_handicap_grade": "", "living_alone": "是" if living == "独居" else "否"}
    for key in ENGLISH_HEADER[7:]:
        cells.append(flags.get(key, defaults.get(key, "否")))
    return cells


GOOD_A = make_id(date(1950, 3, 15))
GOOD_B = make_id(date(1944, 2, 29), 22)
GOOD_C = make_id(date(1938, 12, 1), 33)
REGISTERED = make_id(date(1947, 7, 7), 44)
BAD_CHECK = make_id(date(1952, 1, 1))[:17] + (
    "0" if compute_check_char(make_id(date(1952, 1, 1))[:17]) != "0" else "1"
)
EXPECTED_CHECK = compute_check_char(BAD_CHECK[:17])
BAD_PHONE = "电话号码格式错误：请填写11位手机号，或带区号的固定电话（如 0391-1234567）"

MIXED_ROWS = [
    row("王建国", GOOD_A, empty_nest="是"),  # 2: duplicate of row 8
    row("李桂兰", BAD_CHECK),  # 3
    row("张秀英", "41082519490230002X"),  # 4
    row("刘德胜", make_id(date(1945, 5, 5), 55), village="410825100299"),  # 5
    row("陈玉梅", make_id(date(1946, 6, 6), 66), phone="1381234"),  # 6
    row("杨广才", GOOD_B, village="大玉兰村", living="独居"),  # 7: good, village by name
    row("王建国", GOOD_A, empty_nest="是"),  # 8
    row("赵长顺", REGISTERED),  # 9: already registered
    row("黄翠花", make_id(date(1943, 3, 3), 88), hukou="外地", home_support="是"),  # 10: two problems
    [None] * len(HEADER),  # 11: blank, skipped
    row("周富贵", GOOD_C, village="番田镇古贤村", living="与子女同住"),  # 12: good, township + village name
    row("吴淑珍", make_id(date(1942, 2, 2), 99), severe_handicap_grade="二级"),  # 13
    row("徐金山", make_id(date(1941, 1, 1), 77), village="不存在村"),  # 14
]


def expected_problems(registered_id):
    return [
        (2, "身份证号", "身份证号在第2行和第8行重复"),
        (3, "身份证号", f"身份证号校验位错误：应为 {EXPECTED_CHECK}"),
        (4, "身份证号", "身份证号中的出生日期 19490230 不是有效日期"),
        (5, "居住村(社区)", "行政区划代码 410825100299 不存在"),
        (6, "联系电话", BAD_PHONE),
        (8, "身份证号", "身份证号在第2行和第8行重复"),
        (
            9,
            "身份证号",
            f"身份证号 {mask_id_number(REGISTERED)} 已登记：老人档案 #{registered_id}（赵**，温县祥云镇祥云村），请勿重复登记",
        ),
        (10, "户籍类型", "户籍类型“外地”无法识别：请填写“农村”或“城镇”"),
        (10, "分散供养", "分散供养仅适用于特困人员：请同时选择特困，或取消分散供养"),
        (13, "残疾等级", "只有重度残疾才填写残疾等级"),
        (14, "居住村(社区)", "找不到名为“不存在村”的村(社区)：请填写村(社区)名称或12位区划代码"),
    ]


def write_xlsx(path, rows, header=HEADER, title=None):
    workbook = Workbook()
    sheet = workbook.active
    if title:
        sheet.append([title])
    sheet.append(header)
    for cells in rows:
        sheet.append(cells)
    workbook.save(path)
    return path


def write_csv(path, rows, encoding, header=HEADER):
    with open(path, "w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for cells in rows:
            writer.writerow(["" if cell is None else cell for cell in cells])
    return path


@pytest.fixture
def registered(session, users):
    return register_elder(
        session,
        users["caseworker"],
        {
            "name": "赵长顺",
            "id_number": REGISTERED,
            "hukou_type": "rural",
            "residence_area_code": XIANGYUN_VILLAGE,
            "living_arrangement": "with_spouse",
        },
    )


def as_tuples(report):
    return [(p.row, p.column, p.reason) for p in report.problems]


def elder_count(session):
    return session.scalar(select(func.count()).select_from(Elder))


@pytest.mark.parametrize("kind", ["xlsx", "utf-8-sig", "gb18030", "utf-8"])
def test_check_reports_every_bad_row_with_row_column_and_reason(session, users, registered, tmp_path, kind):
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "名册.xlsx", MIXED_ROWS)
    else:
        path = write_csv(tmp_path / "名册.csv", MIXED_ROWS, kind)

    report = check_roster(session, path)

    assert as_tuples(report) == expected_problems(registered.id)
    assert report.total_rows == 12  # the blank row is not counted
    assert report.bad_rows == [2, 3, 4, 5, 6, 8, 9, 10, 13, 14]
    assert not report.ok and report.imported == 0


def test_gb18030_file_really_is_not_utf8(tmp_path):
    path = write_csv(tmp_path / "gbk.csv", MIXED_ROWS, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")


def test_import_is_all_or_nothing(session, users, registered, tmp_path):
    path = write_xlsx(tmp_path / "roster.xlsx", MIXED_ROWS)
    before = elder_count(session)

    report = import_roster(session, users["admin"], path)

    assert report.imported == 0
    assert as_tuples(report) == expected_problems(registered.id)
    assert elder_count(session) == before


def test_skip_bad_imports_the_good_rows_and_writes_the_report(session, users, registered, tmp_path):
    path = write_xlsx(tmp_path / "roster.xlsx", MIXED_ROWS)
    report_path = tmp_path / "问题清单.csv"

    report = import_roster(session, users["admin"], path, skip_bad=True, report_path=report_path)

    assert report.imported == 2
    imported = session.scalars(
        select(Elder).where(Elder.id_number.in_([GOOD_B, GOOD_C])).order_by(Elder.name)
    ).all()
    assert [(e.name, e.residence_area_code, e.living_alone) for e in imported] == [
        ("周富贵", "410825101202", False),
        ("杨广才", "410825100202", True),
    ]
    raw = report_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads it as UTF-8
    with open(report_path, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["行号", "列", "问题", "姓名", "身份证号"]
    assert [tuple(line[:3]) for line in lines[1:]] == [
        (str(r), c, reason) for r, c, reason in expected_problems(registered.id)
    ]
    assert lines[2][3:] == ["李桂兰", mask_id_number(BAD_CHECK)]
    assert report.report_path == str(report_path)


def test_each_imported_elder_gets_one_created_change(session, users, tmp_path):
    path = write_xlsx(tmp_path / "roster.xlsx", [row("杨广才", GOOD_B, village="大玉兰村", living="独居")])

    report = import_roster(session, users["caseworker"], path)

    elder = session.scalar(select(Elder).where(Elder.id_number == GOOD_B))
    changes = session.scalars(select(ElderChange).where(ElderChange.elder_id == elder.id)).all()
    assert report.imported == 1 and report.ok
    assert [(c.field, c.old_value, c.reason, c.actor_id) for c in changes] == [
        ("created", None, "名册导入：roster.xlsx 第2行", users["caseworker"].id)
    ]
    snapshot = json.loads(changes[0].new_value)
    assert snapshot["name"] == "杨广才" and snapshot["living_alone"] == "true" and snapshot["sex"] == "female"
    assert (elder.birth_date, elder.created_by, elder.status) == (
        date(1944, 2, 29),
        users["caseworker"].id,
        "active",
    )


def test_english_headers_and_a_title_row_above_the_header(session, users, tmp_path):
    rows = [row("杨广才", GOOD_B, village="大玉兰村", living="独居"), row("李桂兰", BAD_CHECK)]
    path = write_xlsx(tmp_path / "roster.xlsx", rows, header=ENGLISH_HEADER, title="温县老年人名册（2025年）")

    report = check_roster(session, path)

    # The title is row 1, the header row 2, so the bad row is row 4 as Excel shows it; columns as written.
    assert as_tuples(report) == [(4, "id_number", f"身份证号校验位错误：应为 {EXPECTED_CHECK}")]


def test_header_variants_are_recognised(session, users, tmp_path):
    header = [
        "序号",
        " 姓名 ",
        "*身份证号码",
        "手机号",
        "户口性质",
        "居住村（社区）",
        "居住情况",
        "重残",
        "残疾等级",
    ]
    rows = [[1, "杨广才", GOOD_B, "13812345678", "农业", "祥云镇大玉兰村", "独居", "是", "一级"]]
    path = write_csv(tmp_path / "roster.csv", rows, "utf-8-sig", header=header)

    report = import_roster(session, users["caseworker"], path)

    elder = session.scalar(select(Elder).where(Elder.id_number == GOOD_B))
    assert report.ok and report.imported == 1
    assert (elder.severe_handicap, elder.severe_handicap_grade, elder.hukou_type) == (True, 1, "rural")


def test_missing_required_column_imports_nothing_even_with_skip_bad(session, users, tmp_path):
    header = [h for h in HEADER if h != "户籍类型"]
    rows = [[c for i, c in enumerate(row("杨广才", GOOD_B, living="独居")) if HEADER[i] != "户籍类型"]]
    path = write_xlsx(tmp_path / "roster.xlsx", rows, header=header)

    report = import_roster(session, users["caseworker"], path, skip_bad=True)

    assert as_tuples(report) == [(1, "户籍类型", "缺少必填列“户籍类型”")]
    assert report.fatal and report.imported == 0 and elder_count(session) == 0


def test_a_file_without_a_header_is_refused(session, users, tmp_path):
    path = write_csv(tmp_path / "roster.csv", [["杨广才", GOOD_B]], "utf-8", header=["a", "b"])

    report = check_roster(session, path)

    assert as_tuples(report) == [
        (
            1,
            "",
            "找不到表头：第一行应为列名（姓名、身份证号、联系电话、户籍类型、居住村(社区)、详细地址、居住状况等）",
        )
    ]


def test_an_id_number_stored_as_a_number_cell_is_explained(session, users, tmp_path):
    cells = row("杨广才", GOOD_B, village="大玉兰村", living="独居")
    cells[1] = 410825194402290221  # what Excel keeps of it: 15 significant digits
    path = write_xlsx(tmp_path / "roster.xlsx", [cells])

    report = check_roster(session, path)

    assert as_tuples(report) == [
        (2, "身份证号", "身份证号被存成了数字，末几位已丢失：请将该列设为文本后重新填写")
    ]


def test_rows_outside_the_importers_area_are_refused(session, users, tmp_path):
    rows = [
        row("杨广才", GOOD_B, village="大玉兰村", living="独居"),
        row("周富贵", GOOD_C, village="番田镇古贤村"),
    ]
    path = write_xlsx(tmp_path / "roster.xlsx", rows)

    report = import_roster(session, users["caseworker2"], path, skip_bad=True)

    assert as_tuples(report) == [(2, "居住村(社区)", "温县祥云镇大玉兰村不在您的管辖范围（温县番田镇）内")]
    assert report.imported == 1


def test_an_ambiguous_village_name_asks_for_the_township(session, users, tmp_path):
    session.add_all(
        [
            Area(code="410825100204", name="东村", level=AreaLevel.VILLAGE, parent_code="410825100"),
            Area(code="410825101204", name="东村", level=AreaLevel.VILLAGE, parent_code="410825101"),
        ]
    )
    session.flush()
    rows = [row("杨广才", GOOD_B, village="东村", living="独居"), row("周富贵", GOOD_C, village="番田镇东村")]
    path = write_xlsx(tmp_path / "roster.xlsx", rows)

    report = check_roster(session, path)

    assert as_tuples(report) == [
        (
            2,
            "居住村(社区)",
            "“东村”有多个同名村(社区)（温县番田镇东村、温县祥云镇东村）：请写成“乡镇名+村名”或填写12位区划代码",
        )
    ]


def test_three_rows_with_one_id_name_all_rows(session, users, tmp_path):
    rows = [row("杨广才", GOOD_B, living="独居")] * 3
    path = write_csv(tmp_path / "roster.csv", rows, "utf-8")

    report = check_roster(session, path)

    assert as_tuples(report) == [(n, "身份证号", "身份证号在第2、3行和第4行重复") for n in (2, 3, 4)]


def test_progress_is_reported_every_500_rows(session, users, tmp_path):
    rows = [row("杨广才", make_id(date(1940, 1, 1) + timedelta(days=n))) for n in range(1200)]
    path = write_csv(tmp_path / "roster.csv", rows, "utf-8")
    calls = []

    report = import_roster(
        session, users["caseworker"], path, progress=lambda done, total: calls.append((done, total))
    )

    assert report.imported == 1200
    assert calls == [(500, 1200), (1000, 1200), (1200, 1200)]


def test_unsupported_files_and_roles_are_refused(session, users, tmp_path):
    old = tmp_path / "roster.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(RegistryError, match="不支持旧版 .xls 文件"):
        check_roster(session, old)
    with pytest.raises(PermissionDenied):
        import_roster(session, users["auditor"], write_csv(tmp_path / "r.csv", [], "utf-8"))


def test_the_report_rows_can_be_compared_as_problems(session, users, tmp_path):
    path = write_csv(tmp_path / "roster.csv", [row("李桂兰", BAD_CHECK)], "utf-8")

    report = check_roster(session, path)

    # name and id_number help find the row in the written report but do not take part in equality.
    assert report.problems == [RosterProblem(2, "身份证号", f"身份证号校验位错误：应为 {EXPECTED_CHECK}")]
    assert report.problems[0].name == "李桂兰"
