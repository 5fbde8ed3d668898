"""Workbooks read back with openpyxl: Chinese headers, numbers as numbers, rates as percentages, times in
Beijing time, and text typed by people never turned into a formula."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl

from casefiles import workbooks
from workflows.listing import Column, Table


def test_a_table_reads_back_with_its_types_and_no_formulas():
    table = Table(
        "名单/2025:10",
        [
            Column("name", "姓名"),
            Column("rate", "探访率", "rate"),
            Column("amount", "金额（元）", "amount"),
            Column("at", "时间", "datetime"),
            Column("day", "日期", "date"),
        ],
        [
            {
                "name": '=HYPERLINK("http://x","点我")',
                "rate": Decimal("0.8333"),
                "amount": Decimal("30.50"),
                "at": datetime(2025, 10, 1, 2, 0, tzinfo=UTC),
                "day": date(2025, 10, 2),
            },
            {"name": "@SUM(A1)", "rate": None, "amount": Decimal("0"), "at": None, "day": None},
        ],
        2,
        notes=["说明一行"],
    )
    book = openpyxl.load_workbook(io.BytesIO(workbooks.render([table, table])))
    assert book.sheetnames == ["名单_2025_10", "名单_2025_102"]
    sheet = book["名单_2025_10"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "名单/2025:10" and rows[1][0] == "说明一行"
    assert list(rows[2]) == ["姓名", "探访率", "金额（元）", "时间", "日期"]
    first, second = rows[3], rows[4]
    assert first[0].startswith("'=") and second[0] == "'@SUM(A1)"
    assert abs(first[1] - 0.8333) < 1e-9 and sheet.cell(row=4, column=2).number_format == "0.0%"
    assert first[2] == 30.5 and sheet.cell(row=4, column=3).number_format == "#,##0.00"
    assert first[3] == datetime(2025, 10, 1, 10, 0)  # 02:00 UTC is 10:00 in Beijing
    assert first[4] == datetime(2025, 10, 2, 0, 0)
    assert second[1] is None and second[3] is None
    assert sheet.freeze_panes == "A4"
