"""The decisions of the `input/` hot folder: which workbooks are complete and which need a run.

The finance office drops workbooks into `input/`, often a shared network folder that a copy
fills for seconds or minutes. A long-running service (later `perfreport serve`) polls it and
starts a run per new or corrected workbook. This module holds that service's logic without
Prefect, the clock or sleeping, so every rule is tested with real files and injected times:

    previous = {}
    while True:
        polled = poll(Path("input"), previous, time.monotonic())
        for path in polled.ready:
            sha256 = polled.observations[path.name].sha256
            if needs_run(path, state, sha256):
                archive_previous_outputs(Path("output"), path)
                summary = run_workbook(path, settings)
                state = with_run(state, path.name, sha256, summary.status, datetime.now())
                save_state(state_file, state)
        previous = polled.observations

Nothing here writes to, renames or deletes anything in the input folder: it is the officers'
folder, and a share may be read-only for the service anyway.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from pipeline.config import DEFAULT_SETTLE_SECONDS
from pipeline.inputs import workbook_entries
from pipeline.write.files import atomic_write, sha256_of
from pipeline.write.folders import ARCHIVE_DIR, name_refusal
from pipeline.write.locks import output_lock
from pipeline.write.names import OutputRefused, windows_key, workbook_output_dir

# Under output/, not input/: the service never writes into the officers' folder. Hidden, so
# it cannot meet a workbook's output folder (`safe_stem` strips leading dots).
STATE_NAME = ".perfreport-hotfolder.json"
STATE_VERSION = 1
# One watcher per output folder (`serve` or `web`): its lock, beside the state it writes.
WATCHER_LOCK_NAME = ".perfreport-hotfolder.lock"
# Why the watcher of this output folder cannot do its work now (one Chinese line), for the web
# page; absent while all is well. Read only while the watcher's lock is held (`runs`).
HEALTH_NAME = ".perfreport-hotfolder.problem"
# Sortable, and without the colons Windows forbids in a name.
ARCHIVE_STAMP = "%Y%m%d-%H%M%S"
# Each failed attempt lost a race for one name; this many in a row means something else is wrong.
ARCHIVE_ATTEMPTS = 100


# --- 2. complete files only -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """A workbook file as one poll saw it.

    `first_seen` is the poll time (`now`) at which the file was first seen exactly like this;
    `carried_over` keeps it across polls, so a file settles after `settle_seconds` however
    often the folder is polled. `sha256` is filled once the file is ready and carried over
    while nothing changes, so a settled file is hashed once, not on every poll.
    """

    path: Path
    size: int
    mtime_ns: int
    # A rewrite that keeps size and mtime (a copy tool preserving timestamps) still changes the
    # status-change time, and a replace-by-rename the inode: both count as a change.
    ctime_ns: int
    inode: int
    first_seen: float
    sha256: str | None = None


Observations = Mapping[str, Observation]


def is_unchanged(earlier: Observation, later: Observation) -> bool:
    """Whether two observations of a file show it untouched in between."""
    return ((earlier.size, earlier.mtime_ns, earlier.ctime_ns, earlier.inode)
            == (later.size, later.mtime_ns, later.ctime_ns, later.inode))


def scan(folder: Path, now: float) -> dict[str, Observation]:
    """The workbook files of `folder` as they are at `now` (file name -> observation).

    `now` is any clock's reading in seconds (the service uses time.monotonic); only the
    differences between polls matter.
    """
    found: dict[str, Observation] = {}
    for entry in workbook_entries(folder):
        try:
            stat = entry.stat(follow_symlinks=True)
        except OSError:  # removed or renamed since the listing: the next poll tells
            continue
        found[entry.name] = Observation(Path(entry.path), stat.st_size, stat.st_mtime_ns,
                                        stat.st_ctime_ns, stat.st_ino, now)
    return found


def is_still(seen: Observation) -> bool:
    """Whether the file is still as `seen` saw it (False when it is gone)."""
    try:
        stat = seen.path.stat()
    except OSError:
        return False
    return is_unchanged(seen, replace(seen, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                                      ctime_ns=stat.st_ctime_ns, inode=stat.st_ino))


def carried_over(previous: Observations, current: Observations) -> dict[str, Observation]:
    """`current`, where each file unchanged since `previous` keeps when it was first seen so
    and its hash; the observations to pass as `previous` to the next poll."""
    kept: dict[str, Observation] = {}
    for name, seen in current.items():
        before = previous.get(name)
        if before is not None and is_unchanged(before, seen):
            seen = replace(seen, first_seen=before.first_seen, sha256=before.sha256)
        kept[name] = seen
    return kept


def is_complete_zip(path: Path) -> bool:
    """Whether `path` holds a whole zip: the end record is there and its central directory reads.

    A copy writes front to back and the end record is the last thing in a zip, so a truncated
    copy has none; a copy that first sets the final size (some do) has zeros where the central
    directory will be, which opening the zip catches.
    """
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):  # also a share refusing a file in use
        return False
    return True


def ready(previous: Observations, current: Observations, now: float,
          settle_seconds: float = DEFAULT_SETTLE_SECONDS, settled: Collection[str] = ()) -> list[Path]:
    """The workbooks complete at `now`: seen unchanged by two polls at least `settle_seconds`
    apart, and a whole zip. In name order.

    Size and time alone are not enough: a stalled network copy holds both still for as long as
    it stalls. A file already hashed while unchanged was a whole zip then, so it is not reread.
    The names in `settled` need no second look: files this service itself renamed into place
    whole (an upload of the web page), which no copy can still be writing.
    """
    found: list[Path] = []
    for name, seen in sorted(current.items()):
        before = previous.get(name)
        if name not in settled:
            if before is None or not is_unchanged(before, seen):
                continue
            if now - before.first_seen < settle_seconds:
                continue
        if seen.sha256 is not None or is_complete_zip(seen.path):
            found.append(seen.path)
    return found


def content_sha256(path: Path) -> str:
    """The hex sha256 of a file's content, read in 1 MiB blocks (as the manifest records it)."""
    return sha256_of(path)


@dataclass(frozen=True, slots=True)
class Poll:
    """One look at the folder: what was seen (pass it back as `previous`) and what is ready."""

    observations: Mapping[str, Observation]
    ready: tuple[Path, ...]


def poll(folder: Path, previous: Observations, now: float,
         settle_seconds: float = DEFAULT_SETTLE_SECONDS, settled: Collection[str] = ()) -> Poll:
    """Scan `folder` at `now`; the ready workbooks come with their content hash filled in.
    `settled`: names known to be complete (see `ready`)."""
    current = carried_over(previous, scan(folder, now))
    hashed: list[Path] = []
    for path in ready(previous, current, now, settle_seconds, settled):
        seen = current[path.name]
        if seen.sha256 is None:
            try:
                sha256 = content_sha256(path)
            except OSError:  # gone or locked while hashing: not ready after all, next poll tells
                continue
            if not is_still(seen):  # a new copy began while hashing: the hash is of neither
                continue
            current[path.name] = replace(seen, sha256=sha256)
        hashed.append(path)
    return Poll(current, tuple(hashed))


# --- 3. what was processed ------------------------------------------------------------------


class StateUnreadable(ValueError):
    """The state file exists but is not one this module wrote. Raised rather than treated as
    empty: an empty state would re-run (and archive the outputs of) every workbook at once."""


@dataclass(frozen=True, slots=True)
class Processed:
    """The last run of a workbook: the content it read and how it ended (an errors.Status, or a Prefect state type)."""

    sha256: str
    outcome: str
    processed_at: str  # ISO 8601, for a person reading the file
    message: str = ""  # why a run was refused, when it wrote no outputs that would tell
    profile: str = ""  # the scoring profile an upload chose for it (a stem), "" when none was named
    pdf: bool = False  # an upload asked for PDF copies of its reports


@dataclass(frozen=True, slots=True)
class HotfolderState:
    """File name -> its last run. Keyed by name: a corrected file keeps the name of the one it
    replaces, and that is what makes it a correction."""

    processed: Mapping[str, Processed] = field(default_factory=dict)


def state_path(state_dir: Path) -> Path:
    """The state file in `state_dir` (the output folder, never the input folder)."""
    return state_dir / STATE_NAME


def load_state(path: Path) -> HotfolderState:
    """The state saved at `path`; empty when there is none yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return HotfolderState()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateUnreadable(f"{path}: {exc}") from exc
    try:
        if data["version"] != STATE_VERSION:
            raise StateUnreadable(f"{path}: version {data['version']!r}, expected {STATE_VERSION}")
        return HotfolderState({name: Processed(str(run["sha256"]), str(run["outcome"]),
                                               str(run["processed_at"]), str(run.get("message", "")),
                                               str(run.get("profile", "")), run.get("pdf", False) is True)
                               for name, run in data["files"].items()})
    except (KeyError, TypeError, AttributeError) as exc:
        raise StateUnreadable(f"{path}: unexpected content ({exc!r})") from exc


def state_json(state: HotfolderState) -> bytes:
    """The state as UTF-8 JSON, names sorted so the file diffs cleanly."""
    files = {name: {"sha256": run.sha256, "outcome": run.outcome, "processed_at": run.processed_at,
                    **({"message": run.message} if run.message else {}),
                    **({"profile": run.profile} if run.profile else {}),
                    **({"pdf": True} if run.pdf else {})}
             for name, run in sorted(state.processed.items())}
    text = json.dumps({"version": STATE_VERSION, "files": files}, ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


def save_state(path: Path, state: HotfolderState) -> Path:
    """Write the state atomically (temp file, fsync, os.replace): a service killed mid-write
    leaves the previous state, never a half file that would stop the next start."""
    return atomic_write(path, state_json(state))


def with_run(state: HotfolderState, name: str, sha256: str, outcome: str,
             processed_at: datetime, message: str = "", profile: str = "", pdf: bool = False) -> HotfolderState:
    """`state` with `name`'s last run replaced by this one.

    Record the hash taken before the run: if the file changed during the run, the next poll
    sees new content and runs again, rather than marking unread content as done.
    """
    run = Processed(sha256, outcome, processed_at.isoformat(timespec="seconds"), message, profile, pdf)
    return HotfolderState({**state.processed, name: run})


def needs_run(path: Path, state: HotfolderState, sha256: str | None = None, profile: str | None = None,
              pdf: bool | None = None) -> bool:
    """Whether the workbook's content differs from what its last run read (or it never ran), or
    `profile`, the scoring profile an upload chose for this content ("" for none), differs from
    the one its last run was given. `profile` None: no upload named one, the content decides.
    Likewise `pdf`, whether the upload asked for PDF copies (None: no upload said).

    Content, not mtime: copying the same file onto a share again gives it a new mtime, and must
    not start a run. Pass `sha256` when it is known (Poll fills it in) to skip reading the file.
    Every outcome counts as processed: the same content would fail the same way again, and a
    corrected file has a new hash. Do not record a run that never happened (OutputBusy).
    """
    last = state.processed.get(path.name)
    if last is None:
        return True
    if profile is not None and last.profile != profile:
        return True
    if pdf is not None and last.pdf != pdf:
        return True
    return last.sha256 != (sha256 or content_sha256(path))


def save_health(output_dir: Path, problem: str | None) -> None:
    """Record why the watcher cannot work (or, with None, that it can again) for the web page.

    Best effort: when the output folder itself is what fails, there is nowhere to write it, and
    the watcher's log says it instead.
    """
    path = output_dir / HEALTH_NAME
    try:
        if problem is None:
            path.unlink(missing_ok=True)
        elif load_health(output_dir) != problem:
            atomic_write(path, problem.encode("utf-8"))
    except OSError:
        pass


def load_health(output_dir: Path) -> str | None:
    """What `save_health` recorded last, or None."""
    try:
        return (output_dir / HEALTH_NAME).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


# --- 4. archive before replace --------------------------------------------------------------


def archive_root(output_dir: Path) -> Path:
    """Where replaced outputs go: output/_archive/."""
    return output_dir / ARCHIVE_DIR


def archive_path(root: Path, stem: str, stamp: str, suffix: str = "") -> Path:
    """A path `root/<stem>-<stamp><suffix>` not taken yet, with -2, -3 … before the suffix when
    it is; compared as Windows compares names, since output/ may well be a share."""
    taken = {windows_key(p.name) for p in root.iterdir()} if root.is_dir() else set()
    candidate, n = f"{stem}-{stamp}{suffix}", 1
    while windows_key(candidate) in taken:
        n += 1
        candidate = f"{stem}-{stamp}-{n}{suffix}"
    return root / candidate


def archive_previous_outputs(output_dir: Path, workbook: Path,
                             clock: Callable[[], datetime] = datetime.now) -> Path | None:
    """Move the workbook's earlier outputs, output/<stem>/, to output/_archive/<stem>-<time>/;
    the new path, or None when there are none.

    A rename, never a copy: instant, and nothing is half-archived. It holds the workbook's
    `output_lock`, so it refuses (OutputBusy) while a run is writing those outputs, and the
    lock's recovery first puts back outputs that a killed `publish` left set aside. The time is
    local (`clock`): the folder names are read by the office.
    """
    final = workbook_output_dir(output_dir, workbook)
    root = archive_root(output_dir)
    refused = name_refusal(workbook.name)
    if refused is not None:  # callers check first; this guards the archive all the same
        raise OutputRefused(final, refused)
    with output_lock(final):
        if not final.exists():
            return None
        root.mkdir(parents=True, exist_ok=True)
        stamp = clock().strftime(ARCHIVE_STAMP)
        for _ in range(ARCHIVE_ATTEMPTS):
            target = archive_path(root, final.name, stamp)
            try:
                # os.rename, not os.replace: never onto an existing archive. Two workbooks
                # whose names differ only in case (two locks) may race for one name: try again.
                os.rename(final, target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue
            return target
        raise FileExistsError(errno.EEXIST, "no free archive name", str(target))
