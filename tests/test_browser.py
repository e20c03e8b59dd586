"""The download page in a real browser: Debian's headless Chromium driven by Playwright.

`perfreport web` is started as the README tells an administrator (a child process on 127.0.0.1,
watching its own input folder, each workbook run by `perfreport run`), and the page is used as
an officer would: choose a file, press the button, wait, click the download links.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
import pytest

from tests.conftest import valid_sheets, write_workbook
from tests.processes import free_port, start_web, stop_group, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "input" / "2020年度项目支出绩效自评表.xlsx"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; .ci/run installs it
# Without the networking flags Chromium keeps reaching for Google's hosts, which this sandbox
# refuses; without --no-sandbox it cannot start as root in a container.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_SECONDS = 240  # a run is ~25 s here; the first one in a fresh clone pays for cold caches

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """`perfreport web` on a free loopback port: (its address, input folder, output folder)."""
    root = tmp_path_factory.mktemp("web")
    input_dir, output_dir = root / "input", root / "output"
    input_dir.mkdir()
    port = free_port()
    process = start_web(input_dir, output_dir, port, cwd=root, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, 60)
        yield f"http://127.0.0.1:{port}", input_dir, output_dir
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def upload(page, base: str, workbook: Path) -> float:  # noqa: ANN001 - playwright's Page
    """Upload `workbook` from the front page; the time the button was pressed."""
    page.goto(base + "/")
    page.set_input_files("input[name=workbook]", str(workbook))
    pressed = time.monotonic()
    page.click("button[type=submit]")
    page.wait_for_url("**/runs/**")
    return pressed


def wait_for_status(page, wanted: str, seconds: float = RUN_SECONDS) -> None:  # noqa: ANN001
    """Reload the run page until its status badge reads `wanted` (the page refreshes itself too)."""
    deadline = time.monotonic() + seconds
    status = ""
    while time.monotonic() < deadline:
        status = page.locator("#status").inner_text()
        if status != "处理中":
            break
        page.wait_for_timeout(1000)
        page.reload()
    assert status == wanted, f"the run ended {status!r}: {page.content()[:2000]}"


def test_an_uploaded_workbook_becomes_a_zip_of_seven_reports_in_the_browser(
    web: tuple[str, Path, Path], browser, tmp_path: Path,  # noqa: ANN001
) -> None:
    base, input_dir, _ = web
    workbook = tmp_path / EXAMPLE.name
    shutil.copyfile(EXAMPLE, workbook)
    before = sha256(workbook)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()

    pressed = upload(page, base, workbook)
    wait_for_status(page, "成功")
    print(f"\nupload to reports ready: {time.monotonic() - pressed:.1f} s")  # the figure the README quotes
    page.screenshot(path=str(tmp_path / "run-success.png"), full_page=True)

    # The page's own style block passes its Content-Security-Policy: the header is the red one.
    assert page.locator("header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(139, 26, 26)"
    assert page.locator("#summary tbody tr").count() == 7
    assert page.locator("#chart rect").count() >= 14  # a score bar and a rate bar per project
    with page.expect_download() as download:
        page.click("#zip")
    zip_path = tmp_path / "reports.zip"
    download.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        reports = [name for name in archive.namelist() if name.startswith("reports/") and name.endswith(".docx")]
        assert len(reports) == 7
        first = docx.Document(io.BytesIO(archive.read(sorted(reports)[0])))
    assert "领导接访费用" in "\n".join(p.text for p in first.paragraphs)

    with page.expect_download() as download:
        page.get_by_role("link", name="RG2020-004_信访救助专项资金.docx").click()
    assert download.value.suggested_filename == "RG2020-004_信访救助专项资金.docx"
    report = docx.Document(download.value.path())
    assert "信访救助专项资金" in "\n".join(p.text for p in report.paragraphs)

    page.goto(base + "/")
    row = page.locator("#runs tbody tr", has_text=EXAMPLE.name)
    assert "成功" in row.inner_text()
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    assert sha256(workbook) == before  # the officer's own file is never touched
    assert sha256(input_dir / EXAMPLE.name) == before
    context.close()


def test_a_broken_workbook_shows_its_problems_by_sheet_and_row_in_the_browser(
    web: tuple[str, Path, Path], browser, tmp_path: Path,  # noqa: ANN001
) -> None:
    base, _, output_dir = web
    sheets = valid_sheets()
    sheets["资金"][1]["全年执行数(万元)"] = "五万元"  # data row 2 of 资金: Excel row 3
    workbook = write_workbook(tmp_path / "有错误的工作簿.xlsx", sheets)
    page = browser.new_page()

    upload(page, base, workbook)
    wait_for_status(page, "有错误")
    page.screenshot(path=str(tmp_path / "run-problems.png"), full_page=True)

    headers = page.locator("#problems thead th").all_inner_texts()
    assert headers == ["工作表", "单元格", "项目编号", "说明", "怎么改"]
    rows = [row.locator("td").all_inner_texts() for row in page.locator("#problems tbody tr").all()]
    assert any(cells[0] == "资金" and cells[1] == "E3" and cells[2] == "P-002" and "全年执行数(万元)" in cells[3]
               for cells in rows), rows
    assert not (output_dir / "有错误的工作簿" / "reports").exists()
    page.close()
