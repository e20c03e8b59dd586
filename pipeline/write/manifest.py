"""manifest.json, the record of a run: its input, every output with its hash, counts, versions.

Written last into the staging folder, so it lists every other output. It is also how an output
folder says which workbook it belongs to (`folder_owner`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from pipeline.errors import Counts
from pipeline.write.files import WrittenFile, atomic_write, sha256_of
from pipeline.write.names import MANIFEST_NAME

VERSIONED_PACKAGES = ("perfreport", "prefect", "docxtpl", "python-docx", "pandera", "pandas", "openpyxl")


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
                   counts: Counts, status: str, known: Sequence[WrittenFile] = (),
                   profile: str | None = None) -> Path:
    """manifest.json: the input and its hash, the scoring profile, every output with its hash,
    counts and versions.

    `known` files were hashed when written (the reports), so they are not read again. `profile`
    is the display name of the scoring profile the run used (left out when not given).
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
        **({"profile": profile} if profile is not None else {}),
        "counts": counts.as_dict(),
        "outputs": outputs,
        "versions": package_versions(),
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    return atomic_write(path, text.encode("utf-8"))


def folder_owner(final: Path) -> str | None:
    """The workbook file name whose run published `final` (its manifest's input), or None."""
    try:
        manifest = json.loads((final / MANIFEST_NAME).read_text(encoding="utf-8"))
        return str(manifest["input"]["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
