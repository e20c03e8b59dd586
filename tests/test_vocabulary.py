"""The vocabulary of real tables (spec: "Vocabulary seen in real tables"): directions in signs and
words, other names of 二级指标 and 资金来源, 定性 results as offices word them, and a rate typed
as a fraction. Each is read from a real .xlsx written by the test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.contract.schemas import SHEET_LAYOUTS, TYPED_OPERATOR, TYPED_SUFFIX
from pipeline.contract.validate import validate_workbook
from pipeline.core.context import actual_text, in_form_order, report_context, target_text
from pipeline.core.forms import funding_source, level_rank
from pipeline.core.indicators import evaluate
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.core.records import Indicator, Project
from pipeline.errors import Severity
from pipeline.xlsx.reader import read_workbook
from tests.test_validate import Sheets, check, describe, errors, excel_row, find

RATE_ROW = 1  # P-001 重点人员化解率: ≥90%, 97.6% from 59/61, 分值 45
COST_ROW = 4  # P-002 项目支出: ≤ 5 万元, 分值 30
QUALITATIVE_ROW = 2  # P-001 群众满意度: 定性, 分值 30


def typed_rate(sheets: Sheets, target: object, actual: object = "96%", direction: object = None) -> None:
    """The rate row with a typed target and actual and no fraction, so the typed actual counts."""
    sheets["绩效指标"][RATE_ROW].update({"年度指标值": target, "实际完成值": actual, "指标方向": direction,
                                       "分子": None, "分母": None})


def checked_projects(workbook_factory: Callable[..., Path], sheets: Sheets) -> tuple[Project, ...]:
    """The projects of a workbook that must pass without errors."""
    checked = check(workbook_factory, sheets)
    assert not errors(checked), describe(checked.problems)
    return checked.projects


def rate_indicator(projects: tuple[Project, ...]) -> Indicator:
    """The rate row's indicator as read."""
    return projects[0].indicators[RATE_ROW]


@pytest.mark.parametrize("target", ["≧95%", "不低于95%", "不少于95%", "大于等于95%", "达到95%", "95%以上", "≥95%以上",
                                    "≥ 95 % 以上", "不低于９５％"])
def test_a_target_at_least_in_signs_or_words_is_quantitative_and_met_by_a_higher_actual(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str,
) -> None:
    typed_rate(sheets, target)

    projects = checked_projects(workbook_factory, sheets)

    ind = rate_indicator(projects)
    assert (ind.direction, ind.target, ind.unit, ind.actual) == ("≥", Decimal(95), "%", Decimal(96))
    result = evaluate(projects[0], DEFAULT_PROFILE).indicators[RATE_ROW]
    assert result.score == Decimal(45)


@pytest.mark.parametrize("target", ["≦5", "不高于5", "不超过5", "小于等于5", "控制在5以内", "5以下", "5以内", "5万元以内"])
def test_a_target_at_most_in_signs_or_words_is_read_as_at_most(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str,
) -> None:
    sheets["绩效指标"][COST_ROW].update({"年度指标值": target, "指标方向": None, "实际完成值": 6})

    projects = checked_projects(workbook_factory, sheets)

    ind = projects[1].indicators[1]
    assert (ind.direction, ind.target, ind.unit) == ("≤", Decimal(5), "万元")
    # 6 against ≤ 5: 5/6 of the 分值 30.
    assert evaluate(projects[1], DEFAULT_PROFILE).indicators[1].score == Decimal("25.00")


@pytest.mark.parametrize(("direction", "read"), [("≧", "≥"), ("不低于", "≥"), ("以上", "≥"), ("≦", "≤"),
                                                 ("不超过", "≤"), ("以下", "≤"), ("以内", "≤")])
def test_the_direction_column_accepts_the_same_signs_and_words(
    workbook_factory: Callable[..., Path], sheets: Sheets, direction: str, read: str,
) -> None:
    typed_rate(sheets, "95%", direction=direction)

    ind = rate_indicator(checked_projects(workbook_factory, sheets))

    assert (ind.direction, ind.target) == (read, Decimal(95))


def test_greater_or_equal_in_words_with_a_higher_actual_is_no_longer_an_error_on_the_actual(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # The bug: the target silently became 定性 and the actual was told to start with 达成.
    typed_rate(sheets, "不低于95%")

    checked = check(workbook_factory, sheets)

    assert not find(checked.problems, "绩效指标", excel_row(RATE_ROW), "实际完成值"), describe(checked.problems)


def test_a_direction_word_after_the_number_does_not_become_the_unit_of_the_actual(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    typed_rate(sheets, "≥95%以上", actual=96)
    sheets["绩效指标"][RATE_ROW]["计量单位"] = None

    projects = checked_projects(workbook_factory, sheets)

    result = evaluate(projects[0], DEFAULT_PROFILE).indicators[RATE_ROW]
    assert result.indicator.unit == "%"
    assert actual_text(result) == "96%"


@pytest.mark.parametrize("target", ["不低于95%", "≧95%", "大于等于95%", "达到95%"])
def test_a_target_typed_with_a_word_or_sign_before_the_number_is_printed_as_typed(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str,
) -> None:
    typed_rate(sheets, target)

    result = evaluate(checked_projects(workbook_factory, sheets)[0], DEFAULT_PROFILE).indicators[RATE_ROW]

    assert target_text(result) == target


@pytest.mark.parametrize(("target", "direction", "operator", "suffix"), [
    ("95%以上", None, "", "以上"),
    ("≥95%以上", None, "≥", "以上"),
    ("控制在5%以内", None, "控制在", "以内"),
    ("95%", "以上", "", "以上"),
    ("95%", "不低于", "不低于", ""),
    ("≥95%", "以上", "≥", ""),  # the cell's own words are printed, not the column's
])
def test_the_words_around_the_number_are_kept_as_typed_for_the_report(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str, direction: str | None, operator: str,
    suffix: str,
) -> None:
    typed_rate(sheets, target, actual="4%" if "控制在" in target else "96%", direction=direction)
    path = workbook_factory(sheets)

    valid = validate_workbook(read_workbook(path, SHEET_LAYOUTS, 10), None, DEFAULT_PROFILE)

    row = valid.indicators.loc[excel_row(RATE_ROW)]
    assert (row[TYPED_OPERATOR], row[TYPED_SUFFIX]) == (operator, suffix)


def test_words_before_and_after_the_number_pointing_opposite_ways_are_an_error(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    typed_rate(sheets, "≤95%以上")

    [problem] = find(check(workbook_factory, sheets).problems, "绩效指标", excel_row(RATE_ROW), "年度指标值")

    assert problem.message == "绩效指标 第3行「年度指标值」为 ≤95%以上，「≤」与「以上」方向相反，请只写一个方向"


def test_an_actual_with_a_direction_word_is_not_a_completed_value(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    typed_rate(sheets, "≥95%", actual="96%以上")

    [problem] = find(check(workbook_factory, sheets).problems, "绩效指标", excel_row(RATE_ROW), "实际完成值")

    assert problem.message == ("绩效指标 第3行「实际完成值」为 96%以上，定量指标应填写完成的数值（例如 96.7% 或 50），"
                               "不能只填文字")


@pytest.mark.parametrize(("level1", "level2", "place"), [
    ("产出指标", "进度指标", 2),
    ("满意度指标", "满意度指标", 0),
    ("产出指标", "经济成本指标", 3),
    ("产出指标", "社会成本指标", 3),
    ("产出指标", "生态环境成本指标", 3),
    ("成本指标", "经济成本指标", 0),
])
def test_level2_names_of_real_tables_are_accepted_shown_as_typed_and_placed_as_the_forms(
    workbook_factory: Callable[..., Path], sheets: Sheets, level1: str, level2: str, place: int,
) -> None:
    sheets["绩效指标"][COST_ROW].update({"一级指标": level1, "二级指标": level2})

    projects = checked_projects(workbook_factory, sheets)

    result = evaluate(projects[1], DEFAULT_PROFILE)
    moved = next(r for r in result.indicators if r.indicator.name == "项目支出")
    assert moved.indicator.level2 == level2
    assert level_rank(level1, level2)[1] == place


def test_the_report_orders_level2_names_of_real_tables_as_the_forms_own(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    # 经济成本指标 under 产出指标 takes the place of 成本指标, after 进度指标 (时效指标).
    sheets["绩效指标"][3].update({"一级指标": "产出指标", "二级指标": "经济成本指标"})
    sheets["绩效指标"][COST_ROW].update({"一级指标": "产出指标", "二级指标": "进度指标"})

    result = evaluate(checked_projects(workbook_factory, sheets)[1], DEFAULT_PROFILE)

    assert [r.indicator.name for r in in_form_order(result.indicators)] == ["项目支出", "接待群众批次"]


def test_a_level2_name_under_the_wrong_level1_is_still_refused(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][COST_ROW].update({"一级指标": "效益指标", "二级指标": "进度指标"})

    [problem] = find(check(workbook_factory, sheets).problems, "绩效指标", excel_row(COST_ROW), "二级指标")

    assert problem.message == ("绩效指标 第6行「二级指标」为 进度指标，不属于一级指标「效益指标」，"
                               "应为：经济效益指标、社会效益指标、生态效益指标、可持续影响指标")


@pytest.mark.parametrize(("typed", "source"), [
    ("当年财政拨款", "财政拨款"), ("本年财政拨款", "财政拨款"), ("财政资金", "财政拨款"),
    ("上年结转资金", "上年结转"), ("单位资金", "其他资金"), ("财政专户管理资金", "其他资金"),
])
def test_funding_sources_of_real_tables_are_accepted_and_shown_as_typed(
    workbook_factory: Callable[..., Path], sheets: Sheets, typed: str, source: str,
) -> None:
    sheets["资金"][0]["资金来源"] = typed

    projects = checked_projects(workbook_factory, sheets)

    assert projects[0].funding[0].source == typed
    assert funding_source(typed) == source


def test_an_unknown_funding_source_lists_the_forms_names_first(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["资金"][0]["资金来源"] = "自筹资金"

    [problem] = find(check(workbook_factory, sheets).problems, "资金", excel_row(0), "资金来源")

    assert problem.message == ("资金 第2行「资金来源」为 自筹资金，应为以下之一：财政拨款、上年结转、其他资金、"
                               "当年财政拨款、本年财政拨款、财政资金、上年结转资金、单位资金、财政专户管理资金")


@pytest.mark.parametrize(("typed", "grade", "points"), [
    ("达到预期", "达成", Decimal(30)), ("达到年度指标", "达成", Decimal(30)), ("完成年度目标", "达成", Decimal(30)),
    ("基本达成", "部分达成", Decimal(21)), ("基本达到预期", "部分达成", Decimal(21)),
    ("达成预期指标", "达成", Decimal(30)),
])
def test_qualitative_results_as_offices_word_them_are_read_as_grades(
    workbook_factory: Callable[..., Path], sheets: Sheets, typed: str, grade: str, points: Decimal,
) -> None:
    sheets["绩效指标"][QUALITATIVE_ROW]["实际完成值"] = typed

    projects = checked_projects(workbook_factory, sheets)

    assert projects[0].indicators[QUALITATIVE_ROW].grade == grade
    assert evaluate(projects[0], DEFAULT_PROFILE).indicators[QUALITATIVE_ROW].score == points


def test_any_other_qualitative_result_is_an_error_listing_the_accepted_words(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["绩效指标"][QUALITATIVE_ROW]["实际完成值"] = "完成得很好"

    [problem] = find(check(workbook_factory, sheets).problems, "绩效指标", excel_row(QUALITATIVE_ROW), "实际完成值")

    assert problem.message == ("绩效指标 第4行「实际完成值」为 完成得很好，定性指标的完成值应以“达成”“部分达成”或“未达成”开头"
                               "（也可写 达到预期、达到年度指标、完成年度目标、基本达成、基本达到预期）")


def test_a_rate_typed_as_a_fraction_against_a_percent_target_is_a_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    typed_rate(sheets, "≥90%", actual=Decimal("0.96"))

    result = evaluate(checked_projects(workbook_factory, sheets)[0], DEFAULT_PROFILE)

    [warning] = find(list(result.warnings), "绩效指标", excel_row(RATE_ROW), "实际完成值", Severity.WARNING)
    assert warning.message == ("绩效指标 第3行「实际完成值」填写为 0.96，单位为 %，而指标值为 90%：是否应为 96%？"
                               "自评表按 0.96% 评分，如完成率是 96% 请改填 96%")


@pytest.mark.parametrize(("target", "actual"), [("≥90%", Decimal(96)), ("≥1%", Decimal("0.5")), ("≥0.5%", Decimal("0.6"))])
def test_a_rate_typed_in_percent_or_against_a_small_target_gives_no_such_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str, actual: Decimal,
) -> None:
    typed_rate(sheets, target, actual=actual)

    result = evaluate(checked_projects(workbook_factory, sheets)[0], DEFAULT_PROFILE)

    assert not find(list(result.warnings), "绩效指标", excel_row(RATE_ROW), "实际完成值", Severity.WARNING)


@pytest.mark.parametrize("target", ["95%以上", "≥95%以上", "控制在5%以内"])
def test_a_target_with_words_after_the_number_is_printed_as_typed(
    workbook_factory: Callable[..., Path], sheets: Sheets, target: str,
) -> None:
    typed_rate(sheets, target, actual="4%" if "控制在" in target else "96%")

    result = evaluate(checked_projects(workbook_factory, sheets)[0], DEFAULT_PROFILE).indicators[RATE_ROW]

    assert target_text(result) == target


def test_funding_named_as_real_tables_name_it_adds_up_in_the_forms_source_rows(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    p001 = next(row for row in sheets["资金"] if row["项目编号"] == "P-001")
    p001.update({"资金来源": "本年财政拨款", "年初预算数(万元)": 60, "全年预算数(万元)": 60, "全年执行数(万元)": 50})
    sheets["资金"].append({"项目编号": "P-001", "资金来源": "财政资金", "年初预算数(万元)": 40,
                          "全年预算数(万元)": 40, "全年执行数(万元)": 35.62})

    project = checked_projects(workbook_factory, sheets)[0]
    context = report_context(evaluate(project, DEFAULT_PROFILE), date(2021, 3, 15))

    assert [f["source"] for f in context["funding"]] == ["本年财政拨款", "财政资金"]  # type: ignore[attr-defined]
    assert context["sources"][0] == {"label": "财政拨款", "initial": "100.00", "adjusted": "100.00",  # type: ignore[index]
                                     "spent": "85.62"}
