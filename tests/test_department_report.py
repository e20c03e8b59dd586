"""部门汇总报告.docx: figures, bounded tables, reasons, the chart picture and byte-identical reruns.

Rows are built here in the shape of `core.context.summary_row` (JSON types, exact decimals as
text), and once from the example workbook through the pipeline's own steps. Every document is
rendered from the shipped template and opened again with python-docx.
"""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import docx
import pytest

from pipeline.config import Settings
from pipeline.core.context import summary_row
from pipeline.core.department import (
    CHART_NAME,
    DEPARTMENT_TEMPLATE,
    LOWEST_COUNT,
    SHORTFALL_LIMIT,
    TABLE_LIMIT,
    chart_panels,
)
from pipeline.docx import chart
from pipeline.docx.contextrules import DEPARTMENT_FIELDS
from pipeline.docx.department import department_report_bytes
from pipeline.docx.templatecheck import check_template_file, template_check
from pipeline.run.steps import check_workbook, evaluate_projects
from pipeline.write import blank

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
EXAMPLE = ROOT / "input" / "2020年度项目支出绩效自评表.xlsx"
RUN_DATE = date(2021, 3, 15)


def row(number: int, budget: str, spent: str, score: str, grade: str, *, department: str = "某某局",
        deviation: str = "", unmet: list[list[str]] | None = None) -> dict[str, object]:
    """A summary row as the run hands it over."""
    rate = Decimal(spent) / Decimal(budget) if Decimal(budget) else Decimal(0)
    return {"项目编号": f"P{number:05d}", "项目名称": f"项目{number}", "主管部门": department, "实施单位": department,
            "年初预算数(万元)": budget, "全年预算数(万元)": budget, "全年执行数(万元)": spent,
            "预算执行率": str(rate), "总得分": score, "评价等级": grade, "警告数": 0, "评分规则": "财预〔2020〕10号",
            "预算执行偏差原因": deviation, "未完全达成": unmet or [], "报告文件": f"reports/P{number:05d}.docx"}


SMALL = [
    row(1, "100", "50", "70.00", "中", deviation="采购合同延期签订", unmet=[["群众满意度", "85%", "宣传不到位"]]),
    row(2, "1", "1", "95.50", "优"),
    row(3, "10.005", "9.005", "88.125", "良", unmet=[["办结率", "96.7%", ""]]),
]


def document_of(rows: list[dict[str, object]], **kwargs: str) -> docx.document.Document:
    data = department_report_bytes(rows, TEMPLATES, RUN_DATE, "测试工作簿", **kwargs)
    return docx.Document(io.BytesIO(data))


def text_of(document: docx.document.Document) -> str:
    return "\n".join(p.text for p in document.paragraphs)


def test_overview_figures_are_the_sums_and_the_rate_is_total_spent_over_total_budget() -> None:
    text = text_of(document_of(SMALL, year="2020"))
    # Σ预算 111.005 → 111.01 (half-up), Σ执行 60.005 → 60.01; Σ执行/Σ预算 = 54.06% (the mean of the
    # three rates would be 80.00%); mean score (70 + 95.5 + 88.125) / 3 = 84.54.
    assert "本次共对3个项目开展绩效自评" in text
    assert "全年预算数合计111.01万元，全年执行数合计60.01万元，总体预算执行率54.06%" in text
    assert "80.00%" not in text
    assert "平均得分84.54分，评价等级为优1个、良1个、中1个、差0个。" in text
    assert text.splitlines()[0] == "某某局2020年度项目支出绩效自评汇总报告"


def test_small_workbook_table_has_one_row_per_project_and_a_total_row() -> None:
    table = document_of(SMALL).tables[0]
    cells = [[c.text for c in r.cells] for r in table.rows]
    assert cells[0] == ["序号", "项目名称", "全年预算数", "全年执行数", "执行率", "得分", "等级"]
    assert [r[1] for r in cells[1:-1]] == ["项目1", "项目2", "项目3"]
    assert cells[1][2:] == ["100.00", "50.00", "50.00%", "70.00", "中"]
    assert cells[-1][0] == "合计" and cells[-1][2:6] == ["111.01", "60.01", "54.06%", "84.54"]


def test_shortfalls_are_listed_with_the_workbooks_reasons() -> None:
    text = text_of(document_of(SMALL))
    assert "预算未全部执行或评价等级在良以下的项目共2个" in text
    assert "预算执行率90.00%，结余1万元；工作簿未填写预算执行偏差原因。" in text
    assert "1. 项目1（P00001）：得分70.00分，评价等级为中，预算执行率50.00%。" in text
    assert "预算执行率50.00%，结余50万元；偏差原因：采购合同延期签订。" in text
    assert "群众满意度：实际完成值85%，偏差原因：宣传不到位。" in text
    assert "办结率：实际完成值96.7%，未填写偏差原因。" in text
    assert "项目2（P00002）" not in text  # fully spent and 优


def test_a_workbook_of_ten_thousand_projects_gets_bounded_tables() -> None:
    rows = [row(n, "10", "9" if n % 3 else "10", f"{50 + (n * 37) % 50}.25", "中" if n % 5 else "优",
                department=f"部门{n % 40}") for n in range(10_000)]
    document = document_of(rows)
    tables = document.tables
    assert len(tables) == 2  # per 主管部门, the lowest projects; never a row per project
    departments, lowest = ([[c.text for c in r.cells] for r in t.rows] for t in tables)
    assert len(departments) == 1 + 40 + 1 and departments[-1][2] == "10000"
    assert len(lowest) == 1 + LOWEST_COUNT
    assert all(r[6] == "50.25" for r in lowest[1:])  # the lowest score of the synthetic set
    text = text_of(document)
    assert f"以下列出得分最低的{SHORTFALL_LIMIT}个" in text
    assert text.count("（P0") == SHORTFALL_LIMIT
    assert len(document.paragraphs) < 400
    assert len(rows) > TABLE_LIMIT


def test_the_chart_replaces_the_placeholder_picture_at_its_size() -> None:
    data = department_report_bytes(SMALL, TEMPLATES, RUN_DATE, "测试工作簿")
    document = docx.Document(io.BytesIO(data))
    assert len(document.inline_shapes) == 1
    shape = document.inline_shapes[0]
    assert shape._inline.docPr.get("name") == CHART_NAME
    image = document.part.related_parts[shape._inline.graphic.graphicData.pic.blipFill.blip.embed]
    assert image.content_type == "image/png"
    width, height = struct.unpack(">II", image.blob[16:24])
    assert (width, height) == (round(shape.width / 914400 * chart.DPI), round(shape.height / 914400 * chart.DPI))
    with zipfile.ZipFile(TEMPLATES / DEPARTMENT_TEMPLATE) as template:
        placeholder = template.read("word/media/image1.png")
    assert image.blob != placeholder


def test_reruns_give_identical_bytes_dated_by_the_run() -> None:
    first = department_report_bytes(SMALL, TEMPLATES, RUN_DATE, "测试工作簿")
    assert department_report_bytes(SMALL, TEMPLATES, RUN_DATE, "测试工作簿") == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    properties = docx.Document(io.BytesIO(first)).core_properties
    assert properties.created is not None and properties.created.date() == RUN_DATE
    assert properties.title == "某某局项目支出绩效自评汇总报告"
    assert docx.Document(io.BytesIO(first)).paragraphs[-1].text == "2021年3月15日"


def test_two_chart_renders_are_identical_and_carry_no_software_text() -> None:
    panels = chart_panels(SMALL)
    first = chart.chart_png(panels, 5_000_000, 4_000_000)
    assert chart.chart_png(panels, 5_000_000, 4_000_000) == first
    assert b"Software" not in first and b"matplotlib" not in first


def test_without_a_chinese_font_the_chart_is_labelled_by_project_number(monkeypatch: pytest.MonkeyPatch) -> None:
    panels = chart_panels(SMALL)
    installed = chart.cjk_family()
    with_font = chart.chart_png(panels, 5_000_000, 4_000_000)
    monkeypatch.setattr(chart, "cjk_family", lambda: None)
    without = chart.chart_png(panels, 5_000_000, 4_000_000)
    assert without.startswith(b"\x89PNG") and without == chart.chart_png(panels, 5_000_000, 4_000_000)
    if installed is not None:  # CI installs fonts-noto-cjk: the Chinese labels give another picture
        assert without != with_font


def test_several_departments_take_the_workbook_name_as_signature() -> None:
    rows = [row(1, "5", "5", "99", "优", department="甲局"), row(2, "5", "5", "99", "优", department="乙局")]
    document = document_of(rows, year="2020")
    assert document.paragraphs[0].text == "测试工作簿2020年度项目支出绩效自评汇总报告"
    assert "各项目预算均已全部执行" in text_of(document)


def test_check_template_holds_the_department_template_to_its_own_variables(tmp_path: Path) -> None:
    assert check_template_file(TEMPLATES / DEPARTMENT_TEMPLATE).ok
    # A project template read as a department template reads variables the department does not have.
    report = template_check("report.docx", (TEMPLATES / "report.docx").read_bytes(), DEPARTMENT_FIELDS)
    assert any("money_sentence" in finding.text for finding in report.findings)
    # The department template is not offered as a project's template.
    assert DEPARTMENT_TEMPLATE not in blank.template_names(TEMPLATES)


def test_the_example_workbook_gives_the_department_report_end_to_end() -> None:
    checked = check_workbook(EXAMPLE, Settings())
    rows = [summary_row(r, checked.profile) for r in evaluate_projects(checked.projects, checked.profile, checked.forms)]
    document = document_of(rows, year="2020")
    assert document.paragraphs[0].text == "如皋市信访局2020年度项目支出绩效自评汇总报告"
    table = document.tables[0]
    assert len(table.rows) == 1 + len(rows) + 1
    budget = sum(Decimal(str(r["全年预算数(万元)"])) for r in rows)
    spent = sum(Decimal(str(r["全年执行数(万元)"])) for r in rows)
    total = [c.text for c in table.rows[-1].cells]
    assert total[2] == f"{budget:.2f}" and total[3] == f"{spent:.2f}"
    assert total[4] == f"{(spent / budget * 100).quantize(Decimal('0.01'))}%"
    text = text_of(document)
    assert "部分救助对象的救助申请仍在审核中" in text  # 信访救助专项资金's 预算执行偏差原因
    assert len(document.inline_shapes) == 1
