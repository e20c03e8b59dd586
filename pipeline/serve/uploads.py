"""Putting an uploaded workbook into the input folder, and telling uploads of one name apart.

An upload is checked like a hot-folder file and more (name, size, a readable and safe .xlsx),
then moved into the input folder under a hidden temporary name and renamed into place, which is
what the hot folder picks up. A workbook already there under that name is first copied to
output/_archive/, since it is the office's own file. Uploads of one name replace it one at a time.
A run page names the upload it was opened for by the first hex digits of its sha256 (`upload_id`),
so when a later upload of the name replaced it, the page can say where it went.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO

from starlette.datastructures import UploadFile

from pipeline import inputs
from pipeline.errors import WorkbookRefused, os_error_reason
from pipeline.serve import hotfolder, profilechoice, runs
from pipeline.write import folders
from pipeline.write.files import sha256_of
from pipeline.write.locks import LOCK_SUFFIX, OutputBusy, held_lock, took_lock
from pipeline.write.names import safe_stem, windows_key

# Hidden names in the input folder: an upload being written, and the lock of one workbook name.
UPLOAD_PART_PREFIX, UPLOAD_PART_SUFFIX = ".perfreport-upload-", ".part"
REPLACE_LOCK_PREFIX = ".perfreport-replace-"
REPLACE_WAIT_SECONDS = 60.0  # another process replacing the same name holds it for a copy and a rename
# The first hex digits of an upload's sha256 on its run page's address (?upload=): enough to tell
# the uploads of one name apart, short enough for an address.
UPLOAD_ID_CHARS = 16
ARCHIVE_LOOKUPS = 50  # kept inputs of one name searched for a replaced upload, newest first


def uploaded_name(filename: str | None) -> str | None:
    """The input-folder name for an uploaded file's name, or None when it is not a workbook's.

    The browser's name is only a suggestion: its folder part (either slash) goes, the stem is
    made safe like an output name, and what is left must pass the hot folder's own name rule.
    """
    if not filename:
        return None
    base = PurePosixPath(unicodedata.normalize("NFC", filename).replace("\\", "/")).name
    if not inputs.is_workbook_name(base):
        return None
    return safe_stem(base[: -len(inputs.WORKBOOK_SUFFIX)]) + inputs.WORKBOOK_SUFFIX


class UploadRejected(Exception):
    """An upload that is not accepted, with the Chinese reason and the HTTP status."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


@dataclass(frozen=True, slots=True)
class SavedUpload:
    """An upload now in the input folder."""

    path: Path
    new: bool  # False: the same bytes were there already, to be scored by the same profile
    sha256: str


def upload_id(sha256: str) -> str:
    """How the run page's address names one upload's content."""
    return sha256[:UPLOAD_ID_CHARS]


class NameLocks:
    """One lock per input-folder name, as Windows compares names, made on first use: uploads of
    one name replace the workbook one after another. The names of one office's workbooks are few."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.locks: dict[str, threading.Lock] = {}

    def lock(self, name: str) -> threading.Lock:
        """The lock of `name`."""
        with self.guard:
            return self.locks.setdefault(windows_key(name), threading.Lock())


NAME_LOCKS = NameLocks()  # per process: every app of this process on any folder


def replace_lock_path(input_dir: Path, name: str) -> Path:
    """The lock file beside the input workbook `name` (hidden: the hot folder ignores it)."""
    key = hashlib.sha256(windows_key(name).encode("utf-8")).hexdigest()[:UPLOAD_ID_CHARS]
    return input_dir / f"{REPLACE_LOCK_PREFIX}{key}{LOCK_SUFFIX}"


@contextmanager
def replacing(input_dir: Path, name: str) -> Iterator[None]:
    """Hold the right to replace the input workbook `name`: compare, keep the old one, rename.

    Unlocked, twenty uploads of one name at once each compared against the same old file, and
    the copies of the ones replaced in between were lost. The threads of this process queue on
    a lock per name; another process on the same folder (a second `web`) on a lock file, tried
    again until REPLACE_WAIT_SECONDS pass.
    """
    with NAME_LOCKS.lock(name), contextlib.ExitStack() as held:
        deadline = time.monotonic() + REPLACE_WAIT_SECONDS
        while True:
            try:
                held.enter_context(held_lock(replace_lock_path(input_dir, name)))
                break
            except OutputBusy:
                if time.monotonic() > deadline:
                    raise UploadRejected("另一个同名工作簿正在保存，请稍后重新上传。", 503) from None
                time.sleep(0.05)
        yield


@contextmanager
def upload_part(input_dir: Path) -> Iterator[tuple[Path, IO[bytes]]]:
    """A new hidden part file in the input folder, open for writing and locked while open.

    The lock tells a part being written from one left by a server killed mid-upload, which
    `remove_stale_parts` deletes at the next start. Removed at the end unless renamed into place.
    """
    part = input_dir / f"{UPLOAD_PART_PREFIX}{uuid.uuid4().hex}{UPLOAD_PART_SUFFIX}"
    handle = os.fdopen(os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), "r+b")
    try:
        # Nobody else can hold a file just created exclusively: a failure means a share without
        # locks, where the upload still works and its part is merely never taken for stale.
        with contextlib.suppress(OSError):
            took_lock(handle.fileno())
        yield part, handle
    finally:
        handle.close()
        part.unlink(missing_ok=True)


def remove_stale_parts(input_dir: Path) -> list[Path]:
    """Delete the upload part files no live upload holds (their server was killed); the removed."""
    if not input_dir.is_dir():
        return []
    removed = []
    for part in input_dir.glob(f"{glob.escape(UPLOAD_PART_PREFIX)}*{UPLOAD_PART_SUFFIX}"):
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue  # gone already, or not ours to read
        try:
            if took_lock(fd):  # otherwise an upload of a live process is writing it
                part.unlink(missing_ok=True)
                removed.append(part)
        except OSError:
            pass  # a share without locks: a part that may be live is kept
        finally:
            os.close(fd)
    return removed


def copy_hashed(source: IO[bytes], target: IO[bytes]) -> str:
    """Copy `source` from its start to `target`; the hex sha256 of what was copied."""
    digest = hashlib.sha256()
    source.seek(0)
    for block in iter(lambda: source.read(1 << 20), b""):
        digest.update(block)
        target.write(block)
    return digest.hexdigest()


def previous_choice(output_dir: Path, name: str, sha256: str) -> tuple[str, bool]:
    """The profile the content `sha256` of `name` was last given and whether PDF copies were asked
    for: its upload's choices, or none named (a file copied in by hand, or no record of it)."""
    return (profilechoice.uploaded_choice(output_dir, name, sha256) or profilechoice.AUTOMATIC,
            bool(profilechoice.uploaded_pdf(output_dir, name, sha256)))


def save_upload(upload: UploadFile, name: str, input_dir: Path, output_dir: Path,
                max_upload_bytes: int, profile: str = profilechoice.AUTOMATIC, pdf: bool = False) -> SavedUpload:
    """Check an uploaded workbook and put it into the input folder as `name`, with the scoring
    `profile` the page offered and the officer chose (a shipped stem, or AUTOMATIC), and whether
    PDF copies were asked for.

    Written under a hidden name the hot folder ignores, checked there, then renamed into place,
    so the watcher never sees a half-written or unchecked file. The replacing itself (compare,
    keep the old workbook in output/_archive/, record the choice, rename) is one upload of a name
    at a time. The choice is recorded before the rename, so the watcher never meets the new
    content without it.
    """
    from pipeline.xlsx.refusal import refuse_unreadable  # numpy: only when needed

    try:
        input_dir.mkdir(parents=True, exist_ok=True)
        with upload_part(input_dir) as (part, handle):
            sha256 = copy_hashed(upload.file, handle)
            if handle.tell() > max_upload_bytes:
                raise UploadRejected(f"文件超过上传上限 {max_upload_bytes // (1024 * 1024)} MB。", 413)
            handle.flush()
            os.fsync(handle.fileno())
            try:
                refuse_unreadable(part)
            except WorkbookRefused as exc:
                raise UploadRejected(exc.reason, 415) from None
            target = input_dir / name
            with replacing(input_dir, name):
                if target.is_file() and sha256_of(target) == sha256:
                    same_choice = previous_choice(output_dir, name, sha256) == (profile, pdf)
                    profilechoice.save_choice(output_dir, profilechoice.ChoiceRecord(name, sha256, profile, pdf))
                    return SavedUpload(target, not same_choice, sha256)
                if target.exists():
                    keep_replaced_input(target, output_dir)
                profilechoice.save_choice(output_dir, profilechoice.ChoiceRecord(name, sha256, profile, pdf))
                os.replace(part, target)
                return SavedUpload(target, True, sha256)
    except OSError as exc:  # a read-only share, a full disk, a folder named like the workbook
        raise UploadRejected(f"无法保存到输入文件夹：{os_error_reason(exc)}", 500) from None


def keep_replaced_input(target: Path, output_dir: Path) -> Path:
    """Copy a workbook about to be replaced by an upload to output/_archive/<stem>-输入-<time>.xlsx.

    Created exclusively ("xb"): two uploads in one second race for a name, and the loser takes
    the next one instead of overwriting the winner's copy.
    """
    root = hotfolder.archive_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime(hotfolder.ARCHIVE_STAMP)
    for _ in range(hotfolder.ARCHIVE_ATTEMPTS):
        kept = hotfolder.archive_path(root, f"{target.stem}-输入", stamp, inputs.WORKBOOK_SUFFIX)
        try:
            with target.open("rb") as source, kept.open("xb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
        except FileExistsError:
            continue
        shutil.copystat(target, kept)
        return kept
    raise FileExistsError(f"no free archive name for {target.name} in {root}")


UPLOAD_ID = re.compile(f"[0-9a-f]{{{UPLOAD_ID_CHARS}}}")


def shown_uploads(run: runs.RunView, input_dir: Path, cache: runs.FolderCache) -> set[str]:
    """The upload ids of the content a run page speaks of: what the run read, and while it waits
    (or when no manifest says what it read) the workbook in the input folder now."""
    shown = {upload_id(run.input_sha256)} if run.input_sha256 else set()
    if run.status == runs.RUNNING or not run.input_sha256:
        current = cache.sha256(input_dir / PurePosixPath(run.workbook).name)
        if current:
            shown.add(upload_id(current))
    return shown


def archived_upload(output_dir: Path, workbook: str, wanted: str, cache: runs.FolderCache) -> Path | None:
    """The copy in output/_archive/ of the input `workbook` whose content has upload id `wanted`
    (kept by `keep_replaced_input`), newest first among the last ARCHIVE_LOOKUPS; None if none."""
    stem = PurePosixPath(workbook).stem
    kept = sorted(hotfolder.archive_root(output_dir).glob(f"{glob.escape(stem)}-输入-*{inputs.WORKBOOK_SUFFIX}"),
                  reverse=True)
    return next((p for p in kept[:ARCHIVE_LOOKUPS] if (cache.sha256(p) or "").startswith(wanted)), None)


def replaced_upload(wanted: str | None, run: runs.RunView, input_dir: Path, output_dir: Path,
                    cache: runs.FolderCache) -> str | None:
    """Where the upload a run page was opened for (`?upload=`) went when a later upload of the same
    name replaced it, so the page does not pass the later one's result off as its own: the kept
    copy as output/_archive/<name>, or output/_archive/ when no copy is found. None when the page
    shows the upload's own content, or names no upload."""
    if wanted is None or UPLOAD_ID.fullmatch(wanted) is None:
        return None
    if wanted in shown_uploads(run, input_dir, cache):
        return None
    kept = archived_upload(output_dir, run.workbook, wanted, cache)
    return f"output/{folders.ARCHIVE_DIR}/" + (kept.name if kept else "")

