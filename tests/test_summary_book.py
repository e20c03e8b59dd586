"""汇总表.xlsx as an officer uses it: figures as numbers, a 合计 row that adds up, filter and print
setup, links that open the reports from the unzipped download, a chart sheet, the same bytes on
every rerun; and the summary rows it is written from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path, PureWindowsPath

import openpyxl
import pytest

from pipeline.config import Settings
from pipeline.core.context import summary_row
from pipeline.run import steps
from pipeline.serve.runs import TOTAL_LABEL, read_table
from pipeline.write import summarybook
from pipeline.write.names import REPORTS_DIR, SUMMARY_NAME
from pipeline.write.summarybook import summary_title, write_summary
from tests.inprocess import reports_of
from tests.summarytable import summary_sheet_rows

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "input" / "2020年度项目支出绩效自评表.xlsx"
RUN_DATE = date(2021, 3, 1)


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example workbook run in this process: its published output folder."""
    reports, _ = reports_of(EXAMPLE, tmp_path_factory.mktemp("out"))
    return reports.parent


def column(header: tuple[object, ...], name: str) -> int:
    return header.index(name)


def row(n: int, **changes: object) -> dict[str, object]:
    """A summary row as `summary_row` gives it (exact decimals as strings)."""
    base: dict[str, object] = {
        "项目编号": f"P-{n:03d}", "项目名称": f"第{n}个项目", "主管部门": f"部门{n % 3}", "实施单位": "某单位",
        "年初预算数(万元)": "100", "全年预算数(万元)": "100", "全年执行数(万元)": f"{50 + n % 50}.125",
        "预算执行率": str(Decimal(50 + n % 50) / 100 + Decimal("0.0012")), "总得分": f"{60 + n % 40}.50",
        "评价等级": "良", "警告数": n % 2, "评分规则": "财预〔2020〕10号", "预算执行偏差原因": "", "未完全达成": [],
        "报告文件": f"{REPORTS_DIR}/P-{n:03d}_第{n}个项目.docx",
    }
    return {**base, **changes}


def test_the_summary_row_carries_exact_figures_as_json_types() -> None:
    checked = steps.check_workbook(EXAMPLE, Settings())
    results = steps.evaluate_projects(checked.projects, checked.profile, checked.forms)
    rescue = summary_row(results[3], checked.profile)

    assert list(rescue) == ["项目编号", "项目名称", "主管部门", "实施单位", "年初预算数(万元)", "全年预算数(万元)",
                            "全年执行数(万元)", "预算执行率", "总得分", "评价等级", "警告数", "评分规则",
                            "预算执行偏差原因", "未完全达成"]
    assert (rescue["全年预算数(万元)"], rescue["全年执行数(万元)"], rescue["预算执行率"]) == ("100", "85.62", "0.8562")
    assert (rescue["总得分"], rescue["评价等级"], rescue["警告数"]) == ("97.61", "优", 1)
    assert str(rescue["预算执行偏差原因"]).startswith("部分救助对象")
    [(name, actual, reason)] = rescue["未完全达成"]  # type: ignore[misc]
    assert (name, actual) == ("南通市交办信访积案化解率", "85.7%") and reason.startswith("南通市交办的14件")


def test_the_rate_is_a_number_shown_as_a_percentage_and_money_is_unrounded(tmp_path: Path) -> None:
    path = write_summary(tmp_path / SUMMARY_NAME, [row(1, **{"全年执行数(万元)": "89.974", "预算执行率": "0.89974"})])
    sheet = openpyxl.load_workbook(path)["汇总表"]
    header = [c.value for c in sheet[3]]
    spent, rate, score = (sheet.cell(4, column(tuple(header), name) + 1)
                          for name in ("全年执行数", "预算执行率", "总得分"))
    assert (spent.value, spent.number_format) == (89.974, "0.00")  # not pre-rounded to 89.97
    assert (rate.value, rate.data_type, rate.number_format) == (0.89974, "n", "0.00%")
    assert (score.value, score.number_format) == (61.5, "0.00")


def test_the_example_summary_has_title_unit_header_rows_and_a_total_that_adds_up(example_folder: Path) -> None:
    path = example_folder / SUMMARY_NAME
    sheet = openpyxl.load_workbook(path)["汇总表"]
    assert sheet["A1"].value == "2020年度如皋市信访局项目支出绩效自评汇总表"  # the year, the one 主管部门
    assert sheet["A2"].value == "单位：万元"
    header, rows, total = summary_sheet_rows(path)
    assert header == ("项目编号", "项目名称", "主管部门", "实施单位", "年初预算数", "全年预算数", "全年执行数",
                      "预算执行率", "总得分", "评价等级", "警告数", "评分规则", "报告")
    assert len(rows) == 7

    def values(name: str) -> list[float]:
        return [r[column(header, name)] for r in rows]  # type: ignore[misc]

    for name in ("年初预算数", "全年预算数", "全年执行数", "警告数"):
        assert total[column(header, name)] == pytest.approx(sum(values(name)))
    overall = total[column(header, "预算执行率")]
    assert overall == pytest.approx(sum(values("全年执行数")) / sum(values("全年预算数")))  # 166.13 / 180.51
    assert overall != pytest.approx(sum(values("预算执行率")) / 7)  # not the mean of the rates
    assert total[column(header, "总得分")] == pytest.approx(sum(values("总得分")) / 7)
    assert (total[0], total[column(header, "评价等级")]) == ("合计", "优7")
    assert "共7个项目" in str(total[1]) and "平均分" in str(total[1])


def test_the_summary_filters_freezes_and_prints_landscape_one_page_wide_with_its_header_on_each_page(
        example_folder: Path) -> None:
    sheet = openpyxl.load_workbook(example_folder / SUMMARY_NAME)["汇总表"]
    assert sheet.auto_filter.ref == "A3:M10"  # header and projects, not the 合计 row
    assert sheet.freeze_panes == "C4"
    assert sheet.print_title_rows == "$1:$3"
    setup = sheet.page_setup
    assert setup.orientation == "landscape" and setup.paperSize == 9
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert (setup.fitToWidth or 1, setup.fitToHeight) == (1, 0)  # one page wide, as many pages long as needed


def test_every_report_link_opens_a_report_of_the_zip_and_of_the_folder(example_folder: Path) -> None:
    sheet = openpyxl.load_workbook(example_folder / SUMMARY_NAME)["汇总表"]
    links = {cell.value: cell.hyperlink.target for cell in sheet["M"][3:10]}  # type: ignore[union-attr]
    [zip_path] = example_folder.glob("*.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    # 汇总表 sits at the top of the folder and of the zip, beside reports/: unzipped, its links open.
    assert SUMMARY_NAME in names
    assert len(links) == 7
    for shown, target in links.items():
        relative = PureWindowsPath(target).as_posix()  # Excel's relative file link: reports\<file>.docx
        assert relative == f"{REPORTS_DIR}/{shown}"
        assert (example_folder / relative).is_file()
        assert relative in names


def test_the_statistics_sheet_counts_grades_and_holds_a_native_bar_chart(example_folder: Path) -> None:
    book = openpyxl.load_workbook(example_folder / SUMMARY_NAME)
    assert book.sheetnames == ["汇总表", "统计"]
    stats = [r for r in book["统计"].iter_rows(values_only=True)]
    assert stats[2][:3] == ("优", 7, 1)
    assert ("信访救助专项资金", 97.61, 85.62) in [r[:3] for r in stats]  # the chart's data: rate in points
    with zipfile.ZipFile(example_folder / SUMMARY_NAME) as archive:
        chart = archive.read("xl/charts/chart1.xml").decode()
        drawing_rels = archive.read("xl/worksheets/_rels/sheet2.xml.rels").decode()
    assert "<c:barChart>" in chart and chart.count("<c:ser>") == 2
    assert "统计!$B$" in chart and "统计!$C$" in chart  # scores and rates
    assert "drawing1.xml" in drawing_rels


def test_a_big_workbook_charts_the_lowest_twenty_and_each_department(tmp_path: Path) -> None:
    rows = [row(n) for n in range(1, 201)]
    path = write_summary(tmp_path / SUMMARY_NAME, rows, "2020年度某市项目支出绩效自评汇总表", RUN_DATE)
    with zipfile.ZipFile(path) as archive:
        charts = [archive.read(f"xl/charts/chart{n}.xml").decode() for n in (1, 2)]
        assert "xl/charts/chart3.xml" not in archive.namelist()
    assert "总得分最低的20个项目（共200个）" in charts[0]
    assert len(re.findall(r"<c:pt idx=", charts[0])) <= 3 * 20 * 2  # bounded, never 200 bars
    assert "各主管部门平均得分与预算执行率" in charts[1]
    stats = list(openpyxl.load_workbook(path)["统计"].iter_rows(values_only=True))
    lowest = [r for r in stats if isinstance(r[0], str) and r[0].startswith("第")][:20]
    assert len(lowest) == 20 and all(r[1] == 60.5 for r in lowest[:5])  # projects 40, 80, … score 60.50


def test_widths_fit_the_headers_counting_chinese_characters_double(tmp_path: Path) -> None:
    path = write_summary(tmp_path / SUMMARY_NAME, [row(1, 项目名称="很长" * 40)])
    sheet = openpyxl.load_workbook(path)["汇总表"]
    for cell in sheet[3]:
        assert sheet.column_dimensions[cell.column_letter].width >= 2 * len(str(cell.value))
    assert sheet.column_dimensions["B"].width <= 31  # a long name wraps instead
    assert sheet["B4"].alignment.wrap_text


def test_a_report_name_with_hash_percent_and_space_links_to_that_file(tmp_path: Path) -> None:
    name = "P-1_3#楼 维修 100%完成.docx"
    path = write_summary(tmp_path / SUMMARY_NAME, [row(1, 报告文件=f"{REPORTS_DIR}/{name}")])
    with zipfile.ZipFile(path) as archive:
        rels = archive.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert 'Target="reports\\P-1_3%23楼%20维修%20100%25完成.docx"' in rels
    cell = openpyxl.load_workbook(path)["汇总表"]["M4"]
    assert cell.value == name and cell.hyperlink.location is None


def test_past_excels_limit_of_links_a_report_is_named_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               recwarn: pytest.WarningsRecorder) -> None:
    monkeypatch.setattr(summarybook, "MAX_LINKS", 2)
    path = write_summary(tmp_path / SUMMARY_NAME, [row(n) for n in range(1, 4)])
    sheet = openpyxl.load_workbook(path)["汇总表"]
    assert [bool(sheet.cell(r, 13).hyperlink) for r in (4, 5, 6)] == [True, True, False]
    assert sheet["M6"].value == "reports/P-003_第3个项目.docx" and not recwarn.list


def test_the_same_rows_and_date_give_the_same_bytes_and_the_date_is_the_one_given(tmp_path: Path) -> None:
    rows = [row(n) for n in range(1, 40)]
    one = write_summary(tmp_path / "a" / SUMMARY_NAME, rows, None, RUN_DATE).read_bytes()
    two = write_summary(tmp_path / "a" / SUMMARY_NAME, [dict(r) for r in rows], None, RUN_DATE).read_bytes()
    later = write_summary(tmp_path / "a" / SUMMARY_NAME, rows, None, date(2021, 3, 2)).read_bytes()
    assert one == two and one != later
    assert openpyxl.load_workbook(tmp_path / "a" / SUMMARY_NAME).properties.created.date() == date(2021, 3, 2)


def test_a_rerun_of_the_example_gives_the_same_summary_bytes(example_folder: Path, tmp_path: Path) -> None:
    again, _ = reports_of(EXAMPLE, tmp_path / "again")
    assert (again.parent / SUMMARY_NAME).read_bytes() == (example_folder / SUMMARY_NAME).read_bytes()


def test_the_title_names_the_year_and_the_one_department_or_else_the_workbook() -> None:
    one = [row(3), row(6)]  # both 部门0
    assert summary_title(one, "预算", [2020]) == "2020年度部门0项目支出绩效自评汇总表"
    assert summary_title([row(1), row(2)], "某县预算", [2020]) == "2020年度某县预算项目支出绩效自评汇总表"
    assert summary_title(one, "预算", [2021, 2020]) == "2020—2021年度部门0项目支出绩效自评汇总表"
    assert summary_title([], "预算") == "预算项目支出绩效自评汇总表"


@pytest.mark.parametrize(("count", "limit"), [(7, 500), (30, 10)])
def test_the_web_page_reads_the_projects_between_header_and_total(tmp_path: Path, count: int, limit: int) -> None:
    path = write_summary(tmp_path / SUMMARY_NAME, [row(n) for n in range(1, count + 1)])
    table = read_table(path, limit, TOTAL_LABEL)
    assert table.columns[:2] == ("项目编号", "项目名称") and table.total == count
    assert len(table.rows) == min(count, limit) and TOTAL_LABEL not in [r[0] for r in table.rows]
    rate = table.rows[0][table.columns.index("预算执行率")]
    assert rate == "51.12%"  # 0.5112 as the sheet shows it


def test_the_bytes_do_not_depend_on_the_machines_time_zone(tmp_path: Path) -> None:
    # xlsxwriter dates its members through the local clock (1980-01-31 00:00 local, read back local).
    script = ("import sys; from datetime import date; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
              "from tests.test_summary_book import row; from pipeline.write.summarybook import write_summary;"
              "write_summary(Path(sys.argv[1]), [row(n) for n in range(1, 9)], '汇总表', date(2021, 3, 1))")
    written = []
    for zone in ("UTC", "America/New_York", "Asia/Shanghai"):
        path = tmp_path / zone.replace("/", "-") / SUMMARY_NAME
        subprocess.run([sys.executable, "-c", script, str(path), str(REPO)], check=True, timeout=120,
                       env={**os.environ, "TZ": zone})
        written.append(path.read_bytes())
    assert written[0] == written[1] == written[2]
    with zipfile.ZipFile(tmp_path / "UTC" / SUMMARY_NAME) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 31, 0, 0, 0)}
