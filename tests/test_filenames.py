"""Report and folder names built from workbook text: inside the output folder, valid on Windows
and Linux, and unique even where Windows sees two names as one."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from pipeline.write.names import report_filenames, safe_stem, workbook_output_dir

# Windows device names: also reserved with an extension (CON.txt) and in any letter case.
RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
            *(f"{port}{n}" for port in ("COM", "LPT") for n in [*"0123456789", "¹", "²", "³"])}
FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f-\x9f]')
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

HOSTILE = {
    "parent": "..",
    "parents": "../..",
    "etc-passwd": "../../etc/passwd",
    "windows-parents": "..\\..\\Windows\\win.ini",
    "absolute": "/etc/passwd",
    "unc": "\\\\server\\share\\x",
    "drive": "C:",
    "drive-path": "C:\\Windows\\system32",
    "drive-relative": "C:报告",
    "alternate-stream": "报告:secret",
    "con": "CON",
    "con-lower": "con",
    "con-extension": "CON.txt",
    "con-space-extension": "Con .txt",
    "nul-double-extension": "nul.tar.gz",
    "com1": "COM1",
    "com0": "com0",
    "lpt9": "LPT9",
    "com-superscript": "COM²",
    "lpt-superscript": "lpt¹.doc",
    "conin": "CONIN$",
    "trailing-dots-spaces": "名称. . .",
    "trailing-spaces": "名称   ",
    "leading-dot": ".hidden",
    "tabs": "\t名称\t",
    "nul-char": "a\x00b",
    "unit-separator": "a\x1fb",
    "delete": "a\x7fb",
    "c1-control": "a\x9bb",
    "next-line": "a\x85b",
    "lone-surrogate": "a\ud800b",
    "rtl-override": "报告\u202excod.exe",
    "forbidden-all": '<>:"/\\|?*',
    "only-dots": "...",
    "empty": "",
    "spaces": "   ",
    "emoji-long": "😀" * 100,
    "cjk-ext-b-long": "𠀀" * 100,
    "cjk-long": "很长的项目名称" * 40,
    "ascii-long": "a" * 300,
    "combining": "e\u0301" * 80,
}


def assert_safe_name(name: str) -> None:
    """Valid on Windows and Linux: no separators, forbidden or control characters, no reserved
    device name, no trailing dot or space, within 255 UTF-8 bytes and 255 UTF-16 units."""
    assert name not in ("", ".", "..")
    assert not FORBIDDEN.search(name), name
    assert not BIDI_CONTROLS.search(name), name
    assert not any(unicodedata.category(c) == "Cs" for c in name), name
    assert name == name.strip(" ."), name
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED, name
    assert len(name.encode("utf-8")) <= 255
    assert len(name.encode("utf-16-le")) // 2 <= 255


def windows_key(name: str) -> str:
    """How Windows compares names: case-insensitively, one character at a time (no ß -> SS)."""
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in name)


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_safe_stem_is_a_valid_name_on_windows_and_linux(text: str) -> None:
    stem = safe_stem(text)
    assert_safe_name(stem)
    assert_safe_name(f"{stem}_99999.docx")  # with the longest suffix a run could add


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_report_name_stays_inside_the_reports_folder(tmp_path: Path, text: str) -> None:
    [name] = report_filenames([(text, text)])
    assert_safe_name(name)
    assert name.endswith(".docx")
    folder = tmp_path / "reports"
    assert (folder / name).resolve().parent == folder.resolve()


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_report_name_can_be_written_and_read_back(tmp_path: Path, text: str) -> None:
    [name] = report_filenames([("P-1", text)])
    (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize("stem", ["..", "../x", "CON", "C:", "名称. "], ids=["parent", "slash", "con", "drive", "dots"])
def test_workbook_folder_stays_inside_the_output_folder(tmp_path: Path, stem: str) -> None:
    folder = workbook_output_dir(tmp_path, Path(f"{stem}.xlsx"))
    assert folder.parent == tmp_path
    assert_safe_name(folder.name)


def test_plain_names_are_kept_as_typed() -> None:
    assert report_filenames([("P-1", "信访救助专项资金")]) == ["P-1_信访救助专项资金.docx"]
    assert safe_stem("2020年度 项目 (一)") == "2020年度 项目 (一)"


@pytest.mark.parametrize("projects", [
    [("P", "a"), ("P", "a"), ("P", "a")],
    [("P", "a/b"), ("P", "a\\b"), ("P", "a:b"), ("P", "a*b"), ("P", "a?b")],
    [("P", "abc"), ("p", "ABC"), ("P", "Abc")],
    [("P", "σ"), ("P", "ς"), ("P", "Σ")],
    [("P", "ıd"), ("P", "id"), ("P", "ID")],
    [("P", "é"), ("P", "e\u0301")],
    [("P", "a"), ("P", "a"), ("P", "a_2"), ("P", "A_2")],
    [("P", "名称."), ("P", "名称"), ("P", "名称 ")],
    [("P", "很长的项目名称" * 20 + "甲"), ("P", "很长的项目名称" * 20 + "乙")],
    [("P", "😀" * 80 + "1"), ("P", "😀" * 80 + "2")],
    [("", ""), ("", ""), ("..", ".."), ("/", "/")],
], ids=["same", "sanitised-alike", "case", "greek-sigma", "dotless-i", "nfc-nfd", "suffix-collision",
        "trailing-dot", "cut-alike-cjk", "cut-alike-emoji", "empty-alike"])
def test_report_names_are_unique_even_where_windows_sees_one_name(projects: list[tuple[str, str]]) -> None:
    names = report_filenames(projects)
    assert len(names) == len(projects)
    assert len({n.casefold() for n in names}) == len(names)
    assert len({windows_key(n) for n in names}) == len(names)
    for name in names:
        assert_safe_name(name)


def test_duplicates_are_numbered_in_order() -> None:
    names = report_filenames([("P", "a"), ("P", "a"), ("p", "A")])
    assert names == ["P_a.docx", "P_a_2.docx", "p_A_3.docx"]


def test_many_duplicates_stay_unique_and_short() -> None:
    names = report_filenames([("P", "很长的项目名称" * 20)] * 1000)
    assert len({n.casefold() for n in names}) == 1000
    for name in names:
        assert_safe_name(name)
