"""One output folder per workbook, never the archive's: reserved names at every entry point, names
that sanitise alike, and output folders that cannot be written (a file, read-only, full).

Real workbooks, the real `perfreport run` in child processes, the real annual flow on the session's
Prefect harness and the real hot-folder watcher in a thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import Counts, Status
from pipeline.serve import hotfolder, runs
from pipeline.serve.watcher import run_in_child_process, watch_folder
from pipeline.write.folders import ARCHIVE_DIR, name_refusal, output_folder_refusal
from pipeline.write.manifest import folder_owner, write_manifest
from pipeline.write.names import (
    MANIFEST_NAME,
    REPORTS_DIR,
    safe_stem,
    windows_key,
    workbook_output_dir,
)
from tests.processes import wait_until

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "input" / "2020年度项目支出绩效自评表.xlsx"
CLI_SECONDS = 300
SENTINEL = "历次输出，不可丢失"


def perfreport(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`perfreport` in a child process, as an officer runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PERFREPORT_"))}
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True,
                          timeout=CLI_SECONDS, env=env, check=False)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An input folder and an output folder whose archive already holds an earlier output."""
    inbox, output = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    (output / ARCHIVE_DIR / "预算-20250115-080000").mkdir(parents=True)
    (output / ARCHIVE_DIR / "预算-20250115-080000" / "sentinel.txt").write_text(SENTINEL, encoding="utf-8")
    return inbox, output


def archive_intact(output: Path) -> bool:
    """Whether the archive still holds the earlier output and nothing was written in its place."""
    archive = output / ARCHIVE_DIR
    return ((archive / "预算-20250115-080000" / "sentinel.txt").read_text(encoding="utf-8") == SENTINEL
            and not (archive / MANIFEST_NAME).exists() and not (archive / REPORTS_DIR).exists())


# --- reserved names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["_archive.xlsx", "_ARCHIVE.xlsx", "_Archive.XLSX"])
def test_archive_name_is_reserved(name: str) -> None:
    reason = name_refusal(name)
    assert reason is not None and "保留名称" in reason and name in reason


@pytest.mark.parametrize("name", ["archive.xlsx", "_archive2020.xlsx", "预算_archive.xlsx", "_archive .xlsx"])
def test_names_near_the_archive_are_ordinary(name: str, tmp_path: Path) -> None:
    assert name_refusal(name) is None
    assert workbook_output_dir(tmp_path, Path(name)).name != ARCHIVE_DIR


@pytest.mark.parametrize("target", ["file", "folder"])
def test_run_refuses_the_archive_name_and_keeps_the_archive(folders: tuple[Path, Path], target: str) -> None:
    inbox, output = folders
    shutil.copyfile(EXAMPLE, inbox / "_archive.xlsx")

    done = perfreport("run", inbox / "_archive.xlsx" if target == "file" else inbox, "--output-dir", output)

    assert done.returncode == 2, done.stderr
    assert "保留名称" in done.stderr and "内部错误" not in done.stderr and "Traceback" not in done.stderr
    assert archive_intact(output)
    assert sorted(p.name for p in output.iterdir()) == [ARCHIVE_DIR]


@pytest.mark.usefixtures("prefect_harness")
def test_annual_flow_refuses_the_archive_name_and_runs_the_others(folders: tuple[Path, Path]) -> None:
    from pipeline.run.flow import report_folder

    inbox, output = folders
    shutil.copyfile(EXAMPLE, inbox / "_archive.xlsx")
    shutil.copyfile(EXAMPLE, inbox / "预算.xlsx")

    state = report_folder(str(inbox), str(output), return_state=True)

    assert state.is_failed() and "_archive.xlsx（拒收）" in (state.message or "")
    statuses = state.result(raise_on_failure=False)

    assert statuses == ["refused", "success"]  # name order: "_" before "预"
    assert archive_intact(output)
    assert (output / "预算" / MANIFEST_NAME).is_file()


@pytest.fixture
def watcher(folders: tuple[Path, Path]) -> Iterator[tuple[Path, Path, threading.Event]]:
    """The real hot-folder watcher of `folders` in a thread, each workbook run by `perfreport run`."""
    inbox, output = folders
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=watch_folder, args=(inbox, output, stop, 0.2),
                              kwargs={"start_run": run_in_child_process, "wake": wake}, daemon=True)
    thread.start()
    try:
        yield inbox, output, wake
    finally:
        stop.set()
        wake.set()
        thread.join(timeout=CLI_SECONDS)


def test_hot_folder_records_the_archive_name_as_refused_once(
        watcher: tuple[Path, Path, threading.Event], caplog: pytest.LogCaptureFixture) -> None:
    inbox, output, wake = watcher
    caplog.set_level(logging.INFO, logger="perfreport.hotfolder")
    state_file = hotfolder.state_path(output)
    shutil.copyfile(EXAMPLE, inbox / "_archive.xlsx")

    wait_until(lambda: state_file.exists(), 30)
    recorded = state_file.stat().st_mtime_ns
    for _ in range(10):  # ten more polls: the same content is not tried again
        wake.set()
        time.sleep(0.3)

    [processed] = hotfolder.load_state(state_file).processed.values()
    assert processed.outcome == Status.REFUSED and "保留名称" in processed.message
    assert state_file.stat().st_mtime_ns == recorded
    assert archive_intact(output)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    [view] = runs.list_runs(inbox, output, runs.FolderCache())
    assert (view.status, view.workbook) == (runs.FAILED, "_archive.xlsx") and "保留名称" in view.detail


# --- one folder per name --------------------------------------------------------------------


NFC = unicodedata.normalize("NFC", "预算é")
NFD = unicodedata.normalize("NFD", "预算é")
LONG = "2020年度某某县财政局项目支出绩效自评工作簿" * 3  # over 60 characters


@pytest.mark.parametrize(("first", "second"), [
    ("a:b", "a_b"), ("a*b", "a?b"), (NFC, NFD), (LONG + "第一版", LONG + "第二版"), ("NUL", "_NUL"),
], ids=["forbidden-character", "two-forbidden", "nfc-nfd", "alike-in-60-characters", "device-name"])
def test_names_that_sanitise_alike_get_their_own_folders(tmp_path: Path, first: str, second: str) -> None:
    one = workbook_output_dir(tmp_path, Path(f"{first}.xlsx"))
    other = workbook_output_dir(tmp_path, Path(f"{second}.xlsx"))
    assert windows_key(one.name) != windows_key(other.name)
    for folder in (one, other):
        assert folder.parent == tmp_path and safe_stem(folder.name) == folder.name
    # The same name always gets the same folder: reruns replace their own outputs.
    assert workbook_output_dir(tmp_path, Path(f"{first}.xlsx")) == one


def test_plain_names_keep_their_folder_name(tmp_path: Path) -> None:
    assert workbook_output_dir(tmp_path, EXAMPLE).name == EXAMPLE.stem


def test_two_workbooks_that_sanitise_alike_both_keep_their_reports(folders: tuple[Path, Path]) -> None:
    inbox, output = folders
    shutil.copyfile(EXAMPLE, inbox / "a:b.xlsx")
    shutil.copyfile(EXAMPLE, inbox / "a_b.xlsx")

    done = perfreport("run", inbox, "--output-dir", output)

    assert done.returncode == 0, done.stderr
    owners = {folder_owner(folder) for folder in runs.output_folders(output)}
    assert owners == {"a:b.xlsx", "a_b.xlsx"}
    assert archive_intact(output) and len(list((output / ARCHIVE_DIR).iterdir())) == 1
    assert {view.workbook for view in runs.list_runs(inbox, output, runs.FolderCache())} == owners


def test_a_folder_of_another_workbook_beside_it_is_refused(tmp_path: Path) -> None:
    # What a case-insensitive share does to "A.xlsx" and "a.xlsx": one folder for both.
    inbox, output = tmp_path / "input", tmp_path / "output"
    inbox.mkdir()
    (inbox / "A.xlsx").write_bytes(b"x")
    (inbox / "a.xlsx").write_bytes(b"x")
    folder = workbook_output_dir(output, inbox / "a.xlsx")
    folder.mkdir(parents=True)
    write_manifest(folder / MANIFEST_NAME, inbox / "A.xlsx", "0" * 64, folder, Counts(), Status.SUCCESS)

    reason = output_folder_refusal(output, inbox / "a.xlsx")

    assert reason is not None and "A.xlsx" in reason and str(folder) in reason
    assert output_folder_refusal(output, inbox / "A.xlsx") is None
    (inbox / "A.xlsx").unlink()  # its owner gone: the folder is an old output, replaced as usual
    assert output_folder_refusal(output, inbox / "a.xlsx") is None


def test_run_of_a_folder_skips_links_and_takes_upper_case_suffixes(tmp_path: Path) -> None:
    inbox = tmp_path / "input"
    inbox.mkdir()
    shutil.copyfile(EXAMPLE, inbox / "预算.XLSX")
    (inbox / "链接.xlsx").symlink_to(inbox / "预算.XLSX")

    done = perfreport("run", inbox, "--output-dir", tmp_path / "output")

    assert done.returncode == 0, done.stderr
    assert [p.name for p in runs.output_folders(tmp_path / "output")] == ["预算"]


# --- output folders that cannot be written ---------------------------------------------------


def mounted_tmpfs(folder: Path, options: str) -> bool:
    """Mount a small tmpfs at `folder`; False where this machine does not let the tests mount."""
    folder.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize(("case", "reason"), [("file", "文件"), ("read-only", "只读"), ("full", "磁盘已满")])
def test_output_folder_that_cannot_be_written_exits_2_naming_it(tmp_path: Path, case: str, reason: str) -> None:
    output = tmp_path / "output"
    if case == "file":
        output.write_text("不是文件夹", encoding="utf-8")
    elif not mounted_tmpfs(output, "ro,size=1m" if case == "read-only" else "size=120k"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        done = perfreport("run", EXAMPLE, "--output-dir", output)
        assert done.returncode == 2, done.stderr
        assert f"无法写入输出文件夹 {output}" in done.stderr and reason in done.stderr
        assert "内部错误" not in done.stderr and "Traceback" not in done.stderr
        if case == "full":  # nothing half-written is left behind
            assert list(output.iterdir()) == []
    finally:
        if case != "file":
            subprocess.run(["umount", str(output)], check=False)
