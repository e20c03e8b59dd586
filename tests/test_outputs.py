"""Output files: safe names, text never turned into formulas, atomic writes, staged publish, stable zips."""

from __future__ import annotations

import io
import os
import stat
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pytest

from pipeline.errors import Problem, Severity
from pipeline.write.files import atomic_write, atomic_write_with
from pipeline.write.names import report_filenames, safe_stem, workbook_output_dir
from pipeline.write.problembook import write_problems
from pipeline.write.staging import PARTIAL, hidden_siblings, publish, staged, staging_dir
from pipeline.write.zipfiles import EPOCH, DateTime, ZipMember, write_zip, zip_bytes


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
    [filename] = report_filenames([(project_id, name)])
    assert filename == expected
    assert "/" not in filename and "\\" not in filename


def test_windows_reserved_names_are_prefixed() -> None:
    assert safe_stem("CON") == "_CON"
    assert safe_stem("lpt1.备份") == "_lpt1.备份"
    # A name changed to be safe carries its hash, so it cannot share a folder with "_NUL.xlsx".
    assert workbook_output_dir(Path("out"), Path("NUL.xlsx")).name.startswith("_NUL-")
    assert workbook_output_dir(Path("out"), Path("_NUL.xlsx")) == Path("out/_NUL")


def test_report_names_are_unique_even_when_they_sanitise_alike() -> None:
    names = report_filenames([("P", "a/b"), ("P", "a\\b"), ("p", "A:B")])
    assert len({n.casefold() for n in names}) == 3


def test_long_names_are_cut_to_fit_every_file_system() -> None:
    [filename] = report_filenames([("P-1", "很长的项目名称" * 40)])
    assert len(filename.encode("utf-8")) < 255


def test_text_that_looks_like_a_formula_is_stored_as_text(tmp_path: Path) -> None:
    problem = Problem("项目", 2, "项目名称", "=HYPERLINK(\"http://x\")", Severity.ERROR, "+1 说明")
    path = write_problems(tmp_path / "校验报告.xlsx", [problem])
    sheet = openpyxl.load_workbook(path).active
    assert sheet["E2"].value == "=HYPERLINK(\"http://x\")"  # 值
    assert sheet["E2"].data_type == "s"
    assert sheet["G2"].data_type == "s"  # 说明


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.bin", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_streamed_write_that_fails_keeps_the_previous_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = atomic_write(tmp_path / "a.zip", b"previous")

    def half_then_fail(handle: io.BufferedWriter) -> None:
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(path, half_then_fail)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["a.zip"]
    assert atomic_write_with(path, lambda handle: handle.write(b"new")).read_bytes() == b"new"


def test_publish_replaces_an_earlier_folder_whole(tmp_path: Path) -> None:
    final = tmp_path / "out" / "wb"
    first = staging_dir(final)
    (first / "reports" / "old.docx").write_bytes(b"1")
    publish(first, final)
    second = staging_dir(final)
    (second / "reports" / "new.docx").write_bytes(b"2")
    publish(second, final)
    assert [p.name for p in (final / "reports").iterdir()] == ["new.docx"]
    assert [p.name for p in final.parent.iterdir()] == ["wb"]


def test_staged_publishes_when_the_block_ends(tmp_path: Path) -> None:
    final = tmp_path / "out" / "wb"
    with staged(final) as staging:
        (staging / "reports" / "a.docx").write_bytes(b"1")
        assert not final.exists()  # nothing is visible before the block ends
    assert (final / "reports" / "a.docx").read_bytes() == b"1"
    assert [p.name for p in final.parent.iterdir()] == ["wb"]


class Stop(BaseException):
    """Not an Exception: a Ctrl+C or a cancelled task must discard the staging folder too."""


@pytest.mark.parametrize("error", [ValueError("坏"), Stop()], ids=["exception", "base-exception"])
def test_staged_discards_on_failure_and_keeps_the_previous_outputs(error: BaseException, tmp_path: Path) -> None:
    final = tmp_path / "out" / "wb"
    with staged(final) as staging:
        (staging / "reports" / "old.docx").write_bytes(b"old")
    with pytest.raises(type(error)) as raised, staged(final) as staging:
        (staging / "reports" / "new.docx").write_bytes(b"new")
        raise error
    assert raised.value is error  # the block's own exception, unchanged
    assert [p.name for p in (final / "reports").iterdir()] == ["old.docx"]
    assert [p.name for p in final.parent.iterdir()] == ["wb"]


def test_staged_discards_when_the_publish_itself_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "out" / "wb"
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        if Path(target) == final:
            raise OSError("share gone")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="share gone"), staged(final) as staging:
        (staging / "reports" / "a.docx").write_bytes(b"1")
    assert not final.exists() and hidden_siblings(final, PARTIAL) == []


def test_staged_adopts_a_staging_folder_made_by_an_earlier_step(tmp_path: Path) -> None:
    final = tmp_path / "out" / "wb"
    earlier = staging_dir(final)
    (earlier / "reports" / "a.docx").write_bytes(b"1")
    with staged(final, earlier) as staging:
        assert staging == earlier
    assert (final / "reports" / "a.docx").read_bytes() == b"1"
    with pytest.raises(ValueError), staged(final, staging_dir(final)):
        raise ValueError
    assert hidden_siblings(final, PARTIAL) == []


def test_zip_of_the_same_files_is_byte_identical(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    for name in ("b.docx", "a.docx"):
        (tmp_path / "reports" / name).write_bytes(name.encode() * 100)
    files = list((tmp_path / "reports").iterdir())
    one = write_zip(tmp_path / "1.zip", files, tmp_path).read_bytes()
    two = write_zip(tmp_path / "2.zip", list(reversed(files)), tmp_path).read_bytes()
    assert one == two
    with zipfile.ZipFile(tmp_path / "1.zip") as archive:
        assert archive.namelist() == ["reports/a.docx", "reports/b.docx"]


def test_outputs_are_readable_by_the_office_on_a_shared_folder(tmp_path: Path) -> None:
    # mkstemp's 0600 would hide 校验报告 and the zip from officers reading the share as themselves.
    written = atomic_write(tmp_path / "校验报告.xlsx", b"x")
    source = atomic_write(tmp_path / "reports" / "a.docx", b"docx")
    zipped = write_zip(tmp_path / "报告.zip", [source], tmp_path)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (written, source, zipped)] == [0o644] * 3


def zipfile_bytes(members: list[ZipMember], contents: list[bytes], mode: int = 0o644,
                  date_time: DateTime = EPOCH) -> bytes:
    """The same members written by CPython's zipfile (what the zips were written with before)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in zip(members, contents, strict=True):
            info = zipfile.ZipInfo(member.name, date_time)
            info.compress_type, info.external_attr = member.method, mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def test_the_zip_helper_writes_the_bytes_zipfile_writes() -> None:
    contents = [b"", b"<w:document/>" * 50, bytes(range(256)) * 20]
    names = ["[Content_Types].xml", "word/文档.xml", "media/image1.png"]
    members = [ZipMember.stored(names[0], contents[0]), ZipMember.deflated(names[1], [contents[1]]),
               ZipMember.stored(names[2], contents[2])]
    assert zip_bytes(members) == zipfile_bytes(members, contents)
    assert zip_bytes(members, mode=0o600) == zipfile_bytes(members, contents, 0o600)
    with zipfile.ZipFile(io.BytesIO(zip_bytes(members))) as archive:
        assert archive.testzip() is None and archive.namelist() == names
        assert {info.date_time for info in archive.infolist()} == {EPOCH}
        assert all(info.flag_bits & 0x08 == 0 for info in archive.infolist())  # no data descriptors


def test_a_zip_of_more_than_65535_members_gets_the_zip64_records_zipfile_writes() -> None:
    # A province's zip of 100,000 reports.
    members = [ZipMember.stored(f"reports/{n}.docx", b"") for n in range(65_536)]
    assert zip_bytes(members) == zipfile_bytes(members, [b""] * len(members))


def test_a_deflated_member_is_the_same_whichever_pieces_it_comes_in() -> None:
    # The sheet of a table is deflated row by row as it is generated, never held whole.
    pieces = [b'<row r="2">', "信访救助专项资金".encode() * 300, b"</row>"] * 40
    whole = b"".join(pieces)
    member = ZipMember.deflated("sheet.xml", pieces)
    assert member == ZipMember.deflated("sheet.xml", [whole])
    assert (zlib.decompress(member.data, -15), member.crc, member.size) == (whole, zlib.crc32(whole), len(whole))


def test_every_zip_we_write_is_dated_the_one_epoch(tmp_path: Path) -> None:
    source = atomic_write(tmp_path / "reports" / "甲.docx", b"docx")
    with zipfile.ZipFile(write_zip(tmp_path / "报告.zip", [source], tmp_path)) as archive:
        assert [(info.filename, info.date_time) for info in archive.infolist()] == [("reports/甲.docx", EPOCH)]


def test_counts_read_back_from_a_manifest_are_whole_numbers_or_zero() -> None:
    """A manifest sits in a folder others can write to: odd values read as zero, never crash."""
    from pipeline.errors import Counts

    counts = Counts(projects=7, reports=7, warnings=2)
    assert Counts.from_manifest(counts.as_dict()) == counts
    assert list(counts.as_dict()) == ["projects", "reports", "errors", "warnings"]
    assert Counts.from_manifest({"projects": "7", "reports": True, "errors": None}) == Counts()
    assert Counts.from_manifest(["not", "a", "dict"]) == Counts()
