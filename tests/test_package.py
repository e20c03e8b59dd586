"""The office's whole package from the shipped example: reports, their PDFs, the 部门汇总报告, the
filled 自评表, 汇总表 and 校验报告, all in the zip and the manifest, the same bytes on a rerun.

The run is the flow's own steps in this process (tests/inprocess.py), with PDF copies asked for;
LibreOffice converts for real (CI installs it), once per run, twice in the module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.docx import pdf
from pipeline.run import steps
from pipeline.write.names import REPORTS_DIR
from tests.summarytable import summary_records

EXAMPLE = Path(__file__).resolve().parent.parent / "input" / "2020年度项目支出绩效自评表.xlsx"
EPOCH = "1700000000"  # 2023-11-15 in Asia/Shanghai

needs_libreoffice = pytest.mark.skipif(pdf.soffice_command() is None or shutil.which("pdftotext") is None,
                                       reason="LibreOffice and poppler's pdftotext are needed (CI installs them)")


def run_example(output_dir: Path) -> Path:
    """The example run with PDF copies, as the flow runs it; its published folder."""
    settings = Settings(output_dir=output_dir, workers=1, pdf=True)
    prepared = steps.prepare_run(EXAMPLE, settings)
    assert isinstance(prepared, steps.PreparedReports), prepared
    rendered = [steps.render_chunk_file(chunk, prepared.staging / REPORTS_DIR, settings.templates_dir, prepared.options)
                for chunk in prepared.chunk_files]
    summary = steps.finish_success(prepared, rendered, settings)
    assert summary.output_dir is not None
    return summary.output_dir


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        yield (run_example(tmp_path_factory.mktemp("first")), run_example(tmp_path_factory.mktemp("again")))
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


@needs_libreoffice
def test_the_example_with_pdf_gives_eight_pdfs_holding_each_project_and_its_total(runs: tuple[Path, Path]) -> None:
    folder, _ = runs
    pdfs = sorted((folder / "pdf").glob("*.pdf"))
    assert len(pdfs) == 8
    for row in summary_records(folder / "汇总表.xlsx"):
        report = folder / "pdf" / f"{row['项目编号']}_{row['项目名称']}.pdf"
        text = "".join(pdf_text(report).split())
        assert str(row["项目名称"]) in text
        assert f"得分{row['总得分']:.2f}分" in text
    department = "".join(pdf_text(folder / "pdf" / "部门汇总报告.pdf").split())
    assert "项目支出绩效自评汇总报告" in department and "7个项目" in department


@needs_libreoffice
def test_the_zip_and_the_manifest_hold_the_whole_package(runs: tuple[Path, Path]) -> None:
    folder, _ = runs
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    listed = {entry["path"] for entry in manifest["outputs"]}
    [archive] = folder.glob("*.zip")
    with zipfile.ZipFile(archive) as opened:
        zipped = set(opened.namelist())
    package = {"汇总表.xlsx", "校验报告.xlsx", "部门汇总报告.docx", "自评表.xlsx", "pdf/部门汇总报告.pdf"}
    assert package <= zipped and package <= listed
    assert len([name for name in zipped if name.startswith("reports/")]) == 7
    assert len([name for name in zipped if name.startswith("pdf/")]) == 8
    assert zipped == listed - {archive.name}


@needs_libreoffice
def test_a_rerun_gives_the_same_bytes_for_every_file_of_the_package(runs: tuple[Path, Path]) -> None:
    first, again = runs
    assert tree(first) == tree(again)
