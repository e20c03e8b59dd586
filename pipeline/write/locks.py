"""Who may write an output folder: one run at a time, held by a lock the operating system frees.

A run holds its output folder's `output_lock` from start to end, and on entry cleans up what
runs killed earlier left beside the folder. `held_lock` guards a role instead (the one hot-folder
watcher per output folder). `held_locks` and `is_running` tell, without touching a lock, which
folders a live run is writing, for the web page's run listing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from pipeline.write.staging import PARTIAL, hidden_siblings, recover_leftovers


class OutputBusy(Exception):
    """Another live run holds the lock of this workbook's output folder."""

    def __init__(self, folder: Path) -> None:
        super().__init__(f"another run is writing {folder}")
        self.folder = folder


LOCK_SUFFIX = ".lock"


def lock_path(final: Path) -> Path:
    """The lock file of `final`: beside it, because `publish` replaces the folder itself."""
    return final.parent / f".{final.name}{LOCK_SUFFIX}"


# The operating system releases these locks when their process dies, even by kill -9, so a
# killed run never blocks the next one. fcntl.flock on Linux and macOS; msvcrt on Windows
# (written to the documented API, not tested here).
if sys.platform == "win32":
    import msvcrt

    def try_lock(fd: int) -> None:
        """Lock the file's first byte without waiting; OSError when another process holds it."""
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def release_lock(fd: int, path: Path) -> None:
        """Close (which unlocks), then remove the file unless another run has it open."""
        os.close(fd)
        with suppress(OSError):
            path.unlink()
else:
    import fcntl

    def try_lock(fd: int) -> None:
        """Lock the file without waiting; OSError when another process holds it."""
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release_lock(fd: int, path: Path) -> None:
        """Remove the lock file while still holding it, then close (which unlocks).

        Removing it first means a run that opened the old file and gets its lock afterwards
        sees it is no longer the file at `path` (`is_current_file`) and tries again.
        """
        path.unlink(missing_ok=True)
        os.close(fd)


def is_current_file(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path` (not removed or replaced)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def locked_fd(path: Path, final: Path) -> int:
    """An open, locked descriptor of the lock file at `path`; OutputBusy when a live run holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try_lock(fd)
        except OSError:
            os.close(fd)
            raise OutputBusy(final) from None
        if is_current_file(fd, path):
            return fd
        os.close(fd)  # its holder finished and removed it between our open and lock: again


@contextmanager
def output_lock(final: Path) -> Iterator[Path]:
    """Hold `final`'s lock for a whole run, first cleaning up what killed runs left beside it.

    A second run on the same output folder gets OutputBusy at once instead of waiting: the
    officer learns immediately that the work is under way, rather than watching a silent
    console, and a run that waited would only redo what the first is producing. The lock is
    per output folder, so different workbooks still run side by side.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(final)
    fd = locked_fd(path, final)
    try:
        recover_leftovers(final)
        yield final
    finally:
        release_lock(fd, path)


@contextmanager
def held_lock(path: Path) -> Iterator[Path]:
    """Hold the lock file at `path` (OutputBusy when a live process holds it) until the block ends.

    For locks that guard a role rather than an output folder, such as the one hot-folder watcher
    per output folder, so `serve` and `web` never both start runs for the same file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = locked_fd(path, path)
    try:
        yield path
    finally:
        release_lock(fd, path)


PROC_LOCKS = Path("/proc/locks")


def locked_inodes(table: str) -> set[tuple[int, int, int]]:
    """(major, minor, inode) of every file a lock is held on, from Linux's /proc/locks text.

    A line reads `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF`; lines of processes waiting
    for a lock carry `->` and are skipped. Major and minor are hexadecimal, the inode decimal.
    """
    held: set[tuple[int, int, int]] = set()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            held.add((int(major, 16), int(minor, 16), int(inode)))
        except ValueError:
            continue
    return held


@dataclass(frozen=True, slots=True)
class HeldLocks:
    """The files locked on this machine at one moment, as (major, minor, inode); `inodes` is None
    where the system does not tell (not Linux). Read once per look at a folder, not per file."""

    inodes: frozenset[tuple[int, int, int]] | None

    def holds(self, path: Path) -> bool | None:
        """Whether a live process holds a lock on the file at `path`; None when unknown."""
        if self.inodes is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return False  # holders remove their lock file as they end
        return (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino) in self.inodes


def held_locks() -> HeldLocks:
    """The locks held on this machine now, from /proc/locks."""
    try:
        table = PROC_LOCKS.read_text(encoding="ascii", errors="replace")
    except OSError:
        return HeldLocks(None)
    return HeldLocks(frozenset(locked_inodes(table)))


def is_running(final: Path, held: HeldLocks | None = None) -> bool:
    """Whether a live run holds `final`'s lock, found without touching the lock.

    Trying the lock would make a run starting at that instant fail with OutputBusy, so on Linux
    this reads /proc/locks instead (`held`, read now when not given). Elsewhere a staging folder
    beside `final` is the best sign (it outlives a killed run until the next run recovers it).
    """
    holds = (held or held_locks()).holds(lock_path(final))
    return bool(hidden_siblings(final, PARTIAL)) if holds is None else holds


def locked_folder(lock: Path) -> Path | None:
    """The folder whose lock file `lock` is (the inverse of `lock_path`), or None."""
    name = lock.name
    if name.startswith(".") and name.endswith(LOCK_SUFFIX) and len(name) > 1 + len(LOCK_SUFFIX):
        return lock.parent / name[1:-len(LOCK_SUFFIX)]
    return None
