"""The rule gaps found in real tables (issue 13): units only from known unit words or the row's own
计量单位, the hint of a %-formatted cell in a number column quoting what the cell shows and holds,
one error per formula cell without a saved result, and a result cell carrying its own fraction
("96.7%（59/61）"). Each is read from a real .xlsx written by the test, with its exact message."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.contract.schemas import SHEET_LAYOUTS
from pipeline.contract.validate import validate_workbook
from pipeline.core.context import actual_text
from pipeline.core.indicators import evaluate
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.errors import Problem, Severity, ValidationFailed
from pipeline.xlsx.fallback import read_workbook_openpyxl
from pipeline.xlsx.layout import RawWorkbook
from pipeline.xlsx.reader import read_workbook
from tests.test_validate import Sheets, check, describe, errors, excel_row, find
from tests.test_vocabulary import RATE_ROW, checked_projects, rate_indicator, typed_rate

SCORED_ROW = 0  # P-001 积案化解率: ≥90%, 12/14, 分值 15
COUNT_ROW = 3  # P-002 接待群众批次: ≥ 50 批, 分值 60
QUALITATIVE_ROW = 2  # P-001 群众满意度: 定性, 分值 30
NOT_A_UNIT_ADVICE = "其他单位请同时填在「计量单位」列，说明文字请写在「偏差原因分析及改进措施」列"
FORMULA_HINT = "：该单元格是没有计算结果的公式，请用 Excel 打开该文件、保存后再提交。"


def only_problem_at(workbook_factory: Callable[..., Path], sheets: Sheets, sheet: str, row: int, column: str,
                    **options: object) -> Problem:
    """The one problem of any severity at a cell, asserting there is exactly one."""
    problems = check(workbook_factory, sheets, **options).problems
    found = [p for p in problems if (p.sheet, p.excel_row, p.column) == (sheet, row, column)]
    assert len(found) == 1, describe(problems)
    return found[0]


# --- units only from known unit words ---------------------------------------------------------

@pytest.mark.parametrize(("target", "unit"), [("≥95%左右", "%左右"), ("≥95（预计）", "(预计)"),
                                              ("≥95%以上（含）", "%以上(含)"), ("≥50个单位", "个单位")])
def test_text_after_a_target_number_that_is_no_unit_word_is_an_error_quoting_it(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str, unit: str,
) -> None:
    typed_rate(sheets, target)
    sheets["绩效指标"][RATE_ROW]["计量单位"] = None

    problem = only_problem_at(workbook_factory, sheets, "绩效指标", excel_row(RATE_ROW), "年度指标值")

    assert problem.severity is Severity.ERROR
    assert problem.message == (f"绩效指标 第3行「年度指标值」为 {target}，「{unit}」不是计量单位：请只填数字和单位，"
                               f"如 ≥95%、≥50个；{NOT_A_UNIT_ADVICE}")


def test_text_after_an_actual_number_that_is_no_unit_word_is_an_error_quoting_it(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    typed_rate(sheets, "≥90%", actual="96%左右")

    problem = only_problem_at(workbook_factory, sheets, "绩效指标", excel_row(RATE_ROW), "实际完成值")

    assert problem.message == ("绩效指标 第3行「实际完成值」为 96%左右，「%左右」不是计量单位：请只填数字和单位，"
                               f"如 96%、50个；{NOT_A_UNIT_ADVICE}")


@pytest.mark.parametrize("unit", ["个", "人次", "万人次", "户", "天", "小时", "万元", "亿元", "项", "公里", "平方米",
                                  "亩", "吨", "篇", "课时", "个百分点", "百分比"])
def test_known_unit_words_are_read_as_units_without_the_unit_column(
    workbook_factory: Callable[..., Path], sheets: Sheets, unit: str,
) -> None:
    sheets["绩效指标"][COUNT_ROW].update({"指标方向": None, "年度指标值": f"≥50{unit}", "实际完成值": f"74{unit}",
                                       "计量单位": None})

    projects = checked_projects(workbook_factory, sheets)

    indicator = projects[1].indicators[0]
    assert (indicator.direction, indicator.target, indicator.actual) == ("≥", Decimal(50), Decimal(74))
    assert indicator.unit == ("%" if unit == "百分比" else unit)


def test_an_offices_own_unit_typed_in_the_unit_column_is_accepted_as_typed(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][COUNT_ROW].update({"指标方向": None, "年度指标值": "≥50人/天", "实际完成值": "74人/天",
                                       "计量单位": "人/天"})

    projects = checked_projects(workbook_factory, sheets)

    indicator = projects[1].indicators[0]
    assert (indicator.target, indicator.unit, indicator.actual) == (Decimal(50), "人/天", Decimal(74))
    assert actual_text(evaluate(projects[1], DEFAULT_PROFILE).indicators[0]) == "74人/天"


def test_an_offices_own_unit_not_in_the_unit_column_is_refused(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][COUNT_ROW].update({"指标方向": None, "年度指标值": "≥50人/天", "实际完成值": 74,
                                       "计量单位": None})

    problem = only_problem_at(workbook_factory, sheets, "绩效指标", excel_row(COUNT_ROW), "年度指标值")

    assert problem.message == ("绩效指标 第5行「年度指标值」为 ≥50人/天，「人/天」不是计量单位：请只填数字和单位，"
                               f"如 ≥95%、≥50个；{NOT_A_UNIT_ADVICE}")


def test_a_qualitative_target_starting_with_a_number_needs_no_unit(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][QUALITATIVE_ROW]["年度指标值"] = "2020年底前完成"

    projects = checked_projects(workbook_factory, sheets)

    assert projects[0].indicators[QUALITATIVE_ROW].direction == "定性"


# --- a %-formatted cell in a number column ----------------------------------------------------

@pytest.mark.parametrize("read", [read_workbook, read_workbook_openpyxl], ids=["fast-reader", "openpyxl-reader"])
@pytest.mark.parametrize(("held", "number_format", "shows", "held_text"), [
    (1, "0%", "100%", "1"), (100, "0%", "10000%", "100"), (0.8562, "0.00%", "85.62%", "0.8562")])
def test_a_percent_formatted_amount_is_refused_saying_what_the_cell_shows_and_holds(
    workbook_factory: Callable[..., Path], sheets: Sheets, read: Callable[..., RawWorkbook], held: object,
    number_format: str, shows: str, held_text: str,
) -> None:
    # 100 typed into a %-formatted cell is stored as 1 and shown as 100%; a cell formatted as %
    # after 100 was typed holds 100 and shows 10000%. The hint no longer offers either as the amount.
    sheets["资金"][0]["全年预算数(万元)"] = held
    path = workbook_factory(sheets, number_formats={("资金", 0, "全年预算数(万元)"): number_format})

    with pytest.raises(ValidationFailed) as refused:
        validate_workbook(read(path, SHEET_LAYOUTS, 10), None, DEFAULT_PROFILE)

    [problem] = find(refused.value.problems, "资金", excel_row(0), "全年预算数(万元)")
    assert problem.message == (f"资金 第2行「全年预算数(万元)」的单元格设置为百分比格式，显示为 {shows}（实际值 {held_text}）；"
                               f"金额列请把单元格格式改为「常规」或「数值」（改后显示 {held_text}），再核对并填写以万元计的金额")
    assert problem.value == shows


def test_a_percent_formatted_cell_in_another_number_column_asks_for_a_number(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][COUNT_ROW]["分值"] = 0.6

    problem = only_problem_at(workbook_factory, sheets, "绩效指标", excel_row(COUNT_ROW), "分值",
                              number_formats={("绩效指标", COUNT_ROW, "分值"): "0%"})

    assert problem.message == ("绩效指标 第5行「分值」的单元格设置为百分比格式，显示为 60%（实际值 0.6）；"
                               "此列请把单元格格式改为「常规」或「数值」（改后显示 0.6），再核对并填写数字")


def test_a_percentage_typed_as_text_in_an_amount_column_keeps_the_unit_hint(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["资金"][0]["全年预算数(万元)"] = "100%"

    problem = only_problem_at(workbook_factory, sheets, "资金", excel_row(0), "全年预算数(万元)")

    assert problem.message == "资金 第2行「全年预算数(万元)」带有单位「%」，请只填数字，例如 100（单位见列名）"


def test_a_percent_formatted_actual_still_means_a_percentage(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    typed_rate(sheets, "≥90%", actual=0.96)

    checked = check(workbook_factory, sheets, number_formats={("绩效指标", RATE_ROW, "实际完成值"): "0%"})

    assert checked.status == "success", describe(checked.problems)
    indicator = rate_indicator(checked.projects)
    assert (indicator.actual, indicator.actual_text, type(indicator.actual_text)) == (Decimal(96), "96%", str)


# --- one error per formula cell ---------------------------------------------------------------

@pytest.mark.parametrize(("sheet", "index", "column", "row_text"), [
    ("项目", 0, "项目名称", "第2行"),
    ("绩效指标", COUNT_ROW, "年度指标值", "第5行"),
    ("绩效指标", COUNT_ROW, "实际完成值", "第5行"),
    ("绩效指标", QUALITATIVE_ROW, "实际完成值", "第4行"),
    ("资金", 1, "全年预算数(万元)", "第3行"),
], ids=["required-text", "target", "quantitative-actual", "qualitative-actual", "required-number"])
def test_a_formula_without_a_saved_result_gets_only_the_formula_error(
    workbook_factory: Callable[..., Path], sheets: Sheets, sheet: str, index: int, column: str, row_text: str,
) -> None:
    # openpyxl writes a formula without a cached value, as tools that never calculate do.
    sheets[sheet][index][column] = "=1+1"

    problem = only_problem_at(workbook_factory, sheets, sheet, excel_row(index), column)

    assert problem.message == f"{sheet} {row_text}「{column}」{FORMULA_HINT}"
    assert problem.severity is Severity.ERROR


@pytest.mark.parametrize(("numerator", "message"), [
    ("=12", f"绩效指标 第2行「分子」{FORMULA_HINT}"),
    ("十二", "绩效指标 第2行「分子」不是数字，请填写数字"),
], ids=["formula", "not-a-number"])
def test_a_numerator_already_reported_does_not_also_make_its_denominator_an_error(
    workbook_factory: Callable[..., Path], sheets: Sheets, numerator: str, message: str,
) -> None:
    sheets["绩效指标"][SCORED_ROW]["分子"] = numerator

    checked = check(workbook_factory, sheets)

    assert [p.message for p in find(checked.problems, "绩效指标", excel_row(SCORED_ROW), "分子")] == [message]
    assert not find(checked.problems, "绩效指标", excel_row(SCORED_ROW), "分母"), describe(checked.problems)


def test_an_empty_cell_beside_a_formula_cell_is_still_reported(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][0].update({"项目名称": "=A1", "主管部门": None})

    checked = check(workbook_factory, sheets)

    [formula] = find(checked.problems, "项目", excel_row(0), "项目名称")
    [empty] = find(checked.problems, "项目", excel_row(0), "主管部门")
    assert (formula.message, empty.message) == (f"项目 第2行「项目名称」{FORMULA_HINT}", "项目 第2行「主管部门」不能为空")


# --- a result cell that carries its own fraction ----------------------------------------------

def fraction_in_cell(sheets: Sheets, actual: str, numerator: object = None, denominator: object = None) -> None:
    """The rate row (≥90%, 分值 45) with its result typed together with a fraction."""
    sheets["绩效指标"][RATE_ROW].update({"实际完成值": actual, "分子": numerator, "分母": denominator})


@pytest.mark.parametrize("actual", ["96.7%(59/61)", "96.7%（59/61）", "96.7% （59/61）", "96.7%( 59 / 61 )",
                                    "96.7%（５９／６１）"])
def test_a_fraction_in_brackets_after_the_result_gives_numerator_and_denominator(
    workbook_factory: Callable[..., Path], sheets: Sheets, actual: str,
) -> None:
    fraction_in_cell(sheets, actual)

    checked = check(workbook_factory, sheets)

    assert not errors(checked), describe(checked.problems)
    indicator = rate_indicator(checked.projects)
    assert (indicator.numerator, indicator.denominator, indicator.actual) == (Decimal(59), Decimal(61), Decimal("96.7"))
    result = evaluate(checked.projects[0], DEFAULT_PROFILE)
    assert result.indicators[RATE_ROW].from_fraction
    assert result.indicators[RATE_ROW].actual == Decimal(59) / Decimal(61) * 100
    assert actual_text(result.indicators[RATE_ROW]) == "96.7%"
    assert not find(list(result.warnings), "绩效指标", excel_row(RATE_ROW), "实际完成值", Severity.WARNING)


def test_a_rate_typed_differently_from_the_fraction_in_its_cell_is_the_same_warning_as_with_the_columns(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    fraction_in_cell(sheets, "97.6%（59/61）")

    result = evaluate(checked_projects(workbook_factory, sheets)[0], DEFAULT_PROFILE)

    [warning] = find(list(result.warnings), "绩效指标", excel_row(RATE_ROW), "实际完成值", Severity.WARNING)
    assert warning.message == ("绩效指标 第3行「实际完成值」填写为 97.6%（59/61），但按分子/分母 59/61 计算为 96.7%："
                               "自评表采用计算值 96.7% 并据此评分，请核对此格或分子、分母")


def test_the_fraction_columns_agreeing_with_the_cells_fraction_are_accepted(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    fraction_in_cell(sheets, "96.7%（59/61）", 59, "61.0")

    indicator = rate_indicator(checked_projects(workbook_factory, sheets))

    assert (indicator.numerator, indicator.denominator) == (Decimal(59), Decimal(61))


def test_the_fraction_columns_contradicting_the_cells_fraction_are_an_error_quoting_both(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # Both P-001 rate rows alike but for 分子, so that a row parsed once is not taken for the other.
    for index, numerator in ((SCORED_ROW, 59), (RATE_ROW, 58)):
        sheets["绩效指标"][index].update({"指标方向": None, "年度指标值": "≥90%", "计量单位": "%", "分值": 30,
                                        "实际完成值": "96.7%（59/61）", "分子": numerator, "分母": 61})

    checked = check(workbook_factory, sheets)

    assert not find(checked.problems, "绩效指标", excel_row(SCORED_ROW), "实际完成值"), describe(checked.problems)
    [problem] = find(checked.problems, "绩效指标", excel_row(RATE_ROW), "实际完成值")
    assert problem.message == ("绩效指标 第3行「实际完成值」为 96.7%（59/61），括号中的 59/61 与「分子」「分母」列的 58/61 "
                               "不一致：请改成一致，或只在一处填写")


def test_a_fraction_with_a_zero_denominator_in_the_cell_is_an_error(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    fraction_in_cell(sheets, "85.7%（12/0）")

    problem = only_problem_at(workbook_factory, sheets, "绩效指标", excel_row(RATE_ROW), "实际完成值")

    assert problem.message == ("绩效指标 第3行「实际完成值」为 85.7%（12/0），括号中分数 12/0 的分母为 0，无法计算完成值："
                               "请填写实际的分子和分母，例如 96.7%（59/61）")
