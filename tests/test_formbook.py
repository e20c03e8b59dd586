"""The test form factory writes the printed 项目支出绩效自评表 as offices hold it: real cells, real
merges, the figures where its returned addresses say. These check the factory, not the reader."""

from __future__ import annotations

import copy
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import Rows, valid_sheets
from tests.formbook import FormCells, write_forms


def indicator(level1: str, level2: str, name: str, weight: int, score: float | None = None,
              **fields: object) -> dict[str, object]:
    """A quantitative 绩效指标 row of P-002 (≥ 10 个, met) with the fields given."""
    row: dict[str, object] = {"项目编号": "P-002", "一级指标": level1, "二级指标": level2, "三级指标": name,
                              "指标方向": "≥", "年度指标值": 10, "实际完成值": 10, "计量单位": "个",
                              "分值": weight, "分子": None, "分母": None, "自评得分": score,
                              "偏差原因分析及改进措施": None}
    return row | fields


def scored_sheets() -> dict[str, Rows]:
    """The valid workbook with P-002's indicators spread over one 一级 and two 二级, all scored.

    Input order is deliberately not the form's order (效益 first, 时效 before 数量).
    """
    sheets = copy.deepcopy(valid_sheets())
    sheets["绩效指标"] = [row for row in sheets["绩效指标"] if row["项目编号"] == "P-001"] + [
        indicator("效益指标", "社会效益指标", "群众诉求解决", 30, 30),
        indicator("产出指标", "时效指标", "按时接访率", 10, 10),
        indicator("产出指标", "数量指标", "接待群众批次", 30, 25.5),
        indicator("产出指标", "数量指标", "接访天数", 20, 20),
    ]
    return sheets


def opened(path: Path, cells: FormCells) -> openpyxl.worksheet.worksheet.Worksheet:
    """The sheet the factory wrote for one project, read back from disk."""
    return openpyxl.load_workbook(path)[cells.sheet]


def test_level1_and_level2_are_merged_down_their_rows_in_the_forms_order(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, scored_sheets())["P-002"]
    sheet = opened(path, cells)
    benefit, timely, count, days = cells.indicator_rows
    assert [sheet[f"D{row}"].value for row in cells.indicator_rows] == ["群众诉求解决", "按时接访率", "接待群众批次",
                                                                      "接访天数"]
    assert count < days < timely < benefit, "产出 before 效益, 数量 before 时效, input order kept within 数量"
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert f"B{count}:B{timely}" in merged
    assert f"C{count}:C{days}" in merged
    assert not any(r.startswith((f"C{timely}:", f"B{benefit}:", f"C{benefit}:")) for r in merged)
    assert sheet[f"B{count}"].value == "产出指标" and sheet[f"C{timely}"].value == "时效指标"


def test_budget_row_holds_the_computed_rate_as_a_percentage_and_the_rounded_score(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, valid_sheets())["P-001"]
    sheet = opened(path, cells)
    assert (sheet[cells.rate].value, sheet[cells.rate].number_format) == (0.8562, "0.00%")
    assert sheet[cells.budget_score].value == 8.56  # 10 × 85.62 %, half-up
    assert sheet[cells.budget_weight].value == 10
    total = cells.funding_rows["total"]
    assert [sheet[f"{c}{total}"].value for c in "BCDE"] == ["年度资金总额", 100, 100, 85.62]
    assert sheet[f"C{total}"].number_format == "0.00"
    assert sheet[f"C{cells.funding_rows['上年结转资金']}"].value == "—"


def test_total_and_grade_default_to_the_scores_written_and_stay_empty_without_them(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, scored_sheets())
    sheet = opened(path, cells["P-002"])
    assert sheet[cells["P-002"].total_score].value == 95.5  # 10 + 30 + 10 + 25.5 + 20
    assert cells["P-002"].grade is not None and sheet[cells["P-002"].grade].value == "优"
    unscored = opened(path, cells["P-001"])
    assert unscored[cells["P-001"].total_score].value is None
    assert cells["P-001"].grade is not None and unscored[cells["P-001"].grade].value is None


def test_typed_figures_land_in_the_returned_cells(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    typed = {"P-001": {"执行率": "86%", "预算得分": 9, "总分": 0, "自评等级": "良",
                       "得分": {0: 19.6}, "资金": {"年度资金总额": (0, 0, 0)}}}
    cells = write_forms(path, valid_sheets(), typed=typed)["P-001"]
    sheet = opened(path, cells)
    assert sheet[cells.rate].value == "86%"
    assert sheet[cells.budget_score].value == 9
    assert sheet[cells.total_score].value == 0
    assert cells.grade is not None and sheet[cells.grade].value == "良"
    assert sheet[f"{cells.columns['得分']}{cells.indicator_rows[0]}"].value == 19.6
    total = cells.funding_rows["年度资金总额"]
    assert [sheet[f"{c}{total}"].value for c in "CDE"] == [0, 0, 0]
    assert sheet[f"E{cells.funding_rows['其中：当年财政拨款']}"].value == 85.62


def test_targets_and_actuals_are_typed_as_offices_type_them(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, valid_sheets())
    first, second = opened(path, cells["P-001"]), opened(path, cells["P-002"])
    target, actual = cells["P-001"].columns["年度指标值"], cells["P-001"].columns["实际完成值"]
    assert second[f"{target}{cells['P-002'].indicator_rows[0]}"].value == "≥50批"
    assert second[f"{actual}{cells['P-002'].indicator_rows[0]}"].value == "74批"
    assert second[f"{target}{cells['P-002'].indicator_rows[1]}"].value == "≤5万元"
    assert first[f"{actual}{cells['P-001'].indicator_rows[0]}"].value == "85.7%（12/14）"
    assert first[f"{target}{cells['P-001'].indicator_rows[2]}"].value == "群众满意"


def test_extras_add_guidance_a_hidden_code_sheet_placeholders_and_a_signature(tmp_path: Path) -> None:
    path, bare = tmp_path / "表.xlsx", tmp_path / "素.xlsx"
    cells = write_forms(path, valid_sheets(), sheet_names="numbered")
    plain = write_forms(bare, valid_sheets(), extras=False, grade_row=False, overview_row=False)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["填报说明", "表1", "表2", "代码表"]
    assert book["代码表"].sheet_state == "hidden"
    sheet = book["表1"]
    last = cells["P-001"].indicator_rows[-1]
    assert all(sheet[f"{c}{row}"].value is None for c in "BCDEFGHI" for row in (last + 1, last + 2))
    assert sheet[f"D{last + 2}"].border.bottom.style == "thin"
    assert any(str(cell.value).startswith("单位负责人") for row in sheet.iter_rows() for cell in row)
    assert openpyxl.load_workbook(bare).sheetnames == ["信访救助专项资金", "领导接访费用"]
    assert plain["P-001"].grade is None
    assert int(plain["P-001"].total_score[1:]) == plain["P-001"].indicator_rows[-1] + 1


def test_hubei_weighs_the_budget_20_and_labels_each_group(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, scored_sheets(), "湖北")["P-002"]
    sheet = opened(path, cells)
    assert sheet[cells.budget_weight].value == 20 and sheet[cells.budget_score].value == 20
    count = cells.indicator_rows[2]
    assert sheet[f"B{count - 1}"].value == "产出指标（60分）"
    assert f"B{count - 1}:I{count - 1}" in {str(r) for r in sheet.merged_cells.ranges}
    assert sheet[f"C{cells.indicator_rows[1]}"].value == "进度指标"


def test_hebei_numbers_names_and_types_at_least_targets_bare(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, valid_sheets(), "河北")["P-002"]
    sheet = opened(path, cells)
    first, second = cells.indicator_rows
    assert (sheet[f"D{first}"].value, sheet[f"E{first}"].value) == ("指标1：接待群众批次", 50)
    assert (sheet[f"D{second}"].value, sheet[f"E{second}"].value) == ("指标2：项目支出", "≤5万元")


def test_anhui_names_this_years_appropriation_as_anhui_does(tmp_path: Path) -> None:
    cells = write_forms(tmp_path / "表.xlsx", valid_sheets(), "安徽")["P-001"]
    assert "其中：本年财政拨款" in cells.funding_rows and "其中：当年财政拨款" not in cells.funding_rows


def test_sichuan_splits_targets_into_nature_value_and_unit(tmp_path: Path) -> None:
    path = tmp_path / "表.xlsx"
    cells = write_forms(path, valid_sheets(), "四川")["P-001"]
    sheet = opened(path, cells)
    assert sheet["A1"].value == "部门预算项目支出绩效自评表(2020年度)"
    assert cells.grade is None
    row = cells.indicator_rows[0]
    assert [sheet[f"{c}{row}"].value for c in "EFGH"] == ["≥", 90, "%", "85.7（12/14）"]
    assert sheet[f"E{cells.indicator_rows[2]}"].value == "定性"
    assert (sheet[cells.rate].value, sheet[cells.budget_weight].value) == (0.8562, 10)
    assert sheet[f"B{cells.funding_rows['财政资金']}"].value == "财政资金"
    assert sheet[f"A{cells.indicator_rows[0] - 1}"].value == "绩效指标(90分)"


def test_sichuan_refuses_money_carried_over_which_its_form_has_no_row_for(tmp_path: Path) -> None:
    sheets = valid_sheets()
    sheets["资金"].append({"项目编号": "P-002", "资金来源": "上年结转", "年初预算数(万元)": 0,
                          "全年预算数(万元)": 1, "全年执行数(万元)": 1})
    path = tmp_path / "表.xlsx"
    with pytest.raises(ValueError, match="上年结转"):
        write_forms(path, sheets, "四川")
    assert not path.exists()
