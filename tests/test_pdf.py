"""PDF copies (`--pdf`): LibreOffice converts real reports, the refusal when it is missing, and the
web page's checkbox travelling with the upload to the `perfreport run` child as `--pdf`.

The reports are rendered in this process (tests/inprocess.py) from the conftest workbook; the
conversions run the real LibreOffice in headless mode (CI installs it). The refusal runs the real
command line in a child process whose PATH holds no soffice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from pipeline.docx import pdf
from pipeline.serve import deploy, hotfolder, profilechoice, watcher, web
from pipeline.serve.web import WebSettings, create_app
from tests.conftest import valid_sheets, workbook_bytes, write_workbook
from tests.inprocess import reports_of

REPO = Path(__file__).resolve().parent.parent
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RUN_DATE = datetime(2021, 1, 15, 0, 0, tzinfo=UTC)

needs_libreoffice = pytest.mark.skipif(pdf.soffice_command() is None or shutil.which("pdftotext") is None,
                                       reason="LibreOffice and poppler's pdftotext are needed (CI installs them)")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], dict[str, dict[str, object]]]:
    """The conftest workbook's two reports, rendered, and each one's context by file name."""
    root = tmp_path_factory.mktemp("reports")
    workbook = write_workbook(root / "两个项目.xlsx", valid_sheets())
    folder, contexts = reports_of(workbook, root / "output")
    return sorted(folder.glob("*.docx")), contexts


def pdf_text(path: Path) -> str:
    """The PDF's text as poppler reads it, without whitespace (CJK lines break anywhere)."""
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True,
                          timeout=120).stdout.decode("utf-8")
    return "".join(text.split())


# --- converting -----------------------------------------------------------------------------------


@needs_libreoffice
def test_each_report_gets_a_pdf_holding_its_project_name_and_total_score(
        reports: tuple[list[Path], dict[str, dict[str, object]]], tmp_path: Path) -> None:
    documents, contexts = reports
    assert len(documents) == 2

    written = pdf.pdf_copies(documents, tmp_path / "pdf", workers=1, created=RUN_DATE)

    assert written == [tmp_path / "pdf" / f"{d.stem}.pdf" for d in documents]
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == sorted(p.name for p in written)  # no scratch left
    for document, made in zip(documents, written, strict=True):
        context = contexts[document.name]
        text = pdf_text(made)
        assert str(context["project_name"]) in text
        assert f"得分{context['total_score']}分" in text
    assert {str(contexts[d.name]["total_score"]) for d in documents} != {""}


@needs_libreoffice
def test_two_workers_give_the_same_pdfs_as_one(
        reports: tuple[list[Path], dict[str, dict[str, object]]], tmp_path: Path) -> None:
    documents, _ = reports

    one = pdf.pdf_copies(documents, tmp_path / "one", workers=1, created=RUN_DATE)
    two = pdf.pdf_copies(documents, tmp_path / "two", workers=2, created=RUN_DATE)

    assert [p.name for p in one] == [p.name for p in two]
    assert [pdf_text(p) for p in one] == [pdf_text(p) for p in two]


@needs_libreoffice
def test_a_rerun_gives_identical_bytes_dated_by_the_run(
        reports: tuple[list[Path], dict[str, dict[str, object]]], tmp_path: Path) -> None:
    documents = reports[0][:1]

    first = pdf.pdf_copies(documents, tmp_path / "first", workers=1, created=RUN_DATE)[0].read_bytes()
    second = pdf.pdf_copies(documents, tmp_path / "second", workers=1, created=RUN_DATE)[0].read_bytes()

    assert first == second
    reader = PdfReader(tmp_path / "first" / f"{documents[0].stem}.pdf")
    # As LibreOffice writes the zone ("Z'"), which poppler reads and pypdf's parser does not.
    assert reader.metadata is not None and reader.metadata.creation_date_raw == "D:20210115000000Z'"
    assert len(reader.pages) >= 2  # still a whole, readable document after the stamping


@needs_libreoffice
def test_a_file_libreoffice_cannot_convert_is_named_and_leaves_no_scratch(
        reports: tuple[list[Path], dict[str, dict[str, object]]], tmp_path: Path) -> None:
    documents = [reports[0][0], tmp_path / "不存在的报告.docx"]
    out = tmp_path / "pdf"

    with pytest.raises(pdf.PdfFailed, match="不存在的报告.docx"):
        pdf.pdf_copies(documents, out, workers=1)

    assert list(out.iterdir()) == []


def test_two_documents_with_one_stem_are_refused_before_any_conversion(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same PDF"):
        pdf.pdf_copies([tmp_path / "a" / "报告.docx", tmp_path / "b" / "报告.docx"], tmp_path / "pdf", 2,
                       soffice="/nonexistent/soffice")
    assert not (tmp_path / "pdf").exists()


@pytest.mark.parametrize(("files", "workers", "sizes"), [
    (7, 2, [4, 3]), (1, 4, [1]), (0, 2, []), (250, 1, [84, 83, 83]), (250, 4, [63, 63, 62, 62]),
])
def test_batches_keep_every_worker_busy_and_stay_under_the_limit(files: int, workers: int, sizes: list[int]) -> None:
    paths = [Path(f"{n:03}.docx") for n in range(files)]

    cut = pdf.batches(paths, workers)

    assert [len(batch) for batch in cut] == sizes
    assert [p for batch in cut for p in batch] == paths


def test_stamping_changes_only_the_date_and_ids_and_keeps_every_offset() -> None:
    original = (b"%PDF-1.6\n1 0 obj\n<</Producer(LibreOffice 7.4)/CreationDate(D:20261126074313Z')>>\nendobj\n"
                b"trailer\n<</Size 2/Root 1 0 R\n/ID [ <9BB06DE5E295F019FAAC37C3C1A54040>\n"
                b"<9BB06DE5E295F019FAAC37C3C1A54040> ]\n/DocChecksum /618BCCA939ACDDF7E805B190AE76C622\n>>\n%%EOF\n")
    other_clock = original.replace(b"20261126074313", b"20270101120000").replace(b"9BB06DE5", b"0CD97CC2")

    stamped = pdf.stamped_pdf(original, RUN_DATE)

    assert len(stamped) == len(original)
    assert b"/CreationDate(D:20210115000000Z')" in stamped
    assert stamped == pdf.stamped_pdf(other_clock, RUN_DATE)  # the clock's traces are gone
    ids = re.findall(rb"<([0-9A-F]{32})>", stamped)
    assert len(ids) == 2 and ids[0] == ids[1] != b"9BB06DE5E295F019FAAC37C3C1A54040"


# --- finding LibreOffice, and refusing without it ---------------------------------------------------


def test_soffice_is_found_on_path_or_where_the_administrator_says(tmp_path: Path) -> None:
    program = tmp_path / "bin" / "soffice"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    elsewhere = tmp_path / "opt" / "office" / "soffice"
    elsewhere.parent.mkdir(parents=True)
    shutil.copy2(program, elsewhere)
    empty = tmp_path / "empty"
    empty.mkdir()
    nowhere = {"PROGRAMFILES": str(tmp_path), "PROGRAMFILES(X86)": str(tmp_path)}

    assert pdf.soffice_command({"PATH": str(program.parent), **nowhere}) == str(program)
    assert pdf.soffice_command({"PATH": str(empty), **nowhere}) is None
    assert pdf.soffice_command({"PATH": str(empty), pdf.SOFFICE_ENV: str(elsewhere), **nowhere}) == str(elsewhere)
    # The administrator's choice is not second-guessed: a wrong path is refused, not replaced.
    assert pdf.soffice_command({"PATH": str(program.parent), pdf.SOFFICE_ENV: str(tmp_path / "gone"),
                                **nowhere}) is None


def no_soffice_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine without LibreOffice: a PATH without soffice, no override."""
    empty = tmp_path / "no-office"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != pdf.SOFFICE_ENV}
    return {**env, "PATH": str(empty), "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}


def test_run_with_pdf_refuses_at_once_without_libreoffice_and_writes_nothing(tmp_path: Path) -> None:
    workbook = tmp_path / "input" / "两个项目.xlsx"
    workbook.parent.mkdir()
    workbook.write_bytes(workbook_bytes("两个项目"))
    before = workbook.read_bytes()
    output = tmp_path / "output"

    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(workbook), "--output-dir", str(output),
                           "--pdf"], env=no_soffice_env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, encoding="utf-8", timeout=120, check=False)

    assert done.returncode == 2, done.stderr
    assert pdf.LIBREOFFICE_MISSING in done.stderr
    assert "apt install libreoffice-writer-nogui fonts-noto-cjk" in done.stderr
    assert "libreoffice.org" in done.stderr and pdf.SOFFICE_ENV in done.stderr
    assert "正在处理" not in done.stdout  # refused before any workbook was read
    assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input", "no-office"]
    assert workbook.read_bytes() == before


def test_serve_with_pdf_refuses_at_once_without_libreoffice(tmp_path: Path) -> None:
    env = {**no_soffice_env(tmp_path), "PREFECT_API_URL": "http://127.0.0.1:9/api"}

    done = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--input-dir", str(tmp_path / "input"),
                           "--output-dir", str(tmp_path / "output"), "--pdf"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, encoding="utf-8", timeout=120, check=False)

    assert done.returncode == 2 and pdf.LIBREOFFICE_MISSING in done.stderr
    assert not (tmp_path / "output").exists()


def test_the_served_deployment_carries_pdf_only_when_asked(tmp_path: Path) -> None:
    plain = deploy.folder_parameters(tmp_path / "in", tmp_path / "out")
    asked = deploy.folder_parameters(tmp_path / "in", tmp_path / "out", "湖北", pdf=True)

    assert "pdf" not in plain
    assert asked == {**plain, "profile": "湖北", "pdf": True}


# --- the web page's checkbox ------------------------------------------------------------------------


class RecordedRuns:
    """A run starter that records each workbook with the profile and PDF choice it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, bool]] = []

    def __call__(self, workbook: Path, input_dir: Path, output_dir: Path, profile: str | None = None, *,
                 pdf: bool = False) -> tuple[str, str]:
        self.calls.append((workbook.name, profile, pdf))
        return "success", ""


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "input").mkdir()
    (tmp_path / "output").mkdir()
    return tmp_path / "input", tmp_path / "output"


def client_for(folders: tuple[Path, Path]) -> TestClient:
    settings = WebSettings(input_dir=folders[0], output_dir=folders[1], watch=False, allowed_hosts=("testserver",))
    return TestClient(create_app(settings))


def upload(client: TestClient, name: str, data: bytes, ticked: str | None) -> httpx.Response:
    fields = {} if ticked is None else {profilechoice.PDF_FIELD: ticked}
    return client.post("/upload", files={web.UPLOAD_FIELD: (name, data, XLSX_TYPE)}, data=fields,
                       follow_redirects=False)


def run_watcher_once(folders: tuple[Path, Path], name: str, start_run: RecordedRuns) -> None:
    path = folders[0] / name
    watcher.run_if_needed(path, hashlib.sha256(path.read_bytes()).hexdigest(), folders[0], folders[1],
                          hotfolder.state_path(folders[1]), start_run, watcher.OnceLogger(logging.getLogger("test")))


@needs_libreoffice
def test_the_ticked_checkbox_reaches_the_run_and_unticking_runs_again_without(folders: tuple[Path, Path]) -> None:
    data, runs = workbook_bytes("两个项目"), RecordedRuns()
    with client_for(folders) as client:
        page = client.get("/").text
        assert 'type="checkbox" id="pdf" name="pdf" value="1"' in page and "同时生成 PDF" in page
        assert 'name="pdf" value="1" aria-describedby="pdf-hint" disabled' not in page

        assert upload(client, "两个项目.xlsx", data, profilechoice.PDF_CHECKED).status_code == 303
        run_watcher_once(folders, "两个项目.xlsx", runs)
        run_watcher_once(folders, "两个项目.xlsx", runs)  # done: not again
        assert upload(client, "两个项目.xlsx", data, None).status_code == 303  # same bytes, PDF no longer asked
        run_watcher_once(folders, "两个项目.xlsx", runs)

    assert runs.calls == [("两个项目.xlsx", None, True), ("两个项目.xlsx", None, False)]


def test_the_child_run_is_given_pdf_when_the_upload_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    commands: list[list[str]] = []

    def recorded(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(watcher.subprocess, "run", recorded)
    workbook = tmp_path / "两个项目.xlsx"

    watcher.run_in_child_process(workbook, tmp_path, tmp_path / "output", "湖北", pdf=True)
    watcher.run_in_child_process(workbook, tmp_path, tmp_path / "output")

    assert commands[0][3:] == ["run", str(workbook.resolve()), "--output-dir", str((tmp_path / "output").resolve()),
                               "--profile", "湖北", "--pdf"]
    assert "--pdf" not in commands[1]


def test_without_libreoffice_the_checkbox_is_disabled_and_a_ticked_upload_is_refused(
        folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-office"))
    monkeypatch.delenv(pdf.SOFFICE_ENV, raising=False)
    with client_for(folders) as client:
        page = client.get("/").text
        answer = upload(client, "两个项目.xlsx", workbook_bytes("两个项目"), profilechoice.PDF_CHECKED)

    assert 'aria-describedby="pdf-hint" disabled>' in page and "libreoffice-writer-nogui" in page
    assert answer.status_code == 400 and "libreoffice-writer-nogui" in answer.text
    assert list(folders[0].iterdir()) == [] and list(folders[1].iterdir()) == []


@pytest.mark.parametrize("value", ["on", "0", "--pdf", "1 "])
def test_a_checkbox_value_the_page_never_sends_is_refused(folders: tuple[Path, Path], value: str) -> None:
    with client_for(folders) as client:
        answer = upload(client, "两个项目.xlsx", workbook_bytes("两个项目"), value)

    assert answer.status_code == 400 and "同时生成 PDF" in answer.text
    assert list(folders[0].iterdir()) == [] and list(folders[1].iterdir()) == []
