"""The hot-folder watcher keeps going: an input folder missing at start, a share that disappears for
a while, and it says so (log once, the web page's `runs.watcher_problem`) until it can work again.

The real watcher in a thread on real folders; the workbook it finally processes is run by the real
`perfreport run` in a child process, as `perfreport web` runs it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.errors import Status
from pipeline.serve import hotfolder, runs, watcher
from pipeline.write.locks import held_lock
from pipeline.write.names import MANIFEST_NAME
from tests.processes import free_port, start_web, stop_group, wait_for_port, wait_until

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "input" / "2020年度项目支出绩效自评表.xlsx"
RUN_SECONDS = 300
POLL = 0.2




@pytest.fixture
def watching(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[Path, Path, threading.Thread]]:
    """The watcher on an input folder that does not exist yet, its log captured from the start."""
    caplog.set_level(logging.INFO, logger="perfreport.hotfolder")
    inbox, output = tmp_path / "input", tmp_path / "output"
    stop = threading.Event()
    thread = threading.Thread(target=watcher.watch_folder, args=(inbox, output, stop, POLL),
                              kwargs={"start_run": watcher.run_in_child_process}, daemon=True)
    thread.start()
    try:
        yield inbox, output, thread
    finally:
        stop.set()
        thread.join(timeout=RUN_SECONDS)


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What was logged while the fixture set the watcher up and during the test itself."""
    return caplog.get_records("setup") + caplog.records


def test_watcher_survives_a_missing_and_a_vanishing_input_folder(
        watching: tuple[Path, Path, threading.Thread], caplog: pytest.LogCaptureFixture) -> None:
    inbox, output, thread = watching

    # 1. The input folder does not exist yet: the page says why nothing is processed.
    wait_until(lambda: runs.watcher_problem(output), 10)
    assert str(inbox) in (runs.watcher_problem(output) or "") and "恢复后将自动继续" in (runs.watcher_problem(output) or "")
    time.sleep(10 * POLL)  # many polls, one log line
    # The watcher starts in the fixture: its first poll may log before this test's own phase.
    failures = [r for r in logged(caplog) if r.levelno == logging.ERROR]
    assert len(failures) == 1 and thread.is_alive()

    # 2. It appears: the problem clears.
    inbox.mkdir()
    wait_until(lambda: runs.watcher_problem(output) is None, 30)

    # 3. The share disappears for a while, then comes back.
    inbox.rename(inbox.with_name("暂时断开"))
    wait_until(lambda: runs.watcher_problem(output), 30)
    time.sleep(1.0)
    inbox.with_name("暂时断开").rename(inbox)
    wait_until(lambda: runs.watcher_problem(output) is None, 60)
    assert thread.is_alive()

    # 4. And a workbook dropped afterwards is processed.
    shutil.copyfile(EXAMPLE, inbox / "预算.xlsx")
    state_file = hotfolder.state_path(output)
    wait_until(lambda: state_file.exists() and hotfolder.load_state(state_file).processed, RUN_SECONDS)
    assert (output / "预算" / MANIFEST_NAME).is_file()
    [processed] = hotfolder.load_state(hotfolder.state_path(output)).processed.values()
    assert processed.outcome == Status.SUCCESS
    assert [r.getMessage() for r in logged(caplog)].count(
        f"输入文件夹 {inbox} 已恢复，继续自动处理") == 2


def test_problem_of_a_watcher_that_is_gone_is_not_shown(tmp_path: Path) -> None:
    # A killed watcher leaves its last record; nobody holds the watcher lock any more.
    hotfolder.save_health(tmp_path, "无法读取输入文件夹")
    assert hotfolder.load_health(tmp_path) == "无法读取输入文件夹"
    assert runs.watcher_problem(tmp_path) is None
    with held_lock(tmp_path / hotfolder.WATCHER_LOCK_NAME):
        assert runs.watcher_problem(tmp_path) == "无法读取输入文件夹"


def test_watcher_waits_longer_while_a_failure_goes_on() -> None:
    waits = [watcher.retry_seconds(2.0, n) for n in range(1, 10)]
    assert waits[0] == 2.0 and waits == sorted(waits) and max(waits) == watcher.RETRY_MAX_SECONDS


def test_web_page_shows_a_paused_watcher_and_processes_an_upload_once_the_folder_is_back(tmp_path: Path) -> None:
    """The real `perfreport web` (watching) started before its input folder exists, as on a
    machine whose share is mounted after the service starts; then the share goes away for a while."""
    inbox, output = tmp_path / "input", tmp_path / "output"
    port = free_port()
    server = start_web(inbox, output, port, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, server, 60)
        page = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

        def paused() -> bool:
            return 'id="watcher-problem"' in page.get("/").text

        wait_until(paused, 30)
        assert str(inbox) in page.get("/").text
        inbox.mkdir()
        wait_until(lambda: not paused(), 60)
        inbox.rename(inbox.with_name("暂时断开"))
        wait_until(paused, 60)
        inbox.with_name("暂时断开").rename(inbox)
        wait_until(lambda: not paused(), 90)

        answer = page.post("/upload", files={"workbook": (EXAMPLE.name, EXAMPLE.read_bytes())})
        assert answer.status_code == 303
        run_page = answer.headers["location"]
        wait_until(lambda: 'id="status">成功<' in page.get(run_page).text, RUN_SECONDS)
        assert (output / EXAMPLE.stem / MANIFEST_NAME).is_file()
        assert server.poll() is None
    finally:
        stop_group(server)
