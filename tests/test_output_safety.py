"""Workbook text written into 汇总表.xlsx and 校验报告.xlsx stays text: never a formula, never a crash."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline.errors import Problem, Severity
from pipeline.write.names import PROBLEMS_NAME, SUMMARY_NAME
from pipeline.write.problembook import write_problems
from pipeline.write.summarybook import write_summary

# Text a spreadsheet could take for a formula (CSV/formula injection), also behind white space.
FORMULA_LIKE = {
    "equals": "=1+1",
    "hyperlink": '=HYPERLINK("http://example.com","点我")',
    "dde": "=cmd|' /C calc'!A0",
    "plus": "+1+1",
    "minus": "-1+1",
    "at": "@SUM(A1:A2)",
    "lone-equals": "=",
    "space-equals": " =1+1",
    "spaces-plus": "   +SUM(1,2)",
    "tab-equals": "\t=1+1",
    "cr-equals": "\r=1+1",
    "lf-equals": "\n=1+1",
    "crlf-at": "\r\n@SUM(1)",
    "fullwidth-equals": "＝1+1",
}
FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")


def as_stored(text: str) -> str:
    """The text as a spreadsheet gives it back: XML turns a bare CR into LF (line breaks stay)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sheet_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("xl/worksheets/sheet1.xml")


def summary_row(text: str) -> dict[str, object]:
    return {"项目编号": text, "项目名称": text, "主管部门": text, "全年预算数(万元)": "5", "总得分": "96.34",
            "评价等级": "优", "报告文件": f"reports/{text}.docx"}


@pytest.mark.parametrize("text", FORMULA_LIKE.values(), ids=FORMULA_LIKE.keys())
def test_summary_stores_formula_like_text_as_text(tmp_path: Path, text: str) -> None:
    path = write_summary(tmp_path / SUMMARY_NAME, [summary_row(text)])
    assert not FORMULA_TAG.search(sheet_xml(path))
    sheet = openpyxl.load_workbook(path)["汇总表"]
    for cell in (sheet["A4"], sheet["B4"], sheet["C4"], sheet["M4"]):  # 编号, 名称, 主管部门, the report's link
        assert cell.data_type == "s"
    assert sheet["B4"].value == as_stored(text)
    assert sheet["F4"].data_type == "n"  # numbers stay numbers


@pytest.mark.parametrize("text", FORMULA_LIKE.values(), ids=FORMULA_LIKE.keys())
def test_problem_list_stores_formula_like_text_as_text(tmp_path: Path, text: str) -> None:
    problem = Problem("项目", 2, text, text, Severity.ERROR, text)
    path = write_problems(tmp_path / PROBLEMS_NAME, [problem])
    assert not FORMULA_TAG.search(sheet_xml(path))
    sheet = openpyxl.load_workbook(path).active
    for ref in ("E2", "G2"):  # 值, 说明
        assert sheet[ref].data_type == "s"
        assert sheet[ref].value == as_stored(text)


def test_formulas_are_not_evaluated_when_reading_back_with_cached_values(tmp_path: Path) -> None:
    path = write_summary(tmp_path / SUMMARY_NAME, [summary_row("=1+1")])
    sheet = openpyxl.load_workbook(path, data_only=True)["汇总表"]
    assert sheet["B4"].value == "=1+1"


@pytest.mark.parametrize("text", ["a\x01b", "\x00=1", "x\x0by\x0cz\x1f"], ids=["soh", "nul-formula", "vt-ff-us"])
def test_control_characters_from_a_workbook_do_not_stop_the_outputs(tmp_path: Path, text: str) -> None:
    # The calamine reader decodes Excel's _x0001_ escapes, so a cell's text can carry them.
    problem = Problem("项目", 2, "项目名称", text, Severity.WARNING, f"说明{text}")
    problems = write_problems(tmp_path / PROBLEMS_NAME, [problem])
    summary = write_summary(tmp_path / SUMMARY_NAME, [summary_row(text)])
    kept = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)
    assert openpyxl.load_workbook(problems).active["E2"].value == kept  # 值
    cell = openpyxl.load_workbook(summary)["汇总表"]["B4"]
    assert (cell.value, cell.data_type) == (kept, "s")
    assert not FORMULA_TAG.search(sheet_xml(summary))
