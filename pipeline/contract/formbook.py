"""A workbook of printed 自评表 forms, turned into the four sheets of the contract.

Each form (`xlsx/formsheet.py`) becomes one 项目 row, its 资金 rows and its 绩效指标 rows, so the
forms are validated by the same rules and built into the same records as the four-sheet
contract. Every row and cell made here remembers the form cell it came from (`Origins`), and
`relocate.py` puts each message back there ("信访救助专项资金!E14"). What only a form has is
judged here: the 年度资金总额 row against its 其中 rows, bare targets (read as ≥, with a 警告),
the blocks' points, and the hand-typed figures kept for checking after scoring (`TypedFigures`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd

from pipeline.contract.cells import number_value
from pipeline.contract.schemas import SHEET_LAYOUTS
from pipeline.core.formatting import plain_number
from pipeline.core.formfigures import TypedFigure, TypedFigures
from pipeline.core.forms import LEVEL1_ORDER, LEVEL2_BY_LEVEL1, form_level2
from pipeline.core.headers import folded
from pipeline.core.profile import ScoringProfile
from pipeline.errors import Problem, Severity
from pipeline.xlsx.formgrid import Cell, address
from pipeline.xlsx.formsheet import (
    NAME_NUMBERING,
    FormSheet,
    Found,
    FundingLine,
    IndicatorLine,
    NotAForm,
)
from pipeline.xlsx.layout import RawSheet, RawWorkbook

# Where a contract cell came from: (contract sheet, row, header) -> (form sheet, cell, form label).
CellOrigin = tuple[str, Cell, str]
DASHES = frozenset(("—", "-", "－", "/", "／", "——", "无"))
BARE_NUMBER = re.compile(r"^[0-9.,]+(?:%|[^0-9%]{0,4})?$")
COST_LEVEL2 = frozenset(LEVEL2_BY_LEVEL1["成本指标"]) | {"成本指标"}
# The form's label of each contract column, for messages at a form cell.
FORM_LABELS = {"level1": "一级指标", "level2": "二级指标", "name": "三级指标", "direction": "指标性质",
               "target": "年度指标值", "unit": "度量单位", "actual": "实际完成值", "weight": "分值",
               "score": "得分", "deviation": "偏差原因分析及改进措施"}
INDICATOR_COLUMNS = {"level1": "一级指标", "level2": "二级指标", "name": "三级指标", "direction": "指标方向",
                     "target": "年度指标值", "unit": "计量单位", "actual": "实际完成值", "weight": "分值",
                     "score": "自评得分", "deviation": "偏差原因分析及改进措施"}
MONEY_COLUMNS = {"initial": "年初预算数(万元)", "adjusted": "全年预算数(万元)", "spent": "全年执行数(万元)"}
MONEY_LABELS = {"initial": "年初预算数", "adjusted": "全年预算数", "spent": "全年执行数"}


@dataclass(frozen=True, slots=True)
class Origins:
    """Where each row and cell of the made-up contract sheets came from on the forms."""

    cells: Mapping[tuple[str, int, str], CellOrigin] = field(default_factory=dict)
    rows: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FormWorkbook:
    """The forms of a workbook as the contract's raw sheets, with what only forms carry."""

    raw: RawWorkbook
    origins: Origins
    figures: Mapping[str, TypedFigures]  # by 项目编号
    budget_weights: tuple[Decimal, ...]  # the budget rows' typed 分值, to choose a profile by


@dataclass
class Tables:
    """The contract rows being made, and where each came from."""

    rows: dict[str, list[dict[str, object]]] = field(default_factory=lambda: {layout.name: [] for layout in SHEET_LAYOUTS})
    cells: dict[tuple[str, int, str], CellOrigin] = field(default_factory=dict)
    places: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, sheet: str, form: str, anchor: Cell, values: Mapping[str, object],
            found: Mapping[str, tuple[Cell, str]]) -> int:
        """Append a row to `sheet`; its number (from 2, as under a header) and its cells' origins."""
        row = len(self.rows[sheet]) + 2
        self.rows[sheet].append(dict(values))
        self.places[(sheet, row)] = (form, anchor[0])
        for column, (cell, label) in found.items():
            self.cells[(sheet, row, column)] = (form, cell, label)
        return row


def form_problem(form: str, cell: Cell | None, label: str, value: object, message: str,
                 severity: Severity = Severity.ERROR) -> Problem:
    """A problem at a form's cell, its sentence starting with where it is (sheet!E14)."""
    where = f"{form}!{address(cell)}" if cell else form
    shown = plain_number(value) if isinstance(value, Decimal) else ("" if value is None else str(value))
    return Problem(form, cell[0] if cell else None, f"{address(cell)}（{label}）" if cell else label, shown,
                   severity, f"{where}「{label}」{message}", cell=address(cell) if cell else "")


def money(found: Found) -> Decimal | None:
    """A money cell of the 项目资金 block: a dash or an empty cell is 0; None when unreadable."""
    value = found.value
    if value is None or (isinstance(value, str) and folded(value) in DASHES):
        return Decimal(0)
    number, why = number_value(value)
    return number if why is None else None


def line_money(line: FundingLine) -> dict[str, Decimal | None]:
    """The three money cells of a funding line."""
    return {kind: money(getattr(line, kind)) for kind in MONEY_COLUMNS}


def funding_rows(form: FormSheet, project_id: str, tables: Tables) -> None:
    """The form's 资金 rows: its sources, or the 年度资金总额 row when the two disagree.

    The budget comes from the total row when its 全年预算数 is positive, else from the sources;
    each cell of the total row that disagrees with the sum of the sources is a 警告.
    """
    sources = [line for line in form.funding if not line.total]
    total = next((line for line in form.funding if line.total), None)
    readable = {id(line): line_money(line) for line in form.funding}
    if any(v is None for values in readable.values() for v in values.values()):
        chosen = [line for line in form.funding if not line.total] or ([total] if total else [])  # the contract says why
    else:
        chosen = sources_or_total(form, total, sources, readable, tables)
    for line in chosen:
        numbers = readable[id(line)]
        readable_line = all(v is not None for v in numbers.values())
        values: dict[str, object] = {"项目编号": project_id, "资金来源": "财政拨款" if line.total else line.label}
        values.update({MONEY_COLUMNS[kind]: numbers[kind] if readable_line else getattr(line, kind).value
                       for kind in MONEY_COLUMNS})
        found = {MONEY_COLUMNS[kind]: (getattr(line, kind).cell or line.label_cell, MONEY_LABELS[kind])
                 for kind in MONEY_COLUMNS}
        found["资金来源"] = (line.label_cell, "资金来源")
        tables.add("资金", form.sheet, line.label_cell, values, found)
    if not form.funding:
        tables.problems.append(form_problem(form.sheet, None, "项目资金", None,
                                            "找不到「年度资金总额」或各资金来源的行"))


def sources_or_total(form: FormSheet, total: FundingLine | None, sources: Sequence[FundingLine],
                     readable: Mapping[int, Mapping[str, Decimal | None]], tables: Tables) -> list[FundingLine]:
    """The sources when they add up to the total row (or there is no positive total), else the
    total row; each disagreeing total cell a 警告 quoting both."""
    funded = [line for line in sources if any(readable[id(line)].values())]
    if total is None:
        return funded or list(sources[:1])
    sums = {kind: sum((readable[id(line)][kind] or Decimal(0) for line in sources), Decimal(0)) for kind in MONEY_COLUMNS}
    typed = readable[id(total)]
    disagree = [kind for kind in MONEY_COLUMNS if typed[kind] != sums[kind]]
    use_total = (typed["adjusted"] or 0) > 0
    for kind in disagree:
        cell = getattr(total, kind).cell
        if use_total:
            what = (f"为 {plain_number(typed[kind] or Decimal(0))}，而其中各来源合计 {plain_number(sums[kind])}；"
                    "按年度资金总额计算，资金来源按财政拨款列示，请核对各来源")
        else:
            what = (f"为 {plain_number(typed[kind] or Decimal(0))}，而其中各来源合计 {plain_number(sums[kind])}；"
                    "年度资金总额的全年预算数不为正数，按各来源合计计算")
        tables.problems.append(form_problem(form.sheet, cell, f"年度资金总额·{MONEY_LABELS[kind]}",
                                            typed[kind], what, Severity.WARNING))
    if use_total and disagree:
        return [total]
    return funded or [total]


def bare_target(value: object) -> bool:
    """A target typed as a number with no direction (廊坊's 43.2, 100, "95%")."""
    if isinstance(value, Decimal):
        return True
    text = folded(str(value or ""))
    return bool(text) and BARE_NUMBER.match(text) is not None and not text.endswith(("以上", "以下", "以内"))


def indicator_row(form: FormSheet, project_id: str, line: IndicatorLine, tables: Tables) -> None:
    """One 绩效指标 row from a form's indicator line; a bare target read as ≥ (≤ for a cost) with a 警告."""
    values: dict[str, object] = {"项目编号": project_id}
    found: dict[str, tuple[Cell, str]] = {}
    for kind, column in INDICATOR_COLUMNS.items():
        cell = line[kind]
        value = cell.value
        if kind == "name" and isinstance(value, str):
            value = NAME_NUMBERING.sub("", value).strip() or value
        values[column] = value
        if cell.cell is not None:
            found[column] = (cell.cell, FORM_LABELS[kind])
    target = line["target"]
    if values["指标方向"] is None and bare_target(target.value):
        level1, level2 = str(values["一级指标"] or ""), str(values["二级指标"] or "")
        cost = level1 == "成本指标" or form_level2(level1, level2) in COST_LEVEL2
        values["指标方向"] = "≤" if cost else "≥"
        tables.problems.append(form_problem(
            form.sheet, target.cell, "年度指标值", target.value,
            f"没有写方向，按「{values['指标方向']}」读取（{'成本指标' if cost else '除成本指标外'}均如此）；"
            "如不是，请写成 ≥、≤ 或 = 加数值", Severity.WARNING))
    tables.add("绩效指标", form.sheet, (line.row, 1), values, found)


def block_problems(form: FormSheet, profile: ScoringProfile) -> list[Problem]:
    """Each label row's points ("产出指标（40分）") against the 分值 of its indicators, and against
    the profile's block totals where it has them (湖北: 产出 40, 效益 40)."""
    problems: list[Problem] = []
    weights = {line.row: number_value(line["weight"].value)[0] for line in form.indicators}
    # The profile's blocks (湖北: 产出 40, 效益 40) bind a form laid out in exactly those blocks; a
    # form with a block of its own (满意度指标 apart) splits its points freely.
    level_blocks = {b.level1 for b in form.blocks if b.level1 in LEVEL1_ORDER}  # not 年度绩效目标（80分）
    laid_out_by_profile = bool(profile.block_totals) and level_blocks == set(profile.block_totals)
    for block in form.blocks:
        label = f"{block.level1}（{plain_number(block.points)}分）"
        added = sum((weights.get(row) or Decimal(0) for row in block.indicators), Decimal(0))
        if all(weights.get(row) is not None for row in block.indicators) and added != block.points:
            problems.append(form_problem(form.sheet, block.cell, label, label,
                                         f"下各指标分值合计为 {plain_number(added)}，应为 {plain_number(block.points)}"))
        expected = profile.block_totals.get(block.level1) if laid_out_by_profile else None
        if expected is not None and expected != block.points:
            problems.append(form_problem(form.sheet, block.cell, label, label,
                                         f"为 {plain_number(block.points)} 分，按「{profile.name}」评分规则"
                                         f"{block.level1}应为 {plain_number(expected)} 分"))
    return problems


def figure(form: FormSheet, found: Found, label: str) -> TypedFigure | None:
    """A hand-typed figure of the form, or None when the form has no such cell."""
    if found.cell is None:
        return None
    return TypedFigure(found.value, form.sheet, found.cell[0], address(found.cell), label)


def typed_figures(form: FormSheet) -> TypedFigures:
    """The budget row's 分值, 执行率, 得分, the 总分 and the 自评等级 as the form types them."""
    rate = form.budget.get("rate", Found(None, None))
    score = form.budget.get("score", Found(None, None))
    weight = form.budget.get("weight", Found(None, None))
    return TypedFigures(
        budget_weight=figure(form, weight, "分值") if weight.value is not None else None,
        rate=figure(form, rate, "执行率") if rate.value is not None else None,
        budget_score=figure(form, score, "得分") if score.value is not None else None,
        total=figure(form, form.total, "总分") if form.total.value is not None else None,
        grade=figure(form, form.grade, "自评等级") if form.grade.value is not None else None,
    )


def overview_of(form: FormSheet) -> tuple[str | None, list[Problem]]:
    """The 项目概况 the form gives; a form without one gets a sentence made of its header block
    (who manages and carries out the project), with a 警告 saying so."""
    typed = form.fields.get("项目概况")
    if typed is not None and typed.value is not None:
        return str(typed.value), []
    name = form.fields.get("项目名称")
    department = form.fields.get("主管部门")
    unit = form.fields.get("实施单位")
    if name is None or name.value is None or department is None or department.value is None:
        return None, []
    doer = unit.value if unit is not None and unit.value not in (None, department.value) else None
    sentence = (f"{name.value}由{department.value}主管，{doer}实施。" if doer
                else f"{name.value}由{department.value}主管并实施。")
    return sentence, [form_problem(form.sheet, name.cell, "项目名称", name.value,
                                   "所在的自评表没有「项目概况」一栏，报告「项目情况」一节以主管、实施单位和资金写成；"
                                   "如需写概况，可在表头下加一行「项目概况」", Severity.WARNING)]


def project_row(form: FormSheet, project_id: str, tables: Tables) -> None:
    """The 项目 row of a form."""
    overview, problems = overview_of(form)
    tables.problems.extend(problems)
    values: dict[str, object] = {"项目编号": project_id, "年度": form.year.value, "项目概况": overview,
                                 "年度目标": form.goal.value, "完成情况": form.achieved.value}
    found: dict[str, tuple[Cell, str]] = {"项目编号": ((1, 1), "工作表名")}
    if form.year.cell:
        found["年度"] = (form.year.cell, "年度")
    for column, cell in form.fields.items():
        if cell.value is not None or column not in values:  # 四川 types 完成情况 in its header block
            values[column] = cell.value
        if cell.cell is not None:
            found[column] = (cell.cell, column)
    for column, cell in (("年度目标", form.goal), ("完成情况", form.achieved)):
        if cell.cell is not None and column not in found:
            found[column] = (cell.cell, "预期目标" if column == "年度目标" else "实际完成情况")
    reason = form.budget.get("reason")
    if reason is not None and reason.cell is not None:
        values["预算执行偏差原因"] = reason.value
        found["预算执行偏差原因"] = (reason.cell, "原因")
    tables.add("项目", form.sheet, (1, 1), values, found)


def raw_sheet(name: str, rows: Sequence[Mapping[str, object]]) -> RawSheet:
    """A contract sheet made of rows: every known header a column, rows numbered from 2."""
    layout = next(layout for layout in SHEET_LAYOUTS if layout.name == name)
    columns = list(layout.known)
    frame = pd.DataFrame([[row.get(column) for column in columns] for row in rows], columns=columns,
                         index=pd.Index(range(2, len(rows) + 2), name="excel_row", dtype="int64"), dtype=object)
    present = {column: column for column in columns if column in set().union(*rows)} if rows else {}
    labels = {**{column: column for column in layout.required}, **present}
    return RawSheet(name, 1, frame, labels)


def form_workbook(path: Path, forms: Sequence[FormSheet | NotAForm], profile: ScoringProfile) -> FormWorkbook:
    """The forms of a workbook as the four contract sheets, with their origins and typed figures."""
    tables = Tables()
    figures: dict[str, TypedFigures] = {}
    weights: list[Decimal] = []
    for form in forms:
        if isinstance(form, NotAForm):
            tables.problems.append(form_problem(form.sheet, form.cell, "自评表", None,
                                                f"看起来是项目支出绩效自评表，但找不到{form.missing}"))
            continue
        project_id = form.sheet.strip()
        project_row(form, project_id, tables)
        funding_rows(form, project_id, tables)
        for line in form.indicators:
            indicator_row(form, project_id, line, tables)
        if not form.indicators:
            tables.problems.append(form_problem(form.sheet, None, "绩效指标", None, "自评表中没有绩效指标行"))
        elif form.indicators[0]["weight"].cell is None:
            tables.problems.append(form_problem(
                form.sheet, form.indicators[0]["name"].cell, "绩效指标", None,
                "所在的绩效指标表没有「分值」（或「权重」）列，无法计分：请在表中加一列「分值」，逐项填写各指标的分值"))
        tables.problems.extend(block_problems(form, profile))
        tables.problems.extend(form_problem(form.sheet, cell, "公式", None,
                                            "是没有计算结果的公式，请用 Excel 打开该文件、保存后再提交")
                               for cell in sorted(form.uncached))
        if form.second_form is not None:
            tables.problems.append(form_problem(
                form.sheet, (form.second_form, 1), "绩效指标", None,
                "起还有一张自评表，没有读取：请每个项目用一张工作表（复制工作表后分开），再提交"))
        figures[project_id] = typed_figures(form)
        weight = form.budget.get("weight")
        if weight is not None and isinstance(weight.value, Decimal):
            weights.append(weight.value)
    sheets = {name: raw_sheet(name, rows) for name, rows in tables.rows.items()}
    raw = RawWorkbook(Path(path), sheets, tuple(tables.problems))
    return FormWorkbook(raw, Origins(tables.cells, tables.places), figures, tuple(weights))

