"""One way to put a file in place: `atomic_write`, so no half-written file ever has a final name.

Every writer that replaces a file goes through here (the tables, the zip, the manifest, the hot
folder's state, the scripts that build the example workbook and the template): a temporary file
in the same folder, flushed to disk, then renamed over the final name, readable by the office.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# mkstemp creates 0600 files. Outputs are for the office: on a shared output folder the file
# server reads them as the officer's account, not the account that ran perfreport.
OUTPUT_MODE = 0o644


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """An output file as the manifest lists it: path relative to the workbook's folder."""

    path: str
    bytes: int
    sha256: str


def readable_by_others(path: str | Path) -> None:
    """Give a file just created by mkstemp the mode of an ordinary new file (rw-r--r--)."""
    os.chmod(path, OUTPUT_MODE)


def atomic_write_with(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Let `write` fill a temporary file in `path`'s folder, then rename it to `path`.

    For writers that stream (the zip of every report, a workbook openpyxl saves) and so never
    hold the whole file. The rename is atomic, so `path` is either the previous file or the
    complete new one; fsync first, so a power cut cannot leave a renamed but empty file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            readable_by_others(tmp)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same folder, then rename it into place."""
    return atomic_write_with(path, lambda handle: handle.write(data))


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
