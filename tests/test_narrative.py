"""The officer's text against the figures: each contradiction is a located 警告 that says what to
change, the report prints the text exactly as typed, and the money sentence is never said twice.

Each case writes a real workbook (the valid `sheets` fixture with one narrative changed), checks
it and evaluates it as a run does, then reads the warnings and the report context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.core.context import report_context, summary_row
from pipeline.core.indicators import ProjectResult, evaluate
from pipeline.core.narrative import money_already_stated, narrative_warnings, spent_up_claims
from pipeline.core.profile import DEFAULT_PROFILE
from pipeline.errors import Problem, Severity
from pipeline.run import steps
from tests.inprocess import reports_of
from tests.test_indicators import indicator, project

Sheets = dict[str, list[dict[str, object]]]
RUN_DATE = date(2021, 3, 15)
# P-001 of the fixture: 100万元 budgeted, 85.62 spent; its indicator on row 3 types 97.6% for 59/61.
SEED_PERFORMANCE = ("在全市集中开展“一战两整治”专项行动。\n\n"
                    "南通市信访局交办的61名进京访重点人员事项化解59人，化解率97.6%；重点领域事项化解率95.7%。")
TYPED_RATE_WARNING = ("项目 第2行「完成情况」第2段写有“化解率97.6%”，而绩效指标 第3行「重点人员化解率」按分子/分母 59/61 "
                      "计算为 96.7%，自评表采用 96.7%：正文中的 97.6% 未改（报告照录原文），请改为 96.7%，或核对分子、分母")


def results_of(workbook_factory: Callable[..., Path], sheets: Sheets) -> list[ProjectResult]:
    """The projects of a real workbook, evaluated as a run evaluates them."""
    checked = steps.check_workbook(workbook_factory(sheets), Settings())
    assert checked.status == "success", [p.message for p in checked.problems]
    return steps.evaluate_projects(checked.projects, DEFAULT_PROFILE)


def project_warnings(result: ProjectResult) -> list[Problem]:
    """The warnings located on sheet 项目 (the narrative's)."""
    return [w for w in result.warnings if w.sheet == "项目"]


def test_a_replaced_rate_still_in_the_narrative_is_a_warning_and_the_text_is_printed_as_typed(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][0]["完成情况"] = SEED_PERFORMANCE

    result = results_of(workbook_factory, sheets)[0]

    [warning] = project_warnings(result)
    assert (warning.excel_row, warning.column, warning.value, warning.severity) == (
        2, "完成情况", "化解率97.6%", Severity.WARNING)
    assert warning.message == TYPED_RATE_WARNING
    # The indicator's own warning says what the 自评表 does, and no more.
    [indicator_warning] = [w for w in result.warnings if w.sheet == "绩效指标" and w.column == "实际完成值"]
    assert indicator_warning.message == ("绩效指标 第3行「实际完成值」填写为 97.6%，但按分子/分母 59/61 计算为 96.7%："
                                         "自评表采用计算值 96.7% 并据此评分，请核对此格或分子、分母")
    context = report_context(result, RUN_DATE)
    assert context["performance"] == SEED_PERFORMANCE.split("\n\n")  # byte for byte, 97.6% kept
    rows = {row["name"]: row for row in context["indicators"]}  # type: ignore[attr-defined]
    assert (rows["重点人员化解率"]["actual"], rows["重点人员化解率"]["fraction"]) == ("96.7%", "59/61")
    assert summary_row(result, DEFAULT_PROFILE)["警告数"] == len(result.warnings) == 2


def test_a_replaced_rate_in_the_overview_is_found_there_too(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][0]["项目概况"] = "设立信访救助专项资金。去年进京访化解率９７.６％。"

    [warning] = project_warnings(results_of(workbook_factory, sheets)[0])

    assert warning.column == "项目概况"
    assert warning.message.startswith("项目 第2行「项目概况」写有“去年进京访化解率９７.６％”，而绩效指标 第3行")


@pytest.mark.parametrize("performance", ["化解率96.7%。", "化解率197.6%。", "化解59人，占97.6万人口的比例很小。"],
                         ids=["the-computed-rate", "a-longer-number", "another-unit"])
def test_text_that_does_not_repeat_the_replaced_rate_gives_no_warning(
    workbook_factory: Callable[..., Path], sheets: Sheets, performance: str,
) -> None:
    sheets["项目"][0]["完成情况"] = performance

    assert not project_warnings(results_of(workbook_factory, sheets)[0])


def test_a_typed_rate_that_agrees_with_its_fraction_is_not_looked_for(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][0]["完成情况"] = "积案化解率85.7%。"  # row 2: 12/14 typed 85.7%, which agrees

    assert not project_warnings(results_of(workbook_factory, sheets)[0])


def test_spent_up_for_a_project_not_fully_spent_is_a_warning_and_the_honest_sentence_stays(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    overview = "设立信访救助专项资金，安排资金100万元。2020年度信访救助资金85.62万元使用完毕。"
    sheets["项目"][0]["项目概况"] = overview

    result = results_of(workbook_factory, sheets)[0]

    [warning] = project_warnings(result)
    assert (warning.column, warning.value) == ("项目概况", "2020年度信访救助资金85.62万元使用完毕")
    assert warning.message == (
        "项目 第2行「项目概况」写有“2020年度信访救助资金85.62万元使用完毕”，而资金表中该项目全年预算100万元，"
        "全年执行85.62万元（预算执行率85.62%），结余14.38万元，资金并未使用完毕："
        "报告照录原文，并另写一句预算、支出和结余；请删去或改写这句")
    context = report_context(result, RUN_DATE)
    assert context["overview"] == [overview]
    assert context["money_sentence"] == ("2020年度，信访救助专项资金全年预算100万元，实际支出85.62万元，"
                                         "预算执行率85.62%，结余14.38万元。")


def test_spent_up_naming_another_amount_is_a_warning_with_the_right_amount(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    overview = "市领导每月接访一天。\n\n2020年度领导接访费用6万元已全部使用完毕。"
    sheets["项目"][1]["项目概况"] = overview  # P-002: 5 of 5万元 spent

    result = results_of(workbook_factory, sheets)[1]

    [warning] = project_warnings(result)
    assert warning.message == ("项目 第3行「项目概况」第2段写有“2020年度领导接访费用6万元已全部使用完毕”，"
                               "而资金表中该项目全年执行数合计为 5万元：请将 6万元 改为 5万元，或核对资金表")
    context = report_context(result, RUN_DATE)
    assert context["overview"] == overview.split("\n\n")
    assert context["money_sentence"] == "2020年度领导接访费用5万元使用完毕。"


@pytest.mark.parametrize("stated", ["2020年度领导接访费用5万元使用完毕。", "2020年度领导接访费用 5.00 万元使用完毕。"])
def test_an_overview_that_already_states_the_money_use_prints_it_once(
    workbook_factory: Callable[..., Path], sheets: Sheets, stated: str,
) -> None:
    overview = f"市领导每月接访一天。{stated}"
    sheets["项目"][1]["项目概况"] = overview

    result = results_of(workbook_factory, sheets)[1]

    [warning] = project_warnings(result)
    words = stated.rstrip("。")
    assert (warning.column, warning.value) == ("项目概况", words)
    assert warning.message == (f"项目 第3行「项目概况」已写有“{words}”，已说明本年度资金使用情况，与资金表相符："
                               "报告不再另写资金使用一句；如希望由报告按资金表生成，请从项目概况中删去这句")
    context = report_context(result, RUN_DATE)
    assert context["money_sentence"] == ""
    assert context["overview"] == [overview]


def test_an_overview_holding_the_generated_partly_spent_sentence_prints_it_once(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    generated = "2020年度，信访救助专项资金全年预算100万元，实际支出85.62万元，预算执行率85.62%，结余14.38万元。"
    sheets["项目"][0]["项目概况"] = f"设立信访救助专项资金。{generated}"

    result = results_of(workbook_factory, sheets)[0]

    [warning] = project_warnings(result)
    assert "已说明本年度资金使用情况，与资金表相符：报告不再另写资金使用一句" in warning.message
    assert report_context(result, RUN_DATE)["money_sentence"] == ""


def test_spent_up_in_the_performance_of_a_fully_spent_project_is_no_repetition(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][1]["完成情况"] = "接待群众74批74人次，5万元使用完毕。"

    result = results_of(workbook_factory, sheets)[1]

    assert not project_warnings(result)
    assert report_context(result, RUN_DATE)["money_sentence"] == "2020年度领导接访费用5万元使用完毕。"


def test_the_warnings_of_a_project_count_in_the_summary_and_reach_the_check_report(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    sheets["项目"][0]["完成情况"] = SEED_PERFORMANCE
    sheets["项目"][0]["项目概况"] = "2020年度信访救助资金85.62万元使用完毕。"
    for row in sheets["项目"]:
        row["预算执行偏差原因"] = None
    checked = steps.check_workbook(workbook_factory(sheets), Settings())
    staging = tmp_path / "staging"
    staging.mkdir()
    settings = Settings(output_dir=tmp_path / "out", templates_dir=tmp_path / "templates", default_template="t.docx")
    (tmp_path / "templates").mkdir()
    write_minimal_template(tmp_path / "templates" / "t.docx")

    prepared = steps.prepare_reports(checked, staging, settings)

    assert isinstance(prepared, steps.PreparedReports), prepared
    rows, warnings = steps.summary_data(staging / steps.CHUNKS_DIR / steps.SUMMARY_DATA)
    narrative = [(w.column, w.excel_row) for w in warnings if w.sheet == "项目"]
    assert narrative == [("完成情况", 2), ("项目概况", 2), ("预算执行偏差原因", 2)]
    assert rows[0]["警告数"] == 4  # with the indicator's own warning about 97.6%
    assert prepared.warnings == len(warnings) == 4


def write_minimal_template(path: Path) -> None:
    """A one-paragraph template, enough for `prepare_reports` to accept."""
    import docx

    document = docx.Document()
    document.add_paragraph("{{ title }}")
    document.save(path)


# --- the pure functions, on records ---------------------------------------------------------------

def test_spent_up_claims_read_the_last_amount_of_their_sentence() -> None:
    subject = dataclasses.replace(project(()), overview="安排资金100万元。其中30万元用于救助，1,020.5万元使用完毕；资金使用完毕。")
    claims = [(claim.words, claim.amount) for claim in spent_up_claims(subject)]
    assert claims == [("其中30万元用于救助，1,020.5万元使用完毕", D("1020.5")), ("资金使用完毕", None)]


def test_a_money_use_without_an_amount_is_not_a_repetition() -> None:
    subject = dataclasses.replace(project((indicator(weight=D(90)),), budget=D(5), spent=D(5)),
                                  overview="资金已全部使用完毕。")
    result = evaluate(subject, DEFAULT_PROFILE)
    assert money_already_stated(result) is None
    assert not narrative_warnings(result)



# --- the rendered report, with the shipped template ---------------------------------------------

def rendered_paragraphs(workbook: Path, output_dir: Path) -> dict[str, list[str]]:
    """Every paragraph's text (body and tables) of each report a run of the steps writes, by project id."""
    import docx

    reports_dir, _ = reports_of(workbook, output_dir)
    found: dict[str, list[str]] = {}
    for path in sorted(reports_dir.glob("*.docx")):
        document = docx.Document(str(path))
        cells = [p.text for table in document.tables for row in table.rows for cell in row.cells
                 for p in cell.paragraphs]
        found[path.name.split("_")[0]] = [p.text for p in document.paragraphs] + cells
    return found


def test_the_report_prints_the_officers_text_as_typed_and_the_money_sentence_once(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stale = "2020年度信访救助资金85.62万元使用完毕。"
    sheets["项目"][0]["项目概况"] = f"设立信访救助专项资金。{stale}"
    sheets["项目"][0]["完成情况"] = SEED_PERFORMANCE
    sheets["项目"][1]["项目概况"] = "市领导每月接访一天。2020年度领导接访费用5万元使用完毕。"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")

    reports = rendered_paragraphs(workbook_factory(sheets), tmp_path / "out")

    partly, fully = "\n".join(reports["P-001"]), "\n".join(reports["P-002"])
    # The officer's words stand as typed, contradictions and all (the warnings say what to change) ...
    assert f"设立信访救助专项资金。{stale}" in reports["P-001"]
    assert "南通市信访局交办的61名进京访重点人员事项化解59人，化解率97.6%；重点领域事项化解率95.7%。" in reports["P-001"]
    # ... the figures beside them are the computed ones, with the honest money sentence ...
    assert "96.7%" in partly and "59/61" in partly
    assert partly.count("结余14.38万元") == 1
    # ... and a money use the overview already states is printed once.
    assert fully.count("5万元使用完毕") == 1
    assert "经自评，该项目得分" in fully


# --- what ordinary text must not set off, and what pasted text must --------------------------------

def test_last_years_spent_up_sentence_is_stale_and_does_not_replace_this_years(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][1]["项目概况"] = "市领导每月接访一天。2019年度领导接访费用5万元使用完毕。"

    result = results_of(workbook_factory, sheets)[1]

    [warning] = project_warnings(result)
    assert warning.message.startswith("项目 第3行「项目概况」写有“2019年度领导接访费用5万元使用完毕”，说的是2019年度，"
                                      "而本报告是2020年度")
    assert report_context(result, RUN_DATE)["money_sentence"] == "2020年度领导接访费用5万元使用完毕。"


@pytest.mark.parametrize("text", ["资金尚未使用完毕，将结转下年使用。", "资金没有全部使用完毕。"])
def test_a_negated_spent_up_agrees_with_money_left_over(
    workbook_factory: Callable[..., Path], sheets: Sheets, text: str,
) -> None:
    sheets["项目"][0]["项目概况"] = text

    result = results_of(workbook_factory, sheets)[0]

    assert [w.column for w in project_warnings(result)] == []


def test_a_part_of_the_money_used_up_is_not_read_as_the_total(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    sheets["项目"][1]["项目概况"] = "市领导每月接访一天，其中上年结转3万元已使用完毕。"

    result = results_of(workbook_factory, sheets)[1]

    assert not project_warnings(result)
    assert report_context(result, RUN_DATE)["money_sentence"] == "2020年度领导接访费用5万元使用完毕。"


def test_the_sentence_without_its_reason_in_the_overview_is_a_repetition_the_reason_is_kept(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    base = "2020年度，信访救助专项资金全年预算100万元，实际支出85.62万元，预算执行率85.62%，结余14.38万元"
    sheets["项目"][0]["项目概况"] = f"设立信访救助专项资金。{base}。"
    for row in sheets["项目"]:
        row["预算执行偏差原因"] = "部分救助申请仍在审核中" if row["项目编号"] == "P-001" else None

    result = results_of(workbook_factory, sheets)[0]

    [warning] = project_warnings(result)
    assert warning.message == (f"项目 第2行「项目概况」已写有“{base}”，报告按资金表和「预算执行偏差原因」另写的一句"
                               "还含有原因，两句都会印出：请从项目概况中删去这句")
    assert report_context(result, RUN_DATE)["money_sentence"] == f"{base}，主要原因是部分救助申请仍在审核中。"


def test_amounts_beyond_two_decimals_add_up_as_printed() -> None:
    result = evaluate(project((indicator(weight=D(90)),), budget=D(100), spent=D("85.625")), DEFAULT_PROFILE)
    sentence = report_context(result, RUN_DATE)["money_sentence"]
    assert "实际支出85.63万元" in sentence and "结余14.37万元" in sentence  # type: ignore[operator]
    nearly = evaluate(project((indicator(weight=D(90)),), budget=D("100.004"), spent=D(100)), DEFAULT_PROFILE)
    assert report_context(nearly, RUN_DATE)["money_sentence"].endswith("100万元使用完毕。")  # type: ignore[attr-defined]


def test_a_figure_another_indicator_rightly_shows_is_not_taken_for_the_replaced_one(
    workbook_factory: Callable[..., Path], sheets: Sheets,
) -> None:
    satisfaction = next(row for row in sheets["绩效指标"] if row["一级指标"] == "满意度指标")
    satisfaction.update({"指标方向": "≥", "年度指标值": 90, "实际完成值": 97.6, "计量单位": "%"})
    sheets["项目"][0]["完成情况"] = "群众满意度97.6%。"

    result = results_of(workbook_factory, sheets)[0]

    assert not project_warnings(result)
