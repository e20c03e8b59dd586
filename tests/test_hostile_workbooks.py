"""A corpus of hostile and broken workbooks, each run through `perfreport run` in this process.

Every case must end with exit code 1 (the workbook breaks the contract: only 校验报告.xlsx) or 2
(refused: not a workbook we can read), a Chinese message naming the file and, where there is one,
the sheet, row and column; no report; and the input file unchanged. The corpus is generated here:
no binary file is checked in. The decompression bombs are deflate streams built by repeating one
compressed block, so a file that inflates to gigabytes takes milliseconds and megabytes to write.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import openpyxl
import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.run.steps import check_workbook
from pipeline.xlsx import archive
from tests.conftest import valid_sheets, write_workbook
from tests.test_validate import RULES
from tests.test_workbook import with_shared_strings

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
# Parts of a workbook written by conftest.write_workbook, in the order of valid_sheets().
SHEET_PART = {"项目": "xl/worksheets/sheet1.xml", "资金": "xl/worksheets/sheet2.xml",
              "使用原则": "xl/worksheets/sheet3.xml", "绩效指标": "xl/worksheets/sheet4.xml"}
WORKSHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                  b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
WORKSHEET_TAIL = b"</sheetData></worksheet>"
Builder = Callable[[Path], None]


# --- writing hostile files -----------------------------------------------------------------------

def valid_workbook(path: Path, sheets: dict[str, list[dict[str, object]]] | None = None, **options: object) -> Path:
    """The conftest workbook (or `sheets`) written to `path`."""
    return write_workbook(path, sheets if sheets is not None else valid_sheets(), **options)


def with_part(path: Path, name: str, change: Callable[[bytes], bytes]) -> Path:
    """Rewrite the zip at `path` with one part replaced by `change(part)`."""
    with zipfile.ZipFile(path) as source:
        parts = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for filename, data in parts:
            target.writestr(filename, change(data) if filename == name else data)
    return path


def repeated_deflate(head: bytes, block: bytes, count: int, tail: bytes) -> bytes:
    """A raw deflate stream of head + block * count + tail, built without compressing it all.

    After a full flush the compressor starts afresh, so one block compresses to the same bytes
    every time: compressing it once and repeating those bytes gives the stream of the whole.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    middle = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    return start + middle * count + compressor.compress(tail) + compressor.flush()


def with_raw_member(path: Path, name: str, deflated: bytes, size: int, crc: int) -> Path:
    """Replace part `name` by an already deflated stream declared as `size` bytes with `crc`.

    zipfile stores the bytes as they are (method 0); the method, CRC and size are then patched
    in the local header and the central directory.
    """
    with zipfile.ZipFile(path) as source:
        parts = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for filename, data in parts:
            method = zipfile.ZIP_STORED if filename == name else zipfile.ZIP_DEFLATED
            target.writestr(filename, deflated if filename == name else data, compress_type=method)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as written:
        info = written.getinfo(name)
    local = info.header_offset
    assert data[local:local + 4] == b"PK\x03\x04"
    struct.pack_into("<HHHII", data, local + 8, zipfile.ZIP_DEFLATED, 0, 0x21, crc, len(deflated))
    struct.pack_into("<I", data, local + 22, size)
    central = 0
    while (central := data.find(b"PK\x01\x02", central)) >= 0:
        length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + length] == name.encode():
            struct.pack_into("<H", data, central + 10, zipfile.ZIP_DEFLATED)
            struct.pack_into("<II", data, central + 16, crc, len(deflated))
            struct.pack_into("<I", data, central + 24, size)
        central += 4
    path.write_bytes(bytes(data))
    return path


def repeated_crc(head: bytes, block: bytes, count: int, tail: bytes) -> int:
    """The CRC-32 of head + block * count + tail."""
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(tail, crc)


def sheet_bomb(gib: float) -> Builder:
    """A workbook whose 绩效指标 sheet is valid XML of `gib` GiB (white space): a decompression bomb."""
    def build(path: Path) -> None:
        count = int(gib * 1024)
        block = b" " * MIB
        deflated = repeated_deflate(WORKSHEET_HEAD, block, count, WORKSHEET_TAIL)
        size = len(WORKSHEET_HEAD) + count * MIB + len(WORKSHEET_TAIL)
        # The real CRC of gigabytes takes seconds to compute, and no reader may get that far.
        with_raw_member(valid_workbook(path), SHEET_PART["绩效指标"], deflated, size, crc=0)
    return build


def lying_sizes(path: Path) -> None:
    """A 256 MiB sheet declared as twice its compressed size (about 0.5 MB): the header lies."""
    count, block = 256, b" " * MIB
    deflated = repeated_deflate(WORKSHEET_HEAD, block, count, WORKSHEET_TAIL)
    crc = repeated_crc(WORKSHEET_HEAD, block, count, WORKSHEET_TAIL)
    with_raw_member(valid_workbook(path), SHEET_PART["绩效指标"], deflated, 2 * len(deflated), crc)


def many_parts(path: Path) -> None:
    valid_workbook(path)
    with zipfile.ZipFile(path, "a") as target:
        for index in range(archive.MAX_MEMBERS + 1):
            target.writestr(f"xl/media/image{index}.bin", b"")


def duplicate_part(path: Path) -> None:
    valid_workbook(path)
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "a") as target:
        target.writestr(SHEET_PART["资金"], b"<worksheet/>")


BILLION_LAUGHS = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
                  + b"".join(b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b"]>\n")


def laughs_in(part: str, shared_strings: bool = False) -> Builder:
    """Entity expansion ("billion laughs"): a DTD at the top of `part`, its entity used in a cell."""
    def build(path: Path) -> None:
        if shared_strings:
            plain = valid_workbook(path.with_name("plain-" + path.name))
            with_shared_strings(plain, path)
        else:
            valid_workbook(path)

        def inject(xml: bytes) -> bytes:
            body = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", xml)
            return BILLION_LAUGHS + re.sub(rb"<t([^>]*)>[^<]*</t>", rb"<t\1>&lol9;</t>", body, count=1)
        with_part(path, part, inject)
    return build


def cell_appended(sheet: str, cell: bytes) -> Builder:
    """A valid workbook with one more row of XML (`cell`) at the end of `sheet`'s data."""
    def build(path: Path) -> None:
        with_part(valid_workbook(path), SHEET_PART[sheet], lambda xml: xml.replace(b"</sheetData>", cell + b"</sheetData>"))
    return build


def text_file(content: str) -> Builder:
    def build(path: Path) -> None:
        path.write_text(content, encoding="utf-8")
    return build


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(20201231).randbytes(64 * 1024))


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path) -> None:
    data = valid_workbook(path).read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def garbled_part(path: Path) -> None:
    """A workbook whose 项目 sheet has its compressed bytes overwritten (a damaged download)."""
    data = bytearray(valid_workbook(path).read_bytes())
    with zipfile.ZipFile(path) as written:
        info = written.getinfo(SHEET_PART["项目"])
    start = info.header_offset + 30 + len(info.filename.encode())
    data[start:start + 64] = bytes(range(200, 256)) + bytes(8)
    path.write_bytes(bytes(data))


def old_xls(path: Path) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8 * 1024 - 8))


def password_protected(path: Path) -> None:
    # Excel saves a workbook with an open password as an OLE container with this stream.
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024) + "EncryptedPackage".encode("utf-16-le")
                     + bytes(1024))


def zip_of_text(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as target:
        target.writestr("说明.txt", "不是工作簿")


def openpyxl_edit(change: Callable[[openpyxl.Workbook], None], sheets: dict | None = None) -> Builder:
    """A valid workbook (or `sheets`) changed through openpyxl, as a user would in Excel."""
    def build(path: Path) -> None:
        valid_workbook(path, sheets)
        workbook = openpyxl.load_workbook(path)
        change(workbook)
        workbook.save(path)
    return build


def merge(sheet: str, cells: str) -> Callable[[openpyxl.Workbook], None]:
    def change(workbook: openpyxl.Workbook) -> None:
        workbook[sheet].merge_cells(cells)
    return change


def with_sheets(change: Callable[[dict], None], **options: object) -> Builder:
    """The valid sheets changed by `change`, written as a workbook."""
    def build(path: Path) -> None:
        sheets = copy.deepcopy(valid_sheets())
        change(sheets)
        valid_workbook(path, sheets, **options)
    return build


def with_a_date() -> dict:
    """The valid sheets with a date typed in a text cell: that sheet is read by openpyxl, not calamine."""
    sheets = copy.deepcopy(valid_sheets())
    sheets["绩效指标"][4]["偏差原因分析及改进措施"] = datetime.date(2020, 12, 31)
    return sheets


def formula_without_value(sheets: dict) -> None:
    sheets["资金"][1]["全年执行数(万元)"] = "=2+3"  # openpyxl stores no cached value, like tools that never calculate


def rule_broken(mutate: Callable[[dict], None]) -> Builder:
    return with_sheets(mutate)


# --- the corpus ------------------------------------------------------------------------------------

class Case(NamedTuple):
    name: str
    build: Builder
    code: int
    fragments: tuple[str, ...]


REFUSED, INVALID = 2, 1
RESAVE = "另存为“Excel 工作簿(*.xlsx)”"
PROJECT_HEADERS = ["项目编号", "项目名称", "年度", "主管部门", "主管部门", "项目概况", "年度目标", "完成情况", "模板"]

CASES: list[Case] = [
    # not a workbook at all
    Case("csv-renamed", text_file("项目编号,项目名称\nP-001,信访救助专项资金\n"), REFUSED, ("不是 Excel 工作簿", RESAVE)),
    Case("text-renamed", text_file("这是一份说明文字，不是表格。\n"), REFUSED, ("不是 Excel 工作簿",)),
    Case("random-bytes", random_bytes, REFUSED, ("不是 Excel 工作簿",)),
    Case("empty-file", empty_file, REFUSED, ("文件是空的",)),
    Case("truncated-xlsx", truncated, REFUSED, ("已损坏",)),
    Case("garbled-part", garbled_part, REFUSED, ("损坏",)),
    Case("old-xls", old_xls, REFUSED, ("(.xls)", RESAVE)),
    Case("password-protected", password_protected, REFUSED, ("打开密码",)),
    Case("zip-of-text", zip_of_text, REFUSED, ("无法作为 Excel 工作簿打开",)),
    # hostile archives
    Case("bomb-3-gib-sheet", sheet_bomb(3), REFUSED, (SHEET_PART["绩效指标"], "3.0 GB", "压缩炸弹")),
    Case("bomb-under-size-limit", sheet_bomb(0.5), REFUSED, (SHEET_PART["绩效指标"], "倍", "压缩炸弹")),
    Case("sizes-that-lie", lying_sizes, REFUSED, ("损坏",)),
    Case("too-many-parts", many_parts, REFUSED, (f"超过上限 {archive.MAX_MEMBERS}",)),
    Case("duplicate-part", duplicate_part, REFUSED, (SHEET_PART["资金"], "不止一次")),
    Case("entity-expansion-in-sheet", laughs_in(SHEET_PART["绩效指标"]), REFUSED,
         (SHEET_PART["绩效指标"], "<!DOCTYPE>", "实体膨胀")),
    Case("entity-expansion-in-shared-strings", laughs_in("xl/sharedStrings.xml", shared_strings=True), REFUSED,
         ("xl/sharedStrings.xml", "实体膨胀")),
    # used ranges no real workbook has
    Case("value-at-XFD1048576", cell_appended("绩效指标", b'<row r="1048576"><c r="XFD1048576" t="n"><v>1</v></c></row>'),
         REFUSED, ("绩效指标", "XFD1048576", "第1048576行", "第16384列")),
    Case("value-far-right", cell_appended("资金", b'<row r="4"><c r="ZZ4" t="n"><v>1</v></c></row>'),
         REFUSED, ("资金", "ZZ4", "第4行", "第702列")),
    Case("stray-value-at-the-last-row", cell_appended("项目", b'<row r="1048576"><c r="A1048576" t="n"><v>1</v></c></row>'),
         REFUSED, ("项目", "A1048576", "第1048576行")),
    Case("row-beyond-excel", cell_appended("使用原则", b'<row r="5000000"><c r="A5000000" t="n"><v>1</v></c></row>'),
         REFUSED, ("使用原则", "A5000000", "第5000000行")),
    # broken layout
    Case("merged-project-ids", openpyxl_edit(merge("绩效指标", "A2:A4")), INVALID,
         ("绩效指标 第2行「项目编号」", "A2:A4", "请取消合并单元格")),
    Case("merged-cells-in-a-sheet-with-dates", openpyxl_edit(merge("绩效指标", "A2:A4"), sheets=with_a_date()), INVALID,
         ("绩效指标 第2行「项目编号」", "A2:A4", "请取消合并单元格")),
    Case("formula-without-cached-value", with_sheets(formula_without_value), INVALID,
         ("资金 第3行「全年执行数(万元)」", "没有计算结果的公式")),
    Case("duplicate-header", with_sheets(lambda sheets: None, headers={"项目": PROJECT_HEADERS}), INVALID,
         ("项目 第1行的列「主管部门」重复出现",)),
    # every rule of the contract broken once (the breakages of tests/test_validate.py)
    *(Case(f"rule-{rule}", rule_broken(mutate), INVALID,
           (sheet, *((f"第{row}行",) if row is not None and not fragment.startswith("缺少") else ()),
            *((f"「{column}」",) if column else ()), fragment))
      for rule, mutate, sheet, row, column, fragment in RULES),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case's file, written once."""
    folder = tmp_path_factory.mktemp("corpus")
    files: dict[str, Path] = {}
    for case in CASES:
        path = folder / f"{case.name}.xlsx"
        case.build(path)
        files[case.name] = path
    return files


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_or_broken_workbook_ends_cleanly_with_a_located_chinese_message(
    case: Case, corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = corpus[case.name]
    before = sha256(path)
    out = tmp_path / "out"

    started = time.perf_counter()
    code = main(["run", str(path), "--output-dir", str(out)])
    seconds = time.perf_counter() - started
    captured = capsys.readouterr()

    assert code == case.code, captured.err
    assert f"✘ {path.name}：" in captured.err
    for fragment in case.fragments:
        assert fragment in captured.err, f"{fragment!r} not in:\n{captured.err}"
    assert "Traceback" not in captured.out + captured.err
    assert "内部错误" not in captured.err
    assert not list(out.rglob("*.docx"))
    if case.code == INVALID:
        assert (out / path.stem / "校验报告.xlsx").is_file()
    else:
        assert not (out / path.stem).exists()
    assert sha256(path) == before
    assert seconds < 60  # Prefect's flow run included; the bombs' own time is measured below


def test_merged_cells_are_reported_once_instead_of_as_empty_cells(corpus: dict[str, Path]) -> None:
    checked = check_workbook(corpus["merged-project-ids"], Settings())

    errors = [p for p in checked.problems if p.severity == "错误"]
    assert [(p.sheet, p.excel_row, p.column) for p in errors] == [("绩效指标", 2, "项目编号")], errors
    assert "不能为空" not in errors[0].message


def test_a_hidden_required_sheet_is_read_with_a_warning(tmp_path: Path) -> None:
    def hide(workbook: openpyxl.Workbook) -> None:
        workbook["使用原则"].sheet_state = "hidden"
    openpyxl_edit(hide)(path := tmp_path / "隐藏.xlsx")
    shown = check_workbook(valid_workbook(tmp_path / "显示.xlsx"), Settings())

    checked = check_workbook(path, Settings())

    assert checked.status == "success"
    assert checked.projects == shown.projects
    hidden = [p for p in checked.problems if "隐藏" in p.message]
    assert [(p.sheet, p.severity) for p in hidden] == [("使用原则", "警告")]


def test_a_huge_dimension_record_alone_is_harmless(tmp_path: Path) -> None:
    # Both readers ignore <dimension>; only cells with content decide how much is read.
    path = with_part(valid_workbook(tmp_path / "范围.xlsx"), SHEET_PART["绩效指标"],
                     lambda xml: re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', xml))
    assert b"A1:XFD1048576" in zipfile.ZipFile(path).read(SHEET_PART["绩效指标"])

    started = time.perf_counter()
    checked = check_workbook(path, Settings())

    assert time.perf_counter() - started < 10
    assert checked.status == "success"


def test_an_empty_styled_cell_far_away_is_harmless(tmp_path: Path) -> None:
    # A sheet formatted to its last cell: calamine skips cells without a value, and so do the limits.
    build = cell_appended("绩效指标", b'<row r="1048576"><c r="XFD1048576" s="0"/></row>')
    build(path := tmp_path / "格式.xlsx")

    assert check_workbook(path, Settings()).status == "success"


# --- time and memory, measured in a fresh process ------------------------------------------------

# The peak is this process's own (VmHWM, reset by exec), not getrusage's ru_maxrss, which a child
# inherits from the process that started it: from a test session grown past 500 MB it would read
# the session's size, whatever the workbook did.
MEASURE = """
import json, resource, sys, time
from pathlib import Path
from pipeline.config import Settings
from pipeline.run.steps import check_workbook

def peak_mb():
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

started = time.perf_counter()
checked = check_workbook(Path(sys.argv[1]), Settings())
print(json.dumps({"status": checked.status, "refused": checked.refused,
                  "seconds": time.perf_counter() - started, "peak_mb": peak_mb()}))
"""
MEASURED = ["bomb-3-gib-sheet", "bomb-under-size-limit", "sizes-that-lie", "entity-expansion-in-sheet",
            "entity-expansion-in-shared-strings", "value-at-XFD1048576", "stray-value-at-the-last-row"]


@pytest.mark.parametrize("name", MEASURED)
def test_hostile_files_are_refused_within_seconds_and_bounded_memory(name: str, corpus: dict[str, Path]) -> None:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(corpus[name])], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.splitlines()[-1])

    assert measured["status"] == "refused", measured
    assert measured["seconds"] < 10, measured
    assert measured["peak_mb"] < 500, measured


def test_the_console_script_refuses_hostile_files_without_a_traceback(corpus: dict[str, Path], tmp_path: Path) -> None:
    names = ["random-bytes", "bomb-3-gib-sheet", "entity-expansion-in-sheet", "value-at-XFD1048576"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *(str(corpus[n]) for n in names), "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for name in names:
        assert f"✘ {name}.xlsx：" in result.stderr
    assert not list((tmp_path / "out").rglob("*.docx"))


# --- the archive checks as pure functions ---------------------------------------------------------

def info(name: str, size: int, packed: int, method: int = zipfile.ZIP_DEFLATED, flags: int = 0) -> zipfile.ZipInfo:
    record = zipfile.ZipInfo(name)
    record.file_size, record.compress_size, record.compress_type, record.flag_bits = size, packed, method, flags
    return record


@pytest.mark.parametrize(("record", "fragment"), [
    (info("xl/worksheets/sheet1.xml", 2 * archive.MAX_MEMBER_BYTES, 30 * MIB), "超过单个部件的上限"),
    (info("xl/worksheets/sheet1.xml", 200 * MIB, MIB), "压缩了 200 倍"),
    (info("xl/styles.xml", 10_000, 10_000, flags=0x1), "被加密"),
    (info("xl/styles.xml", 10_000, 2_000, method=zipfile.ZIP_BZIP2), "压缩方式"),
    (info("xl/styles.xml", 10_000, 9_000, method=zipfile.ZIP_STORED), "前后矛盾"),
    (info("xl/styles.xml", 1_000, 90_000), "前后矛盾"),
], ids=["too-large", "ratio", "encrypted", "bzip2", "stored-sizes-differ", "deflate-grew"])
def test_a_suspicious_part_is_named_with_the_reason(record: zipfile.ZipInfo, fragment: str) -> None:
    reason = archive.member_reason(record)

    assert reason is not None and fragment in reason and record.filename in reason


def test_real_parts_pass_the_part_checks() -> None:
    # The synthetic 100,000-project workbook's largest sheet: 516 MB of XML compressed 25 times.
    assert archive.member_reason(info("xl/worksheets/sheet1.xml", 515_795_942, 20_341_522)) is None
    assert archive.member_reason(info("xl/theme/theme1.xml", 10_140, 1_552)) is None
    assert archive.member_reason(info("xl/styles.xml", 500_000, 1_000)) is None  # tiny parts may compress more


def test_parts_that_overlap_or_add_up_to_too_much_are_refused() -> None:
    overlapping = [info(f"xl/worksheets/sheet{i}.xml", 50 * MIB, MIB) for i in range(10)]
    assert "重叠" in (archive.archive_reason(overlapping, file_size=2 * MIB) or "")
    large = [info(f"xl/worksheets/sheet{i}.xml", archive.MAX_MEMBER_BYTES, 20 * MIB) for i in range(5)]
    assert "超过上限" in (archive.archive_reason(large, file_size=200 * MIB) or "")
    assert archive.archive_reason(large[:3], file_size=200 * MIB) is None


@pytest.mark.parametrize(("head", "refused"), [
    (b'<?xml version="1.0"?>\n<worksheet xmlns="x"><sheetData/></worksheet>', False),
    (b'<?xml version="1.0"?>\n<!-- a comment --><sst xmlns="x"/>', False),
    (BILLION_LAUGHS + b"<worksheet/>", True),
    (b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://example.com/x.dtd"><x/>', True),
    (b"\xff\xfe" + '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY b "c">]><a/>'.encode("utf-16-le"), True),
    (b" " * archive.PROLOG_BYTES, True),
], ids=["plain", "comment", "billion-laughs", "external-dtd", "utf-16-dtd", "no-element"])
def test_a_part_with_a_document_type_declaration_is_refused(head: bytes, refused: bool) -> None:
    assert (archive.prolog_reason("xl/part.xml", head) is not None) is refused


def test_cells_within_excel_limits_pass_and_beyond_them_are_named() -> None:
    dense = b'<row r="1048576"><c r="BL1048576"><v>1</v></c></row>'
    assert archive.far_cell_reason("绩效指标", dense) is None
    wide = b'<row r="7"><c r="BM7" t="s"><v>0</v></c></row>'
    assert "BM7" in (archive.far_cell_reason("绩效指标", wide) or "")
    assert archive.far_cell_reason("绩效指标", b'<row r="7"><c r="BM7" s="3"/></row>') is None


@pytest.mark.parametrize("cell", [b'<c r="xfd7"><v>1</v></c>', b"<x:c r='XFD7'><x:v>1</x:v></x:c>",
                                  b'<c r= "XFD7"><v>1</v></c>', b'<c s="1" r="XFD7" t="n"><v>1</v></c>'],
                         ids=["lower-case", "prefixed-single-quoted", "space-after-equals", "r-not-first"])
def test_far_cells_are_found_however_the_reference_is_written(cell: bytes) -> None:
    # Calamine reads all of these; a sheet written so must not slip past the limits.
    piece = b'<row r="7"><c r="A7"><v>1</v></c>' + cell + b"</row>"
    assert "XFD7" in (archive.far_cell_reason("资金", piece) or "")
