"""自评表.xlsx: each project's filled 项目支出绩效自评表, written from the report contexts.

The workbook is real (xlsxwriter), read back with openpyxl for its cells and with the form
importer for its meaning: a workbook of exported forms must give the same projects and scores as
the four-sheet workbook the contexts came from, so an office can correct the form and run it
again. One sheet is printed by LibreOffice to check it lies on a landscape page as the form does.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import time
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline.config import Settings
from pipeline.core.forms import funding_source
from pipeline.core.indicators import ProjectResult
from pipeline.core.narrative import paragraphs
from pipeline.run import steps
from pipeline.write.formsheets import sheet_titles, write_form_workbook
from tests.conftest import Rows, valid_sheets, write_workbook
from tests.inprocess import reports_of
from tests.pdftext import convert_to_pdf, pdf_pages

CREATED = datetime(2021, 3, 15, 9, 0)
Contexts = list[dict[str, object]]


def example_sheets() -> dict[str, Rows]:
    """The conftest workbook with what the form must show: a second source of money (上年结转),
    and an 一级 over three rows whose first 二级 spans two (产出: 数量 ×2, 时效)."""
    sheets = copy.deepcopy(valid_sheets())
    sheets["资金"][0].update({"年初预算数(万元)": 80, "全年预算数(万元)": 80, "全年执行数(万元)": 70.62})
    sheets["资金"].insert(1, {"项目编号": "P-001", "资金来源": "上年结转资金", "年初预算数(万元)": 20,
                             "全年预算数(万元)": 20, "全年执行数(万元)": 15})
    p002 = [row for row in sheets["绩效指标"] if row["项目编号"] == "P-002"]
    count, cost = p002
    count["分值"] = 30
    extra = [count | {"三级指标": "按时接访率", "二级指标": "时效指标", "指标方向": "≥", "年度指标值": 95,
                      "实际完成值": None, "计量单位": "%", "分子": 11, "分母": 12, "分值": 10,
                      "偏差原因分析及改进措施": "一批次因天气顺延。"},
             count | {"三级指标": "接访天数", "年度指标值": 12, "实际完成值": 12, "计量单位": "天", "分值": 20}]
    sheets["绩效指标"] = [row for row in sheets["绩效指标"] if row["项目编号"] == "P-001"] + [extra[0], count,
                                                                                        cost, extra[1]]
    return sheets


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Contexts]:
    """The four-sheet workbook, its 自评表.xlsx written from the run's contexts, and the contexts."""
    root = tmp_path_factory.mktemp("forms")
    workbook = write_workbook(root / "工作簿.xlsx", example_sheets())
    _, contexts = reports_of(workbook, root / "output")
    ordered = [contexts[name] for name in sorted(contexts)]  # P-001, P-002 by file name
    return workbook, write_form_workbook(root / "自评表.xlsx", ordered, CREATED), ordered


def results_of(path: Path) -> tuple[list[ProjectResult], steps.CheckedWorkbook]:
    """Every project of a workbook, read (in whichever layout) and scored as the run does."""
    found = steps.check_workbook(path, Settings())
    assert found.status == "success", [p.message for p in found.problems]
    return steps.evaluate_projects(found.projects, found.profile, found.forms), found


def stated(results: Sequence[ProjectResult]) -> dict[str, object]:
    """What a report states of each project, by 项目名称 (a form's 项目编号 is its sheet's name)."""
    return {r.project.name: {
        "year": r.project.year, "department": r.project.department, "unit": r.project.implementing_unit,
        "overview": paragraphs(r.project.overview), "goal": r.project.annual_goal or "",
        "performance": paragraphs(r.project.performance or ""),
        "funding": sorted((funding_source(f.source), f.initial_budget_wan, f.adjusted_budget_wan, f.spent_wan)
                          for f in r.project.funding),
        "money": (r.initial_budget_wan, r.adjusted_budget_wan, r.spent_wan, r.execution_rate),
        "budget": (r.budget_weight, r.budget_score),
        "indicators": sorted((i.indicator.level1, i.indicator.level2, i.indicator.name, i.indicator.direction,
                              i.indicator.target, i.indicator.unit, i.actual, i.indicator.weight, i.score,
                              i.indicator.deviation) for i in r.indicators),
        "total": (r.weight_total, r.total_score, r.grade),
    } for r in results}


def sheet_of(path: Path, name: str) -> openpyxl.worksheet.worksheet.Worksheet:
    return openpyxl.load_workbook(path)[name]


def row_labelled(sheet: openpyxl.worksheet.worksheet.Worksheet, label: str, column: str = "B") -> int:
    """The row whose cell in `column` reads `label`."""
    return next(row for row in range(1, sheet.max_row + 1) if sheet[f"{column}{row}"].value == label)


def test_the_exported_forms_read_back_as_the_same_projects_and_scores(exported: tuple[Path, Path, Contexts]) -> None:
    workbook, forms, _ = exported
    original, _ = results_of(workbook)
    again, found = results_of(forms)

    assert found.forms is not None, "read as a workbook of forms"
    assert [r.project.project_id for r in again] == ["信访救助专项资金", "领导接访费用"]
    assert stated(again) == stated(original)
    # Every figure on the form is the computed one: the importer finds nothing typed to correct.
    figures = [w.message for r in again for w in r.warnings if "计算" in w.message]
    assert figures == []


def test_level1_and_level2_are_merged_down_their_rows_and_the_label_down_the_table(
        exported: tuple[Path, Path, Contexts]) -> None:
    _, forms, _ = exported
    sheet = sheet_of(forms, "领导接访费用")
    header = row_labelled(sheet, "一级指标")
    names = [sheet[f"D{row}"].value for row in range(header + 1, header + 5)]
    assert names == ["接待群众批次", "接访天数", "按时接访率", "项目支出"], "the form's order: 数量, 时效, 成本"
    merged = {str(r) for r in sheet.merged_cells.ranges}
    first = header + 1
    assert f"A{first}:A{first + 3}" in merged and sheet[f"A{first}"].value == "绩\n效\n指\n标"
    assert f"B{first}:B{first + 2}" in merged and sheet[f"B{first}"].value == "产出指标"
    assert f"C{first}:C{first + 1}" in merged and sheet[f"C{first}"].value == "数量指标"
    assert not any(r.startswith((f"C{first + 2}:", f"B{first + 3}:")) for r in merged)


def test_figures_are_numbers_shown_as_money_rates_and_scores(exported: tuple[Path, Path, Contexts]) -> None:
    _, forms, _ = exported
    sheet = sheet_of(forms, "信访救助专项资金")
    total = row_labelled(sheet, "年度资金总额")
    shown = {column: (sheet[f"{column}{total}"].value, sheet[f"{column}{total}"].number_format)
             for column in "DEFGHI"}
    assert shown == {"D": (100, "0.00"), "E": (100, "0.00"), "F": (85.62, "0.00"), "G": (10, "General"),
                     "H": (0.8562, "0.00%"), "I": (8.56, "0.00")}
    assert [sheet[f"B{total + offset}"].value for offset in (1, 2, 3)] == ["其中：财政拨款", "上年结转", "其他资金"]
    assert [sheet[f"{c}{total + 2}"].value for c in "DEF"] == [20, 20, 15]
    assert [sheet[f"{c}{total + 3}"].value for c in "DEFG"] == [None, None, None, "—"]
    header = row_labelled(sheet, "一级指标")
    scores = [sheet[f"H{row}"] for row in range(header + 1, header + 4)]
    assert all(isinstance(c.value, int | float) and c.number_format == "0.00" for c in scores)
    assert sheet[f"F{header + 1}"].value == "85.7%\n（12/14）", "the rate over the fraction it came from"
    grand = row_labelled(sheet, "总分", "A")
    assert (sheet[f"G{grand}"].value, sheet[f"H{grand}"].value) == (100, pytest.approx(float(
        exported[2][0]["total_score"]))) and sheet[f"H{grand}"].number_format == "0.00"
    assert sheet[f"G{grand + 1}"].value == exported[2][0]["grade"] and sheet[f"A{grand + 1}"].value == "自评等级"


def test_the_head_of_the_form_is_the_printed_one(exported: tuple[Path, Path, Contexts]) -> None:
    _, forms, contexts = exported
    sheet = sheet_of(forms, "信访救助专项资金")
    assert (sheet["A1"].value, sheet["A2"].value) == ("项目支出绩效自评表", "（2020年度）")
    assert [sheet[f"A{row}"].value for row in (3, 4, 5)] == ["项目名称", "主管部门", "项目概况"]
    assert (sheet["B3"].value, sheet["E4"].value, sheet["F4"].value) == ("信访救助专项资金", "实施单位", "如皋市信访局")
    assert sheet["B5"].value == "\n".join(contexts[0]["overview"])  # type: ignore[arg-type]
    goal = row_labelled(sheet, "预期目标")
    assert (sheet[f"B{goal + 1}"].value, sheet[f"E{goal}"].value, sheet[f"E{goal + 1}"].value) == (
        "化解信访积案", "实际完成情况", "化解积案12件。")
    edges = [(sheet.cell(row, 1).border.left.style, sheet.cell(row, 9).border.right.style)
             for row in range(3, sheet.max_row + 1)]
    assert set(edges) == {("thin", "thin")}, "the form is ruled down both sides"


def test_the_sheet_prints_landscape_on_a4_one_page_wide_with_the_indicator_header_repeated(
        exported: tuple[Path, Path, Contexts]) -> None:
    _, forms, _ = exported
    sheet = sheet_of(forms, "领导接访费用")
    setup = sheet.page_setup
    # fitToWidth left out means 1 (ECMA-376 default), which xlsxwriter relies on; 0 tall: as many as needed.
    assert (setup.orientation, setup.paperSize, setup.fitToWidth or 1, setup.fitToHeight) == ("landscape", 9, 1, 0)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    header = row_labelled(sheet, "一级指标")
    assert sheet.print_title_rows == f"${header}:${header}"
    assert [sheet.column_dimensions[c].width > 0 for c in "ABCDEFGHI"] == [True] * 9


def test_a_rerun_gives_the_same_bytes_and_the_creation_time_is_the_given_one(
        exported: tuple[Path, Path, Contexts], tmp_path: Path) -> None:
    _, forms, contexts = exported
    time.sleep(1.1)  # a clock-stamped file would now differ
    again = write_form_workbook(tmp_path / "自评表.xlsx", contexts, CREATED)
    assert again.read_bytes() == forms.read_bytes()
    with zipfile.ZipFile(again) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"2021-03-15T09:00:00Z" in archive.read("docProps/core.xml")
    other = write_form_workbook(tmp_path / "other.xlsx", contexts, datetime(2022, 1, 1))
    assert other.read_bytes() != forms.read_bytes()


@pytest.mark.parametrize(("names", "titles"), [
    (["a:b/c?d*e[f]g\\h"], ["a_b_c_d_e_f_g_h"]),
    (["一" * 40], ["一" * 31]),
    (["项目", "资金", "History"], ["项目(自评表)", "资金(自评表)", "History(自评表)"]),
    (["经费", "经费", "经费(2)", "ABC", "abc"], ["经费", "经费(2)", "经费(2)(2)", "ABC", "abc(2)"]),
    (["二" * 31, "二" * 31], ["二" * 31, "二" * 28 + "(2)"]),
    (["", "  '' "], ["自评表", "自评表(2)"]),
])
def test_sheet_names_are_valid_unique_and_follow_the_project_names(names: list[str], titles: list[str]) -> None:
    assert sheet_titles(names) == titles
    assert sheet_titles(names) == titles, "the same names always give the same sheets"


def test_an_exported_sheet_printed_by_libreoffice_is_one_landscape_page_of_the_form(
        exported: tuple[Path, Path, Contexts], tmp_path: Path) -> None:
    if shutil.which("soffice") is None or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice (soffice) and poppler (pdftotext) are needed")
    _, forms, contexts = exported
    one = write_form_workbook(tmp_path / "领导接访费用.xlsx", contexts[1:], CREATED)
    pdf = convert_to_pdf([one], tmp_path, tmp_path / "lo-profile", timeout=300)[0]
    pages = pdf_pages(pdf)
    assert len(pages) == 1 and pages[0].width > pages[0].height, "one landscape page"
    lines = [" ".join(word.text for word in line.words) for line in pages[0].lines]
    text = "".join(lines).replace(" ", "")
    for label in ("项目支出绩效自评表", "（2020年度）", "项目资金", "年度资金总额", "其中：财政拨款", "预期目标",
                  "一级指标", "偏差原因分析", "总分", "自评等级", "领导接访费用", "91.7%", "11/12",
                  str(contexts[1]["total_score"])):
        assert label in text, label
    png = tmp_path / "form"
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-singlefile", str(pdf), str(png)], check=True, timeout=120)
    assert png.with_suffix(".png").stat().st_size > 0


def test_no_contexts_still_give_a_workbook(tmp_path: Path) -> None:
    path = write_form_workbook(tmp_path / "自评表.xlsx", [], CREATED)
    assert openpyxl.load_workbook(path).sheetnames == ["自评表"]


def mapping(value: object) -> Mapping[str, object]:
    assert isinstance(value, Mapping)
    return value


def test_amounts_keep_the_contexts_two_decimals_exactly(exported: tuple[Path, Path, Contexts]) -> None:
    _, forms, contexts = exported
    sheet = sheet_of(forms, "信访救助专项资金")
    total = row_labelled(sheet, "年度资金总额")
    budget = mapping(contexts[0]["budget"])
    assert Decimal(str(sheet[f"F{total}"].value)) == Decimal(str(budget["spent"]))
    assert Decimal(str(sheet[f"H{total}"].value)) * 100 == Decimal(str(budget["rate"]).rstrip("%"))


def test_a_form_longer_than_a_page_starts_its_indicator_table_on_a_new_page(
        exported: tuple[Path, Path, Contexts], tmp_path: Path) -> None:
    _, forms, contexts = exported
    long = [contexts[0] | {"performance": ["完成情况写得很长的一段文字。" * 30] * 4}, contexts[1]]
    path = write_form_workbook(tmp_path / "自评表.xlsx", long, CREATED)
    book = openpyxl.load_workbook(path)
    header = row_labelled(book["信访救助专项资金"], "一级指标")
    assert [brk.id for brk in book["信访救助专项资金"].row_breaks.brk] == [header - 1], "a break above the table"
    assert book["领导接访费用"].row_breaks.brk == [], "a form that fits one page is not broken"
