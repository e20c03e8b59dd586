"""汇总表.xlsx read back as a test sees it: the project rows as dicts keyed by the header row.

The sheet opens with a title and "单位：万元" above its header and closes with a 合计 row, so
its project rows are those between the header (the row starting 项目编号) and 合计.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl

HEADER_START = "项目编号"
TOTAL = "合计"


def summary_sheet_rows(path: Path) -> tuple[tuple[object, ...], list[tuple[object, ...]], tuple[object, ...]]:
    """The header, the project rows and the 合计 row of 汇总表 at `path`."""
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(book["汇总表"].iter_rows(values_only=True))
    finally:
        book.close()
    top = next(n for n, row in enumerate(rows) if row and row[0] == HEADER_START)
    end = next(n for n in range(len(rows) - 1, top, -1) if rows[n][0] == TOTAL)
    return rows[top], rows[top + 1:end], rows[end]


def summary_records(path: Path) -> list[dict[str, object]]:
    """The project rows of 汇总表 at `path` as dicts keyed by its header."""
    header, rows, _ = summary_sheet_rows(path)
    return [dict(zip(header, row, strict=True)) for row in rows]
