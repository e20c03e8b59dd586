"""Where the parts of a printed 项目支出绩效自评表 are on its sheet, found by their labels.

Offices lay the form out in many ways (the national 附件1, 安徽, 河北, 湖北, 四川): rows move, a
block has one more source, columns are named 分值 or 权重. So nothing is found by position: each
part is found by its label (项目名称, 年度资金总额, 一级指标 …) and read beside or below it. Like
the rest of the xlsx layer this settles *where* each value is and hands on the value with its
cell; whether it is acceptable is the contract's business (`contract/formbook.py`).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pipeline.core.forms import FUNDING_SOURCES, LEVEL1_ORDER, funding_source
from pipeline.core.headers import folded
from pipeline.xlsx.formgrid import Cell, FormGrid, form_grids
from pipeline.xlsx.layout import sheet_by_name
from pipeline.xlsx.sheetxml import sheet_parts

# The title: "项目支出绩效自评表", "部门预算项目支出绩效自评表(2023年度)" (a sentence that merely
# mentions the form, as on a 填报说明 page, is not one).
TITLE = re.compile(r"自评表(?:[(（]?\d{4}年度[)）]?)?$")
TITLE_ROWS = 6  # the title and the （2020年度） line sit in the first rows
YEAR = re.compile(r"(\d{4})\s*年度")

# Labels of the header block, each with the 项目 column it fills. 四川 numbers its two texts.
FIELD_LABELS: Mapping[str, str] = {
    "项目名称": "项目名称", "主管部门": "主管部门", "预算部门": "主管部门", "实施单位": "实施单位",
    "项目概况": "项目概况", "项目实施内容及过程概述": "项目概况",
    "项目年度目标完成情况": "完成情况", "存在问题": "存在问题", "改进措施": "改进措施",
}
NUMBERING = re.compile(r"^(?:\d+[.．、]|[（(]\d+[)）])")

# The 项目资金 block's headers (national and 四川 names) and what each column holds.
BUDGET_HEADERS: Mapping[str, str] = {
    "年初预算数": "initial", "年初预算": "initial", "全年预算数": "adjusted", "调整后预算数": "adjusted",
    "全年执行数": "spent", "预算执行数": "spent", "分值": "weight", "权重": "weight",
    "执行率": "rate", "预算执行率": "rate", "得分": "score",
}
TOTAL_LABELS = frozenset(("年度资金总额", "资金总额", "总额", "合计"))
AMONG = re.compile(r"^其中[:：]?")

# The 绩效指标 table's headers (national, 湖北 and 四川 names) and what each column holds.
INDICATOR_HEADERS: Mapping[str, str] = {
    "一级指标": "level1", "二级指标": "level2", "三级指标": "name", "年度指标值": "target", "指标值": "target",
    "实际完成值": "actual", "完成值": "actual", "分值": "weight", "权重": "weight", "得分": "score",
    "自评得分": "score", "偏差原因分析及改进措施": "deviation", "未完成原因分析": "deviation",
    "偏差原因分析": "deviation", "指标性质": "direction", "度量单位": "unit", "计量单位": "unit",
}
INDICATOR_REQUIRED = ("level1", "level2", "name", "target", "actual")
TOTAL_ROW = frozenset(("总分", "合计", "总计"))
GRADE_LABELS = frozenset(("自评等级", "评价等级", "等级"))
SIGNATURE_WORDS = ("单位负责人", "项目负责人", "财务负责人", "填表人")
# 三级 names often carry the form's numbering: 指标1：, 指标1, 1., 1、, （1）.
NAME_NUMBERING = re.compile(r"^(?:指标\s*\d+\s*[：:.、．]?|\d+\s*[.．、:：]|[（(]\d+[)）])\s*")
# A label row of a block: "产出指标（40分）", "产出指标(50分)".
BLOCK_LABEL = re.compile(r"^(?P<level>[^（(]+?)\s*[（(]\s*(?P<points>\d+(?:\.\d+)?)\s*分\s*[)）]$")


@dataclass(frozen=True, slots=True)
class Found:
    """A value of the form and the cell it was read from (None when the form has no such cell)."""

    value: object
    cell: Cell | None


ABSENT = Found(None, None)


@dataclass(frozen=True, slots=True)
class FundingLine:
    """One row of the 项目资金 block: the total row or a source's row."""

    label: str  # as typed, without 其中：
    label_cell: Cell
    total: bool
    initial: Found
    adjusted: Found
    spent: Found


@dataclass(frozen=True, slots=True)
class IndicatorLine:
    """One indicator row of the 绩效指标 table, each cell with its address."""

    row: int
    fields: Mapping[str, Found]  # level1 level2 name direction target unit actual weight score deviation

    def __getitem__(self, key: str) -> Found:
        return self.fields.get(key, ABSENT)


@dataclass(frozen=True, slots=True)
class Block:
    """A label row giving a block's points ("产出指标（40分）"): the indicators under it must add up."""

    level1: str
    points: Decimal
    cell: Cell
    indicators: tuple[int, ...]  # the Excel rows of the indicators under it


@dataclass(frozen=True, slots=True)
class FormSheet:
    """Everything one printed form says, each value with its cell."""

    sheet: str
    year: Found
    fields: Mapping[str, Found]  # 项目 column -> found (项目名称, 主管部门, 实施单位, 项目概况, …)
    goal: Found  # 年度总体目标: 预期目标
    achieved: Found  # 年度总体目标: 实际完成情况
    funding: tuple[FundingLine, ...]
    budget: Mapping[str, Found]  # weight, rate, score of the budget row (the total row)
    indicators: tuple[IndicatorLine, ...]
    blocks: tuple[Block, ...]
    total: Found
    total_weight: Found
    grade: Found
    uncached: frozenset[Cell]
    # The first row of a second form below this one on the same sheet (None: there is none): it
    # is not read, and must not be lost without a word.
    second_form: int | None = None


@dataclass(frozen=True, slots=True)
class NotAForm:
    """A sheet that looks like a form (its title says so) but lacks a part the reader needs."""

    sheet: str
    cell: Cell | None
    missing: str


def label_of(text: str) -> str:
    """A label as compared: folded, without its numbering, its colon and a trailing unit note."""
    text = NUMBERING.sub("", folded(text)).rstrip(":：")
    return re.sub(r"[（(]万元[)）]$", "", text)


def title_cell(grid: FormGrid) -> Cell | None:
    """The cell of the form's title ("项目支出绩效自评表") among the first rows, or None."""
    for row in range(1, min(grid.rows, TITLE_ROWS) + 1):
        for column, text in grid.row_texts(row):
            if TITLE.search(folded(text)):
                return row, column
    return None


def year_found(grid: FormGrid) -> Found:
    """The year of "（2020年度）" in the title rows."""
    for row in range(1, min(grid.rows, TITLE_ROWS) + 1):
        for column, text in grid.row_texts(row):
            match = YEAR.search(folded(text))
            if match:
                return Found(Decimal(match.group(1)), (row, column))
    return ABSENT


def next_value(grid: FormGrid, row: int, column: int, labels: set[str]) -> Found:
    """The first value right of a label on its row, unless that is another label."""
    for right, text in grid.row_texts(row):
        if right <= column or grid.origin((row, right)) == grid.origin((row, column)):
            continue
        if label_of(text) in labels:
            return Found(None, (row, right))
        return Found(grid.value((row, right)), grid.origin((row, right)))
    return Found(None, None)


def header_row(grid: FormGrid, names: Mapping[str, str], required: tuple[str, ...],
               start: int = 1) -> tuple[int, dict[str, int]] | None:
    """The first row from `start` holding every `required` header: (row, {kind: column})."""
    for row in range(start, grid.rows + 1):
        columns: dict[str, int] = {}
        for column, text in grid.row_texts(row):
            kind = names.get(label_of(text))
            if kind is not None and kind not in columns:
                columns[kind] = column
        if all(kind in columns for kind in required):
            return row, columns
    return None


def header_fields(grid: FormGrid, last_row: int) -> dict[str, Found]:
    """The header block's values (项目名称, 主管部门 …) found above `last_row`."""
    found: dict[str, Found] = {}
    labels = set(FIELD_LABELS) | set(BUDGET_HEADERS) | {"年度总体目标", "项目基本情况"}
    for row in range(1, last_row):
        for column, text in grid.row_texts(row):
            field = FIELD_LABELS.get(label_of(text))
            if field is not None and field not in found:
                found[field] = next_value(grid, row, column, labels)
    return found


def funding_lines(grid: FormGrid, header: int, columns: Mapping[str, int]) -> tuple[FundingLine, ...]:
    """The rows under the 项目资金 header: the total row and each source's row, until a row whose
    label is neither (年度总体目标 …)."""
    label_column = min(columns.values()) - 1
    lines: list[FundingLine] = []
    for row in range(header + 1, grid.rows + 1):
        text = grid.text((row, label_column))
        label = AMONG.sub("", folded(text))
        total = label in TOTAL_LABELS
        if not total and funding_source(label) not in FUNDING_SOURCES:
            break
        money = {kind: Found(grid.values.get((row, columns[kind])), (row, columns[kind]))
                 if kind in columns else ABSENT for kind in ("initial", "adjusted", "spent")}
        lines.append(FundingLine(label, grid.origin((row, label_column)), total, **money))
    return tuple(lines)


def goal_texts(grid: FormGrid, start: int) -> tuple[Found, Found]:
    """年度总体目标: the texts under 预期目标 and 实际完成情况 (national layout)."""
    for row in range(start, grid.rows):
        labels = {label_of(text): column for column, text in grid.row_texts(row)}
        if "预期目标" in labels and "实际完成情况" in labels:
            below = row + 1
            return tuple(Found(grid.value((below, labels[name])), grid.origin((below, labels[name])))
                         for name in ("预期目标", "实际完成情况"))  # type: ignore[return-value]
    return ABSENT, ABSENT


def row_found(grid: FormGrid, row: int, column: int | None) -> Found:
    """The value shown at (row, column) and the cell that holds it; ABSENT without a column."""
    if column is None:
        return ABSENT
    return Found(grid.value((row, column)), grid.origin((row, column)))


def block_label(grid: FormGrid, row: int, columns: Mapping[str, int]) -> tuple[str, Decimal, Cell] | None:
    """A label row spread across the table ("产出指标（40分）"): (一级, points, cell), else None."""
    first = grid.origin((row, columns["level1"]))
    if grid.origin((row, columns["name"])) != first:
        return None
    match = BLOCK_LABEL.match(folded(grid.text(first)))
    if match is None:
        return None
    return match.group("level"), Decimal(match.group("points")), first


def known_level1(text: str) -> bool:
    """True for an 一级 the form knows (产出指标 …), not an overall label (年度绩效目标)."""
    return text in LEVEL1_ORDER


def is_placeholder(found: Mapping[str, Found]) -> bool:
    """An empty row of the table (bordered, or under a merged 一级): no name and no figures."""
    return all(found[kind].value is None for kind in ("name", "target", "actual", "weight", "score"))


def indicator_table(grid: FormGrid, header: int, columns: Mapping[str, int]) -> tuple[
        tuple[IndicatorLine, ...], tuple[Block, ...], int]:
    """The indicator rows under the header, the blocks their label rows give, and the row where
    the table ends (its 总分 row, or the first row past it)."""
    lines: list[IndicatorLine] = []
    blocks: list[tuple[str, Decimal, Cell, list[int]]] = []
    row = header + 1
    for row in range(header + 1, grid.rows + 1):
        first_texts = [label_of(text) for _, text in grid.row_texts(row)]
        if any(text in TOTAL_ROW or text in GRADE_LABELS for text in first_texts[:2]) or any(
                word in text for text in first_texts for word in SIGNATURE_WORDS):
            return tuple(lines), finished(blocks), row
        block = block_label(grid, row, columns)
        if block is not None:
            blocks.append((*block, []))
            continue
        found = {kind: row_found(grid, row, column) for kind, column in columns.items()}
        if is_placeholder(found):
            continue
        level1 = found["level1"].value
        # A row counts in the 一级 block above it, and in every block over several 一级
        # ("年度绩效目标（80分）") above it; an 一级 block ends where another 一级 starts.
        current = next((b for b in reversed(blocks) if known_level1(b[0]) or not b[0]), None)
        if current is not None and level1 is not None and current[0] and str(level1) != current[0]:
            current = ("", Decimal(0), (row, columns["level1"]), [])  # a group without a label row
            blocks.append(current)
        for level, _, _, rows in blocks:
            if level and not known_level1(level):
                rows.append(row)
        if current is not None:
            current[3].append(row)
        lines.append(IndicatorLine(row, found))
    return tuple(lines), finished(blocks), row + 1


def finished(blocks: list[tuple[str, Decimal, Cell, list[int]]]) -> tuple[Block, ...]:
    """The blocks that have a label row, each with its indicator rows."""
    return tuple(Block(level, points, cell, tuple(rows)) for level, points, cell, rows in blocks if level)


def labelled_value(grid: FormGrid, start: int, labels: frozenset[str]) -> Found:
    """From `start` down: the last value on the row labelled by one of `labels` (自评等级 | 优),
    or its empty cell right of the label."""
    for row in range(start, grid.rows + 1):
        texts = list(grid.row_texts(row))
        if texts and label_of(texts[0][1]) in labels:
            if len(texts) == 1:
                return Found(None, (row, texts[0][0] + 1))
            column = texts[-1][0]
            return Found(grid.value((row, column)), (row, column))
    return ABSENT


def total_found(grid: FormGrid, row: int, columns: Mapping[str, int]) -> tuple[Found, Found]:
    """The 总分 row's typed total (under 得分) and total weight (under 分值), when `row` is it."""
    texts = [label_of(text) for _, text in grid.row_texts(row)]
    if not texts or texts[0] not in TOTAL_ROW:
        return ABSENT, ABSENT
    return row_found(grid, row, columns.get("score")), row_found(grid, row, columns.get("weight"))


def form_sheet(grid: FormGrid) -> FormSheet | NotAForm | None:
    """The form on a sheet; None when the sheet is not a form (a 填报说明 page, a code list …);
    NotAForm when its title says it is one but a part the reader needs is missing."""
    title = title_cell(grid)
    indicators_at = header_row(grid, INDICATOR_HEADERS, INDICATOR_REQUIRED)
    if title is None:
        has_name = any(label_of(text) == "项目名称" for row in range(1, min(grid.rows, 12) + 1)
                       for _, text in grid.row_texts(row))
        if indicators_at is None or not has_name:
            return None
    if indicators_at is None:
        return NotAForm(grid.sheet, title, "「一级指标、二级指标、三级指标、年度指标值、实际完成值」表头")
    header, columns = indicators_at
    budget_at = header_row(grid, BUDGET_HEADERS, ("adjusted", "spent"))
    if budget_at is None or budget_at[0] > header:
        return NotAForm(grid.sheet, title, "项目资金块（「全年预算数」「全年执行数」表头）")
    budget_header, budget_columns = budget_at
    funding = funding_lines(grid, budget_header, budget_columns)
    budget_row = next((line.label_cell[0] for line in funding if line.total), None)
    if budget_row is None and funding:
        budget_row = funding[0].label_cell[0]
    budget = {kind: row_found(grid, budget_row, budget_columns.get(kind)) if budget_row else ABSENT
              for kind in ("weight", "rate", "score")}
    goal, achieved = goal_texts(grid, budget_header)
    lines, blocks, end = indicator_table(grid, header, columns)
    total, total_weight = total_found(grid, end, columns) if end <= grid.rows else (ABSENT, ABSENT)
    grade = labelled_value(grid, end, GRADE_LABELS)
    second = header_row(grid, INDICATOR_HEADERS, INDICATOR_REQUIRED, start=end + 1)
    return FormSheet(grid.sheet, year_found(grid), header_fields(grid, budget_header), goal, achieved,
                     funding, budget, lines, blocks, total, total_weight, grade, grid.uncached,
                     second[0] if second else None)


def is_contract_workbook(path: Path, sheet_names: Iterable[str]) -> bool:
    """True when the workbook has a sheet of the four-sheet contract (项目, 资金 or 绩效指标), or
    cannot be opened as a zip at all: the contract reader reads it, or says what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = list(sheet_parts(archive))
    except Exception:  # noqa: BLE001 - any damage is the contract reader's to explain
        return True
    return any(sheet_by_name(names, wanted) is not None for wanted in sheet_names)


def read_forms(path: Path) -> list[FormSheet | NotAForm]:
    """The forms of a workbook of printed 自评表 sheets, in sheet order (empty when none is one).
    Raises WorkbookRefused when the file is not a readable .xlsx."""
    return [form for form in map(form_sheet, form_grids(path)) if form is not None]
