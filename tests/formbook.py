"""Real .xlsx workbooks of the printed 项目支出绩效自评表 (财预〔2020〕10号 附件1), for tests.

One sheet per project, written from the same dict rows as the four-sheet contract
(`conftest.valid_sheets()`), so that each form has a four-sheet twin whose results must be equal.
Labels sit where printed forms put them, with merged cells, borders, a title and the extras
offices add (填报说明, a hidden code sheet, a signature line, empty bordered rows): the reader
finds everything by label, so nothing here is placed for its convenience. `typed` types a figure
wrong on purpose, as offices do; the returned `FormCells` say where each figure went.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import openpyxl
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.core.formatting import plain_number, round_half_up
from pipeline.core.forms import LEVEL1_ORDER, funding_source, level_rank

Row = Mapping[str, object]
VARIANTS: tuple[str, ...] = ("national", "安徽", "河北", "湖北", "四川")
DASH = "—"
TOTAL = "total"
THIN = Side(style="thin")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
WRAP = Alignment(wrap_text=True, vertical="center")
CENTER = Alignment(wrap_text=True, vertical="center", horizontal="center")
# An operator, a number and the rest (the unit) of a typed target such as "≥90%".
TYPED_NUMBER = re.compile(r"^\s*([≥≤=]?)\s*(\d+(?:\.\d+)?)\s*(\S*)\s*$")
INDICATOR_HEADERS = ("一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "分值", "得分",
                     "偏差原因分析及改进措施")
SICHUAN_HEADERS = ("一级指标", "二级指标", "三级指标", "指标性质", "指标值", "度量单位", "完成值", "权重",
                   "得分", "未完成原因分析")
SICHUAN_SOURCES = ("财政资金", "财政专户管理资金", "单位资金", "其他资金")
SIGNATURE = "单位负责人：    财务负责人：    填表人：    联系电话：    填报日期："


@dataclass(frozen=True)
class FormCells:
    """Where the factory put things in one project's sheet (Excel addresses like "G6")."""

    sheet: str  # the sheet name
    project_id: str  # 项目编号 of the source row (the reader makes ids from the sheet name; tests map)
    budget_weight: str  # the budget row's 分值/权重 cell
    rate: str  # the budget row's 执行率/预算执行率 cell
    budget_score: str  # the budget row's 得分 cell
    total_score: str  # the 总分/合计 row's 得分 cell
    grade: str | None  # the 自评等级 value cell (None when the variant/option has none)
    funding_rows: dict[str, int]  # "total" and each typed source label as written -> Excel row
    indicator_rows: list[int]  # Excel row of each indicator, in the input order of 绩效指标 rows
    columns: dict[str, str]  # form header text as written -> column letter (indicator table and budget block)


@dataclass(frozen=True)
class Money:
    """One funding row's three amounts in 万元."""

    initial: Decimal
    adjusted: Decimal
    spent: Decimal


@dataclass(frozen=True)
class Options:
    """What one call asked for, passed down to each sheet."""

    variant: str
    overview_row: bool
    grade_row: bool
    extras: bool


def decimal_of(value: object) -> Decimal:
    """A typed number as an exact Decimal (floats through their shortest text: 85.62, not 85.619…)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def is_number(value: object) -> bool:
    """True for an int, float or Decimal that a cell stores as a number (not bool)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def mapping_of(value: object) -> dict[object, object]:
    """A typed override that is a mapping (资金 by row label, 得分 by index) as a dict; {} when absent."""
    return dict(value) if isinstance(value, Mapping) else {}


def cell_number(value: Decimal) -> int | float:
    """A Decimal as the number a cell stores: an int when whole, else a float."""
    return int(value) if value == value.to_integral_value() else float(value)


def money_of(rows: Sequence[Row]) -> Money:
    """The three amounts of some 资金 rows added up."""
    def total(key: str) -> Decimal:
        return sum((decimal_of(r.get(key) or 0) for r in rows), Decimal(0))
    return Money(total("年初预算数(万元)"), total("全年预算数(万元)"), total("全年执行数(万元)"))


def rate_of(money: Money) -> Decimal:
    """The execution rate as an exact fraction (0 without a budget)."""
    return money.spent / money.adjusted if money.adjusted > 0 else Decimal(0)


def grade_of(total: Decimal) -> str:
    """优 良 中 差 for a total, as the form's 自评等级."""
    return "优" if total >= 90 else "良" if total >= 80 else "中" if total >= 60 else "差"


def form_order(indicators: Sequence[Row]) -> list[int]:
    """Input indices of the indicators in the form's order of 一级 then 二级 (stable)."""
    return sorted(range(len(indicators)),
                  key=lambda i: level_rank(str(indicators[i]["一级指标"]), str(indicators[i]["二级指标"])))


def runs(keys: Sequence[object]) -> list[tuple[int, int]]:
    """(first, last) positions of each run of equal consecutive keys."""
    spans: list[tuple[int, int]] = []
    for index, key in enumerate(keys):
        if spans and keys[spans[-1][0]] == key:
            spans[-1] = (spans[-1][0], index)
        else:
            spans.append((index, index))
    return spans


def with_unit(number: object, unit: object) -> str:
    """A number followed by its unit as text: 74批, 96.7%."""
    return f"{plain_number(decimal_of(number))}{unit or ''}"


def fraction_rate(row: Row, keep_unit: bool) -> str:
    """The rate of a 分子/分母 row as typed (or computed to one decimal), then the fraction: 85.7%（12/14）."""
    unit = str(row.get("计量单位") or "")
    typed = row.get("实际完成值")
    if typed is None or typed == "":
        ratio = decimal_of(row["分子"]) / decimal_of(row["分母"]) * (100 if unit == "%" else 1)
        shown = plain_number(round_half_up(ratio, 1)) + unit
    else:
        shown = with_unit(typed, unit) if is_number(typed) else str(typed)
    if not keep_unit and unit and shown.endswith(unit):
        shown = shown[: -len(unit)]
    return f"{shown}（{plain_number(decimal_of(row['分子']))}/{plain_number(decimal_of(row['分母']))}）"


def target_value(row: Row, bare: bool) -> object:
    """年度指标值 as the national form shows it: ≥50批, a typed text as is, a bare number for 河北's ≥."""
    direction, target = row.get("指标方向"), row.get("年度指标值")
    if direction in ("≥", "≤", "=") and is_number(target):
        if bare and direction == "≥":
            return cell_number(decimal_of(target))
        return f"{direction}{with_unit(target, row.get('计量单位'))}"
    return target


def actual_value(row: Row) -> object:
    """实际完成值 as the national form shows it: 85.7%（12/14）, 74批, 96.7%, or the typed text."""
    actual = row.get("实际完成值")
    if row.get("分子") is not None and row.get("分母") is not None:
        return fraction_rate(row, keep_unit=True)
    if is_number(actual):
        return with_unit(actual, row.get("计量单位")) if row.get("计量单位") else cell_number(decimal_of(actual))
    return actual


def sichuan_target(row: Row) -> tuple[object, object, object]:
    """指标性质, 指标值 and 度量单位 of an indicator in 四川's split columns."""
    direction, target, unit = row.get("指标方向"), row.get("年度指标值"), row.get("计量单位")
    if direction == "定性":
        return "定性", target, unit
    if is_number(target):
        return direction, cell_number(decimal_of(target)), unit
    match = TYPED_NUMBER.match(str(target or ""))
    if match is None:
        return "定性", target, unit
    return match[1] or direction, cell_number(Decimal(match[2])), match[3] or unit


def sichuan_actual(row: Row) -> object:
    """完成值 in 四川's form: the number alone, 85.7（12/14） for a fraction, or the typed text."""
    actual = row.get("实际完成值")
    if row.get("分子") is not None and row.get("分母") is not None:
        return fraction_rate(row, keep_unit=False)
    if is_number(actual):
        return cell_number(decimal_of(actual))
    match = TYPED_NUMBER.match(str(actual or ""))
    return cell_number(Decimal(match[2])) if match and not match[1] else actual


class Form:
    """One sheet being written: cells with borders and alignment, merges by (row, column) spans."""

    def __init__(self, sheet: Worksheet, last_column: int) -> None:
        self.sheet, self.last = sheet, last_column

    def put(self, row: int, column: int, value: object = None, *, to: int | None = None,
            down: int | None = None, fmt: str | None = None, centered: bool = True) -> str:
        """Write a value, merged right to column `to` and down to row `down`; return its address."""
        cell = self.sheet.cell(row=row, column=column)
        cell.value = value
        cell.alignment = CENTER if centered else WRAP
        if fmt:
            cell.number_format = fmt
        last_row, last_column = down or row, to or column
        if (last_row, last_column) != (row, column):
            self.sheet.merge_cells(start_row=row, start_column=column, end_row=last_row, end_column=last_column)
        return str(cell.coordinate)

    def line(self, row: int, text: str, *, bold: bool = False, size: int = 11) -> None:
        """A line of text across the whole width, without borders (title, signature)."""
        self.put(row, 1, text, to=self.last)
        self.sheet.cell(row=row, column=1).font = Font(name="宋体", bold=bold, size=size)

    def frame(self, first: int, last: int) -> None:
        """Thin borders on every cell of rows first..last, merged parts included, as printed."""
        for row in self.sheet.iter_rows(min_row=first, max_row=last, max_col=self.last):
            for cell in row:
                cell.border = BORDER

    def widths(self, widths: Sequence[float]) -> None:
        """Column widths of a printed form."""
        for index, width in enumerate(widths, start=1):
            self.sheet.column_dimensions[get_column_letter(index)].width = width


@dataclass(frozen=True)
class Budget:
    """Where the budget block's typed figures went, and the score written (for the default total)."""

    weight: str
    rate: str
    score: str
    score_value: object
    funding_rows: dict[str, int]


@dataclass(frozen=True)
class Section:
    """How one variant writes its indicator table and its total row."""

    label: str  # the label merged down column A
    headers: tuple[str, ...]  # from column B
    values: Callable[[int, Row], Sequence[object]]  # cells from column D of one indicator (input index)
    level2: Callable[[str], str]  # the 二级 as written
    group_labels: bool  # a "产出指标（40分）" row before each 一级 group (湖北)
    total_label: str  # 总分 or 合计, merged from column A
    weight_column: int  # the total row's 分值/权重 column; 得分 is the next one


def money_cells(form: Form, row: int, money: Money | None, override: object) -> None:
    """The three amounts of one funding row in C..E (— when the source has no row)."""
    values: Sequence[object] = ((DASH,) * 3 if money is None else
                                tuple(cell_number(v) for v in (money.initial, money.adjusted, money.spent)))
    if isinstance(override, Sequence):
        values = tuple(override)
    for offset, value in enumerate(values):
        form.put(row, 3 + offset, value, fmt="0.00" if is_number(value) else None)


def total_of(budget_score: object, scores: Sequence[object]) -> Decimal | None:
    """The default typed total: budget score + indicator scores as written, None when one is empty."""
    parts = [budget_score, *scores]
    if not all(is_number(p) for p in parts):
        return None
    return sum((decimal_of(p) for p in parts), Decimal(0))


def header_block(form: Form, row: int, project: Row, split: int) -> int:
    """项目名称 / 主管部门 / 实施单位 from `row`; returns the next free row."""
    form.put(row, 1, "项目名称")
    form.put(row + 1, 1, "主管部门")
    form.put(row, 2, project.get("项目名称"), to=form.last, centered=False)
    form.put(row + 1, 2, project.get("主管部门"), to=split - 1, centered=False)
    form.put(row + 1, split, "实施单位")
    form.put(row + 1, split + 1, project.get("实施单位"), to=form.last, centered=False)
    return row + 2


def budget_block(form: Form, row: int, label: str, headers: Sequence[str],
                 sources: Sequence[tuple[str, Money | None]], weight: Decimal,
                 typed: Mapping[str, object], rate_column: int) -> Budget:
    """The money block from `row`: label down column A, headers from C, the total row, one row per
    source. `sources` starts with the total row's label and amounts; 分值/权重 sits in column 6
    or 7 (whichever is not the rate's), 得分 in column 8, and a 原因 column (四川) spans 9..last."""
    rows = len(sources) + 1
    form.put(row, 1, label, down=row + rows - 1)
    form.put(row, 2)
    for column, text in enumerate(headers, start=3):
        form.put(row, column, text, to=form.last if column == 9 else None)
    overrides = mapping_of(typed.get("资金"))
    funding_rows: dict[str, int] = {TOTAL: row + 1}
    for offset, (name, money) in enumerate(sources, start=1):
        form.put(row + offset, 2, name, centered=offset == 1)
        money_cells(form, row + offset, money, overrides.get(name))
        for column in (6, 7, 8):
            form.put(row + offset, column, DASH)
        if form.last > 9:
            form.put(row + offset, 9, None, to=form.last)
        funding_rows[name] = row + offset
    total = sources[0][1] or Money(Decimal(0), Decimal(0), Decimal(0))
    rate = rate_of(total)
    typed_rate = typed.get("执行率", float(rate))
    rate_cell = form.put(row + 1, rate_column, typed_rate, fmt="0.00%" if is_number(typed_rate) else None)
    weight_cell = form.put(row + 1, 13 - rate_column, typed.get("分值", cell_number(weight)))
    score = typed.get("预算得分", cell_number(round_half_up(weight * min(rate, Decimal(1)))))
    return Budget(weight_cell, rate_cell, form.put(row + 1, 8, score), score, funding_rows)


def indicator_rows(form: Form, top: int, indicators: Sequence[Row], section: Section) -> tuple[dict[int, int], int]:
    """The indicator rows from row `top` in form order, 一级/二级 merged down their runs.

    Returns each input index's Excel row and the next free row. With `group_labels` (湖北) a
    label row "产出指标（40分）" precedes each 一级 group, outside the 一级 merge, and a row
    "年度绩效目标（80分）" heads them all.
    """
    order = form_order(indicators)
    placed: dict[int, int] = {}
    row = top
    if section.group_labels:  # 湖北 also heads the whole table with its 80 points
        total = sum((decimal_of(indicators[i]["分值"]) for i in order), Decimal(0))
        form.put(row, 2, f"年度绩效目标（{plain_number(total)}分）", to=form.last, centered=False)
        row += 1
    for first, last in runs([indicators[i]["一级指标"] for i in order]):
        group = order[first:last + 1]
        level1 = str(indicators[group[0]]["一级指标"])
        if section.group_labels:
            weight = sum((decimal_of(indicators[i]["分值"]) for i in group), Decimal(0))
            form.put(row, 2, f"{level1}（{plain_number(weight)}分）", to=form.last, centered=False)
            row += 1
        form.put(row, 2, level1, down=row + len(group) - 1 if len(group) > 1 else None)
        for low, high in runs([indicators[i]["二级指标"] for i in group]):
            name = section.level2(str(indicators[group[low]]["二级指标"]))
            form.put(row + low, 3, name, down=row + high if high > low else None)
        for offset, index in enumerate(group):
            placed[index] = row + offset
            for column, value in enumerate(section.values(index, indicators[index]), start=4):
                form.put(row + offset, column, value, centered=is_number(value))
        row += len(group)
    return placed, row


def indicator_table(form: Form, header: int, indicators: Sequence[Row], section: Section, budget: Budget,
                    weight: Decimal, typed: Mapping[str, object], extras: bool) -> tuple[list[int], int, str, object]:
    """Header, indicator rows, placeholders and the total row from row `header`.

    Returns the indicators' rows in input order, the total row, its 得分 cell and the total written.
    """
    for column, text in enumerate(section.headers, start=2):
        form.put(header, column, text)
    placed, row = indicator_rows(form, header + 1, indicators, section)
    row += 2 if extras else 0
    form.put(header, 1, section.label, down=row - 1 if row - 1 > header else None)
    scores = mapping_of(typed.get("得分"))
    written = [scores.get(i, indicators[i].get("自评得分")) for i in range(len(indicators))]
    total = total_of(budget.score_value, written)
    form.put(row, 1, section.total_label, to=section.weight_column - 1)
    form.put(row, section.weight_column,
             cell_number(weight + sum((decimal_of(i["分值"]) for i in indicators), Decimal(0))))
    typed_total = typed.get("总分", None if total is None else cell_number(total))
    total_cell = form.put(row, section.weight_column + 1, typed_total)
    form.put(row, section.weight_column + 2)
    return [placed[i] for i in range(len(indicators))], row, total_cell, typed_total


def columns_of(block: str, budget_headers: Sequence[str], headers: Sequence[str]) -> dict[str, str]:
    """Header text -> column letter: the indicator table's under their names, the budget block's
    under "<block label>/<header>" and under their names where the indicator table has none."""
    budget = {h: get_column_letter(c) for c, h in enumerate(budget_headers, start=3)}
    return {**{f"{block}/{h}": letter for h, letter in budget.items()}, **budget,
            **{h: get_column_letter(c) for c, h in enumerate(headers, start=2)}}


def national_sheet(sheet: Worksheet, project: Row, funding: Sequence[Row], indicators: Sequence[Row],
                   typed: Mapping[str, object], options: Options) -> FormCells:
    """One project on the national form (安徽, 河北 and 湖北 are variants of it)."""
    variant = options.variant
    labels = {"财政拨款": "其中：本年财政拨款" if variant == "安徽" else "其中：当年财政拨款",
              "上年结转": "上年结转资金", "其他资金": "其他资金"}
    by_source: dict[str, list[Row]] = {}
    for item in funding:
        source = funding_source(str(item["资金来源"]))
        if source not in labels:
            raise ValueError(f"资金来源 {item['资金来源']!r} has no row on the form")
        by_source.setdefault(source, []).append(item)
    form = Form(sheet, 9)
    form.widths((14, 18, 14, 24, 14, 16, 10, 10, 30))
    form.line(1, "项目支出绩效自评表", bold=True, size=16)
    form.line(2, f"（{project.get('年度')}年度）")
    row = header_block(form, 3, project, split=6)
    if options.overview_row and project.get("项目概况"):
        form.put(row, 1, "项目概况")
        form.put(row, 2, project["项目概况"], to=9, centered=False)
        row += 1
    weight = Decimal(20 if variant == "湖北" else 10)
    block, budget_headers = "项目资金（万元）", ("年初预算数", "全年预算数", "全年执行数", "分值", "执行率", "得分")
    sources = [("年度资金总额", money_of(funding)),
               *((label, money_of(by_source[s]) if s in by_source else None) for s, label in labels.items())]
    budget = budget_block(form, row, block, budget_headers, sources, weight, typed, rate_column=7)
    row += len(sources) + 1
    form.put(row, 1, "年度总体目标", down=row + 1)
    form.put(row, 2, "预期目标", to=5)
    form.put(row, 6, "实际完成情况", to=9)
    form.put(row + 1, 2, project.get("年度目标"), to=5, centered=False)
    form.put(row + 1, 6, project.get("完成情况"), to=9, centered=False)
    scores = mapping_of(typed.get("得分"))
    numbers = {index: place for place, index in enumerate(form_order(indicators), start=1)}

    def values(index: int, item: Row) -> Sequence[object]:
        name = f"指标{numbers[index]}：{item['三级指标']}" if variant == "河北" else item["三级指标"]
        return (name, target_value(item, bare=variant == "河北"), actual_value(item),
                cell_number(decimal_of(item["分值"])), scores.get(index, item.get("自评得分")),
                item.get("偏差原因分析及改进措施"))

    section = Section("绩效指标", INDICATOR_HEADERS, values,
                      lambda name: "进度指标" if variant == "湖北" and name == "时效指标" else name,
                      group_labels=variant == "湖北", total_label="总分", weight_column=7)
    rows, row, total_cell, typed_total = indicator_table(form, row + 2, indicators, section, budget, weight,
                                                         typed, options.extras)
    grade_cell = None
    if options.grade_row:
        row += 1
        form.put(row, 1, "自评等级")
        grade = grade_of(decimal_of(typed_total)) if is_number(typed_total) else None
        grade_cell = form.put(row, 2, typed.get("自评等级", grade), to=9)
    form.frame(3, row)
    if options.extras:
        form.line(row + 2, SIGNATURE)
    return FormCells(sheet.title, str(project["项目编号"]), budget.weight, budget.rate, budget.score, total_cell,
                     grade_cell, budget.funding_rows, rows, columns_of(block, budget_headers, INDICATOR_HEADERS))


def sichuan_label(typed_source: str) -> str:
    """The 四川 funding row of a typed 资金来源; 上年结转 has none on that form."""
    if typed_source in SICHUAN_SOURCES:
        return typed_source
    label = {"财政拨款": "财政资金", "其他资金": "其他资金"}.get(funding_source(typed_source))
    if label is None:
        raise ValueError(f"资金来源 {typed_source!r} has no row on the 四川 form")
    return label


def sichuan_sheet(sheet: Worksheet, project: Row, funding: Sequence[Row], indicators: Sequence[Row],
                  typed: Mapping[str, object], options: Options) -> FormCells:
    """One project on 四川's 部门预算项目支出绩效自评表 (报表编号 510000_0013zp)."""
    by_label: dict[str, list[Row]] = {}
    for item in funding:
        by_label.setdefault(sichuan_label(str(item["资金来源"])), []).append(item)
    form = Form(sheet, 11)
    form.widths((16, 26, 12, 22, 10, 10, 10, 12, 8, 8, 28))
    form.line(1, f"部门预算项目支出绩效自评表({project.get('年度')}年度)", bold=True, size=16)
    row = header_block(form, 2, project, split=6)
    form.put(row, 1, "项目基本情况", down=row + 1)
    form.put(row, 2, "1.项目年度目标完成情况", centered=False)
    form.put(row, 3, project.get("完成情况"), to=11, centered=False)
    form.put(row + 1, 2, "2.项目实施内容及过程概述", centered=False)
    form.put(row + 1, 3, project.get("项目概况"), to=11, centered=False)
    row += 2
    weight = Decimal(10)
    block = f"预算执行情况({plain_number(weight)}分)"
    budget_headers = ("年初预算", "调整后预算数", "预算执行数", "预算执行率", "权重", "得分", "原因")
    sources = [("总额", money_of(funding)),
               *((label, money_of(by_label[label]) if label in by_label else None) for label in SICHUAN_SOURCES)]
    budget = budget_block(form, row, block, budget_headers, sources, weight, typed, rate_column=6)
    row += len(sources) + 1
    scores = mapping_of(typed.get("得分"))

    def values(index: int, item: Row) -> Sequence[object]:
        return (item["三级指标"], *sichuan_target(item), sichuan_actual(item),
                cell_number(decimal_of(item["分值"])), scores.get(index, item.get("自评得分")),
                item.get("偏差原因分析及改进措施"))

    indicator_weight = sum((decimal_of(i["分值"]) for i in indicators), Decimal(0))
    section = Section(f"绩效指标({plain_number(indicator_weight)}分)", SICHUAN_HEADERS, values, lambda name: name,
                      group_labels=False, total_label="合计", weight_column=9)
    rows, row, total_cell, _ = indicator_table(form, row, indicators, section, budget, weight, typed,
                                               options.extras)
    for offset, label in enumerate(("评价结论", "存在问题", "改进措施"), start=1):
        form.put(row + offset, 1, label)
        form.put(row + offset, 2, project.get(label) if label != "评价结论" else None, to=11, centered=False)
    form.frame(2, row + 3)
    form.line(row + 4, "项目负责人：        财务负责人：")
    return FormCells(sheet.title, str(project["项目编号"]), budget.weight, budget.rate, budget.score, total_cell,
                     None, budget.funding_rows, rows, columns_of(block, budget_headers, SICHUAN_HEADERS))


def sheet_title(name: object, taken: set[str]) -> str:
    """A legal, unused Excel sheet name from a project name (31 characters, no []:*?/\\)."""
    base = re.sub(r"[\[\]:*?/\\]", "_", str(name or "项目"))[:28] or "项目"
    title, number = base, 2
    while title in taken:
        title, number = f"{base}({number})", number + 1
    return title


def write_guidance(book: openpyxl.Workbook) -> None:
    """The 填报说明 sheet offices put first, and the hidden 代码表 of 一级指标 names."""
    guide = book.create_sheet("填报说明")
    for line in ("填报说明：", "1. 每个项目填写一张自评表。", "2. 金额单位为万元，保留两位小数。",
                 "3. 偏差原因分析及改进措施：未完成年度指标值的须说明原因。"):
        guide.append([line])


def write_forms(path: Path, sheets: Mapping[str, list[dict[str, object]]], variant: str = "national", *,
                typed: Mapping[str, Mapping[str, object]] | None = None,
                sheet_names: str = "project",
                overview_row: bool = True,
                grade_row: bool = True,
                extras: bool = True) -> dict[str, FormCells]:
    """Write one official form per project of the four-sheet rows `sheets` to `path`.

    `sheet_names` "project" names each sheet after its 项目名称, "numbered" 表1, 表2 …;
    `overview_row` adds a 项目概况 row (national variants), `grade_row` a 自评等级 row under 总分,
    `extras` the 填报说明 sheet, a hidden 代码表, a signature line and 2 empty bordered rows after
    the indicators. `typed[项目编号]` overrides figures as typed ("分值", "执行率", "预算得分",
    "总分", "自评等级", "得分": {input index: value}, "资金": {row label: (c, d, e)}).
    Returns where things went, by 项目编号.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    if sheet_names not in ("project", "numbered"):
        raise ValueError(f"sheet_names must be 'project' or 'numbered', not {sheet_names!r}")
    options = Options(variant, overview_row, grade_row, extras)
    book = openpyxl.Workbook()
    book.remove(book.active)
    if extras:
        write_guidance(book)
    writer = sichuan_sheet if variant == "四川" else national_sheet
    cells: dict[str, FormCells] = {}
    taken: set[str] = set()
    for number, project in enumerate(sheets["项目"], start=1):
        pid = project["项目编号"]
        title = f"表{number}" if sheet_names == "numbered" else sheet_title(project.get("项目名称"), taken)
        taken.add(title)
        funding = [r for r in sheets.get("资金", []) if r.get("项目编号") == pid]
        indicators = [r for r in sheets.get("绩效指标", []) if r.get("项目编号") == pid]
        cells[str(pid)] = writer(book.create_sheet(title), project, funding, indicators,
                                 (typed or {}).get(str(pid), {}), options)
    if extras:
        codes = book.create_sheet("代码表")
        codes.append(["一级指标"])
        for name in LEVEL1_ORDER:
            codes.append([name])
        codes.sheet_state = "hidden"
    book.save(path)
    return cells
