"""Refuse hostile .xlsx files before any parser touches them: zip bombs, XML entities, huge sheets.

An .xlsx is a zip of XML parts. Three things in one can exhaust a machine that reads it:

- a part that inflates to gigabytes (a "decompression bomb"), or many parts, or parts that
  overlap in the file so that a few megabytes declare terabytes;
- an XML document type declaration whose entities expand exponentially ("billion laughs");
- a sheet whose used range is enormous (one value at XFD1048576): calamine builds the whole
  rectangle in memory before anything else happens, and aborts the process when it cannot.

Measured here (python-calamine 0.9.1, CPython's zipfile): both readers stop at a part's declared
uncompressed size (calamine: "File is larger than its declared uncompressed size"; zipfile: a CRC
error), so the declared sizes in the central directory are a real bound and no second, streaming
inflate of the parts is needed. Neither calamine nor openpyxl (with defusedxml) expands entities,
but they fail with an unhelpful error; a DTD is never legitimate in an .xlsx part, so it is refused
with a clear reason. Both readers ignore `<dimension>`, so only cell references are checked.

The `*_reason` functions return a reason in Chinese, or None; `refuse_unsafe_archive` (called by
`refusal.refuse_unreadable`) and `SheetExtent.watch` (wrapped around each sheet's XML as the reader
scans it, before calamine parses the sheet) raise `WorkbookRefused` with it.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.columns import column_name, column_number
from pipeline.errors import WorkbookRefused

# --- limits: generous for a province's 100,000 projects (a 65 MB workbook whose largest sheet
# XML is 516 MB, 1.13 GB in all, with 800,000 rows in 绩效指标), far below what hurts a machine.
MAX_MEMBERS = 10_000  # a workbook from Excel has 10-100 parts; pictures and sheets add a few each
MAX_MEMBER_BYTES = 1 << 30  # 1 GiB uncompressed per part (the 100,000-project sheet is 516 MB)
MAX_TOTAL_BYTES = 4 << 30  # 4 GiB uncompressed in all (the 100,000-project workbook is 1.13 GB)
# Sheet XML compresses 5-30 times (measured: at most 25 on the synthetic workbooks); deflate can
# reach about 1,000. Small parts (styles, themes) may compress better, and cannot hurt anyway.
MAX_RATIO = 100
RATIO_GRACE_BYTES = 1 << 20
PROLOG_BYTES = 64 * 1024  # the root element of a real part starts within its first few hundred bytes
MAX_ROWS = 1_048_576  # Excel's own limit
MAX_COLUMNS = 64  # column BL; the widest sheet of the contract (绩效指标) has 13 columns
# A sheet whose last row lies far beyond what its XML could hold as data (one stray value typed
# at row 1,048,576) would make calamine build a million empty rows: at least this many bytes of
# XML per row are needed for a real one (`<row r="9"><c r="A9"><v>1</v></c></row>` is 40).
SPARSE_CHECK_ROWS = 100_000
MIN_XML_BYTES_PER_ROW = 10

STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
EOCD = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_EOCD = b"PK\x06\x06"
XML_PART = re.compile(r"\.(?:xml|rels|vml)$", re.IGNORECASE)
DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
ROOT_START = re.compile(rb"<[A-Za-z_]")  # the first element: not <?xml …?>, <!-- … --> or <!DOCTYPE
# A cell or row reference ("B7", "XFD1048576", or a row's "7"); calamine accepts lower case too.
REFERENCE = re.compile(rb'r=["\']([A-Za-z]{0,3})(\d+)["\']')
REFERENCE_VALUE = re.compile(rb'([A-Za-z]{0,3})(\d+)["\']')
SPACED_REFERENCE = re.compile(rb'(?<![\w:.-])r\s*=\s*["\']')
REFERENCE_ROOM = 10  # bytes the vectorised filter looks beyond an `r=`
R_EQUALS = int.from_bytes(b"r=", "little")
IS_SPACE, IS_QUOTE, IS_LETTER, IS_DIGIT = (np.isin(np.arange(256), list(chars)) for chars in (
    b" \t\r\n", b"\"'", b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", b"0123456789"))
LAST_CELL = b'<c r="'

HINT_SOURCE = "Excel 不会写出这样的文件。如确是本单位填写的工作簿，请用 Excel 打开后另存为“Excel 工作簿(*.xlsx)”再提交。"


def size_text(size: int) -> str:
    """A byte count as people read it: 3.0 GB, 516 MB, 12 KB."""
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GB"
    if size >= 1 << 20:
        return f"{size / (1 << 20):.0f} MB"
    return f"{max(1, size // 1024)} KB"


# --- the zip container -------------------------------------------------------------------------

def declared_member_count(path: Path) -> int | None:
    """How many parts the zip's end record declares, read before zipfile builds one object per part.

    None when there is no end record (zipfile will then refuse the file as damaged).
    """
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        tail_start = max(0, size - (22 + 0xFFFF))  # the end record, then a comment of up to 64 KiB
        handle.seek(tail_start)
        tail = handle.read()
        at = tail.rfind(EOCD)
        if at < 0 or len(tail) - at < 22:
            return None
        count = struct.unpack_from("<H", tail, at + 10)[0]
        locator = at - 20
        if count == 0xFFFF and locator >= 0 and tail[locator:locator + 4] == ZIP64_LOCATOR:
            # ZIP64: the real count is in the ZIP64 end record the locator points at.
            handle.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
            record = handle.read(56)
            if len(record) == 56 and record[:4] == ZIP64_EOCD:
                count = struct.unpack_from("<Q", record, 32)[0]
        return count


def member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why one part's central-directory record is unacceptable, or None."""
    name = info.filename
    if info.flag_bits & 0x1:
        return f"其中的部件 {name} 被加密，无法读取。"
    if info.compress_type not in (STORED, DEFLATED):
        return f"其中的部件 {name} 使用了 Excel 不使用的压缩方式（编号 {info.compress_type}）。"
    if info.file_size > MAX_MEMBER_BYTES:
        return (f"其中的部件 {name} 解压后有 {size_text(info.file_size)}，超过单个部件的上限 "
                f"{size_text(MAX_MEMBER_BYTES)}，疑似“压缩炸弹”，为安全起见拒绝读取。")
    stored_mismatch = info.compress_type == STORED and info.compress_size != info.file_size
    # Deflate never grows data by more than a few bytes per 64 KiB block.
    deflate_grew = info.compress_size > info.file_size + info.file_size // 100 + 1024
    if stored_mismatch or deflate_grew:
        return (f"其中的部件 {name} 记录的大小前后矛盾（压缩后 {info.compress_size} 字节，解压后 "
                f"{info.file_size} 字节），文件已损坏或被篡改。")
    if info.file_size > RATIO_GRACE_BYTES and info.file_size > MAX_RATIO * max(1, info.compress_size):
        ratio = info.file_size // max(1, info.compress_size)
        return (f"其中的部件 {name} 压缩了 {ratio} 倍（{size_text(info.compress_size)} 解压后为 "
                f"{size_text(info.file_size)}），远超正常工作簿（通常不到 30 倍），疑似“压缩炸弹”，为安全起见拒绝读取。")
    return None


def archive_reason(infos: list[zipfile.ZipInfo], file_size: int) -> str | None:
    """Why the zip's parts, taken together, are unacceptable, or None."""
    if len(infos) > MAX_MEMBERS:
        return f"压缩包中有 {len(infos)} 个部件，超过上限 {MAX_MEMBERS}。{HINT_SOURCE}"
    seen: set[str] = set()
    for info in infos:
        reason = member_reason(info)
        if reason is not None:
            return reason
        if info.filename in seen:
            # Readers disagree on which copy counts: what is checked might not be what is read.
            return f"压缩包中部件 {info.filename} 出现了不止一次，文件已损坏或被篡改。"
        seen.add(info.filename)
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        return (f"解压后共有 {size_text(total)}，超过上限 {size_text(MAX_TOTAL_BYTES)}，"
                "疑似“压缩炸弹”，为安全起见拒绝读取。")
    packed = sum(info.compress_size for info in infos)
    if packed > file_size:
        # Parts that share their compressed bytes: a few MB can then declare terabytes.
        return (f"各部件声明的压缩数据共 {packed} 字节，比文件本身（{file_size} 字节）还大，部件互相重叠，"
                "疑似“压缩炸弹”，为安全起见拒绝读取。")
    return None


def prolog_reason(name: str, head: bytes) -> str | None:
    """Why the start of an XML part is unacceptable (a DTD, or no element at all), or None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:2] in (b"<\x00", b"\x00<"):
        # A UTF-16 part (allowed by the standard, though Excel writes UTF-8): look at its text.
        encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            "utf-16-le" if head[:2] == b"<\x00" else "utf-16-be")
        head = head[: len(head) // 2 * 2].decode(encoding, errors="ignore").encode("utf-8")
    root = ROOT_START.search(head)
    prolog = head if root is None else head[: root.start()]
    if DTD.search(prolog):
        return (f"其中的部件 {name} 含有 XML 文档类型声明（<!DOCTYPE> 或 <!ENTITY>），"
                f"可被用来让读取程序耗尽内存（“实体膨胀”攻击），为安全起见拒绝读取。{HINT_SOURCE}")
    if root is None and len(head) >= PROLOG_BYTES:
        return f"其中的部件 {name} 在开头 {PROLOG_BYTES // 1024} KB 内没有任何 XML 元素。{HINT_SOURCE}"
    return None


def xml_part_reason(archive: zipfile.ZipFile, infos: Iterable[zipfile.ZipInfo]) -> str | None:
    """Why one of the XML parts is unacceptable, looking only at the start of each."""
    for info in infos:
        if not XML_PART.search(info.filename):
            continue
        with archive.open(info) as part:
            head = part.read(PROLOG_BYTES)  # inflates only this much
        reason = prolog_reason(info.filename, head)
        if reason is not None:
            return reason
    return None


def refuse_unsafe_archive(path: Path) -> None:
    """Raise WorkbookRefused when the zip is a bomb, is inconsistent, or carries a DTD.

    Costs a read of the central directory and of the first 64 KiB of each XML part.
    """
    count = declared_member_count(path)
    if count is not None and count > MAX_MEMBERS:
        raise WorkbookRefused(path, f"压缩包中有 {count} 个部件，超过上限 {MAX_MEMBERS}。{HINT_SOURCE}")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            reason = archive_reason(infos, path.stat().st_size) or xml_part_reason(archive, infos)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, ValueError, OSError,
            EOFError) as exc:
        raise WorkbookRefused(
            path, "文件已损坏（压缩数据无法解开），可能没有下载或复制完整。请用 Excel 打开后另存为“Excel 工作簿(*.xlsx)”再提交。"
        ) from exc
    if reason is not None:
        raise WorkbookRefused(path, reason)


# --- one sheet's used range ----------------------------------------------------------------------

def far_reference_offsets(piece: bytes) -> list[int]:
    """Where the `r="…"` values that may lie beyond the limits start, in a piece of sheet XML.

    A filter, vectorised because it runs over every byte of every sheet (a pattern search costs
    about twice as much): it finds each `r=` as a 16-bit word at even and at odd offsets, and keeps
    the values whose second character is a letter (a column of two or three letters) or whose
    eighth is a digit (a row of seven digits). `far_cell_reason` then reads each one. A value
    after `r=` and white space sends the piece to the pattern search instead.
    """
    data = np.frombuffer(piece, np.uint8)
    limit = len(data) - REFERENCE_ROOM - 1  # an `r=` before this leaves room for the look-ahead
    if limit < 8:
        return [m.end() for m in SPACED_REFERENCE.finditer(piece)]
    found: set[int] = set()
    for offset in (0, 1):
        length = (limit - offset) // 2 * 2
        starts = np.flatnonzero(data[offset:offset + length].view("<u2") == R_EQUALS) * 2 + offset + 3
        opening = data[starts - 1]
        if IS_SPACE[opening].any():
            return [m.end() for m in SPACED_REFERENCE.finditer(piece)]
        starts = starts[IS_QUOTE[opening]]
        found.update(starts[IS_LETTER[data[starts + 1]] | IS_DIGIT[data[starts + 7]]].tolist())
    # An `r=` in the last few bytes, too close to the end for the look-ahead.
    found.update(m.end() for m in SPACED_REFERENCE.finditer(piece, limit - 4))
    return sorted(found)


def far_cell_reason(sheet: str, xml: bytes) -> str | None:
    """Why a sheet's cells reach too far (beyond row MAX_ROWS or column MAX_COLUMNS), or None.

    Only cells that hold something count: calamine skips cells that carry only a style, and a
    sheet formatted to its last column is harmless.
    """
    for start in far_reference_offsets(xml):
        reference = REFERENCE_VALUE.match(xml, start)
        if reference is None:
            continue  # another attribute ending in r, such as operator="between"
        letters, row = reference[1].upper(), int(reference[2])
        column = column_number(letters) if letters else 0
        if row <= MAX_ROWS and column <= MAX_COLUMNS:
            continue  # a row of 1,000,000-1,048,576, or a column up to BL: allowed
        if not letters:  # a row tag beyond Excel's last row: no writer makes one
            return (f"工作表「{sheet}」有第{row}行，超过了 Excel 的最大行数 {MAX_ROWS}，文件已损坏或被篡改。"
                    f"{HINT_SOURCE}")
        if not cell_has_content(xml, start):
            continue  # an empty cell that only carries a style
        place = f"{letters.decode()}{row}"
        return (f"工作表「{sheet}」的单元格 {place}（第{row}行、第{column}列）有内容，超出了处理上限"
                f"（{MAX_ROWS} 行、{MAX_COLUMNS} 列，即 A 到 {column_name(MAX_COLUMNS - 1)} 列）。"
                "请删除数据区以外的内容（在 Excel 中按 Ctrl+End 可以找到它）后另存再提交。")
    return None


def cell_has_content(xml: bytes, reference_at: int) -> bool:
    """True when the cell whose `r=` attribute starts at `reference_at` has a value or a formula."""
    tag_end = xml.find(b">", reference_at)
    if tag_end < 0 or xml[tag_end - 1:tag_end] == b"/":
        return False  # <c r="…" s="1"/>
    close = xml.find(b"c>", tag_end)  # </c> or </x:c>
    body = xml[tag_end + 1:close if close >= 0 else tag_end + 1]
    return b"<" in body  # <v>, <is>, <f>


def sparse_rows_reason(sheet: str, last_piece: bytes, xml_bytes: int) -> str | None:
    """Why the sheet's last cell lies far below what its XML could hold as rows, or None.

    Looks only at the last cell reference of the last piece of XML (rows are stored in order),
    so it is cheap; `xml_bytes` is the size of the whole sheet XML.
    """
    last = last_piece.rfind(LAST_CELL)
    if last < 0:
        return None
    reference = REFERENCE.match(last_piece, last + 3)
    if reference is None:
        return None
    row = int(reference[2])
    if row <= SPARSE_CHECK_ROWS or row * MIN_XML_BYTES_PER_ROW <= xml_bytes or not cell_has_content(last_piece, last + 3):
        return None
    place = f"{reference[1].decode()}{row}"
    return (f"工作表「{sheet}」的单元格 {place} 在第{row}行有内容，但表中的数据远没有这么多行，"
            "读取时会白白建出上百万个空行。请删除数据区以外的内容（在 Excel 中按 Ctrl+End 可以找到它）后另存再提交。")


@dataclass(slots=True)
class SheetExtent:
    """Watches a sheet's XML go by, piece by piece, and refuses the sheet when its used range is huge.

    The reader scans each sheet's XML once anyway; checking the same pieces on the way costs one
    vectorised pass and no second inflate. `last` keeps the final piece, where the merged cells
    are listed.
    """

    path: Path
    sheet: str
    size: int = 0
    last: bytes = b""

    def watch(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """The pieces unchanged; raises WorkbookRefused at the first one that reaches too far."""
        for piece in pieces:
            reason = far_cell_reason(self.sheet, piece)
            if reason is not None:
                raise WorkbookRefused(self.path, reason)
            self.size += len(piece)
            self.last = piece
            yield piece
        reason = sparse_rows_reason(self.sheet, self.last, self.size)
        if reason is not None:
            raise WorkbookRefused(self.path, reason)
