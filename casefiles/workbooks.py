"""Excel workbooks (.xlsx) of lists and reports: one sheet per table, Chinese headers, numbers as numbers,
rates as percentages, amounts with two decimals, times in Beijing time."""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from workflows.clock import LOCAL
from workflows.listing import Table

FORMATS = {
    "rate": "0.0%",
    "amount": "#,##0.00",
    "number": "0",
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
}
_HEADER_FILL = PatternFill("solid", fgColor="DDE7F3")
# Characters Excel refuses in a sheet name, and text it would run as a formula.
_BAD_SHEET = re.compile(r"[\[\]:*?/\\]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell_value(value, kind: str):
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(LOCAL).replace(tzinfo=None)
    if isinstance(value, date):
        return value
    if isinstance(value, Decimal):
        return float(value) if kind == "rate" else value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        return value
    text = str(value)
    # Text typed by people (names, comments) must never become a formula when the file is opened.
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def _sheet_title(title: str, used: set[str]) -> str:
    base = _BAD_SHEET.sub("_", title)[:28] or "Sheet"
    name, n = base, 2
    while name in used:
        name = f"{base[:26]}{n}"
        n += 1
    used.add(name)
    return name


def render(tables: list[Table], *, title: str = "") -> bytes:
    """The tables as one .xlsx file."""
    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    for table in tables:
        sheet = book.create_sheet(_sheet_title(table.title, used))
        row = 1
        heading = title or table.title
        sheet.cell(row=row, column=1, value=heading).font = Font(bold=True, size=13)
        row += 1
        for note in table.notes:
            sheet.cell(row=row, column=1, value=note).font = Font(color="555555")
            row += 1
        header_row = row
        for col, column in enumerate(table.columns, start=1):
            cell = sheet.cell(row=row, column=col, value=column.label)
            cell.font = Font(bold=True)
            cell.fill = _HEADER_FILL
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        widths = [max(8, _width(c.label)) for c in table.columns]
        for item in table.rows:
            row += 1
            formats = item.get("_formats", {})
            for col, column in enumerate(table.columns, start=1):
                kind = formats.get(column.key, column.kind)
                value = _cell_value(item.get(column.key), kind)
                cell = sheet.cell(row=row, column=col, value=value)
                if kind in FORMATS and not isinstance(value, str):
                    cell.number_format = FORMATS[kind]
                widths[col - 1] = min(60, max(widths[col - 1], _width(_shown(value, kind))))
        for col, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(col)].width = width + 2
        sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    if not book.sheetnames:
        book.create_sheet("空")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _shown(value, kind: str) -> str:
    if value is None:
        return ""
    if kind == "datetime":
        return "2026-01-01 00:00"
    if kind == "rate":
        return "100.0%"
    return str(value)


def _width(text: str) -> int:
    """Columns wide enough for CJK text (two units per character)."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text or "")
