"""汇总表.xlsx: every project of a workbook in one table an officer can sort, total, print and follow.

Written with xlsxwriter in constant-memory mode (rows go to disk as they are written, so a
province's 100,000 projects keep memory flat). Sheet 汇总表: a title row (年度 and 主管部门 or
workbook name), "单位：万元", a bold header row that is frozen, filtered and repeated on every
printed page, one row per project and a 合计 row; landscape A4, one page wide. Sheet 统计: the
count per 评价等级, the figures per 主管部门 and native bar charts of 总得分 and 预算执行率.

Figures are numbers, never text: money unrounded (the exact value as a float, shown 0.00), the
rate a fraction shown 0.00%, so Excel sorts, sums and charts them. Text is always written as a
string, never as a formula or a link, whatever it looks like. The creation time is the one given
(the run date), and xlsxwriter dates every zip member 1980-01-31, so the same rows always give
the same bytes.
"""

from __future__ import annotations

import copy
import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.url import Url
from xlsxwriter.worksheet import Worksheet

from pipeline.core.totals import decimal_or_none
from pipeline.write.files import atomic_write_with
from pipeline.write.summarystats import Totals, grade_text, write_statistics

# Control characters are not allowed in XML 1.0 (a workbook's text can hold them: calamine
# decodes Excel's _x0001_ escapes); Excel keeps at most 32,767 characters in a cell.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_CELL_TEXT = 32_767
# Excel keeps at most 65,530 links per sheet; later rows name their report as plain text.
MAX_LINKS = 65_530
# The creation time when none is given: fixed, so equal rows give equal bytes.
DEFAULT_CREATED = datetime(2020, 1, 1)
SHEET = "汇总表"
UNIT = "单位：万元"
TOTAL = "合计"
HEADER_ROW = 2  # zero-based: title, unit, header
WIDTH_SAMPLE = 2000  # rows measured for column widths (the rest wrap or fit the same widths)


class Kind(Enum):
    """How a column's values are written and shown."""

    TEXT = "text"
    WRAPPED = "wrapped"  # long text: wraps within the column
    MONEY = "0.00"
    RATE = "0.00%"
    SCORE = "score"
    COUNT = "0"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of 汇总表: its header, the summary-row key it shows, and its width bounds
    (in Excel's character units; a CJK character counts two)."""

    header: str
    key: str
    kind: Kind
    narrowest: int = 8
    widest: int = 16


COLUMNS: tuple[Column, ...] = (
    Column("项目编号", "项目编号", Kind.TEXT, 10, 16),
    Column("项目名称", "项目名称", Kind.WRAPPED, 16, 30),
    Column("主管部门", "主管部门", Kind.WRAPPED, 10, 18),
    Column("实施单位", "实施单位", Kind.WRAPPED, 10, 18),
    Column("年初预算数", "年初预算数(万元)", Kind.MONEY, 12, 14),
    Column("全年预算数", "全年预算数(万元)", Kind.MONEY, 12, 14),
    Column("全年执行数", "全年执行数(万元)", Kind.MONEY, 12, 14),
    Column("预算执行率", "预算执行率", Kind.RATE, 12, 12),
    Column("总得分", "总得分", Kind.SCORE, 8, 10),
    Column("评价等级", "评价等级", Kind.WRAPPED, 10, 14),
    Column("警告数", "警告数", Kind.COUNT, 8, 8),
    Column("评分规则", "评分规则", Kind.WRAPPED, 10, 16),
    Column("报告", "报告文件", Kind.LINK, 12, 36),
)
LAST = len(COLUMNS) - 1


def clean_text(value: object) -> str:
    """`value` as cell text: XML-safe, line breaks as Excel types them (LF; a bare CR would be
    stored as the escape _x000D_) and within Excel's limit."""
    text = str(value)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return XML_ILLEGAL.sub("", text)[:MAX_CELL_TEXT]


def display_width(text: str) -> int:
    """How many Excel character units `text` takes: two for a wide (CJK) character, one otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def report_name(relative: object) -> str:
    """The file name a row's report is shown by ("reports/P-001_信访救助.docx" → "P-001_信访救助.docx")."""
    return PurePosixPath(str(relative)).name if relative else ""


# A relative file link as xlsxwriter parses one; each report's link is a copy given its path.
LINK_TEMPLATE = Url("external:placeholder.docx")


def report_link(relative: str) -> Url:
    """A link from 汇总表.xlsx to `relative` (reports/<file>.docx beside it), as Excel writes a
    relative file link: the path with backslashes, and `#`, `%` and spaces escaped in the
    relationship. Built by hand rather than parsed by xlsxwriter, which would read a `#` in a
    project's name ("3#楼维修") as the start of an anchor and leave a `%41` unescaped."""
    link = copy.copy(LINK_TEMPLATE)
    path = clean_text(relative).replace("/", "\\")
    escaped = path.replace("%", "%25").replace(" ", "%20").replace("#", "%23")
    link._link = path  # noqa: SLF001 - xlsxwriter's parser cannot be told to keep a literal "#"
    link._relationship_link = escaped  # noqa: SLF001
    link._anchor = ""  # noqa: SLF001
    link._text = report_name(relative)  # noqa: SLF001
    return link


def summary_title(rows: Sequence[Mapping[str, object]], workbook_stem: str, years: Collection[int] = ()) -> str:
    """The table's title: "2020年度某某局项目支出绩效自评汇总表". The department is the rows' one
    主管部门, or the workbook's name when they have several (or none); the year is the projects'
    one 年度, or a span ("2019—2020年度") when they differ, left out when unknown."""
    departments = {str(row.get("主管部门") or "").strip() for row in rows} - {""}
    who = departments.pop() if len(departments) == 1 else workbook_stem
    known = sorted(set(years))
    when = "" if not known else (f"{known[0]}年度" if len(known) == 1 else f"{known[0]}—{known[-1]}年度")
    return f"{when}{who}项目支出绩效自评汇总表"


def column_widths(rows: Sequence[Mapping[str, object]]) -> list[int]:
    """Each column's width: its header or its widest value among the first rows, plus a margin,
    within the column's bounds (longer text wraps)."""
    widths: list[int] = []
    sample = rows[:WIDTH_SAMPLE]
    for column in COLUMNS:
        if column.kind in (Kind.MONEY, Kind.RATE, Kind.SCORE, Kind.COUNT):
            values = [shown_number(decimal_or_none(row.get(column.key)), column.kind) for row in sample]
        elif column.kind is Kind.LINK:
            values = [report_name(row.get(column.key)) for row in sample]
        else:
            values = [str(row.get(column.key) or "") for row in sample]
        widest = max((display_width(v) for v in [column.header, *values]), default=0) + 2
        widths.append(min(max(widest, column.narrowest), column.widest))
    return widths


def shown_number(value: Decimal | None, kind: Kind) -> str:
    """A figure as its cell shows it, to measure its width."""
    if value is None:
        return ""
    if kind is Kind.RATE:
        return f"{value * 100:.2f}%"
    return f"{value:,.0f}" if kind is Kind.COUNT else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Formats:
    """The cell formats of 汇总表, by role."""

    title: Format
    unit: Format
    header: Format
    body: dict[Kind, Format]
    total: dict[Kind, Format]


def formats_of(book: Workbook) -> Formats:
    """Thin borders on every table cell; bold header on grey; a double line above the 合计 row."""
    base = {"border": 1, "valign": "vcenter", "font_size": 10}

    def cell(kind: Kind, extra: Mapping[str, object]) -> Format:
        spec: dict[str, object] = {**base, **extra}
        if kind in (Kind.MONEY, Kind.SCORE):
            spec["num_format"] = "0.00"
        elif kind in (Kind.RATE, Kind.COUNT):
            spec["num_format"] = kind.value
        elif kind is Kind.WRAPPED:
            spec["text_wrap"] = True
        elif kind is Kind.LINK:
            spec.update({"font_color": "#0563C1", "underline": 1})
        return book.add_format(spec)

    return Formats(
        title=book.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"}),
        unit=book.add_format({"align": "right", "font_size": 10}),
        header=book.add_format({**base, "bold": True, "align": "center", "text_wrap": True, "bg_color": "#D9D9D9"}),
        body={kind: cell(kind, {}) for kind in Kind},
        total={kind: cell(kind, {"bold": True, "top": 6}) for kind in Kind},
    )


NUMBER_KINDS = frozenset({Kind.MONEY, Kind.RATE, Kind.SCORE, Kind.COUNT})


def float_or_none(value: object) -> float | None:
    """A figure as the float Excel stores: the nearest to the exact decimal (float("89.974") is
    float(Decimal("89.974"))); None for an empty, unreadable or infinite one."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value) if isinstance(value, int | float | Decimal) else float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def write_cell(sheet: Worksheet, row: int, col: int, kind: Kind, value: object, fmt: Format) -> None:
    """One cell: a number for the figures, a link for the report, text otherwise (never a
    formula: text goes through write_string, whatever it starts with)."""
    if kind in NUMBER_KINDS:
        number = float_or_none(value)
        if number is not None:
            sheet.write_number(row, col, number, fmt)
            return
    elif kind is Kind.LINK and value:
        if sheet.hlink_count < MAX_LINKS:
            sheet.write_url(row, col, report_link(str(value)), fmt)
        else:
            sheet.write_string(row, col, clean_text(value), fmt)
        return
    text = "" if value is None else clean_text(value)
    if text:
        sheet.write_string(row, col, text, fmt)
    else:
        sheet.write_blank(row, col, None, fmt)


def total_cells(totals: Totals) -> dict[str, object]:
    """The 合计 row by column key: sums of money, the overall rate Σ执行/Σ全年预算 (not the mean of
    the rates), the mean score, the projects per grade and the warnings."""
    return {
        "项目编号": TOTAL,
        "项目名称": f"共{totals.projects}个项目（总得分为平均分）",
        "年初预算数(万元)": totals.initial,
        "全年预算数(万元)": totals.adjusted,
        "全年执行数(万元)": totals.spent,
        "预算执行率": totals.rate,
        "总得分": totals.mean_score,
        "评价等级": grade_text(totals.grades),
        "警告数": totals.warnings,
    }


def write_table(sheet: Worksheet, rows: Sequence[Mapping[str, object]], title: str, formats: Formats,
                totals: Totals) -> None:
    """Sheet 汇总表, top to bottom (constant-memory mode writes each row once, in order)."""
    for col, width in enumerate(column_widths(rows)):
        sheet.set_column(col, col, width)
    sheet.set_row(0, 30)
    sheet.merge_range(0, 0, 0, LAST, clean_text(title), formats.title)
    sheet.merge_range(1, 0, 1, LAST, UNIT, formats.unit)
    for col, column in enumerate(COLUMNS):
        sheet.write_string(HEADER_ROW, col, column.header, formats.header)
    number = HEADER_ROW
    cells = [(col, column.key, column.kind, formats.body[column.kind]) for col, column in enumerate(COLUMNS)]
    for number, row in enumerate(rows, start=HEADER_ROW + 1):
        for col, key, kind, fmt in cells:
            write_cell(sheet, number, col, kind, row.get(key), fmt)
    last_data = number
    total = total_cells(totals)
    for col, column in enumerate(COLUMNS):
        write_cell(sheet, last_data + 1, col, column.kind, total.get(column.key), formats.total[column.kind])
    sheet.freeze_panes(HEADER_ROW + 1, 2)
    sheet.autofilter(HEADER_ROW, 0, last_data, LAST)
    page_setup(sheet)


def page_setup(sheet: Worksheet) -> None:
    """Printed: landscape A4, one page wide, title, unit and header on every page, page numbers."""
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0, HEADER_ROW)
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    sheet.center_horizontally()
    sheet.set_footer("&C第 &P 页，共 &N 页")


def summary_workbook(handle: BinaryIO, rows: Sequence[Mapping[str, object]], title: str,
                     created: datetime) -> None:
    """Write 汇总表.xlsx for `rows` (summary rows, see `pipeline.core.context.summary_row`) to `handle`."""
    book = Workbook(handle, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                             "strings_to_numbers": False})
    book.set_properties({"title": title, "author": "perfreport", "created": created})
    totals = Totals.of(rows)
    write_table(book.add_worksheet(SHEET), rows, title, formats_of(book), totals)
    write_statistics(book, book.add_worksheet("统计"), rows, totals)
    book.close()


def created_at(day: date | datetime | None) -> datetime:
    """The creation time stamped in the file: the run date given (midnight), else a fixed time."""
    if day is None:
        return DEFAULT_CREATED
    if isinstance(day, datetime):
        return day.replace(tzinfo=None)
    return datetime(day.year, day.month, day.day)


def write_summary(path: Path, rows: Sequence[Mapping[str, object]], title: str | None = None,
                  created: date | datetime | None = None) -> Path:
    """汇总表.xlsx at `path`, written atomically: `title` (see `summary_title`; by default built
    from the rows and the output folder's name, without a year) and the creation time `created`
    (the run date; by default a fixed time)."""
    heading = title if title is not None else summary_title(rows, path.parent.name)
    return atomic_write_with(path, lambda handle: summary_workbook(handle, rows, heading, created_at(created)))
