"""Everything written to disk, each file through `atomic_write` so no half file has a final name.

A workbook's outputs are built in a hidden staging folder next to their destination and moved
into place as a whole by `publish`, so `output/<workbook>/` holds either the previous complete
run or the new complete run, never a mixture. A run holds the workbook's `output_lock` from start
to end; on entry the lock cleans up what runs killed earlier left beside the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

from pipeline.errors import PROBLEM_COLUMNS, Problem, Severity
from pipeline.write.tables import table_xlsx

REPORTS_DIR = "reports"
SUMMARY_NAME = "汇总表.xlsx"
PROBLEMS_NAME = "校验报告.xlsx"
MANIFEST_NAME = "manifest.json"
# Zip entries get a fixed time so the same reports always give the same zip bytes.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)
FIXED_TIME = datetime(2020, 1, 1)
# Windows device names, reserved with any extension (CON.txt) and in any case; Microsoft's list
# ("Naming Files, Paths, and Namespaces") includes COM0/LPT0 and the superscript digits.
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                    *(f"{port}{n}" for port in ("COM", "LPT") for n in [*"0123456789", "¹", "²", "³"])}
# Windows' forbidden characters, C0 and C1 controls, lone surrogates (not encodable in UTF-8) and
# the two noncharacters.
FORBIDDEN_IN_NAME = re.compile('[<>:"/\\\\|?*\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]')
# Invisible direction marks would let a name read as another ("报告\u202excod.exe" shows "报告exe.docx").
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Windows allows 255 UTF-16 units per name, Linux 255 bytes: 60 CJK characters fit both with room,
# and the byte cap keeps 60 four-byte characters (emoji) clear of 255 with a `_12345.docx` suffix.
MAX_STEM_CHARS = 60
MAX_STEM_BYTES = 200
VERSIONED_PACKAGES = ("perfreport", "prefect", "docxtpl", "python-docx", "pandera", "pandas", "openpyxl")


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """An output file as the manifest lists it: path relative to the workbook's folder."""

    path: str
    bytes: int
    sha256: str


# mkstemp creates 0600 files. Outputs are for the office: on a shared output folder the file
# server reads them as the officer's account, not the account that ran perfreport.
OUTPUT_MODE = 0o644


def readable_by_others(path: str | Path) -> None:
    """Give a file just created by mkstemp the mode of an ordinary new file (rw-r--r--)."""
    os.chmod(path, OUTPUT_MODE)


def atomic_write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        readable_by_others(tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cut_to_fit(text: str) -> str:
    """`text` cut to MAX_STEM_CHARS characters and MAX_STEM_BYTES bytes of UTF-8."""
    text = text[:MAX_STEM_CHARS]
    while len(text.encode("utf-8")) > MAX_STEM_BYTES:
        text = text[:-1]
    return text


def is_reserved_on_windows(stem: str) -> bool:
    """True when Windows reads the name as a device: CON, con.txt, "Con .txt", LPT¹.doc."""
    return stem.split(".")[0].rstrip(" ").upper() in WINDOWS_RESERVED


def safe_stem(text: str) -> str:
    """A file-name stem valid on Windows and Linux that cannot leave its folder."""
    text = unicodedata.normalize("NFC", text)
    text = FORBIDDEN_IN_NAME.sub("_", BIDI_CONTROLS.sub("", text))
    text = cut_to_fit(" ".join(text.split())).strip(" .")
    if not text or set(text) <= {"_", "."}:
        text = "报告"
    if is_reserved_on_windows(text):
        text = f"_{text}"
    return text


def windows_key(name: str) -> str:
    """The form in which Windows compares names: case-insensitive. Upper then casefold, so that
    names Windows upper-cases alike (ı and i both to I) count as one, as do those casefold joins."""
    return unicodedata.normalize("NFC", name).upper().casefold()


def report_filenames(projects: Sequence[tuple[str, str]]) -> list[str]:
    """A unique, safe `.docx` name per (项目编号, 项目名称), in order."""
    names: list[str] = []
    taken: set[str] = set()
    # The last number given to each stem, so 100,000 alike names do not rescan _2, _3, … each time.
    last_number: dict[str, int] = {}
    for project_id, name in projects:
        stem = safe_stem(f"{project_id}_{name}")
        key = windows_key(stem)
        candidate, n = stem, last_number.get(key, 1)
        while windows_key(candidate) in taken:  # Windows names are case-insensitive
            n += 1
            candidate = f"{stem}_{n}"
        last_number[key] = n
        taken.add(windows_key(candidate))
        names.append(f"{candidate}.docx")
    return names


# Characters of a name's hash added to an output folder whose workbook name had to be changed.
NAME_HASH_CHARS = 8


def output_folder_name(stem: str) -> str:
    """The output folder name of a workbook stem: the stem itself when it is already a safe name.

    One folder per workbook name, never shared: when `safe_stem` has to change a stem (a forbidden
    character, another Unicode form, a cut at 60 characters, a Windows device name) two names could
    come out alike ("a:b" and "a_b", the NFC and NFD spellings of one name), so the changed stem
    carries a short hash of the name as typed ("a_b-1f0c3e9a"). A plain name is kept as it is.
    """
    safe = safe_stem(stem)
    if safe == stem:
        return safe
    digest = hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:NAME_HASH_CHARS]
    return f"{cut_to_fit(safe)[: MAX_STEM_CHARS - NAME_HASH_CHARS - 1]}-{digest}"


def workbook_output_dir(output_dir: Path, workbook: Path) -> Path:
    """The folder of one workbook's outputs: output/<workbook name without .xlsx>/ (see
    `output_folder_name` for names that are not valid as they are)."""
    return output_dir / output_folder_name(workbook.stem)


# The hidden folders a run keeps beside output/<workbook>/. Each kind says what its content is,
# so a run killed at any moment leaves only folders whose fate is clear (see `recover_leftovers`):
PARTIAL = "partial"  # a run's staging folder: complete only once published
SET_ASIDE = "old"  # the previous complete outputs, moved aside while `publish` moves the new in
TRASH = "trash"  # outputs being deleted: possibly half gone, never to be restored


def hidden_sibling(final: Path, kind: str) -> Path:
    """A new, unique hidden path of `kind` beside `final`."""
    return final.parent / f".{final.name}.{kind}-{uuid.uuid4().hex[:12]}"


def hidden_siblings(final: Path, kind: str) -> list[Path]:
    """The hidden folders of `kind` beside `final`, matched exactly so another workbook's never are."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.{kind}-[0-9a-f]{{12}}")
    if not final.parent.is_dir():
        return []
    return sorted(p for p in final.parent.iterdir() if pattern.fullmatch(p.name))


def staging_dir(final: Path) -> Path:
    """A new hidden folder beside `final` where a run builds its outputs."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = hidden_sibling(final, PARTIAL)
    (path / REPORTS_DIR).mkdir(parents=True)
    return path


def set_aside(final: Path) -> Path | None:
    """Move the previous outputs out of `final`'s way, or None when there are none."""
    if not final.exists():
        return None
    previous = hidden_sibling(final, SET_ASIDE)
    os.replace(final, previous)
    return previous


def delete_folder(folder: Path, final: Path) -> None:
    """Delete a folder beside `final`, renaming it to TRASH first.

    The rename is atomic and rmtree is not: a kill during rmtree leaves a TRASH folder, never a
    half-deleted SET_ASIDE folder that recovery would take for complete outputs.
    """
    trash = hidden_sibling(final, TRASH)
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def publish(staging: Path, final: Path) -> Path:
    """Move a complete staging folder to `final`, replacing an earlier run's folder.

    Two renames: the previous outputs aside, then the new ones in. A failure between them puts
    the previous outputs back at once; a kill between them leaves the previous outputs in a
    SET_ASIDE folder and no `final`, which the next run's `recover_leftovers` restores.
    """
    previous = set_aside(final)
    try:
        os.replace(staging, final)
    except BaseException:
        if previous is not None:
            os.replace(previous, final)
        raise
    if previous is not None:
        delete_folder(previous, final)
    return final


def discard(staging: Path) -> None:
    """Remove a staging folder that will not be published."""
    shutil.rmtree(staging, ignore_errors=True)


def recover_leftovers(final: Path) -> None:
    """Finish or undo what killed runs left beside `final`.

    Only safe while holding `final`'s lock: every run that creates these folders holds it, so
    whatever is found here belongs to a run that is dead.
    - PARTIAL (a killed run's staging, its chunk files and temporary files) and TRASH: deleted;
    - SET_ASIDE with no `final`: a kill fell between publish's two renames, so these are the
      last complete outputs: restored (the run then replaces them as usual);
    - SET_ASIDE beside `final`: the new outputs were already in place: deleted.
    """
    for folder in [*hidden_siblings(final, PARTIAL), *hidden_siblings(final, TRASH)]:
        shutil.rmtree(folder, ignore_errors=True)
    previous = hidden_siblings(final, SET_ASIDE)
    if previous and not final.exists():
        # Only one can exist (each run recovers before publishing); the latest renamed wins anyway.
        latest = max(previous, key=lambda p: p.stat().st_ctime_ns)
        os.replace(latest, final)
        previous.remove(latest)
    for folder in previous:
        delete_folder(folder, final)


def folder_owner(final: Path) -> str | None:
    """The workbook file name whose run published `final` (its manifest's input), or None."""
    try:
        manifest = json.loads((final / MANIFEST_NAME).read_text(encoding="utf-8"))
        return str(manifest["input"]["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class OutputRefused(Exception):
    """A workbook may not write to its output folder (a reserved name, another workbook's folder)."""

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(reason)
        self.folder, self.reason = folder, reason


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


def xlsx_bytes(sheet_title: str, columns: Sequence[str], rows: Iterable[Mapping[str, object]],
               widths: Mapping[str, int] | None = None) -> bytes:
    """A one-sheet workbook with a bold, frozen header row; text is never a formula.

    Written by `xlsxtable` rather than openpyxl (20 times faster for a province's 100,000 rows),
    stamped with fixed times so the same rows always give the same bytes.
    """
    return table_xlsx(sheet_title, columns, rows, widths, created=FIXED_TIME, timestamp=ZIP_TIMESTAMP)


def write_problems(path: Path, problems: Sequence[Problem]) -> Path:
    """校验报告.xlsx: one row per problem, errors first, in workbook order."""
    ordered = sorted(problems, key=lambda p: (p.severity is not Severity.ERROR, p.sheet, p.excel_row or 0))
    widths = {"工作表": 10, "行": 6, "列": 22, "值": 24, "级别": 6, "说明": 80}
    return atomic_write(path, xlsx_bytes("校验报告", PROBLEM_COLUMNS, (p.as_row() for p in ordered), widths))


def write_summary(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """汇总表.xlsx: one row per project."""
    columns = list(rows[0]) if rows else ["项目编号"]
    widths = {"项目名称": 30, "报告文件": 40}
    return atomic_write(path, xlsx_bytes("汇总表", columns, rows, widths))


def write_zip(path: Path, files: Sequence[Path], root: Path) -> Path:
    """A zip of `files` (names relative to `root`), streamed from disk, with fixed timestamps.

    Entries are stored, not deflated: a .docx is itself a compressed zip, and deflating 100,000
    of them again would cost minutes for a few percent.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        readable_by_others(tmp)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for file in sorted(files):
                info = zipfile.ZipInfo(file.relative_to(root).as_posix(), ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with file.open("rb") as source, archive.open(info, "w") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the outputs, for the manifest."""
    versions: dict[str, str] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def write_manifest(path: Path, workbook: Path, workbook_sha256: str, root: Path,
                   counts: Mapping[str, int], status: str, known: Sequence[WrittenFile] = ()) -> Path:
    """manifest.json: the input and its hash, every output with its hash, counts and versions.

    `known` files were hashed when written (the reports), so they are not read again.
    """
    hashed = {f.path: f for f in known}
    listed = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                    if p.is_file() and p.name != MANIFEST_NAME)
    outputs = []
    for name in listed:
        entry = hashed.get(name) or WrittenFile(name, (root / name).stat().st_size, sha256_of(root / name))
        outputs.append({"path": entry.path, "bytes": entry.bytes, "sha256": entry.sha256})
    manifest = {
        "status": status,
        "input": {"file": workbook.name, "sha256": workbook_sha256},
        "counts": dict(counts),
        "outputs": outputs,
        "versions": package_versions(),
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    return atomic_write(path, text.encode("utf-8"))
