"""校验报告.xlsx: every error and warning of a workbook, in the order an officer fixes them.

Root causes come first (a wrong 项目编号 on 项目, and any problem another one follows from),
then everything else in workbook order: 项目, 资金, 使用原则, 绩效指标, then the other sheets
(a form workbook's forms) in the order their problems were found, each by row, errors before
warnings. A problem that follows from another (its `cause`) says so in 怎么改: "由本表第2行引起".
Written with xlsxwriter, printed landscape and one page wide with the header on every page, and
stamped with a fixed creation time, so the same problems always give the same bytes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from pipeline.errors import PROBLEM_COLUMNS, Problem, Severity
from pipeline.write.files import atomic_write_with

SHEET = "校验报告"
# The contract's sheets in the order the office fills them (not the code-point order of their names).
SHEET_ORDER = ("项目", "资金", "使用原则", "绩效指标")
# The key every other sheet refers to: a problem with it is the first thing to fix.
KEY_SHEET, KEY_COLUMN = "项目", "项目编号"
WIDTHS: Mapping[str, int] = {"工作表": 12, "单元格": 8, "项目编号": 12, "指标/项目名称": 20, "值": 16, "级别": 6,
                             "说明": 60, "怎么改": 44}
WRAPPED = frozenset(("指标/项目名称", "值", "说明", "怎么改"))
MAX_CELL_TEXT = 32_767  # Excel's limit per cell
LINE_HEIGHT, MAX_LINES = 13.0, 30  # points per line of 10-point text; a row is never taller than a page
# Control characters are not allowed in XML 1.0, and a workbook's text can hold them (calamine
# decodes Excel's _x0001_ escapes); they are dropped rather than escaped, as in 汇总表.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# The time stamped in the file when the run gives none: fixed, so equal problems give equal bytes.
DEFAULT_CREATED = datetime(2020, 1, 1)


def is_root(problem: Problem, causes: set[str]) -> bool:
    """Whether other problems follow from this one, or it is about the 项目编号 of 项目 (which every
    other sheet refers to)."""
    if problem.place in causes:
        return True
    return (problem.severity is Severity.ERROR and problem.sheet == KEY_SHEET
            and problem.column == KEY_COLUMN)


def sheet_ranks(problems: Sequence[Problem]) -> dict[str, int]:
    """Each sheet's place in the report: the contract's sheets in their order, a problem of the
    whole workbook (no sheet) before them, other sheets after them as first met."""
    ranks = {"": -1, **{name: rank for rank, name in enumerate(SHEET_ORDER)}}
    for problem in problems:
        ranks.setdefault(problem.sheet, len(ranks))
    return ranks


def ordered(problems: Sequence[Problem]) -> list[Problem]:
    """The problems as 校验报告 lists them: root causes first, then the rest; each part errors
    first, in workbook order (sheet, row), ties in the order found."""
    causes = {p.cause for p in problems if p.cause}
    ranks = sheet_ranks(problems)
    indexed = sorted(enumerate(problems), key=lambda item: (
        not is_root(item[1], causes), item[1].severity is not Severity.ERROR, ranks[item[1].sheet],
        item[1].excel_row or 0, item[0]))
    return [problem for _, problem in indexed]


def caused_by(problem: Problem, report_rows: Mapping[str, int]) -> str:
    """The 怎么改 of a problem that follows from another: which row of this report to fix first."""
    row = report_rows.get(problem.cause)
    where = f"本表第{row}行（{problem.cause}）" if row is not None else problem.cause
    return f"由{where}引起：先改那一处，重新运行后此条通常随之消失；否则{problem.advice}"


def cell_text(value: object) -> str:
    """A cell's text as stored: no control characters, line breaks as LF (xlsxwriter would write a
    CR as the escape _x000D_, which not every reader decodes), at most Excel's length."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return XML_ILLEGAL.sub("", text)[:MAX_CELL_TEXT]


def display_width(text: str) -> int:
    """How many column-width units a line of text takes: a CJK or full-width character two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def row_height(cells: Mapping[str, str]) -> float:
    """The height that shows every line of the row's wrapped texts: set, not left to the reader,
    because LibreOffice keeps a written row's default height and would cut 说明 and 怎么改 off."""
    lines = 1
    for name in WRAPPED:
        usable = max(WIDTHS.get(name, 12) - 1, 1)
        text = cells.get(name, "")
        lines = max(lines, sum(max(1, -(-display_width(line) // usable)) for line in text.split("\n")))
    return LINE_HEIGHT * min(lines, MAX_LINES) + 3


def report_cells(problem: Problem, report_rows: Mapping[str, int]) -> dict[str, object]:
    """One row of the report, by column."""
    row = problem.as_row()
    if problem.cause:
        row["怎么改"] = caused_by(problem, report_rows)
    return row


def formats_of(book: Workbook) -> dict[str, Format]:
    """The cell formats: a bold header, top-aligned cells, wrapped text, and an error's red 级别."""
    base = {"valign": "top", "font_size": 10}
    return {
        "header": book.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "valign": "vcenter",
                                   "font_size": 10}),
        "plain": book.add_format(base),
        "wrapped": book.add_format({**base, "text_wrap": True}),
        "error": book.add_format({**base, "font_color": "#C00000", "bold": True}),
    }


def page_setup(sheet: Worksheet, last_row: int) -> None:
    """Printed: landscape A4, one page wide, the header on every page, page numbers."""
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    sheet.set_footer("&C第 &P 页，共 &N 页")
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(last_row, 1), len(PROBLEM_COLUMNS) - 1)


def problem_workbook(handle: BinaryIO, problems: Sequence[Problem], created: datetime) -> None:
    """Write 校验报告.xlsx for `problems` to `handle`."""
    book = Workbook(handle, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                             "strings_to_numbers": False})
    book.set_properties({"title": SHEET, "author": "perfreport", "created": created})
    formats = formats_of(book)
    sheet = book.add_worksheet(SHEET)
    for col, name in enumerate(PROBLEM_COLUMNS):
        sheet.set_column(col, col, WIDTHS.get(name, 12))
    sheet.write_row(0, 0, PROBLEM_COLUMNS, formats["header"])
    rows = ordered(problems)
    report_rows: dict[str, int] = {}
    for number, problem in enumerate(rows, start=2):
        report_rows.setdefault(problem.place, number)
    for index, problem in enumerate(rows, start=1):
        cells = {name: cell_text(value) for name, value in report_cells(problem, report_rows).items()}
        sheet.set_row(index, row_height(cells))
        for col, name in enumerate(PROBLEM_COLUMNS):
            text = cells.get(name, "")
            if name == "级别" and problem.severity is Severity.ERROR:
                fmt = formats["error"]
            else:
                fmt = formats["wrapped" if name in WRAPPED else "plain"]
            sheet.write_string(index, col, text, fmt)
    page_setup(sheet, len(rows))
    book.close()


def write_problems(path: Path, problems: Sequence[Problem], created: datetime | None = None) -> Path:
    """校验报告.xlsx at `path`: one row per problem, root causes first, then in workbook order;
    `created` (the run's date) is stamped in the file, else a fixed time."""
    return atomic_write_with(path, lambda handle: problem_workbook(handle, problems, created or DEFAULT_CREATED))
