"""The real Prefect flow, in its ephemeral mode, on workbooks the tests write."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest

from pipeline.config import Settings
from pipeline.run.flow import report_workbook, run_workbook
from tests.summarytable import summary_records

pytestmark = pytest.mark.usefixtures("prefect_harness")


def document_text(path: Path) -> str:
    """All paragraph and table-cell text of a .docx, opened again with python-docx."""
    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(parts)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_flow_writes_one_report_per_project_with_computed_figures(workbook_factory, tmp_path: Path) -> None:
    workbook = workbook_factory(name="2020年度.xlsx")
    before = sha256(workbook)
    summary = report_workbook(workbook, Settings(output_dir=tmp_path / "out", chunk_size=1))

    assert summary.status == "success"
    folder = tmp_path / "out" / "2020年度"
    reports = sorted((folder / "reports").glob("*.docx"))
    assert [p.name for p in reports] == ["P-001_信访救助专项资金.docx", "P-002_领导接访费用.docx"]
    text = document_text(reports[0])
    assert "信访救助专项资金绩效评价报告" in text
    assert "2020年度，信访救助专项资金全年预算100万元，实际支出85.62万元，预算执行率85.62%，结余14.38万元。" in text
    assert "85.7%" in text and "14.29" in text and "96.7%" in text
    assert "用于救助特殊困难信访户。" in text
    assert "2020年度领导接访费用5万元使用完毕。" in document_text(reports[1])
    assert sha256(workbook) == before
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_flow_writes_summary_warnings_manifest_and_zip(workbook_factory, tmp_path: Path) -> None:
    workbook = workbook_factory(name="年度.xlsx")
    report_workbook(workbook, Settings(output_dir=tmp_path / "out"))
    folder = tmp_path / "out" / "年度"

    first = summary_records(folder / "汇总表.xlsx")[0]
    assert list(first)[:4] == ["项目编号", "项目名称", "主管部门", "实施单位"]
    shown = ("项目编号", "项目名称", "全年预算数", "全年执行数", "预算执行率", "总得分", "评价等级", "警告数")
    assert tuple(first[k] for k in shown) == ("P-001", "信访救助专项资金", 100, 85.62, 0.8562, 97.85, "优", 1)

    problems = list(openpyxl.load_workbook(folder / "校验报告.xlsx").active.iter_rows(values_only=True))
    assert problems[0][:6] == ("工作表", "单元格", "项目编号", "指标/项目名称", "值", "级别")
    assert problems[1][:6] == ("绩效指标", "G3", "P-001", "重点人员化解率", "97.6%", "警告")

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["input"] == {"file": "年度.xlsx", "sha256": sha256(workbook)}
    assert manifest["counts"]["reports"] == 2
    listed = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    for path, digest in listed.items():
        assert sha256(folder / path) == digest
    assert "prefect" in manifest["versions"]

    with zipfile.ZipFile(folder / "年度_报告.zip") as archive:
        assert sorted(archive.namelist()) == ["reports/P-001_信访救助专项资金.docx", "reports/P-002_领导接访费用.docx",
                                              "校验报告.xlsx", "汇总表.xlsx", "自评表.xlsx", "部门汇总报告.docx"]
        assert archive.read("reports/P-002_领导接访费用.docx") == (folder / "reports/P-002_领导接访费用.docx").read_bytes()


def test_rerun_replaces_previous_outputs_completely(workbook_factory, sheets, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report_workbook(workbook_factory(name="同名.xlsx"), Settings(output_dir=out))
    sheets["项目"][1]["项目名称"] = "改名后的项目"
    report_workbook(workbook_factory(sheets, name="同名.xlsx"), Settings(output_dir=out))
    names = sorted(p.name for p in (out / "同名" / "reports").iterdir())
    assert names == ["P-001_信访救助专项资金.docx", "P-002_改名后的项目.docx"]
    assert sorted(p.name for p in out.iterdir()) == ["同名"]


def test_workbook_with_errors_gets_only_its_problem_list(workbook_factory, sheets, tmp_path: Path) -> None:
    sheets["资金"][0]["全年执行数(万元)"] = 120
    summary = run_workbook(workbook_factory(sheets, name="坏.xlsx"), Settings(output_dir=tmp_path / "out"))
    assert summary.status == "invalid"
    folder = tmp_path / "out" / "坏"
    assert not list(folder.rglob("*.docx")) and not list(folder.glob("*.zip"))
    rows = list(openpyxl.load_workbook(folder / "校验报告.xlsx").active.iter_rows(values_only=True))
    assert rows[1][:7] == ("资金", "E2", "P-001", "信访救助专项资金", "120", "错误",
                           "资金 第2行「全年执行数(万元)」为 120，超过全年预算数 100")


def test_special_characters_reach_the_report_as_typed(workbook_factory, sheets, tmp_path: Path) -> None:
    typed = "A<B & C \"引号\" {{ title }} {% if x %} 😀 𠀀"
    sheets["项目"][0]["项目概况"] = typed
    sheets["绩效指标"][0]["偏差原因分析及改进措施"] = typed
    report_workbook(workbook_factory(sheets, name="特殊.xlsx"), Settings(output_dir=tmp_path / "out"))
    text = document_text(next((tmp_path / "out" / "特殊" / "reports").glob("P-001*.docx")))
    assert text.count(typed) == 2


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_report_converts_to_pdf_with_its_text(workbook_factory, tmp_path: Path) -> None:
    from pypdf import PdfReader

    report_workbook(workbook_factory(name="pdf.xlsx"), Settings(output_dir=tmp_path / "out"))
    report = next((tmp_path / "out" / "pdf" / "reports").glob("P-001*.docx"))
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "pdf",
         "--outdir", str(tmp_path / "pdf"), str(report)],
        check=True, capture_output=True, timeout=180,
    )
    pdf = tmp_path / "pdf" / f"{report.stem}.pdf"
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    compact = "".join(text.split())
    assert "信访救助专项资金绩效评价报告" in compact
    assert "预算执行率85.62%" in compact
    assert "一、项目情况" in compact and "三、项目绩效" in compact
    assert "14.29" in compact


def test_shipped_example_workbook_gives_seven_reports_that_open_again(tmp_path: Path) -> None:
    example = next((Path(__file__).resolve().parent.parent / "input").glob("*.xlsx"))
    summary = report_workbook(example, Settings(output_dir=tmp_path / "out"))
    assert summary.status == "success"
    reports = sorted((tmp_path / "out" / example.stem / "reports").glob("*.docx"))
    assert len(reports) == 7
    for report in reports:
        assert "绩效评价报告" in document_text(report)
    texts = {p.name: document_text(p) for p in reports}
    rescue = next(t for name, t in texts.items() if "信访救助专项资金" in name)
    assert "预算执行率85.62%" in rescue and "96.7%" in rescue and "97.6%" not in rescue


def test_flow_publishes_the_summary_as_a_table_artifact(workbook_factory, tmp_path: Path) -> None:
    from prefect.artifacts import Artifact

    report_workbook(workbook_factory(name="artifact.xlsx"), Settings(output_dir=tmp_path / "out"))
    artifact = Artifact.get("perfreport-summary")
    assert artifact is not None and artifact.type == "table"
    assert "P-002" in str(artifact.data) and "artifact.xlsx" in (artifact.description or "")
