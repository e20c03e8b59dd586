"""Who may write an output folder: one run at a time, held by a lock the operating system frees.

A run holds its output folder's `output_lock` from start to end, and on entry cleans up what
runs killed earlier left beside the folder. `held_lock` guards a role instead (the one hot-folder
watcher per output folder). The locks are `filelock`'s (flock on Linux and macOS, LockFileEx on
Windows), which the operating system releases when their process dies, even by kill -9.

While a lock is held, its holder keeps a record beside it: its process id and that process's
creation time. `is_held` and `is_running` read the record and ask psutil whether that very
process still lives, so the web page's run listing knows which folders a live run is writing
without touching a lock (trying it would make a run starting at that instant fail).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path

import psutil
from filelock import FileLock, Timeout, lock_descriptor

from pipeline.write.files import atomic_write
from pipeline.write.staging import recover_leftovers


class OutputBusy(Exception):
    """Another live run holds the lock of this workbook's output folder."""

    def __init__(self, folder: Path) -> None:
        super().__init__(f"another run is writing {folder}")
        self.folder = folder


LOCK_SUFFIX = ".lock"
RECORD_SUFFIX = ".pid"
# A lock file removed by its finishing holder between our open and our lock is not ours: filelock
# then reports contention. A few immediate attempts tell that instant from a live holder.
ATTEMPTS = 3
# Linux derives a process's creation time from the boot time, which moves with clock corrections;
# a recycled process id belongs to a process created long after the recorded one.
CREATE_TIME_TOLERANCE = 1.0


def lock_path(final: Path) -> Path:
    """The lock file of `final`: beside it, because `publish` replaces the folder itself."""
    return final.parent / f".{final.name}{LOCK_SUFFIX}"


def record_path(lock: Path) -> Path:
    """The holder record of the lock file `lock`: beside it, since the lock file's own bytes are
    not readable on every system while it is locked."""
    return lock.parent / f"{lock.name}{RECORD_SUFFIX}"


@cache
def process_record(pid: int) -> bytes:
    """The record naming process `pid`: its id and creation time, as JSON (cached per process id,
    so a forked child never reuses its parent's)."""
    created = psutil.Process(pid).create_time()
    return json.dumps({"pid": pid, "created": created}).encode("ascii")


def recorded_process(record: bytes) -> tuple[int, float] | None:
    """(pid, creation time) from a holder record, or None when it is not one."""
    try:
        fields = json.loads(record)
        pid, created = fields["pid"], fields["created"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(created, (int, float)):
        return None
    return pid, float(created)


def is_alive(pid: int, created: float) -> bool:
    """Whether process `pid` lives and is the one created at `created` (not a recycled id)."""
    try:
        return abs(psutil.Process(pid).create_time() - created) < CREATE_TIME_TOLERANCE
    except (psutil.Error, ValueError, OverflowError):
        return False  # gone, a zombie, not ours to inspect, or no valid id


def is_held(lock: Path) -> bool:
    """Whether a live process holds the lock file `lock`, from its holder record alone.

    One small read and one process lookup, so a page listing many folders every few seconds stays
    cheap. A killed holder's record names a process that is gone, so it does not count.
    """
    try:
        record = record_path(lock).read_bytes()
    except OSError:
        return False
    holder = recorded_process(record)
    return holder is not None and is_alive(*holder)


def is_running(final: Path) -> bool:
    """Whether a live run holds `final`'s lock, found without touching the lock."""
    return is_held(lock_path(final))


def acquired(path: Path, owner: Path) -> FileLock:
    """`path`'s lock, taken without waiting; OutputBusy (naming `owner`) when a live process holds it."""
    lock = FileLock(path, timeout=0, thread_local=False)
    for _ in range(ATTEMPTS):
        try:
            lock.acquire(blocking=False)
        except Timeout:
            if not path.exists():
                continue  # its holder removed it as it finished: the lock is free now
            raise OutputBusy(owner) from None
        return lock
    raise OutputBusy(owner)


def released(lock: FileLock, path: Path) -> None:
    """Drop the holder record and the lock file, then unlock.

    Removed while still held, so nobody can lock the old file after us and believe they own the
    folder: filelock sees the file it locked is gone and reports contention (on Windows the open
    file cannot be removed, and filelock removes it as it unlocks).
    """
    with suppress(OSError):
        record_path(path).unlink(missing_ok=True)
    with suppress(OSError):
        path.unlink(missing_ok=True)
    lock.release()


@contextmanager
def holding(path: Path, owner: Path) -> Iterator[None]:
    """Hold the lock file at `path`, with its holder record, until the block ends."""
    lock = acquired(path, owner)
    try:
        atomic_write(record_path(path), process_record(os.getpid()))
        yield
    finally:
        released(lock, path)


@contextmanager
def output_lock(final: Path) -> Iterator[Path]:
    """Hold `final`'s lock for a whole run, first cleaning up what killed runs left beside it.

    A second run on the same output folder gets OutputBusy at once instead of waiting: the
    officer learns immediately that the work is under way, rather than watching a silent
    console, and a run that waited would only redo what the first is producing. The lock is
    per output folder, so different workbooks still run side by side.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with holding(lock_path(final), final):
        recover_leftovers(final)
        yield final


@contextmanager
def held_lock(path: Path) -> Iterator[Path]:
    """Hold the lock file at `path` (OutputBusy when a live process holds it) until the block ends.

    For locks that guard a role rather than an output folder, such as the one hot-folder watcher
    per output folder, so `serve` and `web` never both start runs for the same file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with holding(path, path):
        yield path


def took_lock(fd: int) -> bool:
    """Lock the open file `fd` without waiting (the same lock as filelock's); False when another
    process holds it. Closing `fd` releases it."""
    return lock_descriptor(fd, blocking=False)


def locked_folder(lock: Path) -> Path | None:
    """The folder whose lock file `lock` is (the inverse of `lock_path`), or None."""
    name = lock.name
    if name.startswith(".") and name.endswith(LOCK_SUFFIX) and len(name) > 1 + len(LOCK_SUFFIX):
        return lock.parent / name[1:-len(LOCK_SUFFIX)]
    return None
