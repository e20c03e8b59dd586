"""Workbooks of printed 项目支出绩效自评表 forms (附件1 and its provincial variants) as input.

Each form is written by `tests/formbook.py` from the same rows as a four-sheet workbook, its twin:
both must give the same records and scores. Messages must name the form's sheet and cell; every
hand-typed figure that disagrees with the computed one is a 警告 quoting both.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline.config import Settings, chosen_profile
from pipeline.core.forms import funding_source
from pipeline.core.indicators import ProjectResult
from pipeline.errors import Problem, Severity
from pipeline.run import steps
from tests.conftest import Rows, valid_sheets, write_workbook
from tests.formbook import VARIANTS, write_forms
from tests.inprocess import reports_of
from tests.summarytable import summary_records

PRINCIPLE_HEADERS = {"使用原则": ["项目编号", "序号", "内容"]}
HUBEI_WEIGHTS = {("P-001", "积案化解率"): 10, ("P-001", "重点人员化解率"): 40, ("P-002", "接待群众批次"): 50}


def form_rows(variant: str = "national") -> dict[str, Rows]:
    """The conftest rows, with 湖北's indicators reweighted to its 80 points."""
    sheets = copy.deepcopy(valid_sheets())
    if variant == "湖北":
        for row in sheets["绩效指标"]:
            row["分值"] = HUBEI_WEIGHTS.get((row["项目编号"], row["三级指标"]), row["分值"])
    return sheets


def twin_rows(sheets: Mapping[str, Rows], ids: Mapping[str, str]) -> dict[str, Rows]:
    """The four-sheet twin of forms: ids are the sheet names; a form has no 使用原则."""
    twin = copy.deepcopy(dict(sheets))
    for name in ("项目", "资金", "绩效指标"):
        for row in twin[name]:
            row["项目编号"] = ids[row["项目编号"]]
    twin["使用原则"] = []
    return twin


def checked(path: Path, **options: object) -> steps.CheckedWorkbook:
    """A workbook read and validated by the run's own step."""
    return steps.check_workbook(path, Settings(**options))  # type: ignore[arg-type]


def results_of(path: Path, **options: object) -> tuple[list[ProjectResult], steps.CheckedWorkbook]:
    """Every project of a valid workbook scored as the run scores it (form checks included)."""
    found = checked(path, **options)
    assert found.status == "success", [p.message for p in found.problems]
    return steps.evaluate_projects(found.projects, found.profile, found.forms), found


def scores(results: list[ProjectResult]) -> dict[str, object]:
    """What a report states of each project, keyed by 项目编号, indicators by name."""
    return {r.project.project_id: {
        "name": r.project.name, "year": r.project.year, "department": r.project.department,
        "unit": r.project.implementing_unit, "overview": r.project.overview, "goal": r.project.annual_goal,
        "performance": r.project.performance,
        "funding": sorted((funding_source(f.source), f.initial_budget_wan, f.adjusted_budget_wan, f.spent_wan)
                          for f in r.project.funding),
        "budget": (r.adjusted_budget_wan, r.spent_wan, r.budget_weight, r.budget_score),
        "indicators": sorted((i.indicator.level1, i.indicator.name, i.indicator.direction, i.indicator.target,
                              i.indicator.weight, i.score) for i in r.indicators),
        "total": (r.total_score, r.grade),
    } for r in results}


def messages(problems: tuple[Problem, ...] | list[Problem], severity: Severity | None = None) -> list[str]:
    return [p.message for p in problems if severity is None or p.severity is severity]


def all_warnings(results: list[ProjectResult], found: steps.CheckedWorkbook) -> list[str]:
    return [*messages(found.problems, Severity.WARNING), *(w.message for r in results for w in r.warnings)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_is_read_into_the_records_of_its_four_sheet_twin(variant: str, tmp_path: Path) -> None:
    sheets = form_rows(variant)
    cells = write_forms(tmp_path / "forms.xlsx", sheets, variant)
    ids = {project_id: found.sheet for project_id, found in cells.items()}
    twin_sheets = twin_rows(sheets, ids)
    if variant == "四川":  # its form has no 年度目标 (预期目标) cell, only 目标完成情况
        for row in twin_sheets["项目"]:
            row["年度目标"] = None
    twin = write_workbook(tmp_path / "twin.xlsx", twin_sheets, headers=PRINCIPLE_HEADERS)
    profile = "湖北" if variant == "湖北" else ""
    options = {"profile": chosen_profile(profile), "profile_chosen": bool(profile)}

    from_forms, found = results_of(tmp_path / "forms.xlsx")  # 湖北's 20 points select its profile
    from_twin, _ = results_of(twin, **options)

    assert found.profile.name == ("湖北" if variant == "湖北" else "财预〔2020〕10号")
    assert scores(from_forms) == scores(from_twin)
    assert list(scores(from_forms)) == [cells["P-001"].sheet, cells["P-002"].sheet]


def test_a_message_names_the_form_sheet_and_cell_address(tmp_path: Path) -> None:
    sheets = form_rows()
    sheets["绩效指标"][3]["实际完成值"] = "完成"  # 接待群众批次: a number belongs here
    cells = write_forms(tmp_path / "forms.xlsx", sheets)
    row = cells["P-002"].indicator_rows[0]

    found = checked(tmp_path / "forms.xlsx")

    assert found.status == "invalid"
    [error] = [p for p in found.problems if p.severity is Severity.ERROR]
    assert error.sheet == "领导接访费用" and error.excel_row == row
    assert error.message.startswith(f"领导接访费用!F{row}「实际完成值」")
    assert "完成" in error.message


def test_each_typed_figure_that_disagrees_is_a_warning_quoting_both_values(tmp_path: Path) -> None:
    sheets = form_rows()
    typed = {"P-001": {"执行率": "86%", "预算得分": 9, "总分": 0, "自评等级": "良"},
             "P-002": {"得分": {0: Decimal("59.6"), 1: 30}, "总分": 99.6, "自评等级": "优"}}
    cells = write_forms(tmp_path / "forms.xlsx", sheets, typed=typed)
    first, second = cells["P-001"], cells["P-002"]

    results, found = results_of(tmp_path / "forms.xlsx")
    warnings = all_warnings(results, found)

    def one(prefix: str) -> str:
        hits = [m for m in warnings if m.startswith(prefix)]
        assert len(hits) == 1, (prefix, warnings)
        return hits[0]

    assert "填的是 86%" in one(f"信访救助专项资金!{first.rate}「执行率」") and "85.62%" in one(
        f"信访救助专项资金!{first.rate}「执行率」")
    assert "填的是 9，" in one(f"信访救助专项资金!{first.budget_score}「得分」")
    assert "为 8.56" in one(f"信访救助专项资金!{first.budget_score}「得分」")
    total = next(r for r in results if r.project.project_id == "信访救助专项资金").total_score
    assert "填的是 0，" in one(f"信访救助专项资金!{first.total_score}「总分」")
    assert f"为 {total:.2f}" in one(f"信访救助专项资金!{first.total_score}「总分」")
    assert "填的是 良" in one(f"信访救助专项资金!{first.grade}「自评等级」")
    score_cell = f"H{second.indicator_rows[0]}"
    indicator = one(f"领导接访费用!{score_cell}「得分」")
    assert "59.6" in indicator and "60" in indicator
    # The right figures draw no warning: P-002's budget row, its 总分 (10 + 60 + 30 = 100) typed 99.6 does.
    assert not [m for m in warnings if m.startswith(f"领导接访费用!{second.rate}")]
    assert "填的是 99.6" in one(f"领导接访费用!{second.total_score}「总分」")
    assert not [m for m in warnings if m.startswith(f"领导接访费用!{second.grade}")]


def test_a_form_with_a_20_point_budget_is_scored_by_the_hubei_profile_unless_one_is_named(tmp_path: Path) -> None:
    write_forms(tmp_path / "湖北.xlsx", form_rows("湖北"), "湖北")

    _, found = results_of(tmp_path / "湖北.xlsx")
    named = checked(tmp_path / "湖北.xlsx", profile_chosen=True)

    assert found.profile.name == "湖北" and found.profile.budget_weight == 20
    assert named.status == "invalid"
    assert any("按「财预〔2020〕10号」" in m and "应为 90" in m for m in messages(named.problems, Severity.ERROR))


def test_a_hubei_form_names_its_profile_in_the_reports_summary_and_manifest(tmp_path: Path) -> None:
    workbook = tmp_path / "湖北自评表.xlsx"
    write_forms(workbook, form_rows("湖北"), "湖北")

    reports, contexts = reports_of(workbook, tmp_path / "out")

    assert {context["scoring_rule"] for context in contexts.values()} == {"湖北"}
    assert all("预算执行率20分，绩效指标80分" in str(context["scoring_note"]) for context in contexts.values())
    manifest = json.loads((reports.parent / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["profile"] == "湖北"
    assert {row["评分规则"] for row in summary_records(reports.parent / "汇总表.xlsx")} == {"湖北"}
    assert sorted(p.name for p in reports.iterdir()) == ["信访救助专项资金.docx", "领导接访费用.docx"]


def test_a_block_whose_indicators_do_not_add_up_to_its_points_is_an_error_at_its_label(tmp_path: Path) -> None:
    workbook = tmp_path / "湖北.xlsx"
    write_forms(workbook, form_rows("湖北"), "湖北")
    book = openpyxl.load_workbook(workbook)
    sheet = book["信访救助专项资金"]
    label = next(c for row in sheet.iter_rows() for c in row if c.value == "产出指标（10分）")
    label.value = "产出指标（40分）"
    book.save(workbook)

    found = checked(workbook)

    assert f"信访救助专项资金!{label.coordinate}「产出指标（40分）」下各指标分值合计为 10，应为 40" in messages(
        found.problems, Severity.ERROR)


def test_bare_targets_are_read_as_at_least_with_a_warning_at_their_cell(tmp_path: Path) -> None:
    cells = write_forms(tmp_path / "河北.xlsx", form_rows("河北"), "河北")
    row = cells["P-002"].indicator_rows[0]

    results, found = results_of(tmp_path / "河北.xlsx")

    warning = next(m for m in all_warnings(results, found) if m.startswith(f"领导接访费用!E{row}「年度指标值」"))
    assert "没有写方向，按「≥」读取" in warning
    batches = next(i for r in results for i in r.indicators if i.indicator.name == "接待群众批次")
    assert batches.indicator.direction == "≥" and batches.score == 60


def test_a_total_row_typed_zero_above_funded_sources_takes_the_sources_with_a_warning(tmp_path: Path) -> None:
    zero = (Decimal(0), Decimal(0), Decimal(0))
    cells = write_forms(tmp_path / "forms.xlsx", form_rows(), typed={"P-001": {"资金": {"年度资金总额": zero}}})
    total_row = cells["P-001"].funding_rows["total"]

    results, found = results_of(tmp_path / "forms.xlsx")

    first = next(r for r in results if r.project.project_id == "信访救助专项资金")
    assert (first.adjusted_budget_wan, first.spent_wan) == (Decimal(100), Decimal("85.62"))
    warnings = [m for m in messages(found.problems, Severity.WARNING) if m.startswith("信访救助专项资金!")]
    assert any(m.startswith(f"信访救助专项资金!D{total_row}「年度资金总额·全年预算数」为 0，而其中各来源合计 100")
               for m in warnings), warnings
    assert any(m.startswith(f"信访救助专项资金!E{total_row}「年度资金总额·全年执行数」为 0") for m in warnings)


def test_a_right_total_above_sources_typed_zero_takes_the_total_with_a_warning(tmp_path: Path) -> None:
    zero = (Decimal(0), Decimal(0), Decimal(0))
    cells = write_forms(tmp_path / "forms.xlsx", form_rows(), typed={"P-001": {"资金": {"其中：当年财政拨款": zero}}})
    total_row = cells["P-001"].funding_rows["total"]

    results, found = results_of(tmp_path / "forms.xlsx")

    first = next(r for r in results if r.project.project_id == "信访救助专项资金")
    assert (first.adjusted_budget_wan, first.spent_wan) == (Decimal(100), Decimal("85.62"))
    assert any(m.startswith(f"信访救助专项资金!D{total_row}「年度资金总额·全年预算数」为 100，而其中各来源合计 0")
               for m in messages(found.problems, Severity.WARNING))


def test_a_form_without_an_overview_row_gets_a_sentence_of_its_header_and_a_warning(tmp_path: Path) -> None:
    write_forms(tmp_path / "forms.xlsx", form_rows(), overview_row=False)

    results, found = results_of(tmp_path / "forms.xlsx")

    assert results[1].project.overview == "领导接访费用由如皋市信访局主管，如皋市信访局接待科实施。"
    assert results[0].project.overview == "信访救助专项资金由如皋市信访局主管并实施。"
    assert any("没有「项目概况」一栏" in m for m in messages(found.problems, Severity.WARNING))


def test_project_ids_come_from_the_sheet_names_and_are_the_same_on_every_run(tmp_path: Path) -> None:
    write_forms(tmp_path / "forms.xlsx", form_rows(), sheet_names="numbered")

    first = [p.project_id for p in checked(tmp_path / "forms.xlsx").projects]
    again = [p.project_id for p in checked(tmp_path / "forms.xlsx").projects]

    assert first == again == ["表1", "表2"]


def test_label_placeholder_signature_and_hidden_sheets_are_not_read_as_data(tmp_path: Path) -> None:
    write_forms(tmp_path / "forms.xlsx", form_rows("湖北"), "湖北", extras=True)

    found = checked(tmp_path / "forms.xlsx")

    assert found.status == "success", messages(found.problems)
    assert [len(p.indicators) for p in found.projects] == [3, 2]
    assert not [m for m in messages(found.problems) if "填报说明" in m or "代码表" in m]


def test_a_sheet_titled_as_a_form_without_its_indicator_table_is_an_error_naming_it(tmp_path: Path) -> None:
    workbook = tmp_path / "forms.xlsx"
    write_forms(workbook, form_rows())
    book = openpyxl.load_workbook(workbook)
    broken = book.create_sheet("半张表")
    broken["A1"] = "项目支出绩效自评表"
    broken["A3"], broken["B3"] = "项目名称", "残缺项目"
    book.save(workbook)

    found = checked(workbook)

    assert found.status == "invalid"
    assert any(m.startswith("半张表!A1「自评表」看起来是项目支出绩效自评表，但找不到") for m in messages(found.problems))


def test_a_formula_without_a_cached_value_on_a_form_is_an_error_at_its_cell(tmp_path: Path) -> None:
    workbook = tmp_path / "forms.xlsx"
    cells = write_forms(workbook, form_rows())
    book = openpyxl.load_workbook(workbook)
    book["领导接访费用"][cells["P-002"].budget_score] = "=F7*G7"
    book.save(workbook)  # openpyxl stores no cached value

    found = checked(workbook)

    assert found.status == "invalid"
    assert any(m.startswith(f"领导接访费用!{cells['P-002'].budget_score}「公式」是没有计算结果的公式")
               for m in messages(found.problems, Severity.ERROR))


def test_the_form_workbook_gives_the_reports_of_its_twin(tmp_path: Path) -> None:
    sheets = form_rows()
    cells = write_forms(tmp_path / "forms.xlsx", sheets)
    twin = write_workbook(tmp_path / "twin.xlsx", twin_rows(sheets, {k: v.sheet for k, v in cells.items()}),
                          headers=PRINCIPLE_HEADERS)

    _, from_forms = reports_of(tmp_path / "forms.xlsx", tmp_path / "a")
    _, from_twin = reports_of(twin, tmp_path / "b")

    assert sorted(from_forms) == ["信访救助专项资金.docx", "领导接访费用.docx"]
    for name, context in from_forms.items():
        other = from_twin[name]
        for key in ("project_name", "total_score", "grade", "budget", "indicators"):
            assert context[key] == other[key], key


def test_a_form_laid_out_in_the_profile_blocks_must_give_each_block_its_points(tmp_path: Path) -> None:
    sheets = form_rows("湖北")
    for row in sheets["绩效指标"]:  # 产出 35 + 效益 45: 80 points, but 湖北 gives each block 40
        if row["项目编号"] == "P-001":
            row["一级指标"], row["二级指标"] = ("产出指标", "质量指标") if row["三级指标"] == "积案化解率" else (
                "效益指标", "社会效益指标")
            row["分值"] = {"积案化解率": 35, "重点人员化解率": 25, "群众满意度": 20}[row["三级指标"]]
    sheets["绩效指标"] = [r for r in sheets["绩效指标"] if r["项目编号"] == "P-001"]
    sheets["项目"], sheets["资金"] = sheets["项目"][:1], sheets["资金"][:1]
    write_forms(tmp_path / "湖北.xlsx", sheets, "湖北")

    found = checked(tmp_path / "湖北.xlsx")

    assert found.status == "invalid"
    errors = messages(found.problems, Severity.ERROR)
    assert any(m.endswith("「产出指标（35分）」为 35 分，按「湖北」评分规则产出指标应为 40 分") for m in errors), errors
    assert any(m.endswith("「效益指标（45分）」为 45 分，按「湖北」评分规则效益指标应为 40 分") for m in errors), errors


@pytest.mark.usefixtures("prefect_harness")
def test_a_folder_may_mix_form_workbooks_and_four_sheet_workbooks(tmp_path: Path) -> None:
    from pipeline.run.flow import report_folder

    folder = tmp_path / "input"
    folder.mkdir()
    write_forms(folder / "自评表.xlsx", form_rows())
    write_workbook(folder / "四张表.xlsx", valid_sheets())

    statuses = report_folder(input_dir=str(folder), output_dir=str(tmp_path / "out"))

    assert statuses == ["success", "success"]
    assert sorted(p.name for p in (tmp_path / "out" / "自评表" / "reports").iterdir()) == [
        "信访救助专项资金.docx", "领导接访费用.docx"]
    assert sorted(p.name for p in (tmp_path / "out" / "四张表" / "reports").iterdir()) == [
        "P-001_信访救助专项资金.docx", "P-002_领导接访费用.docx"]


def test_a_workbook_in_neither_layout_says_what_either_would_need(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    book.active["A1"] = "随便写的表"
    book.save(tmp_path / "other.xlsx")

    found = checked(tmp_path / "other.xlsx")

    assert found.status == "invalid"
    first, *rest = messages(found.problems, Severity.ERROR)
    assert first.startswith("这个工作簿既没有「项目」「资金」「绩效指标」等工作表，也没有《项目支出绩效自评表》格式的工作表")
    assert any(m.startswith("缺少工作表「项目」") for m in rest)


def test_a_second_form_below_the_first_on_one_sheet_is_an_error_not_lost(tmp_path: Path) -> None:
    workbook = tmp_path / "forms.xlsx"
    write_forms(workbook, form_rows(), extras=False)
    book = openpyxl.load_workbook(workbook)
    first, second = book["信访救助专项资金"], book["领导接访费用"]
    offset = first.max_row + 2
    for row in second.iter_rows():
        for cell in row:
            if cell.value is not None:
                first.cell(row=cell.row + offset, column=cell.column, value=cell.value)
    del book["领导接访费用"]
    book.save(workbook)

    found = checked(workbook)

    assert found.status == "invalid"
    assert any(m.startswith("信访救助专项资金!A") and "还有一张自评表，没有读取" in m
               for m in messages(found.problems, Severity.ERROR))


def test_an_indicator_table_without_a_weight_column_is_one_clear_error(tmp_path: Path) -> None:
    workbook = tmp_path / "forms.xlsx"
    cells = write_forms(workbook, form_rows(), extras=False)
    book = openpyxl.load_workbook(workbook)
    sheet = book["领导接访费用"]
    weight = next(c for row in sheet.iter_rows() for c in row if c.value == "分值" and c.column_letter == "G")
    weight.value = "备注"
    book.save(workbook)

    found = checked(workbook)

    row = cells["P-002"].indicator_rows[0]
    assert f"领导接访费用!D{row}「绩效指标」所在的绩效指标表没有「分值」（或「权重」）列，无法计分：请在表中加一列「分值」，逐项填写各指标的分值" in messages(found.problems, Severity.ERROR)


def test_a_label_row_over_every_indicator_checks_their_sum(tmp_path: Path) -> None:
    workbook = tmp_path / "湖北.xlsx"
    write_forms(workbook, form_rows("湖北"), "湖北", extras=False)
    assert checked(workbook).status == "success"  # 年度绩效目标（80分） over 产出指标（50分） and 成本指标（30分）
    book = openpyxl.load_workbook(workbook)
    sheet = book["领导接访费用"]
    label = next(c for row in sheet.iter_rows() for c in row if c.value == "年度绩效目标（80分）")
    label.value = "年度绩效目标（70分）"
    book.save(workbook)

    found = checked(workbook)

    assert f"领导接访费用!{label.coordinate}「年度绩效目标（70分）」下各指标分值合计为 80，应为 70" in messages(
        found.problems, Severity.ERROR)
