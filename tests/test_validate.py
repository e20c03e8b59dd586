"""Tests of the workbook contract's validation rules: one real .xlsx per broken rule.

Each case starts from the valid `sheets` fixture, breaks one rule (usually one cell), writes a
real workbook and runs `steps.check_workbook` on it, then looks for the problem that names the
right sheet, Excel row, column header (as typed) and severity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline.config import Settings
from pipeline.contract.build import projects_from
from pipeline.contract.schemas import SHEET_LAYOUTS
from pipeline.contract.validate import validate_workbook
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.errors import PROBLEM_COLUMNS, Problem, Severity
from pipeline.run import steps
from pipeline.xlsx.fallback import read_workbook_openpyxl
from pipeline.xlsx.reader import read_workbook

Sheets = dict[str, list[dict[str, object]]]
Mutation = Callable[[Sheets], None]


def excel_row(index: int, title_rows: int = 0) -> int:
    """The Excel row of data row `index` as conftest writes it (header in row 1 + title rows)."""
    return title_rows + 2 + index


def check(workbook_factory: Callable[..., Path], sheets: Sheets, **options: object) -> steps.CheckedWorkbook:
    """Write the sheets to a real .xlsx and check it with the default settings."""
    return steps.check_workbook(workbook_factory(sheets, **options), Settings())


def errors(checked: steps.CheckedWorkbook) -> list[Problem]:
    """The 错误 among a checked workbook's problems."""
    return [p for p in checked.problems if p.severity is Severity.ERROR]


def find(problems: list[Problem] | tuple[Problem, ...], sheet: str, row: int | None, column: str,
         severity: Severity = Severity.ERROR) -> list[Problem]:
    """The problems located at (sheet, row, column) with the given severity."""
    return [p for p in problems
            if (p.sheet, p.excel_row, p.column, p.severity) == (sheet, row, column, severity)]


def describe(problems: list[Problem] | tuple[Problem, ...]) -> str:
    """Problems as text, for assertion messages."""
    return "\n".join(f"{p.severity} {p.sheet}:{p.excel_row}:{p.column}: {p.message}" for p in problems)


# --- mutations -------------------------------------------------------------------------------

def set_cell(sheet: str, index: int, column: str, value: object) -> Mutation:
    """Set one cell of the data row `index` of `sheet`."""
    def mutate(sheets: Sheets) -> None:
        sheets[sheet][index][column] = value
    return mutate


def set_cells(sheet: str, index: int, **values: object) -> Mutation:
    """Set several cells of one data row (for rules that need two cells to be broken)."""
    def mutate(sheets: Sheets) -> None:
        sheets[sheet][index].update(values)
    return mutate


def drop_rows(sheet: str, project_id: str) -> Mutation:
    """Remove every row of `sheet` that belongs to `project_id`."""
    def mutate(sheets: Sheets) -> None:
        sheets[sheet] = [r for r in sheets[sheet] if r["项目编号"] != project_id]
    return mutate


def drop_sheet(sheet: str) -> Mutation:
    def mutate(sheets: Sheets) -> None:
        del sheets[sheet]
    return mutate


def drop_column(sheet: str, column: str) -> Mutation:
    def mutate(sheets: Sheets) -> None:
        for row in sheets[sheet]:
            del row[column]
    return mutate


# Indicator rows of the fixture: 0 积案化解率 (≥90%, 12/14, P-001), 1 重点人员化解率 (59/61),
# 2 群众满意度 (定性, 分值 30), 3 接待群众批次 (≥ 50 批, 分值 60, P-002), 4 项目支出 (≤ 5 万元).
# (id, mutation, sheet, Excel row, column header, message fragment)
RULES: list[tuple[str, Mutation, str, int | None, str, str]] = [
    # 项目
    ("project-id-duplicate", set_cell("项目", 1, "项目编号", "P-001"), "项目", excel_row(1), "项目编号", "重复"),
    ("project-id-over-40", set_cell("项目", 0, "项目编号", "P" * 41), "项目", excel_row(0), "项目编号",
     "长度应为 1 到 40 个字符"),
    ("project-name-empty", set_cell("项目", 0, "项目名称", None), "项目", excel_row(0), "项目名称", "不能为空"),
    ("project-name-over-100", set_cell("项目", 0, "项目名称", "名" * 101), "项目", excel_row(0), "项目名称",
     "长度应为 1 到 100 个字符"),
    ("year-1999", set_cell("项目", 0, "年度", 1999), "项目", excel_row(0), "年度", "2000 到 2100"),
    ("year-chinese-numerals", set_cell("项目", 1, "年度", "二〇二〇"), "项目", excel_row(1), "年度", "数字"),
    ("year-fraction", set_cell("项目", 0, "年度", 2020.5), "项目", excel_row(0), "年度", "应为整数"),
    ("department-empty", set_cell("项目", 0, "主管部门", None), "项目", excel_row(0), "主管部门", "不能为空"),
    ("overview-empty", set_cell("项目", 1, "项目概况", None), "项目", excel_row(1), "项目概况", "不能为空"),
    ("template-unknown", set_cell("项目", 0, "模板", "不存在的模板.docx"), "项目", excel_row(0), "模板",
     "没有这个模板"),
    # 资金
    ("funding-unknown-project", set_cell("资金", 1, "项目编号", "P-999"), "资金", excel_row(1), "项目编号",
     "在「项目」表中不存在"),
    ("funding-source-unknown", set_cell("资金", 0, "资金来源", "自筹资金"), "资金", excel_row(0), "资金来源",
     "财政拨款、上年结转、其他资金"),
    ("initial-budget-negative", set_cell("资金", 0, "年初预算数(万元)", -1), "资金", excel_row(0), "年初预算数(万元)",
     "应不小于 0"),
    ("spent-negative", set_cell("资金", 0, "全年执行数(万元)", -0.5), "资金", excel_row(0),
     "全年执行数(万元)", "应不小于 0"),
    ("spent-over-budget", set_cell("资金", 0, "全年执行数(万元)", 120), "资金", excel_row(0),
     "全年执行数(万元)", "资金 第2行「全年执行数(万元)」为 120，超过全年预算数 100"),
    ("wan-with-unit", set_cell("资金", 0, "年初预算数(万元)", "5万元"), "资金", excel_row(0),
     "年初预算数(万元)", "请只填数字"),
    ("project-without-funding", drop_rows("资金", "P-002"), "项目", excel_row(1), "项目编号", "「资金」表中没有任何行"),
    ("budget-total-zero", set_cells("资金", 1, **{"全年预算数(万元)": 0, "全年执行数(万元)": 0}), "资金",
     excel_row(1), "全年预算数(万元)", "「全年预算数(万元)」：项目 P-002 的全年预算数合计为 0"),
    # 使用原则
    ("seq-duplicate", set_cell("使用原则", 1, "序号", 1), "使用原则", excel_row(1), "序号", "序号不能相同"),
    ("seq-zero", set_cell("使用原则", 0, "序号", 0), "使用原则", excel_row(0), "序号", "应不小于 1"),
    ("principle-unknown-project", set_cell("使用原则", 2, "项目编号", "P-404"), "使用原则", excel_row(2),
     "项目编号", "在「项目」表中不存在"),
    # 绩效指标
    ("indicator-unknown-project", set_cell("绩效指标", 4, "项目编号", "P-404"), "绩效指标", excel_row(4),
     "项目编号", "在「项目」表中不存在"),
    ("project-without-indicators", drop_rows("绩效指标", "P-002"), "项目", excel_row(1), "项目编号", "「绩效指标」表中没有指标"),
    ("level1-unknown", set_cell("绩效指标", 3, "一级指标", "其他指标"), "绩效指标", excel_row(3), "一级指标",
     "产出指标、效益指标、满意度指标、成本指标"),
    ("level2-not-under-level1", set_cell("绩效指标", 3, "二级指标", "社会效益指标"), "绩效指标", excel_row(3),
     "二级指标", "不属于一级指标「产出指标」"),
    ("direction-unknown", set_cell("绩效指标", 3, "指标方向", "大约"), "绩效指标", excel_row(3), "指标方向",
     "为 大约，应为 ≥、≤、=、定性"),
    ("target-empty", set_cell("绩效指标", 3, "年度指标值", None), "绩效指标", excel_row(3), "年度指标值",
     "不能为空"),
    ("quantitative-actual-text", set_cell("绩效指标", 3, "实际完成值", "完成"), "绩效指标", excel_row(3),
     "实际完成值", "定量指标应填写完成的数值"),
    ("quantitative-actual-missing", set_cell("绩效指标", 4, "实际完成值", None), "绩效指标", excel_row(4),
     "实际完成值", "不能为空"),
    ("qualitative-actual-not-grade", set_cell("绩效指标", 2, "实际完成值", "完成得很好"), "绩效指标", excel_row(2),
     "实际完成值", "应以“达成”“部分达成”或“未达成”开头"),
    ("qualitative-actual-empty", set_cell("绩效指标", 2, "实际完成值", None), "绩效指标", excel_row(2),
     "实际完成值", "不能为空"),
    ("weight-zero", set_cell("绩效指标", 3, "分值", 0), "绩效指标", excel_row(3), "分值", "应大于 0"),
    ("weight-negative", set_cell("绩效指标", 4, "分值", -30), "绩效指标", excel_row(4), "分值", "应大于 0"),
    ("weight-three-decimals", set_cell("绩效指标", 3, "分值", "59.995"), "绩效指标", excel_row(3), "分值",
     "最多保留两位小数"),
    ("weight-sum-not-90", set_cell("绩效指标", 3, "分值", 55), "绩效指标", excel_row(3), "分值",
     "指标分值合计为 85，按「财预〔2020〕10号」评分规则应为 90"),
    ("numerator-without-denominator", set_cell("绩效指标", 0, "分母", None), "绩效指标", excel_row(0), "分母",
     "与「分子」须同时填写或同时留空"),
    ("denominator-without-numerator", set_cell("绩效指标", 1, "分子", None), "绩效指标", excel_row(1), "分母",
     "与「分子」须同时填写或同时留空"),
    ("denominator-zero", set_cell("绩效指标", 0, "分母", 0), "绩效指标", excel_row(0), "分母", "应大于 0"),
    ("numerator-negative", set_cell("绩效指标", 0, "分子", -1), "绩效指标", excel_row(0), "分子", "应不小于 0"),
    ("self-score-over-weight", set_cell("绩效指标", 3, "自评得分", 70), "绩效指标", excel_row(3), "自评得分",
     "为 70，超过分值 60"),
    ("self-score-negative", set_cell("绩效指标", 3, "自评得分", -1), "绩效指标", excel_row(3), "自评得分",
     "应不小于 0"),
    ("qualitative-score-outside-band", set_cell("绩效指标", 2, "自评得分", 15), "绩效指标", excel_row(2), "自评得分",
     "完成情况为“达成”时应在分值的 80%–100% 之间"),
    ("qualitative-partial-score-too-high", set_cells("绩效指标", 2, 实际完成值="部分达成年度指标", 自评得分=24), "绩效指标",
     excel_row(2), "自评得分", "完成情况为“部分达成”时应在分值的 60%–80% 之间"),
    ("target-unit-disagrees", set_cell("绩效指标", 0, "计量单位", "个"), "绩效指标", excel_row(0), "年度指标值",
     "单位「%」与「计量单位」列的「个」不一致"),
    ("target-direction-disagrees", set_cells("绩效指标", 3, 指标方向="≤", 年度指标值="≥90"), "绩效指标",
     excel_row(3), "年度指标值", "方向「≥」与「指标方向」列的「≤」不一致"),
    ("target-text-for-quantitative", set_cell("绩效指标", 3, "年度指标值", "很多"), "绩效指标", excel_row(3),
     "年度指标值", "年度指标值应为数字"),
    ("actual-unit-disagrees", set_cell("绩效指标", 3, "实际完成值", "74人次"), "绩效指标", excel_row(3),
     "实际完成值", "单位「人次」与指标的单位「批」不一致"),
    # structure
    ("missing-sheet", drop_sheet("使用原则"), "使用原则", None, "", "缺少工作表「使用原则」"),
    ("missing-header", drop_column("绩效指标", "分值"), "绩效指标", 1, "分值", "缺少必填列「分值」"),
]


@pytest.mark.parametrize(("mutate", "sheet", "row", "column", "fragment"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
def test_each_rule_reports_an_error_where_it_is_broken(
    workbook_factory: Callable[..., Path], sheets: Sheets, mutate: Mutation, sheet: str, row: int | None,
    column: str, fragment: str,
) -> None:
    mutate(sheets)
    checked = check(workbook_factory, sheets)

    assert checked.status == "invalid", describe(checked.problems)
    assert checked.projects == ()
    matches = [p for p in find(checked.problems, sheet, row, column) if fragment in p.message]
    assert matches, f"no 错误 at {sheet}:{row}:{column} containing {fragment!r} in\n{describe(checked.problems)}"
    problem = matches[0]
    assert problem.severity == "错误"
    if row is not None and column and not fragment.startswith("缺少"):
        # Located sentences start with where the cell is, so the user can find it in Excel.
        assert problem.message.startswith(f"{sheet} 第{row}行「{column}」")


def test_the_valid_workbook_passes_without_problems(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    checked = check(workbook_factory, sheets)

    assert checked.status == "success", describe(checked.problems)
    assert checked.problems == ()
    assert [p.project_id for p in checked.projects] == ["P-001", "P-002"]
    assert checked.projects[1].implementing_unit == "如皋市信访局接待科"
    assert checked.projects[0].implementing_unit == "如皋市信访局"  # defaults to 主管部门
    assert checked.projects[0].principles == ("专款专用、限定范围。", "案结事了、稳妥有序。")


def test_problems_in_several_sheets_are_all_reported_at_once(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][0]["年度"] = 1999
    sheets["资金"][1]["资金来源"] = "自筹资金"
    sheets["使用原则"][2]["序号"] = 0
    sheets["绩效指标"][0]["分母"] = 0
    sheets["绩效指标"][3]["实际完成值"] = "完成"

    checked = check(workbook_factory, sheets)

    assert checked.status == "invalid"
    located = {(p.sheet, p.excel_row, p.column) for p in errors(checked)}
    assert {
        ("项目", excel_row(0), "年度"),
        ("资金", excel_row(1), "资金来源"),
        ("使用原则", excel_row(2), "序号"),
        ("绩效指标", excel_row(0), "分母"),
        ("绩效指标", excel_row(3), "实际完成值"),
    } <= located, describe(checked.problems)


def test_an_unknown_extra_column_is_a_warning_only(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    for row in sheets["项目"]:
        row["备注"] = "内部使用"

    checked = check(workbook_factory, sheets)

    assert checked.status == "success", describe(checked.problems)
    [warning] = checked.problems
    assert (warning.sheet, warning.excel_row, warning.column, warning.severity) == ("项目", 1, "备注", "警告")
    assert "未知的列「备注」" in warning.message
    assert len(checked.projects) == 2


def evaluation_warnings(checked: steps.CheckedWorkbook) -> list[Problem]:
    """The warnings found while computing the projects of a valid workbook."""
    assert checked.status == "success", describe(checked.problems)
    return [w for result in steps.evaluate_projects(checked.projects, DEFAULT_PROFILE) for w in result.warnings]


def test_an_unmet_indicator_without_deviation_analysis_is_a_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # 积案化解率: 12/14 = 85.7% against ≥90%, so not fully met.
    sheets["绩效指标"][0]["偏差原因分析及改进措施"] = None

    warnings = evaluation_warnings(check(workbook_factory, sheets))

    matches = find(warnings, "绩效指标", excel_row(0), "偏差原因分析及改进措施", Severity.WARNING)
    assert matches, describe(warnings)
    assert "未完全达成" in matches[0].message


def test_a_met_indicator_needs_no_deviation_analysis(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    warnings = evaluation_warnings(check(workbook_factory, sheets))

    assert not [w for w in warnings if w.column == "偏差原因分析及改进措施"], describe(warnings)


def test_a_rate_typed_differently_from_its_fraction_is_a_warning_quoting_both(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # The seed's model case: 59/61 is 96.7%, typed as 97.6%.
    checked = check(workbook_factory, sheets)
    warnings = evaluation_warnings(checked)

    [warning] = find(warnings, "绩效指标", excel_row(1), "实际完成值", Severity.WARNING)
    assert "97.6%" in warning.message and "96.7%" in warning.message
    assert "59/61" in warning.message
    result = steps.evaluate_projects(checked.projects, DEFAULT_PROFILE)[0]
    assert result.indicators[1].actual.quantize(Decimal("0.1")) == Decimal("96.7")  # the computed value is used


def test_a_rate_agreeing_with_its_fraction_gives_no_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][1]["实际完成值"] = "96.7%"

    warnings = evaluation_warnings(check(workbook_factory, sheets))

    assert not find(warnings, "绩效指标", excel_row(1), "实际完成值", Severity.WARNING), describe(warnings)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_flow_on_a_broken_workbook_writes_only_the_problem_report(
    prefect_harness: None, workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    from pipeline.run.flow import run_workbook

    sheets["资金"][0]["全年执行数(万元)"] = 120
    sheets["绩效指标"][3]["分值"] = 55
    path = workbook_factory(sheets, name="坏的工作簿.xlsx")
    before = sha256(path)
    out = tmp_path / "out"

    summary = run_workbook(path, Settings(output_dir=out))

    assert summary.status == "invalid"
    assert summary.counts.errors >= 2
    assert not list(out.rglob("*.docx"))
    [report] = list(out.rglob("校验报告.xlsx"))
    workbook = openpyxl.load_workbook(report, read_only=True)
    try:
        rows = [tuple(c for c in row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()
    assert rows[0] == PROBLEM_COLUMNS == ("工作表", "单元格", "项目编号", "指标/项目名称", "值", "级别", "说明", "怎么改")
    by_place = {(r[0], r[1], r[5]): r for r in rows[1:]}
    assert ("资金", f"E{excel_row(0)}", "错误") in by_place, rows  # 全年执行数(万元)
    assert "超过全年预算数 100" in by_place[("资金", f"E{excel_row(0)}", "错误")][6]
    assert ("绩效指标", f"I{excel_row(3)}", "错误") in by_place, rows  # 分值
    assert all(row[7] for row in rows[1:])  # every error says what to change
    assert sha256(path) == before


# --- the optional columns of the report's ending ------------------------------------------------

ENDING = {"预算执行偏差原因": "部分救助申请仍在审核中。", "存在问题": "一是审核慢。\n\n二是宣传少。",
          "改进措施": "加快审核。", "署名": "如皋市信访局（盖章）", "报告日期": "2021年3月15日"}


def test_a_workbook_without_the_ending_columns_is_valid_without_any_new_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    checked = check(workbook_factory, sheets)

    assert checked.status == "success" and not checked.problems, describe(checked.problems)
    first = checked.projects[0]
    assert (first.budget_deviation, first.problems, first.improvements) == (None, "", "")
    assert (first.signature, first.report_date) == ("如皋市信访局", None)
    # P-001 is not fully spent, but a workbook without the column is not asked for a reason.
    assert not [w for w in evaluation_warnings(checked) if w.sheet == "项目"]


def test_the_ending_columns_are_read_into_the_project(workbook_factory: Callable[..., Path], sheets: Sheets) -> None:
    for row in sheets["项目"]:
        row.update(dict.fromkeys(ENDING))
    sheets["项目"][0].update(ENDING)

    checked = check(workbook_factory, sheets)

    assert checked.status == "success" and not checked.problems, describe(checked.problems)
    first, second = checked.projects
    assert first.budget_deviation == "部分救助申请仍在审核中。"
    assert (first.problems, first.improvements) == ("一是审核慢。\n\n二是宣传少。", "加快审核。")
    assert (first.signature, first.report_date) == ("如皋市信访局（盖章）", date(2021, 3, 15))
    # Empty cells: no reason given, 署名 falls back to 实施单位, the run's date is used.
    assert (second.budget_deviation, second.signature, second.report_date) == ("", "如皋市信访局接待科", None)


def test_an_empty_deviation_reason_of_a_project_not_fully_spent_is_a_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    for row in sheets["项目"]:
        row["预算执行偏差原因"] = None

    warnings = evaluation_warnings(check(workbook_factory, sheets))

    [warning] = find(warnings, "项目", excel_row(0), "预算执行偏差原因", Severity.WARNING)
    assert warning.message == ("项目 第2行「预算执行偏差原因」为空：该项目全年预算100万元，全年执行85.62万元"
                               "（预算执行率85.62%），结余14.38万元，请说明未执行完的主要原因"
                               "（报告写入资金使用一句：“……主要原因是……”）")
    assert not find(warnings, "项目", excel_row(1), "预算执行偏差原因", Severity.WARNING)  # P-002 is fully spent


@pytest.mark.parametrize("typed", ["2021-03-15", "2021/3/15", "2021.3.15", "2021年3月15日", "2021年3月15号", "２０２１年３月１５日",
                                   "2021-03-15 00:00:00"])
def test_a_report_date_typed_as_text_is_read(
    workbook_factory: Callable[..., Path], sheets: Sheets, typed: str,
) -> None:
    sheets["项目"][0]["报告日期"] = typed
    sheets["项目"][1]["报告日期"] = None

    checked = check(workbook_factory, sheets)

    assert checked.status == "success", describe(checked.problems)
    assert checked.projects[0].report_date == date(2021, 3, 15)


@pytest.mark.parametrize("number_format", ['yyyy"年"m"月"d"日"', "yyyy/m/d", "mm-dd-yy", "yyyy-mm-dd h:mm"])
@pytest.mark.parametrize("reader", ["fast", "openpyxl"])
def test_a_report_date_in_an_excel_date_cell_is_read_by_both_readers(
    workbook_factory: Callable[..., Path], sheets: Sheets, number_format: str, reader: str,
) -> None:
    sheets["项目"][0]["报告日期"] = datetime(2021, 3, 15)
    sheets["项目"][1]["报告日期"] = datetime(2021, 1, 8, 9, 30)
    path = workbook_factory(sheets, number_formats={("项目", 0, "报告日期"): number_format,
                                                    ("项目", 1, "报告日期"): number_format})
    read = read_workbook if reader == "fast" else read_workbook_openpyxl

    valid = validate_workbook(read(path, SHEET_LAYOUTS, 10), None, DEFAULT_PROFILE)

    assert [p.report_date for p in projects_from(valid)] == [date(2021, 3, 15), date(2021, 1, 8)]


@pytest.mark.parametrize(("typed", "expected"), [
    ("2021-02-30", "为 2021-02-30，不是存在的日期（2021年没有2月30日）"),
    ("下周一", "为 下周一，不是日期"),
    ("15/3/2021", "为 15/3/2021，不是日期"),
    (44270, "为 44270，是数字而不是日期"),
    ("0001-01-01", "为 0001-01-01，年份应在 2000–2100 之间"),
], ids=["no-such-day", "words", "day-first", "serial-number", "year-out-of-range"])
def test_a_report_date_that_is_not_a_date_is_an_error_at_its_cell(
    workbook_factory: Callable[..., Path], sheets: Sheets, typed: object, expected: str,
) -> None:
    sheets["项目"][0]["报告日期"] = None
    sheets["项目"][1]["报告日期"] = typed

    checked = check(workbook_factory, sheets)

    assert checked.status == "invalid"
    [problem] = find(checked.problems, "项目", excel_row(1), "报告日期")
    assert problem.message.startswith(f"项目 第3行「报告日期」{expected}")
    assert "2021-03-15、2021/3/15、2021.3.15 或 2021年3月15日" in problem.message


@pytest.mark.parametrize(("direction", "target", "actual", "column", "typed"), [
    ("≥", -3, -10, "年度指标值", "-3"),
    ("=", -5, -4, "年度指标值", "-5"),
    ("≤", -5, -3, "年度指标值", "-5"),
    ("≥", 90, -10, "实际完成值", "-10"),
    (None, "≥-3个", 2, "年度指标值", "≥-3个"),
], ids=["at-least", "exactly", "at-most", "negative-actual", "in-the-target-cell"])
def test_a_negative_target_or_actual_is_an_error_instead_of_a_meaningless_score(
    workbook_factory: Callable[..., Path], sheets: Sheets, direction: str | None, target: object, actual: object,
    column: str, typed: str,
) -> None:
    sheets["绩效指标"][0].update({"指标方向": direction, "年度指标值": target, "实际完成值": actual, "计量单位": "个",
                                 "分子": None, "分母": None, "自评得分": None})

    checked = check(workbook_factory, sheets)

    assert checked.status == "invalid"
    [problem] = find(checked.problems, "绩效指标", excel_row(0), column)
    assert problem.message == (f"绩效指标 第2行「{column}」为 {typed}，不能为负数：完成率按实际完成值与指标值之比计算，"
                               "负数没有意义；“降低”类指标请写成 ≤ 和正数（例如 投诉率 ≤5%）")
