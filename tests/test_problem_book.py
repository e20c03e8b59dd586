"""校验报告.xlsx made for fixing: cell, project and indicator of each problem, what to change, root
causes before their consequences, % values as shown, one page wide; and the console's warnings.

Every workbook here is a real .xlsx written with the fixtures of `conftest.py`, checked and
scored by the run's own steps, and 校验报告 is read back with openpyxl.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from pipeline import cli
from pipeline.config import Settings
from pipeline.errors import PROBLEM_COLUMNS, Counts, Problem, Severity, Status
from pipeline.run import steps
from pipeline.write.names import PROBLEMS_NAME
from pipeline.write.problembook import ordered, write_problems
from tests.conftest import excel_row

Sheets = dict[str, list[dict[str, object]]]
COLUMN = {name: index for index, name in enumerate(PROBLEM_COLUMNS)}


def report_rows(path: Path) -> list[dict[str, str]]:
    """校验报告's rows below the header, by column name."""
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == PROBLEM_COLUMNS
    return [{name: str(value or "") for name, value in zip(PROBLEM_COLUMNS, row, strict=True)} for row in rows[1:]]


def problems_of(path: Path, tmp_path: Path) -> list[Problem]:
    """Every problem a run finds in the workbook at `path`: the check's, then the scoring's 警告."""
    checked = steps.check_workbook(path, Settings(output_dir=tmp_path / "out"))
    if checked.status != Status.SUCCESS:
        return list(checked.problems)
    results = steps.evaluate_projects(checked.projects, checked.profile, checked.forms)
    return [*checked.problems, *(w for result in results for w in result.warnings)]


def test_a_duplicated_project_id_is_the_first_row_and_its_consequences_name_its_row(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    # The second project's 项目编号 copied from the first: every row of the other sheets that
    # names P-002 now refers to a project 项目 lacks. A warning on 项目 sorts before them by
    # sheet name in code points (资 < 项 < 绩 is not the office's order), so it is there too.
    sheets["项目"][1]["项目编号"] = "P-001"
    sheets["绩效指标"][1]["自评得分"] = 40
    path = workbook_factory(sheets)

    written = write_problems(tmp_path / PROBLEMS_NAME, problems_of(path, tmp_path))
    rows = report_rows(written)

    first = rows[0]
    assert (first["工作表"], first["单元格"], first["项目编号"], first["级别"]) == ("项目", "A2", "P-001", "错误")
    duplicate = rows[1]
    assert (duplicate["工作表"], duplicate["单元格"], duplicate["指标/项目名称"]) == ("项目", "A3", "领导接访费用")
    assert "与第2行重复" in duplicate["怎么改"] and "P-002" in duplicate["怎么改"]  # what it probably should be
    consequences = [row for row in rows if "不存在" in row["说明"]]
    assert [(row["工作表"], row["单元格"]) for row in consequences] == [
        ("资金", f"A{excel_row(1)}"), ("使用原则", f"A{excel_row(2)}"),
        ("绩效指标", f"A{excel_row(3)}"), ("绩效指标", f"A{excel_row(4)}")]
    for row in consequences:
        assert row["项目编号"] == "P-002"
        assert row["怎么改"].startswith("由本表第3行（项目 第3行「项目编号」）引起"), row
    assert rows.index(consequences[0]) > 1
    assert all(row["怎么改"] for row in rows)


def test_rows_follow_the_workbook_order_of_sheets_not_their_names(tmp_path: Path) -> None:
    found = [Problem("绩效指标", 4, "分值", "1", Severity.ERROR, "c"), Problem("资金", 9, "资金来源", "x", Severity.ERROR, "b"),
             Problem("项目", 5, "年度", "1", Severity.ERROR, "a"), Problem("使用原则", 2, "序号", "0", Severity.ERROR, "d"),
             Problem("资金", 3, "资金来源", "y", Severity.WARNING, "e")]

    assert [p.message for p in ordered(found)] == ["a", "b", "d", "c", "e"]


def test_a_warning_on_a_percent_cell_names_its_cell_and_project_and_quotes_it_with_its_percent(
    workbook_factory: Callable[..., Path], sheets: Sheets, tmp_path: Path,
) -> None:
    # 实际完成值 typed as 0.976 in a cell formatted 0.0%: Excel shows 97.6%, 分子/分母 give 96.7%.
    sheets["绩效指标"][1]["实际完成值"] = 0.976
    path = workbook_factory(sheets, number_formats={("绩效指标", 1, "实际完成值"): "0.0%"})

    rows = report_rows(write_problems(tmp_path / PROBLEMS_NAME, problems_of(path, tmp_path)))

    [row] = [row for row in rows if "分子/分母" in row["说明"]]
    assert (row["工作表"], row["单元格"], row["项目编号"], row["指标/项目名称"], row["级别"]) == (
        "绩效指标", f"G{excel_row(1)}", "P-001", "重点人员化解率", "警告")
    assert row["值"] == "97.6%"
    assert "填写为 97.6%" in row["说明"] and "96.7%" in row["说明"]
    assert not re.search(r"97\.6(?!%)", row["说明"])
    assert row["怎么改"] == "请核对此格或分子、分母"
    assert not row["说明"].endswith(row["怎么改"])  # the advice is split off, not repeated


def test_the_report_prints_landscape_one_page_wide_with_the_header_on_every_page(tmp_path: Path) -> None:
    problem = Problem("项目", 2, "年度", "1900", Severity.ERROR, "项目 第2行「年度」为 1900，应在 2000 到 2100 之间")

    path = write_problems(tmp_path / PROBLEMS_NAME, [problem] * 300)

    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    # fitToWidth absent is 1, the schema's default (xlsxwriter writes only what differs from it).
    assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.freeze_panes == "A2"
    for name in ("说明", "怎么改"):
        assert sheet.cell(row=2, column=COLUMN[name] + 1).alignment.wrap_text
    assert sheet.cell(row=2, column=COLUMN["怎么改"] + 1).value  # never empty for an error


def test_the_same_problems_give_the_same_bytes(tmp_path: Path) -> None:
    problems = [Problem("资金", 3, "资金来源", "其它", Severity.ERROR, "资金 第3行「资金来源」为 其它，应为以下之一：财政拨款")]

    first = write_problems(tmp_path / "a.xlsx", problems).read_bytes()
    second = write_problems(tmp_path / "b.xlsx", problems).read_bytes()

    assert first == second
    with zipfile.ZipFile(tmp_path / "a.xlsx") as archive:
        assert {info.date_time[0] for info in archive.infolist()} == {1980}  # xlsxwriter's fixed date
        assert b"2020-01-01T00:00:00Z" in archive.read("docProps/core.xml")
    dated = write_problems(tmp_path / "c.xlsx", problems, created=datetime(2021, 3, 15)).read_bytes()
    assert dated == write_problems(tmp_path / "d.xlsx", problems, created=datetime(2021, 3, 15)).read_bytes()


def test_problems_travel_between_tasks_with_every_field(tmp_path: Path) -> None:
    problem = Problem("绩效指标", 5, "实际完成值", "97.6%", Severity.WARNING, "m", cell="G5", project_id="P-1",
                      item="化解率", fix="请核对", cause="项目 第3行「项目编号」")
    path = tmp_path / "summary.json"
    path.write_bytes(steps.summary_json([], [problem]))

    assert steps.summary_data(path) == ([], [problem])


def test_the_console_lists_the_first_warnings_of_a_successful_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    warnings = tuple(Problem("绩效指标", row, "自评得分", "40", Severity.WARNING, f"绩效指标 第{row}行 警告{row}")
                     for row in range(30, 2, -1))
    summary = steps.RunSummary(tmp_path / "工作簿.xlsx", Status.SUCCESS, tmp_path,
                               Counts(projects=1, reports=1, warnings=len(warnings)), problems=warnings)

    assert cli.print_summary(summary) == 0

    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if line.startswith("  - ")]
    assert listed[0] == "  - 绩效指标 第3行 警告3"  # in the report's order, not as found
    assert len(listed) == cli.SHOWN_WARNINGS
    assert f"另有 {len(warnings) - cli.SHOWN_WARNINGS} 条警告" in out
