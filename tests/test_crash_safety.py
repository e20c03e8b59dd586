"""Crash safety and concurrent runs: a run killed at any moment, or started twice, never leaves
half-written outputs under a final name, and the next run produces exactly an uninterrupted run's.

The end-to-end tests run the real console entry point in its own process group (the CLI, its
render workers and the embedded Prefect server) and kill the whole group with SIGKILL.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.write.locks import OutputBusy, lock_path, output_lock
from pipeline.write.names import MANIFEST_NAME, REPORTS_DIR, workbook_output_dir
from pipeline.write.staging import PARTIAL, hidden_siblings, publish, staging_dir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kill -9 of a process group is POSIX")

REPO = Path(__file__).resolve().parent.parent
# Enough projects that rendering takes several seconds, so a kill lands in the middle of it.
PROJECTS = 600
CHUNK_SIZE = 50
RUN_TIMEOUT = 240
BUSY_MESSAGE = "另一个 perfreport 正在处理"


def synthetic_workbook_writer() -> Callable[..., Path]:
    """scripts/make_synthetic.py's write_synthetic_workbook (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_synthetic", REPO / "scripts" / "make_synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_synthetic_workbook


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def entries(folder: Path) -> list[str]:
    """Names directly in `folder`, hidden ones included."""
    return sorted(p.name for p in folder.iterdir())


def temporary_files(folder: Path) -> list[Path]:
    """Temporary files of atomic_write / write_zip anywhere under `folder`."""
    return [p for p in folder.rglob("*.tmp")]


def uninterrupted_outputs(workbook: Path, output_dir: Path) -> Path:
    """The outputs of an uninterrupted run, made by the flow's own steps in this process.

    The same functions the flow wires, without Prefect: outputs are byte-identical whichever
    runner renders them (tests/test_scale.py), and this costs no Prefect server start.
    """
    from pipeline.run import (
        steps,  # imported here: the spawned publish processes need only pipeline.write
    )

    settings = Settings(output_dir=output_dir, chunk_size=CHUNK_SIZE, workers=1)
    prepared = steps.prepare_run(workbook, settings)
    assert isinstance(prepared, steps.PreparedReports), prepared
    reports_dir = prepared.staging / REPORTS_DIR
    rendered = [steps.render_chunk_file(chunk, reports_dir, settings.templates_dir, prepared.options)
                for chunk in prepared.chunk_files]
    summary = steps.finish_success(prepared, rendered, settings)
    assert summary.output_dir is not None
    return summary.output_dir


@pytest.fixture(scope="module")
def big_workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_workbook_writer()(tmp_path_factory.mktemp("input") / "压力测试.xlsx", PROJECTS)


@pytest.fixture(scope="module")
def reference(big_workbook: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """File hashes of an uninterrupted run on the big workbook."""
    return tree_hashes(uninterrupted_outputs(big_workbook, tmp_path_factory.mktemp("reference")))


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect home (and database) of this module's runs only, shared by them."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture
def run_env(prefect_home: Path) -> dict[str, str]:
    """The environment of a subprocess run: its own ephemeral Prefect API and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(prefect_home)
    return env


def start_run(workbook: Path, output_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m pipeline run` in a new process group (session), its output in log files."""
    with log.with_suffix(".out").open("wb") as out, log.with_suffix(".err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", str(workbook), "--output-dir", str(output_dir),
             "--chunk-size", str(CHUNK_SIZE)],
            cwd=REPO, env=env, stdout=out, stderr=err, start_new_session=True,
        )


def finished(process: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    """The exit code and the console text (stdout then stderr) of a run, once it ends."""
    try:
        code = process.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    text = (log.with_suffix(".out").read_text("utf-8", "replace")
            + log.with_suffix(".err").read_text("utf-8", "replace"))
    return code, text


def index_of_first_to_end(processes: list[subprocess.Popen[bytes]]) -> int:
    """Which of the processes exits first."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        for index, process in enumerate(processes):
            if process.poll() is not None:
                return index
        time.sleep(0.05)
    raise TimeoutError("no run ended in time")


def live_group_members(pgid: int) -> list[int]:
    """Processes of the group `pgid` that are still running (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_while_rendering(process: subprocess.Popen[bytes], final: Path) -> None:
    """Wait until the run's staging folder holds reports, then SIGKILL its whole process group."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(final.parent.glob(f".{final.name}.{PARTIAL}-*/reports/*.docx")):
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before any report was rendered")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("no report was rendered in time")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while live_group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not live_group_members(process.pid), "a process of the killed run survived"


def flow_run_states(prefect_home: Path) -> list[str]:
    """The state of every flow run in the module's Prefect database."""
    with sqlite3.connect(f"file:{prefect_home / 'prefect.db'}?mode=ro", uri=True) as db:
        return [state for (state,) in db.execute("SELECT state_type FROM flow_run")]


def rerun_matches_reference(workbook: Path, output: Path, env: dict[str, str], log: Path,
                            reference: dict[str, str]) -> None:
    """Run again to the end; the outputs must be an uninterrupted run's, with nothing left over."""
    started = time.monotonic()
    code, text = finished(start_run(workbook, output, env, log), log)
    print(f"rerun took {time.monotonic() - started:.1f} s")
    final = workbook_output_dir(output, workbook)
    assert code == 0, text
    assert f"{PROJECTS} 个项目，生成 {PROJECTS} 份报告" in text
    assert tree_hashes(final) == reference
    assert entries(output) == [final.name]  # no staging, set-aside, trash or lock file left
    assert not temporary_files(output)


def test_a_run_killed_while_rendering_leaves_no_output_and_the_rerun_completes_it(
        big_workbook: Path, reference: dict[str, str], run_env: dict[str, str], prefect_home: Path,
        tmp_path: Path) -> None:
    output = tmp_path / "out"
    final = workbook_output_dir(output, big_workbook)

    kill_while_rendering(start_run(big_workbook, output, run_env, tmp_path / "killed"), final)

    assert not final.exists()
    assert [name for name in entries(output) if not name.startswith(".")] == []
    assert hidden_siblings(final, PARTIAL), "the kill should have left a staging folder"
    # The killed run's flow run stays RUNNING in the Prefect database; the rerun must not mind.
    assert "RUNNING" in flow_run_states(prefect_home)

    rerun_matches_reference(big_workbook, output, run_env, tmp_path / "rerun", reference)
    assert "COMPLETED" in flow_run_states(prefect_home)


def test_a_run_killed_while_rendering_keeps_the_previous_outputs_and_the_rerun_replaces_them(
        big_workbook: Path, reference: dict[str, str], run_env: dict[str, str], tmp_path: Path) -> None:
    output = tmp_path / "out"
    final = uninterrupted_outputs(big_workbook, output)
    # Mark the previous run's folder so the rerun's must be seen to replace it.
    (final / "上次运行.txt").write_text("previous run", encoding="utf-8")
    previous = tree_hashes(final)

    kill_while_rendering(start_run(big_workbook, output, run_env, tmp_path / "killed"), final)

    assert tree_hashes(final) == previous
    assert hidden_siblings(final, PARTIAL), "the kill should have left a staging folder"

    rerun_matches_reference(big_workbook, output, run_env, tmp_path / "rerun", reference)


def test_two_runs_started_together_on_one_folder_give_one_complete_result(
        big_workbook: Path, reference: dict[str, str], run_env: dict[str, str], tmp_path: Path) -> None:
    output = tmp_path / "out"
    final = workbook_output_dir(output, big_workbook)
    logs = [tmp_path / "first", tmp_path / "second"]
    processes = [start_run(big_workbook, output, run_env, log) for log in logs]
    first_to_end = index_of_first_to_end(processes)
    results = [finished(process, log) for process, log in zip(processes, logs, strict=True)]

    # Both start within milliseconds and a run lasts half a minute, so they always overlap:
    # the one that did not get the lock is refused, at once, with the folder named.
    refused, completed = sorted(results, key=lambda result: -result[0])
    assert (refused[0], completed[0]) == (2, 0), results
    assert f"{BUSY_MESSAGE} {final}，请等它结束后再运行" in refused[1]
    assert "Traceback" not in refused[1]
    assert results[first_to_end] == refused
    assert tree_hashes(final) == reference
    assert entries(output) == [final.name]


# --- the lock, in separate processes ---------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.write.locks import output_lock
from pipeline.write.staging import staging_dir
final = Path(sys.argv[1])
with output_lock(final):
    staging_dir(final)
    print("locked", flush=True)
    time.sleep(600)
"""


def test_the_lock_refuses_a_second_run_while_held_and_is_freed_when_its_holder_is_killed(
        tmp_path: Path) -> None:
    final = tmp_path / "out" / "工作簿"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(final)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        live_staging = hidden_siblings(final, PARTIAL)
        with pytest.raises(OutputBusy) as busy, output_lock(final):
            pass
        assert busy.value.folder == final
        # Refused before cleaning up: the live run's staging folder is untouched.
        assert hidden_siblings(final, PARTIAL) == live_staging != []
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)

    with output_lock(final):
        # Now the holder is dead, its staging folder is a leftover and is cleaned up.
        assert hidden_siblings(final, PARTIAL) == []
    assert entries(final.parent) == []


def test_the_lock_is_per_output_folder(tmp_path: Path) -> None:
    with output_lock(tmp_path / "甲"), output_lock(tmp_path / "乙"), \
            pytest.raises(OutputBusy), output_lock(tmp_path / "甲"):
        pass


def test_cleanup_leaves_other_workbooks_folders_alone(tmp_path: Path) -> None:
    # "甲.partial-…" is a possible workbook name: only exact leftover names of 甲 are removed.
    others = [staging_dir(tmp_path / "乙"), staging_dir(tmp_path / "甲.partial-0123456789ab")]
    stale = staging_dir(tmp_path / "甲")
    with output_lock(tmp_path / "甲"):
        assert not stale.exists()
        assert all(other.exists() for other in others)


# --- publish killed between its steps ------------------------------------------------------

def make_folder(path: Path, content: str) -> Path:
    """A small complete output folder holding `content`."""
    (path / REPORTS_DIR).mkdir(parents=True, exist_ok=True)
    (path / REPORTS_DIR / "报告.docx").write_text(content, encoding="utf-8")
    (path / MANIFEST_NAME).write_text(content, encoding="utf-8")
    return path


def publish_killed_at(step: int, staging: str, final: str) -> None:
    """Run publish and SIGKILL this process at its `step`-th file-system change.

    Steps: 1 set the previous folder aside, 2 move the new one in, 3 rename the previous one to
    trash, 4 halfway through deleting it. Runs in a spawned process, so patching os is local.
    """
    calls = itertools.count(1)
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def checkpoint() -> None:
        if next(calls) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    def replace(source: str | Path, target: str | Path) -> None:
        checkpoint()
        real_replace(source, target)

    def rmtree(path: str | Path, ignore_errors: bool = False) -> None:
        next(Path(path).rglob("*.docx")).unlink()  # some of the folder is gone …
        checkpoint()  # … when the kill comes
        real_rmtree(path, ignore_errors=ignore_errors)

    os.replace, shutil.rmtree = replace, rmtree  # type: ignore[assignment]
    publish(Path(staging), Path(final))


@pytest.mark.parametrize(("step", "visible_after_kill", "after_recovery"), [
    (1, "previous", "previous"),
    (2, None, "previous"),
    (3, "new", "new"),
    (4, "new", "new"),
], ids=["before-set-aside", "between-the-renames", "before-deleting-previous", "while-deleting-previous"])
def test_a_publish_killed_at_any_step_shows_a_complete_folder_after_recovery(
        step: int, visible_after_kill: str | None, after_recovery: str, tmp_path: Path) -> None:
    final = make_folder(tmp_path / "工作簿", "previous")
    staging = make_folder(staging_dir(final), "new")
    expected = {"previous": tree_hashes(final), "new": tree_hashes(staging)}

    child = multiprocessing.get_context("spawn").Process(
        target=publish_killed_at, args=(step, str(staging), str(final)))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL

    if visible_after_kill is None:
        assert not final.exists()
    else:
        assert tree_hashes(final) == expected[visible_after_kill]
    with output_lock(final):  # what the next run does first
        assert tree_hashes(final) == expected[after_recovery]
    assert entries(tmp_path) == [final.name]


def test_a_publish_that_fails_between_its_renames_puts_the_previous_folder_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = make_folder(tmp_path / "工作簿", "previous")
    staging = make_folder(staging_dir(final), "new")
    previous = tree_hashes(final)
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        if Path(source) == staging:
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        publish(staging, final)
    assert tree_hashes(final) == previous


def test_a_clean_run_leaves_no_lock_file(tmp_path: Path) -> None:
    with output_lock(tmp_path / "工作簿"):
        assert lock_path(tmp_path / "工作簿").exists()
    assert entries(tmp_path) == []
