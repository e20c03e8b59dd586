"""自评表.xlsx: every project's filled 项目支出绩效自评表 (财预〔2020〕10号 附件1), one sheet each.

The sheet is the report's attachment (`scripts/templatekit/form.py`) laid out on one Excel grid,
so an office can paste it into the budget system, upload it, or correct it and run it again: the
form importer (`xlsx/formsheet.py`) finds every part by its label and gives back the same
projects and scores. It is written from the report contexts the run already builds
(`core/context.py`, templates/README.md), so the sheet and the report never disagree; their text
figures become numbers again here (money 0.00, 执行率 0.00%, 得分 0.00), exact as the contexts
state them: amounts and scores have two decimals there, 执行率 two decimals of a percentage, which
is also the precision at which the importer checks a typed 执行率.

One grid holds both parts of the printed form (the head and the 绩效指标 table):

    A         B         C            D          E          F           G     H       I
    项目名称 | name ................................................................
    主管部门 | department ................ | 实施单位 | unit ...........................
    项目概况 | overview ............................................................
    项目资金 | (B:C)                | 年初预算数 | 全年预算数 | 全年执行数 | 分值 | 执行率 | 得分
    （万元） | 年度资金总额          |   100.00   |  100.00    |   85.62    |  10  | 85.62% | 8.56
             | 其中：财政拨款 … 上年结转 … 其他资金 (indented), — under 分值, 执行率, 得分
    年度总体目标 | 预期目标 (B:D)         | 实际完成情况 (E:I)
    (blank) | 一级指标 | 二级指标 | 三级指标 | 年度指标值 | 实际完成值 | 分值 | 得分 | 偏差原因分析及改进措施
    绩 效   | 产出指标 | 数量指标 | …        | ≥90%       | 85.7%\\n（12/14） | 15 | 12.86 | …
    指 标   | (一级, 二级 merged down their runs; the label stacked, merged from the first indicator row)
    总分 (A:F)                                                        | 100  | 97.61 |
    自评等级 (A:F)                                                    | 优 (G:H)     |

The 项目概况 row is not on the official form: the importer reads the overview from it, so the
round trip keeps the report's 项目情况 (without it the importer writes a sentence of the header
block and warns). Rows are as high as their wrapped text needs, computed here (Excel and
LibreOffice never grow a merged cell's row); printed landscape on A4, one page wide, the 绩效指标
header repeated on every page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from pipeline.core.headers import folded
from pipeline.write.files import atomic_write

FORM_TITLE = "项目支出绩效自评表"
FORM_WORKBOOK_NAME = "自评表.xlsx"

# Column widths in Excel's units (one unit is about one Latin character; a Chinese one takes two at
# 五号): A the labels, B 一级 (满意度指标), C 二级 (服务对象满意度指标), D 三级 (ten characters a
# line), E 年度指标值 (≤90.00万元), F 实际完成值 (（4170/4170）), G 分值, H 得分 and 执行率
# (100.00%), I 偏差原因分析及改进措施 (the rest of a landscape A4 page).
WIDTHS = (10.0, 12.0, 20.0, 22.0, 16.0, 15.0, 7.0, 9.0, 26.0)
LAST = len(WIDTHS) - 1  # column I
# The 项目资金 block: the row names over B:C, the six figures in D..I.
MONEY_COLUMNS = {"initial": 3, "adjusted": 4, "spent": 5}
WEIGHT, RATE, SCORE = 6, 7, 8
# 年度总体目标: 预期目标 over B:D, 实际完成情况 (usually the longer text) over E:I.
GOAL_LAST = 3
INDICATOR_HEADERS = ("一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "分值", "得分",
                     "偏差原因分析\n及改进措施")
BUDGET_HEADERS = ("年初预算数", "全年预算数", "全年执行数", "分值", "执行率", "得分")
# 绩效指标 one character a line, as side labels of Chinese forms stand: line breaks, not Excel's
# stacked text, which LibreOffice draws against the cell's left edge (the report does the same).
INDICATOR_LABEL = "\n".join("绩效指标")

FONT = "宋体"
HEAD_FONT = "黑体"  # the form's labels and headers, as 表格标题行 in the report
SIZE = 10.5  # 五号
LINE_POINTS = 14.5  # one line of 五号 text, with the leading both Excel and LibreOffice give it
ROW_PADDING = 4.0
MIN_ROW_POINTS = 18.5  # 6.5 mm, the printed form's rows (as the report's attachment)
TITLE_POINTS = 28.0
MARGIN_INCHES = 0.5
# The height a landscape A4 page prints at full scale: 210 mm less the top and bottom margins
# (`page_setup`). The columns fit its width at full scale, so fitting to one page wide keeps it.
PAGE_POINTS = 595.0 - 2 * MARGIN_INCHES * 72

# Excel's sheet names: at most 31 characters, none of []:*?/\, not starting or ending with '.
SHEET_NAME_LIMIT = 31
FORBIDDEN_IN_SHEET_NAME = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
# Names a sheet of forms must not take: the importer reads a workbook holding a sheet of the
# four-sheet contract as that contract, and Excel reserves History.
RESERVED_SHEET_NAMES = frozenset(("项目", "资金", "使用原则", "绩效指标", "history"))
UNNAMED_SHEET = "自评表"


def as_datetime(created: date | datetime) -> datetime:
    """The document's creation time: a day is its midnight."""
    return created if isinstance(created, datetime) else datetime.combine(created, time())


def decimal_of(text: object) -> Decimal | None:
    """A figure of the context ("85.62", "100.00%" -> 1.0000) as an exact number; None when the
    context holds no number there ("" for a source the project has no money from)."""
    raw = str(text or "").strip()
    percent = raw.endswith("%")
    try:
        number = Decimal(raw.removesuffix("%").replace(",", ""))
    except InvalidOperation:
        return None
    if not number.is_finite():  # "NaN" parses, but is no figure a cell can hold
        return None
    return number / 100 if percent else number


def display_width(text: str) -> float:
    """How many width units `text` takes on one line: 1.1 for an ASCII character, two for any
    other (Chinese characters, full-width punctuation, ≥ and ≤ as Chinese fonts draw them)."""
    narrow = len(text.encode("ascii", "ignore"))
    return 2.0 * (len(text) - narrow) + 1.1 * narrow


def line_count(text: str, width: float) -> int:
    """Lines `text` takes when wrapped in a cell `width` units wide (each paragraph at least one)."""
    usable = max(width - 1.5, 1.0)
    if "\n" not in text and 2.0 * len(text) <= usable:  # most cells: one line, nothing to measure
        return 1
    return sum(max(1, math.ceil(display_width(line) / usable)) for line in text.split("\n"))


def sheet_title(name: str, taken: set[str]) -> str:
    """A valid Excel sheet name from a project name, not yet in `taken` (compared as Excel does,
    ignoring case): forbidden characters become _, long names are cut to 31 characters, a repeat
    gets (2), (3). The importer reads the name back as the 项目编号, so equal inputs in equal
    order always give equal names."""
    base = FORBIDDEN_IN_SHEET_NAME.sub("_", name).strip().strip("'").strip()[:SHEET_NAME_LIMIT].strip()
    if not base:
        base = UNNAMED_SHEET
    if folded(base).lower() in RESERVED_SHEET_NAMES:
        base = f"{base}({UNNAMED_SHEET})"
    title, number = base, 2
    while title.lower() in taken:
        suffix = f"({number})"
        title, number = f"{base[:SHEET_NAME_LIMIT - len(suffix)]}{suffix}", number + 1
    taken.add(title.lower())
    return title


def sheet_titles(names: Sequence[str]) -> list[str]:
    """The sheet name of each project, in order."""
    taken: set[str] = set()
    return [sheet_title(name, taken) for name in names]


class Formats:
    """The workbook's cell formats: thin borders everywhere, text centred vertically and wrapped."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        # No font scheme: with one, Excel shows the theme's font (Calibri) instead of the name given.
        plain: dict[str, Any] = {"font_name": FONT, "font_scheme": "none", "font_charset": 134}  # GB2312
        base: dict[str, Any] = {**plain, "font_size": SIZE, "border": 1, "valign": "vcenter", "text_wrap": True}
        centre = {**base, "align": "center"}
        self.title = book.add_format({**plain, "font_size": 18, "bold": True, "align": "center",
                                      "valign": "vcenter"})
        self.year = book.add_format({**plain, "font_size": 12, "align": "center", "valign": "vcenter"})
        self.head = book.add_format({**centre, "font_name": HEAD_FONT})
        self.text = book.add_format(centre)
        self.left = book.add_format({**base, "align": "left"})
        self.source = book.add_format({**base, "align": "left", "indent": 2})  # under 其中：
        self.money = book.add_format({**centre, "num_format": "0.00"})
        self.rate = book.add_format({**centre, "num_format": "0.00%"})
        self.score = book.add_format({**centre, "num_format": "0.00"})
        self.weight = book.add_format({**centre, "num_format": "General"})  # 分值 as typed: 15, 7.5


@dataclass
class FormSheet:
    """One sheet being written, with the height each row's wrapped text needs."""

    sheet: Worksheet
    formats: Formats
    heights: dict[int, float] = field(default_factory=dict)

    def need(self, row: int, text: str, first: int, last: int) -> None:
        """Remember the height of `text` wrapped across columns first..last of `row`."""
        lines = line_count(text, sum(WIDTHS[first:last + 1]))
        height = max(MIN_ROW_POINTS, lines * LINE_POINTS + ROW_PADDING)
        self.heights[row] = max(self.heights.get(row, MIN_ROW_POINTS), height)

    def put(self, row: int, column: int, value: object, cell_format: Format, *, to: int | None = None,
            down: int | None = None) -> None:
        """A cell (text or number), merged right to column `to` and down to row `down`; the row
        grows to its text unless the cell spans rows (those texts are short: 一级, 二级, labels)."""
        last_row, last_column = down if down is not None else row, to if to is not None else column
        if (last_row, last_column) != (row, column):
            self.sheet.merge_range(row, column, last_row, last_column, "", cell_format)
        if isinstance(value, Decimal):
            self.sheet.write_number(row, column, float(value), cell_format)
        elif value is None or value == "":
            self.sheet.write_blank(row, column, None, cell_format)
        else:
            self.sheet.write_string(row, column, str(value), cell_format)
            if last_row == row:
                self.need(row, str(value), column, last_column)

    def number(self, row: int, column: int, text: object, cell_format: Format) -> None:
        """A figure of the context as a number; an empty cell where the context has none."""
        self.put(row, column, decimal_of(text), cell_format)


def texts(context: Mapping[str, object], key: str) -> list[str]:
    """A list-of-text variable of the context (paragraphs), [] when absent."""
    value = context.get(key)
    return [str(item) for item in value] if isinstance(value, list) else []


def record(context: Mapping[str, object], key: str) -> Mapping[str, object]:
    """A dict variable of the context (budget)."""
    value = context.get(key)
    return value if isinstance(value, Mapping) else {}


def records(context: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    """A list-of-dicts variable of the context (sources, indicators)."""
    value = context.get(key)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def title_rows(form: FormSheet, context: Mapping[str, object]) -> int:
    """项目支出绩效自评表 and （2020年度） over the whole width; returns the next row."""
    form.sheet.merge_range(0, 0, 0, LAST, FORM_TITLE, form.formats.title)
    form.sheet.merge_range(1, 0, 1, LAST, f"（{context.get('year', '')}年度）", form.formats.year)
    form.heights[0], form.heights[1] = TITLE_POINTS, MIN_ROW_POINTS
    return 2


def head_rows(form: FormSheet, context: Mapping[str, object], row: int) -> int:
    """项目名称; 主管部门 and 实施单位; 项目概况 (for the importer, see the module's note)."""
    f = form.formats
    form.put(row, 0, "项目名称", f.head)
    form.put(row, 1, context.get("project_name", ""), f.left, to=LAST)
    form.put(row + 1, 0, "主管部门", f.head)
    form.put(row + 1, 1, context.get("department", ""), f.left, to=3)
    form.put(row + 1, 4, "实施单位", f.head)
    form.put(row + 1, 5, context.get("implementing_unit", ""), f.left, to=LAST)
    form.put(row + 2, 0, "项目概况", f.head)
    form.put(row + 2, 1, "\n".join(texts(context, "overview")), f.left, to=LAST)
    return row + 3


def budget_rows(form: FormSheet, context: Mapping[str, object], row: int) -> int:
    """The 项目资金（万元） block: its header, 年度资金总额 with 分值, 执行率 and 得分, and the
    form's three sources (其中：财政拨款, 上年结转, 其他资金) with — under the last three."""
    f = form.formats
    sources = records(context, "sources")
    budget = record(context, "budget")
    form.put(row, 0, "项目资金\n（万元）", f.head, down=row + 1 + len(sources))
    form.put(row, 1, "", f.head, to=2)
    for column, header in enumerate(BUDGET_HEADERS, start=3):
        form.put(row, column, header, f.head)
    total = row + 1
    form.put(total, 1, "年度资金总额", f.left, to=2)
    for key, column in MONEY_COLUMNS.items():
        form.number(total, column, budget.get(key), f.money)
    form.number(total, WEIGHT, budget.get("weight"), f.weight)
    form.number(total, RATE, budget.get("rate"), f.rate)
    form.number(total, SCORE, budget.get("score"), f.score)
    for offset, source in enumerate(sources, start=2):
        label = str(source.get("label", ""))
        form.put(row + offset, 1, f"其中：{label}" if offset == 2 else label, f.left if offset == 2 else f.source,
                 to=2)
        for key, column in MONEY_COLUMNS.items():
            form.number(row + offset, column, source.get(key), f.money)
        for column in (WEIGHT, RATE, SCORE):
            form.put(row + offset, column, "—", f.text)
    return row + 2 + len(sources)


def goal_rows(form: FormSheet, context: Mapping[str, object], row: int) -> int:
    """年度总体目标: 预期目标 | 实际完成情况, and the texts below them."""
    f = form.formats
    form.put(row, 0, "年度总体\n目标", f.head, down=row + 1)
    form.put(row, 1, "预期目标", f.head, to=GOAL_LAST)
    form.put(row, GOAL_LAST + 1, "实际完成情况", f.head, to=LAST)
    form.put(row + 1, 1, context.get("annual_goal", ""), f.left, to=GOAL_LAST)
    form.put(row + 1, GOAL_LAST + 1, "\n".join(texts(context, "performance")), f.left, to=LAST)
    return row + 2


def runs(keys: Sequence[object]) -> Iterator[tuple[int, int]]:
    """(first, last) positions of each run of equal neighbours in `keys`."""
    first = 0
    for index in range(1, len(keys) + 1):
        if index == len(keys) or keys[index] != keys[first]:
            yield first, index - 1
            first = index


def actual_shown(indicator: Mapping[str, object]) -> str:
    """实际完成值 as the form shows it: the value, and on the line below the 分子/分母 it was
    computed from ("96.7%" over "（59/61）"), which the importer reads back as the fraction."""
    actual, fraction = str(indicator.get("actual", "")), str(indicator.get("fraction", ""))
    return f"{actual}\n（{fraction}）" if fraction else actual


def indicator_rows(form: FormSheet, context: Mapping[str, object], row: int) -> tuple[int, int]:
    """The 绩效指标 header, one row per indicator (in the context's form order), the label and the
    一级 and 二级 merged down their runs (二级 never across an 一级 boundary). Returns the header
    row and the next free row."""
    f = form.formats
    indicators = records(context, "indicators")
    header = row
    form.put(header, 0, "", f.head)
    for column, text in enumerate(INDICATOR_HEADERS, start=1):
        form.put(header, column, text, f.head)
    first = header + 1
    for offset, ind in enumerate(indicators):
        at = first + offset
        form.put(at, 3, ind.get("name", ""), f.left)
        form.put(at, 4, ind.get("target", ""), f.text)
        form.put(at, 5, actual_shown(ind), f.text)
        form.number(at, 6, ind.get("weight"), f.weight)
        form.number(at, 7, ind.get("score"), f.score)
        form.put(at, 8, ind.get("deviation", ""), f.left)
    level1 = [str(ind.get("level1", "")) for ind in indicators]
    level2 = [(level1[i], str(ind.get("level2", ""))) for i, ind in enumerate(indicators)]
    for column, keys, names in ((1, level1, level1), (2, level2, [key[1] for key in level2])):
        for top, bottom in runs(keys):
            form.put(first + top, column, names[top], f.text, down=first + bottom)
    if indicators:
        last = first + len(indicators) - 1
        form.put(first, 0, INDICATOR_LABEL, f.head, down=last)
        stacked = line_count(INDICATOR_LABEL, WIDTHS[0]) * LINE_POINTS + ROW_PADDING
        shortfall = stacked - sum(form.heights.get(r, MIN_ROW_POINTS) for r in range(first, last + 1))
        if shortfall > 0:
            form.heights[last] = form.heights.get(last, MIN_ROW_POINTS) + shortfall
    return header, first + len(indicators)


def total_rows(form: FormSheet, context: Mapping[str, object], row: int) -> int:
    """总分 (分值 total and total score) and 自评等级; returns the next free row."""
    f = form.formats
    form.put(row, 0, "总分", f.head, to=5)
    form.number(row, 6, context.get("weight_total"), f.weight)
    form.number(row, 7, context.get("total_score"), f.score)
    form.put(row, 8, "", f.text)
    form.put(row + 1, 0, "自评等级", f.head, to=5)
    form.put(row + 1, 6, context.get("grade", ""), f.text, to=7)
    form.put(row + 1, 8, "", f.text)
    return row + 2


def indicators_on_a_new_page(heights: Sequence[float], header_row: int) -> bool:
    """Whether the 绩效指标 table should start a page: as in the report, when the form does not fit
    on one page but the table (header to 自评等级) does, so its merged 一级 and 二级 and its 总分
    are not cut apart below the head of the form."""
    return sum(heights) > PAGE_POINTS >= sum(heights[header_row:])


def page_setup(sheet: Worksheet, header_row: int, heights: Sequence[float]) -> None:
    """Landscape A4, one page wide, centred, the 绩效指标 header repeated on every printed page."""
    for column, width in enumerate(WIDTHS):
        sheet.set_column(column, column, width)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.center_horizontally()
    sheet.set_margins(left=MARGIN_INCHES, right=MARGIN_INCHES, top=MARGIN_INCHES, bottom=MARGIN_INCHES)
    sheet.repeat_rows(header_row)
    sheet.print_area(0, 0, len(heights) - 1, LAST)
    if indicators_on_a_new_page(heights, header_row):
        sheet.set_h_pagebreaks([header_row])


def write_form(form: FormSheet, context: Mapping[str, object]) -> None:
    """One project's form on its sheet."""
    row = title_rows(form, context)
    row = head_rows(form, context, row)
    row = budget_rows(form, context, row)
    row = goal_rows(form, context, row)
    header, row = indicator_rows(form, context, row)
    end = total_rows(form, context, row)
    heights = [form.heights.get(at, MIN_ROW_POINTS) for at in range(end)]
    for at, height in enumerate(heights):
        form.sheet.set_row(at, height)
    page_setup(form.sheet, header, heights)


def form_workbook_bytes(contexts: Sequence[Mapping[str, object]], created: date | datetime) -> bytes:
    """The workbook of every project's form, in the contexts' order; the same contexts and
    creation time always give the same bytes (xlsxwriter dates its zip members 1980-01-01)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {
        "in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False,
        # The default font sets Excel's width unit (its digit width): 宋体 五号 keeps it at 7 pixels
        # as Calibri's, and makes a Chinese character exactly two units wide (`display_width`).
        "default_format_properties": {"font_name": FONT, "font_size": SIZE},
        "default_row_height": round(MIN_ROW_POINTS * 4 / 3)})
    book.set_properties({"title": FORM_TITLE, "created": as_datetime(created)})
    formats = Formats(book)
    names = sheet_titles([str(context.get("project_name", "")) for context in contexts])
    for name, context in zip(names, contexts, strict=True):
        write_form(FormSheet(book.add_worksheet(name), formats), context)
    if not contexts:  # a workbook needs a sheet; an empty one is not a form
        book.add_worksheet(UNNAMED_SHEET)
    book.close()
    return buffer.getvalue()


def write_form_workbook(path: Path, contexts: Sequence[Mapping[str, object]], created: date | datetime) -> Path:
    """Write 自评表.xlsx (one filled form per project) to `path` atomically; returns `path`."""
    return atomic_write(path, form_workbook_bytes(contexts, created))
