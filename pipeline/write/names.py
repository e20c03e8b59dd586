"""Every name perfreport gives a file or folder: the fixed names of a workbook's outputs, a safe
`.docx` name per project and one output folder per workbook name, valid on Windows and Linux.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

# What a workbook's output folder holds besides the zip (named after the folder).
REPORTS_DIR = "reports"
SUMMARY_NAME = "汇总表.xlsx"
PROBLEMS_NAME = "校验报告.xlsx"
MANIFEST_NAME = "manifest.json"
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
# Characters of a name's hash added to an output folder whose workbook name had to be changed.
NAME_HASH_CHARS = 8


class OutputRefused(Exception):
    """A workbook may not write to its output folder (a reserved name, another workbook's folder)."""

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(reason)
        self.folder, self.reason = folder, reason


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
        # A printed form's project is known by its sheet, often named after the project itself.
        stem = safe_stem(name if project_id == name else f"{project_id}_{name}")
        key = windows_key(stem)
        candidate, n = stem, last_number.get(key, 1)
        while windows_key(candidate) in taken:  # Windows names are case-insensitive
            n += 1
            candidate = f"{stem}_{n}"
        last_number[key] = n
        taken.add(windows_key(candidate))
        names.append(f"{candidate}.docx")
    return names


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
