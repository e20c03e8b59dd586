"""The workbook an office fills in: `perfreport blank` writes it, and the shipped example is it
plus the example's rows (`scripts/make_example.py`).

Each column is described once (`Column`): its header, width, whether it is required, what to type
and an example. From that one description come the header row, the column's input prompt, its
drop-down or number rule (Excel data validation), and its row in the 填报说明 sheet, so the three
can never tell the office different things. The drop-downs list the names the contract reads
(`core/forms.py`, the default profile's 定性 grades, the templates folder); they live on a hidden
sheet 下拉选项 under one defined name per list, and the 二级指标 list of a row is the defined name
its 一级指标 spells (`INDIRECT`), the usual dependent drop-down, kept by Excel and LibreOffice alike.

How strict each drop-down is follows the contract, not the list: 一级指标 and the number columns
refuse anything else (the contract refuses it too); 资金来源, 二级指标, 指标方向 and 模板 only warn
(the contract also reads 本年财政拨款, 进度指标, >=, and a template added later); 实际完成值 merely
suggests the grades, because the same column holds the numbers of quantitative indicators.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from pipeline.core import headers
from pipeline.core.columns import column_name
from pipeline.core.department import DEPARTMENT_TEMPLATE
from pipeline.core.forms import FUNDING_SOURCES, LEVEL1_ORDER, LEVEL2_BY_LEVEL1
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.write.zipfiles import ZipMember, zip_bytes

# Where `perfreport blank` writes when given no file: the current folder, never input/ (the hot
# folder would process a blank workbook as soon as it appears there).
DEFAULT_BLANK_NAME = "绩效自评填报表.xlsx"
# The document properties' time of a blank workbook: fixed, so the same templates give the same bytes.
BLANK_TIME = datetime(2021, 1, 1, 9, 0, 0)
# The members' mode as Excel-like tools leave it (their date is the one zip epoch of `zipfiles`).
ZIP_MODE = 0o600
# Validations reach Excel's last row: a range costs the same few bytes whatever its length.
LAST_ROW = 1_048_576

INSTRUCTIONS_SHEET = "填报说明"
LISTS_SHEET = "下拉选项"
# The names of the drop-down lists (each one 一级's list is named by the 一级 itself).
LEVEL1_LIST, SOURCE_LIST, DIRECTION_LIST, GRADE_LIST, TEMPLATE_LIST = "一级指标", "资金来源", "指标方向", "定性等级", "模板"
# As the contract reads 指标方向 (contract/schemas.py DIRECTIONS; tests/test_blank.py keeps them equal).
DIRECTIONS = ("≥", "≤", "=", "定性")
# The default profile's 定性 grades, best first.
GRADES = tuple(sorted(DEFAULT_PROFILE.qualitative_bands,
                      key=lambda grade: DEFAULT_PROFILE.qualitative_bands[grade].default, reverse=True))

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLE_FONT = Font(bold=True, size=14)
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)

# Excel's limits on a validation's texts (longer ones make Excel call the file damaged).
MAX_TITLE, MAX_MESSAGE = 32, 255

STOP, WARN, SUGGEST = "stop", "warning", "suggest"
DEPENDENT = "dependent"  # the list named by the row's 一级指标


@dataclass(frozen=True, slots=True)
class Rule:
    """A column's data validation: a list (a defined name, or DEPENDENT) or a number or length bound.

    `strictness` is STOP (refused), WARN (Excel asks "continue?") or SUGGEST (a list to pick from
    that refuses nothing)."""

    kind: str  # "list", "whole", "decimal" or "textLength"
    formula1: str
    error: str = ""
    operator: str | None = None
    formula2: str | None = None
    strictness: str = STOP


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a sheet, as the header row, the prompt and the 填报说明 show it."""

    header: str
    width: float
    required: str  # 是 / 否 / 视情况
    how: str  # what to type: the input prompt and the 填报说明 row
    example: str = ""
    rule: Rule | None = None
    wrap: bool = False  # long text: wrapped and top-aligned in the example's rows


@dataclass(frozen=True, slots=True)
class SheetSpec:
    """One of the contract's four sheets."""

    name: str
    columns: tuple[Column, ...]

    @property
    def headers(self) -> list[str]:
        """The header row, in order."""
        return [column.header for column in self.columns]


def choice(name: str, error: str, strictness: str) -> Rule:
    """A drop-down of the defined list `name`."""
    return Rule("list", name, error, strictness=strictness)


MONEY = Rule("decimal", "0", "请只填数字（万元），不小于 0，如 2.97；不要写“2.97万元”。", "greaterThanOrEqual")
PROJECT_ID = "项目编号"


def id_column(how: str, example: str) -> Column:
    """The 项目编号 column of the sheets that refer to a project."""
    return Column(PROJECT_ID, 13, "是", f"“项目”表中的项目编号。{how}", example)


PROJECTS = SheetSpec(headers.PROJECT_SHEET, (
    Column(PROJECT_ID, 13, "是", "每个项目一个编号，整个工作簿中不能重复，1–40 个字符；其他三张表用它对应到项目。",
           "RG2020-001", Rule("textLength", "1", "项目编号为 1–40 个字符。", "between", "40")),
    Column("项目名称", 24, "是", "1–100 个字符，印在报告标题和自评表中。", "领导接访费用",
           Rule("textLength", "1", "项目名称为 1–100 个字符。", "between", "100"), wrap=True),
    Column("年度", 8, "是", "2000–2100 的整数。", "2020",
           Rule("whole", "2000", "年度应为 2000 到 2100 之间的整数，如 2020。", "between", "2100")),
    Column("主管部门", 16, "是", "主管部门全称。", "如皋市信访局"),
    Column("实施单位", 16, "否", "不填时与主管部门相同。", "如皋市信访局"),
    Column(headers.OVERVIEW, 60, "是", "报告“项目情况”一节；多段之间空一行（单元格内按 Alt+Enter 换行）。"
           "不必写“××万元使用完毕”，该句由软件根据“资金”表写出。", "根据……的要求，设立本项目，用于……", wrap=True),
    Column("年度目标", 40, "否", "年度总体目标（预期目标），印在自评表中。", "保障市党政领导按要求完成接访下访工作", wrap=True),
    Column(headers.PERFORMANCE, 60, "否", "报告“项目绩效”一节；多段之间空一行。",
           "2020年度推动市党政领导接待信访群众74批74人次……", wrap=True),
    Column("模板", 14, "否", "从下拉列表选择 templates 文件夹中的报告模板；不填时用默认模板 report.docx。",
           "full_report.docx", choice(TEMPLATE_LIST, "templates 文件夹中没有这个模板，请从下拉列表中选择。", WARN)),
    Column(headers.BUDGET_DEVIATION, 40, "否", "资金没有用完时写原因，写进报告中关于资金的那句话"
           "（“……结余14.38万元，主要原因是……。”）。", "部分救助申请仍在审核中，资金未能在年内拨付", wrap=True),
    Column(headers.PROBLEMS, 50, "否", "报告“存在的问题及原因”；多段之间空一行。",
           "个别事项涉及多个部门，协调用时较长", wrap=True),
    Column(headers.IMPROVEMENTS, 50, "否", "报告“下一步改进措施”；多段之间空一行。",
           "对跨部门疑难事项实行定期会办、限时办结", wrap=True),
    Column(headers.SIGNATURE, 16, "否", "报告末尾的署名；不填时用实施单位。", "如皋市信访局"),
    Column(headers.REPORT_DATE, 16, "否", "报告末尾的成文日期：日期格式的单元格，或写成 2021-03-15、2021年3月15日；"
           "不填时用生成报告当天的日期。", "2021年3月15日"),
))

FUNDS = SheetSpec("资金", (
    id_column("每个项目每个资金来源一行。", "RG2020-004"),
    Column("资金来源", 12, "是", "从下拉列表选择：财政拨款、上年结转、其他资金（写成本年财政拨款、上年结转资金等也可以）。",
           "财政拨款", choice(SOURCE_LIST, "资金来源应为 财政拨款、上年结转 或 其他资金，请从下拉列表中选择。", WARN)),
    Column("年初预算数(万元)", 18, "是", "以万元为单位，只填数字（如 2.97，不要写“2.97万元”），不小于 0。", "80", MONEY),
    Column("全年预算数(万元)", 18, "是", "调整后的全年预算，万元，只填数字，不小于 0；每个项目的全年预算数合计须大于 0。",
           "80", MONEY),
    Column("全年执行数(万元)", 18, "是", "全年实际支出，万元，只填数字，不小于 0，不大于全年预算数。", "70.62", MONEY),
))

PRINCIPLES = SheetSpec("使用原则", (
    id_column("每条原则一行；没有使用原则的项目不填。", "RG2020-001"),
    Column("序号", 8, "是", "从 1 开始的整数，同一项目内不重复。", "1",
           Rule("whole", "1", "序号应为从 1 开始的整数。", "greaterThanOrEqual")),
    Column("内容", 90, "是", "一条使用原则；不必带“1.”“（一）”等编号。", "充分发挥资金使用效能。", wrap=True),
))

INDICATORS = SheetSpec(headers.INDICATOR_SHEET, (
    id_column("每个指标一行。", "RG2020-002"),
    Column("一级指标", 12, "是", "从下拉列表选择：" + "、".join(LEVEL1_ORDER) + "。", "产出指标",
           choice(LEVEL1_LIST, "一级指标应为 " + "、".join(LEVEL1_ORDER) + " 之一，请从下拉列表中选择。", STOP)),
    Column("二级指标", 18, "是", "先填一级指标，再从下拉列表选择它下面的二级指标。", "时效指标",
           choice(DEPENDENT, "这不是该一级指标下的规定名称，请从下拉列表中选择（先填一级指标）。", WARN)),
    Column("三级指标", 32, "是", "指标名称。", "信访事项按期办结率", wrap=True),
    Column("指标方向", 10, "视情况", "从下拉列表选择 ≥、≤、= 或 定性；年度指标值中已写“≥95%”时可不填。", "≥",
           choice(DIRECTION_LIST, "指标方向应为 ≥、≤、= 或 定性，请从下拉列表中选择。", WARN)),
    Column(headers.TARGET, 30, "是", "定量指标填数字，也可连同方向和单位写成“≥95%”“≤4.46万元”；定性指标填文字目标。",
           "95", wrap=True),
    Column(headers.ACTUAL, 24, "视情况", "定量指标填数字（可带单位，如 96.7%）；定性指标从下拉列表选择 "
           + "、".join(GRADES) + "（后面可接说明）。填了分子、分母时可不填。", "99.19%",
           choice(GRADE_LIST, "", SUGGEST), wrap=True),
    Column("计量单位", 10, "否", "%、件、人次、万元等。", "%"),
    Column("分值", 8, "是", "大于 0，最多两位小数；每个项目各指标分值合计为评分规则的指标总分（默认 90 分，预算执行占 10 分）。",
           "15", Rule("decimal", "0", "分值应为大于 0 的数字。", "greaterThan")),
    Column("分子", 8, "否", "与分母一起填写时，完成值按 分子/分母 计算（单位为 % 时乘以 100）。", "59",
           Rule("decimal", "0", "分子应为不小于 0 的数字。", "greaterThanOrEqual")),
    Column("分母", 8, "否", "大于 0，与分子一起填写。", "61", Rule("decimal", "0", "分母应为大于 0 的数字。", "greaterThan")),
    Column(headers.SELF_SCORE, 10, "否", "一般不填，由软件计算；定性指标可填，须在其等级对应的分值区间内。", "18",
           Rule("decimal", "0", "自评得分应为不小于 0 的数字。", "greaterThanOrEqual")),
    Column(headers.DEVIATION, 50, "否", "指标未完全完成时填写（不填会有警告）。", "仍有2件积案未化解，下一步……", wrap=True),
))

SHEETS: tuple[SheetSpec, ...] = (PROJECTS, FUNDS, PRINCIPLES, INDICATORS)

GENERAL_NOTES = (
    ("用途", "本工作簿用于生成每个预算项目的《绩效评价报告》，一个项目一份 Word 报告。"
             "填好后运行 perfreport run 工作簿.xlsx，或在网页上上传。"),
    ("工作表", "请填写“项目”“资金”“使用原则”“绩效指标”四张表，各表通过“项目编号”对应到项目。"
               "本说明表和隐藏的“下拉选项”表不参与计算。"),
    ("表头", "表头文字请勿修改；表头上方可以加标题行。"),
    ("下拉选项", "带下拉箭头的列请从列表中选择；选中单元格时显示该列的填写提示。"
                 "“实际完成值”的列表只是建议，定量指标照常填数字。"),
    ("计分", "每个项目预算执行占 10 分，各指标分值合计 90 分（按所用评分规则，如湖北为 20 + 80）。"),
)
TABLE_HEADERS = ("工作表", "列名", "必填", "填写说明", "示例")
INSTRUCTION_WIDTHS = (10, 22, 8, 80, 30)


def spec_of(sheet: str) -> SheetSpec:
    """The description of one of the four sheets, by name."""
    return next(spec for spec in SHEETS if spec.name == sheet)


def template_names(folder: Path) -> tuple[str, ...]:
    """The report templates an office may choose: the .docx files in `folder`, sorted (none when
    the folder is missing), without Word's `~$` lock files and the department template (部门汇总报告
    is one per workbook, not a project's choice)."""
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.name for p in folder.iterdir()
                        if p.suffix.lower() == ".docx" and not p.name.startswith("~$") and p.is_file()
                        and p.name.casefold() != DEPARTMENT_TEMPLATE.casefold()))


def drop_down_lists(templates: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Every drop-down list by its defined name: the 一级, each 一级's 二级 (under the 一级's own
    name, for INDIRECT), the sources, directions, grades and templates (left out when none)."""
    lists = {LEVEL1_LIST: LEVEL1_ORDER, **{level1: LEVEL2_BY_LEVEL1[level1] for level1 in LEVEL1_ORDER},
             SOURCE_LIST: FUNDING_SOURCES, DIRECTION_LIST: DIRECTIONS, GRADE_LIST: GRADES}
    return {**lists, TEMPLATE_LIST: tuple(templates)} if templates else lists


def write_lists(wb: Workbook, lists: Mapping[str, Sequence[str]]) -> None:
    """The hidden sheet of drop-down lists, one column each under its name, and a defined name
    for each list's cells."""
    ws = wb.create_sheet(LISTS_SHEET)
    ws.sheet_state = "hidden"
    for index, (name, values) in enumerate(lists.items()):
        letter = column_name(index)
        ws.cell(row=1, column=index + 1, value=name).font = HEADER_FONT
        for row, value in enumerate(values, start=2):
            ws.cell(row=row, column=index + 1, value=value)
        ws.column_dimensions[letter].width = 16
        reference = f"'{LISTS_SHEET}'!${letter}$2:${letter}${len(values) + 1}"
        wb.defined_names[name] = DefinedName(name, attr_text=reference)


def prompt_of(column: Column) -> tuple[str, str]:
    """A column's input prompt: its header as the title and what to type, within Excel's limits."""
    return column.header[:MAX_TITLE], column.how[:MAX_MESSAGE]


def validation(rule: Rule, column: Column, level1_letter: str | None, first_row: int) -> DataValidation:
    """The data validation of `rule`, with the column's prompt; a DEPENDENT list reads the row's 一级."""
    formula1 = rule.formula1
    if rule.kind == "list" and formula1 == DEPENDENT:
        assert level1_letter is not None, "a dependent list needs the 一级指标 column"
        formula1 = f"INDIRECT(${level1_letter}{first_row})"
    title, prompt = prompt_of(column)
    return DataValidation(
        type=rule.kind, operator=rule.operator, formula1=formula1, formula2=rule.formula2, allow_blank=True,
        showErrorMessage=rule.strictness != SUGGEST, errorStyle=None if rule.strictness == SUGGEST else rule.strictness,
        errorTitle=title if rule.error else None, error=rule.error[:MAX_MESSAGE] or None,
        showInputMessage=True, promptTitle=title, prompt=prompt,
    )


def prompt_only(column: Column) -> DataValidation:
    """A validation that checks nothing and only shows the column's prompt."""
    title, prompt = prompt_of(column)
    return DataValidation(showInputMessage=True, promptTitle=title, prompt=prompt, allow_blank=True)


def rule_of(column: Column, lists: Mapping[str, Sequence[str]]) -> Rule | None:
    """A column's rule, or None for a drop-down whose list is absent (no templates to offer)."""
    rule = column.rule
    if rule is None or rule.kind != "list" or rule.formula1 == DEPENDENT or rule.formula1 in lists:
        return rule
    return None


def write_sheet(wb: Workbook, spec: SheetSpec, title: str | None, lists: Mapping[str, Sequence[str]]) -> None:
    """One of the four sheets: an optional merged title row, the styled and frozen header row,
    widths, and each column's prompt and rule from the header down to Excel's last row."""
    ws = wb.create_sheet(spec.name)
    header_row = 1
    if title:
        ws.cell(row=1, column=1, value=title).font = TITLE_FONT
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(spec.columns))
        ws.cell(row=1, column=1).alignment = CENTER
        ws.row_dimensions[1].height = 28
        header_row = 2
    first = header_row + 1
    headers_at = {column.header: column_name(index) for index, column in enumerate(spec.columns)}
    for index, column in enumerate(spec.columns):
        letter = column_name(index)
        cell = ws.cell(row=header_row, column=index + 1, value=column.header)
        cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, CENTER
        ws.column_dimensions[letter].width = column.width
        rule = rule_of(column, lists)
        if rule is None:
            checked = prompt_only(column)
            checked.add(f"{letter}{header_row}:{letter}{LAST_ROW}")
        else:
            header_prompt = prompt_only(column)
            header_prompt.add(f"{letter}{header_row}")
            ws.add_data_validation(header_prompt)
            checked = validation(rule, column, headers_at.get(LEVEL1_LIST), first)
            checked.add(f"{letter}{first}:{letter}{LAST_ROW}")
        ws.add_data_validation(checked)
    ws.freeze_panes = f"A{first}"  # a coordinate, not ws.cell(), which would add an empty cell


def write_instructions(ws: Worksheet) -> None:
    """The 填报说明 sheet: general notes, then one row per sheet and column (required or not,
    what to type, an example)."""
    ws.title = INSTRUCTIONS_SHEET
    ws.cell(row=1, column=1, value=INSTRUCTIONS_SHEET).font = TITLE_FONT
    row = 2
    for key, text in GENERAL_NOTES:
        ws.cell(row=row, column=1, value=key).font = HEADER_FONT
        ws.cell(row=row, column=1).alignment = TOP
        ws.cell(row=row, column=2, value=text).alignment = WRAP_TOP
        ws.merge_cells(start_row=row, start_column=2, end_row=row, end_column=len(TABLE_HEADERS))
        row += 1
    row += 1
    for index, (label, width) in enumerate(zip(TABLE_HEADERS, INSTRUCTION_WIDTHS, strict=True), start=1):
        cell = ws.cell(row=row, column=index, value=label)
        cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, CENTER
        ws.column_dimensions[column_name(index - 1)].width = width
    for spec in SHEETS:
        for column in spec.columns:
            row += 1
            for index, value in enumerate((spec.name, column.header, column.required, column.how, column.example),
                                          start=1):
                ws.cell(row=row, column=index, value=value).alignment = WRAP_TOP


def blank_workbook(templates: Sequence[str], titles: Mapping[str, str] | None = None,
                   created: datetime = BLANK_TIME) -> Workbook:
    """The blank workbook: 填报说明, the four sheets (a sheet named in `titles` gets that title
    row above its header), and the hidden lists; `templates` are the 模板 drop-down's names.
    `created` is its creation and change time (fixed, for the same bytes on every run)."""
    wb = Workbook()
    active = wb.active
    assert active is not None, "a new workbook has one sheet"
    write_instructions(active)
    lists = drop_down_lists(templates)
    for spec in SHEETS:
        write_sheet(wb, spec, (titles or {}).get(spec.name), lists)
    write_lists(wb, lists)
    wb.properties.created = created
    wb.properties.modified = created
    return wb


def header_row_of(wb: Workbook, sheet: str) -> int:
    """The row of a sheet's header in a workbook `blank_workbook` wrote (2 under a title row)."""
    return 2 if wb[sheet].cell(row=2, column=1).value == spec_of(sheet).columns[0].header else 1


def workbook_bytes(wb: Workbook) -> bytes:
    """The workbook as .xlsx bytes, the same on every run: its own change time kept (Workbook.save
    would stamp the clock) and the zip members dated as every zip of `zipfiles`."""
    buffer = io.BytesIO()
    ExcelWriter(wb, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as written:
        members = [ZipMember.deflated(info.filename, [written.read(info.filename)]) for info in written.infolist()]
    return zip_bytes(members, mode=ZIP_MODE)
