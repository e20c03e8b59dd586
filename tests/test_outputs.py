"""Output files: safe names, text never turned into formulas, atomic writes, stable zips."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline import outputs
from pipeline.errors import Problem, Severity


@pytest.mark.parametrize(
    ("project_id", "name", "expected"),
    [
        ("P-1", "信访救助专项资金", "P-1_信访救助专项资金.docx"),
        ("../..", "etc/passwd", "_.._etc_passwd.docx"),
        ("C:", "a\\b:c*d?e\"f<g>h|i", "C__a_b_c_d_e_f_g_h_i.docx"),
        ("P-2", "结尾有点和空格. . ", "P-2_结尾有点和空格.docx"),
    ],
    ids=["plain", "parent-dirs", "windows-forbidden", "trailing-dots"],
)
def test_report_names_are_safe_on_windows_and_linux(project_id: str, name: str, expected: str) -> None:
    [filename] = outputs.report_filenames([(project_id, name)])
    assert filename == expected
    assert "/" not in filename and "\\" not in filename


def test_windows_reserved_names_are_prefixed() -> None:
    assert outputs.safe_stem("CON") == "_CON"
    assert outputs.safe_stem("lpt1.备份") == "_lpt1.备份"
    assert outputs.workbook_output_dir(Path("out"), Path("NUL.xlsx")) == Path("out/_NUL")


def test_report_names_are_unique_even_when_they_sanitise_alike() -> None:
    names = outputs.report_filenames([("P", "a/b"), ("P", "a\\b"), ("p", "A:B")])
    assert len({n.casefold() for n in names}) == 3


def test_long_names_are_cut_to_fit_every_file_system() -> None:
    [filename] = outputs.report_filenames([("P-1", "很长的项目名称" * 40)])
    assert len(filename.encode("utf-8")) < 255


def test_text_that_looks_like_a_formula_is_stored_as_text(tmp_path: Path) -> None:
    problem = Problem("项目", 2, "项目名称", "=HYPERLINK(\"http://x\")", Severity.ERROR, "+1 说明")
    path = outputs.write_problems(tmp_path / "校验报告.xlsx", [problem])
    sheet = openpyxl.load_workbook(path).active
    assert sheet["D2"].value == "=HYPERLINK(\"http://x\")"
    assert sheet["D2"].data_type == "s"
    assert sheet["F2"].data_type == "s"


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    outputs.atomic_write(tmp_path / "a.bin", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_publish_replaces_an_earlier_folder_whole(tmp_path: Path) -> None:
    final = tmp_path / "out" / "wb"
    first = outputs.staging_dir(final)
    (first / "reports" / "old.docx").write_bytes(b"1")
    outputs.publish(first, final)
    second = outputs.staging_dir(final)
    (second / "reports" / "new.docx").write_bytes(b"2")
    outputs.publish(second, final)
    assert [p.name for p in (final / "reports").iterdir()] == ["new.docx"]
    assert [p.name for p in final.parent.iterdir()] == ["wb"]


def test_zip_of_the_same_files_is_byte_identical(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    for name in ("b.docx", "a.docx"):
        (tmp_path / "reports" / name).write_bytes(name.encode() * 100)
    files = list((tmp_path / "reports").iterdir())
    one = outputs.write_zip(tmp_path / "1.zip", files, tmp_path).read_bytes()
    two = outputs.write_zip(tmp_path / "2.zip", list(reversed(files)), tmp_path).read_bytes()
    assert one == two
    with zipfile.ZipFile(tmp_path / "1.zip") as archive:
        assert archive.namelist() == ["reports/a.docx", "reports/b.docx"]
