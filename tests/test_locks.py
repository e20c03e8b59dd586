"""The output lock across processes, and the running state read from its holder's record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from pipeline.serve import hotfolder, runs
from pipeline.write.locks import (
    OutputBusy,
    held_lock,
    is_held,
    is_running,
    lock_path,
    output_lock,
    record_path,
)

REPO = Path(__file__).resolve().parent.parent

HOLD = """
import sys, time
from pathlib import Path
from pipeline.write.locks import held_lock, output_lock
path = Path(sys.argv[2])
with (output_lock if sys.argv[1] == "output" else held_lock)(path):
    print("locked", flush=True)
    time.sleep(600)
"""

TRY = """
import sys
from pathlib import Path
from pipeline.write.locks import OutputBusy, output_lock
try:
    with output_lock(Path(sys.argv[1])):
        print("acquired")
except OutputBusy:
    print("busy")
"""


@contextmanager
def holder(kind: str, path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding `path`'s lock (`output_lock` or `held_lock`), killed at the end."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)


def attempt_from_another_process(final: Path) -> str:
    """What a second process gets when it asks for `final`'s lock: "busy" or "acquired"."""
    return subprocess.run([sys.executable, "-c", TRY, str(final)], cwd=REPO, capture_output=True,
                          text=True, check=True, timeout=120).stdout.strip()


def write_record(lock: Path, pid: int, created: float) -> None:
    """A holder record as a holder writes it, naming process `pid` created at `created`."""
    record_path(lock).write_text(json.dumps({"pid": pid, "created": created}), encoding="ascii")


def test_a_second_lock_is_refused_at_once_in_this_process_and_in_another(tmp_path: Path) -> None:
    final = tmp_path / "out" / "预算"
    with output_lock(final):
        with pytest.raises(OutputBusy) as busy, output_lock(final):
            pass
        assert busy.value.folder == final
        assert attempt_from_another_process(final) == "busy"
    assert attempt_from_another_process(final) == "acquired"


def test_a_lock_whose_holder_is_killed_is_free_and_no_longer_running(tmp_path: Path) -> None:
    final = tmp_path / "out" / "预算"
    with holder("output", final) as child:
        assert is_running(final)
        assert runs.running_names(final.parent) == ["预算"]
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

        # The killed holder's record is still there, naming a process that is gone.
        assert record_path(lock_path(final)).exists()
        assert not is_running(final)
        assert runs.running_names(final.parent) == []
        with output_lock(final):
            assert is_running(final)
    assert list(final.parent.iterdir()) == []  # lock file and record removed


def test_looking_at_a_held_lock_does_not_take_it(tmp_path: Path) -> None:
    final = tmp_path / "out" / "预算"
    with holder("output", final):
        assert all(is_running(final) for _ in range(20))
        with pytest.raises(OutputBusy), output_lock(final):
            pass  # the holder still has it: looking took nothing
        assert is_running(final)


def test_a_killed_watcher_no_longer_counts_as_watching(tmp_path: Path) -> None:
    watcher_lock = tmp_path / hotfolder.WATCHER_LOCK_NAME
    with holder("role", watcher_lock) as child:
        assert is_held(watcher_lock) and runs.is_watched(tmp_path)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert not is_held(watcher_lock) and not runs.is_watched(tmp_path)
        with held_lock(watcher_lock):  # the next watcher starts at once
            assert runs.is_watched(tmp_path)


def test_a_record_of_a_process_that_has_ended_is_not_running(tmp_path: Path) -> None:
    final = tmp_path / "预算"
    lock_path(final).write_bytes(b"")
    ended = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    created = psutil.Process(ended.pid).create_time()
    write_record(lock_path(final), ended.pid, created)
    assert is_running(final)  # the record as its process lives

    ended.kill()
    ended.wait(timeout=30)

    assert not is_running(final)


def test_a_record_whose_process_id_now_names_another_process_is_not_running(tmp_path: Path) -> None:
    final = tmp_path / "预算"
    lock_path(final).write_bytes(b"")
    live = psutil.Process(os.getpid())  # a live process, standing in for one that got a recycled id

    write_record(lock_path(final), live.pid, live.create_time())
    assert is_running(final)
    write_record(lock_path(final), live.pid, live.create_time() - 3600)
    assert not is_running(final)


@pytest.mark.parametrize("record", [b"", b"{", b"[]", b'{"pid": "1", "created": 0}', b'{"pid": 1}',
                                    b'{"pid": -5, "created": 0}', b'{"pid": true, "created": 0}'])
def test_a_record_that_is_not_one_is_not_running(tmp_path: Path, record: bytes) -> None:
    final = tmp_path / "预算"
    record_path(lock_path(final)).write_bytes(record)

    assert not is_running(final)
