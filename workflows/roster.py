"""Roster import (老年人名册导入) from the .xlsx and .csv files counties keep: check every row, then import.

Rows are numbered as Excel shows them (the header is row 1), columns by their header, reasons in Chinese, so
that a report can be worked through in the spreadsheet itself. A `progress(done, total)` callback hears every
500 checked rows and the last; the bulk insert after it takes about a fifth of the time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import access, clock
from .clock import today
from .elders import (
    FIELD_LABELS,
    REGISTERED_FIELDS,
    WRITE_ROLES,
    audit_text,
    clean_elder,
    format_duplicate,
    require_role,
)
from .errors import RegistryError
from .models.elders import Elder, ElderChange, ElderStatus
from .models.registry import Area, AreaLevel, User
from .rules.idnumber import mask_id_number

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 500

# The headers of the county template, in its order; each field also answers to its English key.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("姓名", "name"),
    ("身份证号", "id_number"),
    ("联系电话", "phone"),
    ("户籍类型", "hukou_type"),
    ("居住村(社区)", "residence_area_code"),
    ("详细地址", "address"),
    ("居住状况", "living_arrangement"),
    ("低保", "dibao"),
    ("低保边缘", "near_dibao"),
    ("特困", "tekun"),
    ("分散供养", "home_support"),
    ("集中供养", "institutional_support"),
    ("独居", "living_alone"),
    ("空巢", "empty_nest"),
    ("留守", "left_behind"),
    ("重度残疾", "severe_handicap"),
    ("残疾等级", "severe_handicap_grade"),
    ("计生特殊家庭", "family_planning_special"),
    ("优抚对象", "entitled_veteran_family"),
    ("三类户", "three_category_household"),
    ("户籍地", "hukou_area_code"),
    ("监护人姓名", "guardian_name"),
    ("监护人电话", "guardian_phone"),
)
REQUIRED = ("name", "id_number", "hukou_type", "residence_area_code", "living_arrangement")
_HEADER_ALIASES = {
    "老人姓名": "name",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "身份证": "id_number",
    "电话": "phone",
    "手机": "phone",
    "手机号": "phone",
    "手机号码": "phone",
    "联系方式": "phone",
    "户口类型": "hukou_type",
    "户口性质": "hukou_type",
    "户籍性质": "hukou_type",
    "居住村": "residence_area_code",
    "村(社区)": "residence_area_code",
    "所在村(社区)": "residence_area_code",
    "居住村(社区)代码": "residence_area_code",
    "residence_area": "residence_area_code",
    "地址": "address",
    "住址": "address",
    "家庭住址": "address",
    "居住情况": "living_arrangement",
    "特困人员": "tekun",
    "重残": "severe_handicap",
    "计划生育特殊家庭": "family_planning_special",
    "防返贫监测三类户": "three_category_household",
    "监护人": "guardian_name",
    "户籍地代码": "hukou_area_code",
}
_FIELD_BY_HEADER = (
    {header: key for header, key in COLUMNS} | {key: key for _, key in COLUMNS} | _HEADER_ALIASES
)
_HEADER_BY_FIELD = {key: header for header, key in COLUMNS}
_HEADER_SEARCH_ROWS = 10  # a title row or two above the header is common in exported sheets


@dataclass(frozen=True)
class RosterProblem:
    """One thing wrong in a roster: Excel row number, column header, Chinese reason."""

    row: int
    column: str
    reason: str
    # Shown in the written report to help find the row; not part of what the problem is.
    name: str = field(default="", compare=False)
    id_number: str = field(default="", compare=False)


@dataclass
class RosterReport:
    """The outcome of checking (and perhaps importing) a roster file."""

    path: str
    total_rows: int = 0
    imported: int = 0
    problems: list[RosterProblem] = field(default_factory=list)
    fatal: bool = False  # the file itself is unusable (no header, a required column missing)
    report_path: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every row passed."""
        return not self.problems

    @property
    def bad_rows(self) -> list[int]:
        """Return the numbers of the rows with at least one problem."""
        return sorted({problem.row for problem in self.problems})

    def write_csv(self, path: str | Path) -> Path:
        """Write the problems as a CSV that Excel opens (UTF-8 with BOM)."""
        path = Path(path)
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["行号", "列", "问题", "姓名", "身份证号"])
            for problem in self.problems:
                writer.writerow(
                    [problem.row, problem.column, problem.reason, problem.name, problem.id_number]
                )
        self.report_path = str(path)
        return path


@dataclass
class _Row:
    number: int
    raw: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def check_roster(
    session: Session, path: str | Path, *, actor: User | None = None, progress: Progress | None = None
) -> RosterReport:
    """Check every row of a roster file without importing anything."""
    report, _good = _check(session, Path(path), actor, progress)
    return report


def import_roster(
    session: Session,
    actor: User,
    path: str | Path,
    *,
    skip_bad: bool = False,
    report_path: str | Path | None = None,
    progress: Progress | None = None,
) -> RosterReport:
    """Import a roster: all rows or none, or with skip_bad the good rows, writing bad ones to report_path."""
    require_role(actor, WRITE_ROLES, "导入老人名册")
    path = Path(path)
    report, good = _check(session, path, actor, progress)
    if report.fatal or (report.problems and not skip_bad):
        good = []
    if good:
        report.imported = _insert(session, actor, path, good)
    if report.problems and report_path is not None:
        report.write_csv(report_path)
    return report


def read_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """Yield (Excel row number, cell values) for every row of the first sheet or the CSV file."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    elif suffix in (".csv", ".txt"):
        yield from _read_csv(path)
    elif suffix == ".xls":
        raise RegistryError("不支持旧版 .xls 文件：请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    else:
        raise RegistryError(f"不支持的文件类型“{path.suffix}”：请上传 .xlsx 或 .csv 文件")


def _read_xlsx(path: Path) -> Iterator[tuple[int, list[Any]]]:
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        # Exports from other tools often carry a wrong <dimension>; without this only part would be read.
        sheet.reset_dimensions()
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        workbook.close()


def _read_csv(path: Path) -> Iterator[tuple[int, list[Any]]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in a Chinese locale saves "CSV" in the ANSI code page, GBK; GB18030 is its superset.
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise RegistryError("无法识别文件编码：请另存为 UTF-8 或 GBK 编码的 CSV") from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    yield from enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1)


def _normalise_header(text: Any) -> str:
    header = re.sub(r"\s+", "", str(text or ""))
    header = header.replace("（", "(").replace("）", ")").strip("*＊")
    header = re.sub(r"\((必填|选填)\)$", "", header)
    return header.lower() if header.isascii() else header


def _is_blank(cells: list[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


class _Areas:
    """All areas in memory, to resolve village names and to answer "does this code exist" without queries."""

    def __init__(self, session: Session):
        self.by_code = {a.code: a for a in session.scalars(select(Area))}
        self.levels = {code: area.level for code, area in self.by_code.items()}
        self.by_name: dict[str, set[str]] = {}
        for code in self.by_code:
            names = [self.by_code[c].name for c in self._lineage(code)]
            # "祥云村", "祥云镇祥云村", "温县祥云镇祥云村" all name the same village.
            for start in range(len(names)):
                self.by_name.setdefault("".join(names[start:]), set()).add(code)
        self._resolved: dict[str, tuple[str, str | None]] = {}

    def _lineage(self, code: str) -> list[str]:
        chain = []
        while code and code in self.by_code and code not in chain:
            chain.append(code)
            code = self.by_code[code].parent_code
        return list(reversed(chain))

    def path(self, code: str) -> str:
        return "".join(self.by_code[c].name for c in self._lineage(code)) or code

    def resolve(self, text: str) -> tuple[str, str | None]:
        """Return (code, None) for a code or an unambiguous name, else ("", Chinese reason)."""
        key = re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")")
        if key not in self._resolved:
            self._resolved[key] = self._resolve(key)
        return self._resolved[key]

    def _resolve(self, key: str) -> tuple[str, str | None]:
        if key.isdigit():
            return key, None  # existence and level are checked with the rest of the record
        codes = self.by_name.get(key, set())
        villages = {code for code in codes if self.levels[code] == AreaLevel.VILLAGE}
        codes = villages or codes
        if not codes:
            return "", f"找不到名为“{key}”的村(社区)：请填写村(社区)名称或12位区划代码"
        if len(codes) > 1:
            places = "、".join(sorted(self.path(code) for code in codes))
            return "", f"“{key}”有多个同名村(社区)（{places}）：请写成“乡镇名+村名”或填写12位区划代码"
        return next(iter(codes)), None


def _check(
    session: Session, path: Path, actor: User | None, progress: Progress | None
) -> tuple[RosterReport, list[_Row]]:
    report = RosterReport(path=str(path))
    # Read it all first (10,000 rows is a few MB) so the workbook is closed before any checking.
    rows_iter = iter(list(read_rows(path)))
    columns = _find_header(rows_iter, report)
    if columns is None:
        report.fatal = True
        return report, []
    order = {key: position for position, (_index, _header, key) in enumerate(columns)}
    headers = {key: header for _index, header, key in columns}

    rows: list[_Row] = []
    for number, cells in rows_iter:
        if _is_blank(cells):
            continue
        raw = {key: cells[index] if index < len(cells) else None for index, _header, key in columns}
        rows.append(_Row(number, raw))
    report.total_rows = len(rows)

    areas = _Areas(session)
    day = today()
    for done, row in enumerate(rows, start=1):
        _check_row(row, areas, day, actor)
        if progress is not None and (done % PROGRESS_EVERY == 0 or done == report.total_rows):
            progress(done, report.total_rows)
    _check_duplicates(session, rows, areas)

    good = []
    for row in rows:
        if not row.errors:
            good.append(row)
            continue
        name = _cell_text(row.raw.get("name"))
        masked = mask_id_number(_cell_text(row.raw.get("id_number")))
        for key, reason in sorted(row.errors.items(), key=lambda item: order.get(item[0], len(order))):
            column = headers.get(key) or _HEADER_BY_FIELD.get(key) or FIELD_LABELS.get(key, key)
            report.problems.append(RosterProblem(row.number, column, reason, name, masked))
    return report, good


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _find_header(
    rows: Iterator[tuple[int, list[Any]]], report: RosterReport
) -> list[tuple[int, str, str]] | None:
    """Consume rows up to the header; return (cell index, header text, field) per known column."""
    for number, cells in rows:
        columns: list[tuple[int, str, str]] = []
        seen: dict[str, str] = {}
        duplicates: list[RosterProblem] = []
        for index, cell in enumerate(cells):
            header = str(cell).strip() if cell is not None else ""
            key = _FIELD_BY_HEADER.get(_normalise_header(cell))
            if key is None:
                continue  # unknown columns (序号, 备注, ...) are left alone
            if key in seen:
                reason = f"与“{seen[key]}”列重复：同一项只能有一列"
                duplicates.append(RosterProblem(number, header, reason))
                continue
            seen[key] = header
            columns.append((index, header, key))
        if "id_number" not in seen or len(seen) < 2:
            if number >= _HEADER_SEARCH_ROWS:
                break
            continue
        missing = [key for key in REQUIRED if key not in seen]
        problems = duplicates + [
            RosterProblem(number, _HEADER_BY_FIELD[key], f"缺少必填列“{_HEADER_BY_FIELD[key]}”")
            for key in missing
        ]
        if problems:
            report.problems.extend(problems)
            return None
        return columns
    template = "、".join(header for header, _key in COLUMNS[:7])
    report.problems.append(RosterProblem(1, "", f"找不到表头：第一行应为列名（{template}等）"))
    return None


def _check_row(row: _Row, areas: _Areas, day: date, actor: User | None) -> None:
    raw = dict(row.raw)
    area_errors: dict[str, str] = {}
    for key in ("residence_area_code", "hukou_area_code"):
        text = _cell_text(raw.get(key))
        if text:
            code, reason = areas.resolve(text)
            raw[key] = code
            if reason:
                area_errors[key] = reason
    values, errors = clean_elder(raw, areas=areas.levels, today=day)
    errors.update(area_errors)  # a name we could not resolve says more than "please fill in"
    residence = values.get("residence_area_code")
    if (
        actor is not None
        and residence
        and "residence_area_code" not in errors
        and not access.covers(actor, residence)
    ):
        errors["residence_area_code"] = (
            f"{areas.path(residence)}不在您的管辖范围（{areas.path(actor.area_code)}）内"
        )
    row.values, row.errors = values, errors


def _check_duplicates(session: Session, rows: list[_Row], areas: _Areas) -> None:
    by_number: dict[str, list[_Row]] = {}
    for row in rows:
        number = row.values.get("id_number")
        if number and "id_number" not in row.errors:
            by_number.setdefault(number, []).append(row)
    for same in by_number.values():
        if len(same) > 1:
            listed = "、".join(str(row.number) for row in same[:-1]) + f"行和第{same[-1].number}行"
            for row in same:
                row.errors["id_number"] = f"身份证号在第{listed}重复"

    numbers = list(by_number)
    for start in range(0, len(numbers), 5000):  # keep each IN list well below the drivers' parameter limits
        chunk = numbers[start : start + 5000]
        query = select(Elder.id, Elder.id_number, Elder.name, Elder.residence_area_code).where(
            Elder.id_number.in_(chunk)
        )
        for elder_id, number, name, area_code in session.execute(query):
            message = format_duplicate(elder_id, number, name, areas.path(area_code))
            for row in by_number[number]:
                row.errors["id_number"] = message


def _insert(session: Session, actor: User, path: Path, rows: list[_Row]) -> int:
    """Insert the checked rows in bulk, with one "created" history row per elder."""
    now = clock.now()
    records = []
    for row in rows:
        record = {key: row.values[key] for key in _INSERT_FIELDS}
        record.update(status=ElderStatus.ACTIVE, created_at=now, updated_at=now, created_by=actor.id)
        records.append(record)
    statement = insert(Elder).returning(Elder.id, Elder.id_number, sort_by_parameter_order=True)
    try:
        # A savepoint: if someone registers one of these people meanwhile, nothing of the import remains.
        with session.begin_nested():
            created = session.execute(statement, records).all()
    except IntegrityError:
        raise RegistryError("导入期间有人登记了名册中的老人，未导入任何记录：请重新检查后再导入") from None
    reason = f"名册导入：{path.name}"
    changes = [
        {
            "elder_id": elder_id,
            "at": now,
            "actor_id": actor.id,
            "field": "created",
            "old_value": None,
            "new_value": json.dumps(
                {key: audit_text(value) for key, value in record.items() if key in _INSERT_FIELDS},
                ensure_ascii=False,
            ),
            "reason": f"{reason} 第{row.number}行",
        }
        for (elder_id, _number), record, row in zip(created, records, rows, strict=True)
    ]
    session.execute(insert(ElderChange), changes)
    return len(created)


_INSERT_FIELDS = REGISTERED_FIELDS
