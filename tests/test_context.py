"""The template context: formatted text only, honest money sentences, exactly the field table."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.core.context import (
    CONTEXT_KEYS,
    CONTEXT_VARIABLES,
    DICT_FIELDS,
    ITEM_FIELDS,
    ContextVariable,
    Shape,
    money_sentence,
    paragraphs,
    report_context,
)
from pipeline.core.indicators import evaluate
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.core.records import Funding, Indicator, Project
from pipeline.run import steps
from tests.test_indicators import indicator, project

TEMPLATES_README = (Path(__file__).resolve().parent.parent / "templates" / "README.md").read_text(encoding="utf-8")
RUN_DATE = date(2021, 3, 5)
# A context in which every list has items, so each item's fields can be compared with the table.
FULL_CONTEXT = report_context(evaluate(dataclasses.replace(
    project((indicator(weight=D(90)),)), overview="概况一\n\n概况二", performance="绩效", principles=("专款专用",),
    problems="问题一", improvements="措施一"), DEFAULT_PROFILE), RUN_DATE)


def context_of(subject: Project, run_date: date = RUN_DATE) -> dict[str, object]:
    """The report context of a project, evaluated with the national profile."""
    return report_context(evaluate(subject, DEFAULT_PROFILE), run_date)


def test_fully_spent_budget_reads_like_the_seed() -> None:
    result = evaluate(project((indicator(weight=D(90)),), budget=D(5), spent=D(5)), DEFAULT_PROFILE)
    assert money_sentence(result) == "2020年度信访救助专项资金5万元使用完毕。"


def test_partly_spent_budget_names_the_project_and_its_balance() -> None:
    result = evaluate(project((indicator(weight=D(90)),)), DEFAULT_PROFILE)
    assert money_sentence(result) == ("2020年度，信访救助专项资金全年预算100万元，实际支出85.62万元，"
                                      "预算执行率85.62%，结余14.38万元。")


@pytest.mark.parametrize("reason", ["部分救助对象未能在年内完成审核。", "部分救助对象未能在年内完成审核",
                                    "主要原因是部分救助对象未能在年内完成审核。"])
def test_the_deviation_reason_closes_the_money_sentence_with_one_full_stop(reason: str) -> None:
    subject = dataclasses.replace(project((indicator(weight=D(90)),)), budget_deviation=reason)
    context = context_of(subject)
    assert context["money_sentence"] == ("2020年度，信访救助专项资金全年预算100万元，实际支出85.62万元，"
                                         "预算执行率85.62%，结余14.38万元，主要原因是部分救助对象未能在年内完成审核。")
    assert context["budget_deviation"] == reason


def test_a_fully_spent_project_has_a_zero_balance() -> None:
    context = context_of(project((indicator(weight=D(90)),), budget=D(5), spent=D(5)))
    assert context["budget"]["balance"] == "0.00"  # type: ignore[index]
    assert FULL_CONTEXT["budget"]["balance"] == "14.38"  # type: ignore[index]


@pytest.mark.parametrize(("goal", "sentence"), [
    ("", ""),
    ("化解信访积案", "该项目年度总体目标是：化解信访积案。"),
    ("化解信访积案。", "该项目年度总体目标是：化解信访积案。"),
    ("救助困难群众；\n化解信访积案。\n", "该项目年度总体目标是：救助困难群众；化解信访积案。"),
])
def test_the_annual_goal_is_folded_into_one_sentence(goal: str, sentence: str) -> None:
    context = context_of(dataclasses.replace(project((indicator(weight=D(90)),)), annual_goal=goal))
    assert context["goal_sentence"] == sentence
    assert context["annual_goal"] == goal


def test_the_conclusion_states_score_and_grade() -> None:
    context = context_of(project((indicator(weight=D(90)),)))
    assert context["conclusion"] == "经自评，该项目得分98.56分，评价等级为优。"


def test_problems_and_improvements_are_paragraphs_and_empty_without_text() -> None:
    subject = dataclasses.replace(project((indicator(weight=D(90)),)), problems="一是审核慢。\n\n二是宣传少。",
                                  improvements="加快审核。")
    context = context_of(subject)
    assert context["problems"] == ["一是审核慢。", "二是宣传少。"]
    assert context["improvements"] == ["加快审核。"]
    bare = context_of(project((indicator(weight=D(90)),)))
    assert bare["problems"] == [] and bare["improvements"] == []


def test_the_signature_defaults_to_the_implementing_unit() -> None:
    subject = project((indicator(weight=D(90)),))
    assert context_of(subject)["signature"] == "信访局"
    assert context_of(dataclasses.replace(subject, signature="如皋市信访局（盖章）"))["signature"] == "如皋市信访局（盖章）"


def test_the_report_date_is_the_projects_own_else_the_run_date() -> None:
    subject = project((indicator(weight=D(90)),))
    context = context_of(subject, date(2021, 3, 15))
    assert (context["report_date"], context["report_date_iso"]) == ("2021年3月15日", "2021-03-15")
    pinned = context_of(dataclasses.replace(subject, report_date=date(2021, 1, 8)), date(2021, 3, 15))
    assert (pinned["report_date"], pinned["report_date_iso"]) == ("2021年1月8日", "2021-01-08")


def test_sources_are_the_forms_three_rows_summed_per_source() -> None:
    subject = dataclasses.replace(project((indicator(weight=D(90)),)), funding=(
        Funding("上年结转", D(10), D(15), D("5.5")), Funding("财政拨款", D(80), D(85), D("80.12")),
        Funding("上年结转", D(2), D(0), D(0))))
    assert context_of(subject)["sources"] == [
        {"label": "财政拨款", "initial": "80.00", "adjusted": "85.00", "spent": "80.12"},
        {"label": "上年结转", "initial": "12.00", "adjusted": "15.00", "spent": "5.50"},
        {"label": "其他资金", "initial": "", "adjusted": "", "spent": ""},
    ]


def test_blank_lines_separate_paragraphs() -> None:
    assert paragraphs("第一段。\n\n第二段。\r\n") == ["第一段。", "第二段。"]


def test_context_has_exactly_the_documented_keys_and_only_text() -> None:
    context = context_of(project((indicator(weight=D(90)),)))
    assert set(context) == CONTEXT_KEYS
    assert context["budget"] == {"initial": "100.00", "adjusted": "100.00", "spent": "85.62", "rate": "85.62%",
                                 "weight": "10", "score": "8.56", "balance": "14.38",
                                 "adjusted_text": "100", "spent_text": "85.62"}
    [row] = context["indicators"]
    assert (row["target"], row["actual"], row["weight"], row["score"]) == ("≥90%", "95%", "90", "90.00")
    assert context["weight_total"] == "100"


def test_rate_from_fraction_is_shown_with_one_decimal() -> None:
    ind = indicator(numerator=D(59), denominator=D(61), actual=None, weight=D(90), deviation="x")
    [row] = context_of(project((ind,)))["indicators"]  # type: ignore[misc]
    assert (row["actual"], row["fraction"]) == ("96.7%", "59/61")


def test_an_indicator_without_numerator_and_denominator_has_no_fraction() -> None:
    [row] = context_of(project((indicator(weight=D(90)),)))["indicators"]  # type: ignore[misc]
    assert row["fraction"] == ""


def test_indicators_follow_the_forms_order_and_keep_the_workbooks_order_within_a_group() -> None:
    def ind(level1: str, level2: str, name: str) -> Indicator:
        return indicator(level1=level1, level2=level2, name=name, weight=D(10))

    rows = [ind("满意度指标", "服务对象满意度指标", "满意度"), ind("效益指标", "社会效益指标", "化解率"),
            ind("产出指标", "时效指标", "及时率"), ind("成本指标", "经济成本指标", "支出"),
            ind("产出指标", "数量指标", "件数甲"), ind("效益指标", "经济效益指标", "效益"),
            ind("产出指标", "数量指标", "件数乙"), ind("效益指标", "社会效益指标", "覆盖率"),
            ind("产出指标", "成本指标", "产出成本")]
    context = context_of(project(tuple(rows)))
    names = [row["name"] for row in context["indicators"]]  # type: ignore[attr-defined]
    assert names == ["件数甲", "件数乙", "及时率", "产出成本", "效益", "化解率", "覆盖率", "满意度", "支出"]


@pytest.mark.parametrize(("changes", "shown"), [
    ({"target_text": ">95%", "typed_operator": ">", "typed_number": "95", "target": D(95)}, ">95%"),
    ({"target_text": "≥1,000件", "typed_operator": "≥", "typed_number": "1,000", "target": D(1000), "unit": "件",
      "actual": D(1200)}, "≥1,000件"),
    ({"direction": "≤", "target_text": "≤90万元", "typed_operator": "≤", "typed_number": "90", "target": D(90),
      "unit": "万元", "actual": D("85.6")}, "≤90.00万元"),
    ({"target_text": "95", "typed_operator": "", "typed_number": "", "target": D(95)}, "≥95%"),
], ids=["greater-than-kept", "thousands-separator-kept", "wan-two-decimals", "no-operator-typed"])
def test_targets_are_printed_as_typed(changes: dict[str, object], shown: str) -> None:
    [row] = context_of(project((indicator(weight=D(90), **changes),)))["indicators"]  # type: ignore[misc]
    assert row["target"] == shown


def test_an_amount_in_wan_is_shown_with_two_decimals() -> None:
    ind = indicator(direction="≤", target=D(90), target_text="≤90万元", unit="万元", actual=D("85.6"), weight=D(90))
    [row] = context_of(project((ind,)))["indicators"]  # type: ignore[misc]
    assert row["actual"] == "85.60万元"


def test_field_lists_match_the_context_the_pipeline_builds() -> None:
    dicts = {key for key, value in FULL_CONTEXT.items() if isinstance(value, dict)}
    lists = {key for key, value in FULL_CONTEXT.items()
             if isinstance(value, list) and value and isinstance(value[0], dict)}
    assert dicts == set(DICT_FIELDS) and lists == set(ITEM_FIELDS)
    assert all(set(FULL_CONTEXT[key]) == DICT_FIELDS[key] for key in dicts)
    assert all(set(FULL_CONTEXT[key][0]) == ITEM_FIELDS[key] for key in lists)


def test_the_field_table_names_each_variable_once() -> None:
    names = [variable.name for variable in CONTEXT_VARIABLES]
    assert len(names) == len(set(names)) == len(CONTEXT_KEYS)


@pytest.mark.parametrize("variable", CONTEXT_VARIABLES, ids=lambda variable: variable.name)
def test_each_variable_has_the_shape_and_fields_of_the_table(variable: ContextVariable) -> None:
    value = FULL_CONTEXT[variable.name]
    if variable.shape is Shape.TEXT:
        assert isinstance(value, str) and not variable.fields
    elif variable.shape is Shape.TEXT_LIST:
        assert isinstance(value, list) and value and all(isinstance(item, str) for item in value)
        assert not variable.fields
    elif variable.shape is Shape.RECORD:
        assert isinstance(value, dict) and set(value) == variable.fields
        assert all(isinstance(item, str) for item in value.values())
    else:
        assert isinstance(value, list) and value
        assert all(isinstance(item, dict) and set(item) == variable.fields for item in value)
        assert all(isinstance(text, str) for item in value for text in item.values())


@pytest.mark.parametrize("variable", [v for v in CONTEXT_VARIABLES if v.fields], ids=lambda variable: variable.name)
def test_every_field_is_documented_for_template_authors(variable: ContextVariable) -> None:
    # templates/README.md writes a dict's fields as `budget.rate` and a list's in the list's own row.
    if variable.shape is Shape.RECORD:
        missing = {field for field in variable.fields if f"`{variable.name}.{field}`" not in TEMPLATES_README}
    else:
        row = re.search(rf"^\| `{re.escape(variable.name)}` \|.*$", TEMPLATES_README, re.MULTILINE)
        assert row is not None, f"templates/README.md has no row for `{variable.name}`"
        missing = {field for field in variable.fields if f"`{field}`" not in row.group(0)}
    assert not missing, f"templates/README.md lacks fields of `{variable.name}`: {sorted(missing)}"


def test_targets_typed_in_a_workbook_are_printed_as_typed(
    workbook_factory: Callable[..., Path], sheets: dict[str, list[dict[str, object]]],
) -> None:
    rows = sheets["绩效指标"]
    rows[0].update({"指标方向": None, "年度指标值": ">95%"})
    rows[1].update({"指标方向": ">", "年度指标值": 90})
    rows[3].update({"指标方向": ">=", "年度指标值": "1,000", "计量单位": "件", "实际完成值": 1200})
    rows[4].update({"指标方向": None, "年度指标值": "≤90万元", "实际完成值": 5})
    checked = steps.check_workbook(workbook_factory(sheets), Settings())
    assert checked.status == "success", [p.message for p in checked.problems]

    first, second = (context_of(p) for p in checked.projects)

    assert [(row["name"], row["target"]) for row in first["indicators"]] == [  # type: ignore[attr-defined]
        ("积案化解率", ">95%"), ("重点人员化解率", ">90%"), ("群众满意度", "群众满意")]
    assert [(row["target"], row["actual"]) for row in second["indicators"]] == [  # type: ignore[attr-defined]
        ("≥1,000件", "1200件"), ("≤90.00万元", "5.00万元")]
    # Scoring still reads > as ≥: 85.7% of a 95% target.
    assert checked.projects[0].indicators[0].direction == "≥"


def test_levels_the_form_does_not_know_come_after_the_known_ones_in_workbook_order() -> None:
    def ind(level1: str, level2: str, name: str) -> Indicator:
        return indicator(level1=level1, level2=level2, name=name, weight=D(18))

    rows = (ind("其他指标", "数量指标", "甲"), ind("产出指标", "进度指标", "乙"), ind("其他指标", "质量指标", "丙"),
            ind("产出指标", "质量指标", "丁"), ind("满意度指标", "服务对象满意度指标", "戊"))
    names = [row["name"] for row in context_of(project(rows))["indicators"]]  # type: ignore[attr-defined]
    assert names == ["丁", "乙", "戊", "甲", "丙"]


def test_a_strict_target_reached_exactly_is_a_warning_that_it_scored_as_met(
    workbook_factory: Callable[..., Path], sheets: dict[str, list[dict[str, object]]],
) -> None:
    rows = sheets["绩效指标"]
    rows[0].update({"指标方向": None, "年度指标值": ">95%", "实际完成值": 95, "计量单位": "%", "分子": None,
                    "分母": None})
    checked = steps.check_workbook(workbook_factory(sheets), Settings())
    assert checked.status == "success", [p.message for p in checked.problems]

    [result] = steps.evaluate_projects(checked.projects[:1], DEFAULT_PROFILE)

    [strict] = [w for w in result.warnings if w.column == "年度指标值"]
    assert strict.message == (f"绩效指标 第{strict.excel_row}行「年度指标值」写为 >95%，实际完成值正好是 95%："
                              "按 ≥ 计为完成并得满分，自评表照录 >95%；如指标确为“≥”，请改写指标值")
    assert result.indicators[0].completion == 1
    assert context_of(checked.projects[0])["indicators"][0]["target"] == ">95%"  # type: ignore[index]
