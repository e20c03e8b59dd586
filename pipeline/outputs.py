"""Everything written to disk, each file through `atomic_write` so no half file has a final name.

A workbook's outputs are built in a hidden staging folder next to their destination and moved
into place as a whole by `publish`, so `output/<workbook>/` holds either the previous complete
run or the new complete run, never a mixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

from pipeline.errors import PROBLEM_COLUMNS, Problem
from pipeline.xlsxtable import table_xlsx

REPORTS_DIR = "reports"
SUMMARY_NAME = "汇总表.xlsx"
PROBLEMS_NAME = "校验报告.xlsx"
MANIFEST_NAME = "manifest.json"
# Zip entries get a fixed time so the same reports always give the same zip bytes.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)
FIXED_TIME = datetime(2020, 1, 1)
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                    *(f"LPT{i}" for i in range(1, 10))}
FORBIDDEN_IN_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
# Windows allows 255 UTF-16 units per name, Linux 255 bytes: 60 CJK characters fit both with room.
MAX_STEM_CHARS = 60
FORMULA_PREFIXES = ("=", "+", "-", "@")
VERSIONED_PACKAGES = ("perfreport", "prefect", "docxtpl", "python-docx", "pandera", "pandas", "openpyxl")


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """An output file as the manifest lists it: path relative to the workbook's folder."""

    path: str
    bytes: int
    sha256: str


def atomic_write(path: Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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


def safe_stem(text: str) -> str:
    """A file-name stem valid on Windows and Linux that cannot leave its folder."""
    text = unicodedata.normalize("NFC", text)
    text = FORBIDDEN_IN_NAME.sub("_", text)
    text = " ".join(text.split())[:MAX_STEM_CHARS].strip(" .")
    if not text or set(text) <= {"_", "."}:
        text = "报告"
    if text.split(".")[0].upper() in WINDOWS_RESERVED:
        text = f"_{text}"
    return text


def report_filenames(projects: Sequence[tuple[str, str]]) -> list[str]:
    """A unique, safe `.docx` name per (项目编号, 项目名称), in order."""
    names: list[str] = []
    taken: set[str] = set()
    for project_id, name in projects:
        stem = safe_stem(f"{project_id}_{name}")
        candidate, n = stem, 1
        while candidate.casefold() in taken:  # Windows names are case-insensitive
            n += 1
            candidate = f"{stem}_{n}"
        taken.add(candidate.casefold())
        names.append(f"{candidate}.docx")
    return names


def workbook_output_dir(output_dir: Path, workbook: Path) -> Path:
    """The folder of one workbook's outputs: output/<workbook name without .xlsx>/."""
    return output_dir / safe_stem(workbook.stem)


def staging_dir(final: Path) -> Path:
    """A new hidden folder beside `final` where a run builds its outputs."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:12]}"
    (path / REPORTS_DIR).mkdir(parents=True)
    return path


def publish(staging: Path, final: Path) -> Path:
    """Move a complete staging folder to `final`, replacing an earlier run's folder."""
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def discard(staging: Path) -> None:
    """Remove a staging folder that will not be published."""
    shutil.rmtree(staging, ignore_errors=True)


def xlsx_bytes(sheet_title: str, columns: Sequence[str], rows: Iterable[Mapping[str, object]],
               widths: Mapping[str, int] | None = None) -> bytes:
    """A one-sheet workbook with a bold, frozen header row; text is never a formula.

    Written by `xlsxtable` rather than openpyxl (20 times faster for a province's 100,000 rows),
    stamped with fixed times so the same rows always give the same bytes.
    """
    return table_xlsx(sheet_title, columns, rows, widths, created=FIXED_TIME, timestamp=ZIP_TIMESTAMP)


def write_problems(path: Path, problems: Sequence[Problem]) -> Path:
    """校验报告.xlsx: one row per problem, errors first, in workbook order."""
    ordered = sorted(problems, key=lambda p: (p.severity != "错误", p.sheet, p.excel_row or 0))
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
