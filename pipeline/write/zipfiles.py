"""Deterministic zips: the same members in the same order always give the same bytes.

Every zip perfreport writes is written here: each report (.docx, `pipeline.docx.fastrender`),
the zip of every report (`write_zip`) and, in the scripts, the example workbook and the
template (the spreadsheets, 汇总表 and 校验报告, are zipped by xlsxwriter, which dates its
members 1980-01-31). Members keep the order given, are all dated `EPOCH` and carry their CRC
and sizes in the local header (no data descriptors). The header fields are those CPython's zipfile writes to
a seekable file, ZIP64 records included exactly where zipfile adds them (more than 65,535
members, offsets past 2 GiB: a province's zip of 100,000 reports), so archive tools see
ordinary zips.

Members are given already compressed (`ZipMember`), so a template's unchanged parts are copied
into every report as they are, without inflating and deflating them again.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.write.files import atomic_write_with

DateTime = tuple[int, int, int, int, int, int]

# The zip format's first date (1980-01-01 00:00): every member gets it, so equal members give
# equal bytes whenever they are written.
EPOCH: DateTime = (1980, 1, 1, 0, 0, 0)
# zipfile's limits, past which it adds ZIP64 records.
ZIP64_LIMIT = (1 << 31) - 1
COUNT_LIMIT = (1 << 16) - 1
VERSION, ZIP64_VERSION = 20, 45  # "version needed to extract": 2.0 (deflate), 4.5 (ZIP64)
MADE_ON_UNIX = 3  # so the external attributes are read as Unix file modes
UTF8_NAME = 0x800  # general-purpose flag: the name is UTF-8 (set only for non-ASCII names)

LOCAL_HEADER = struct.Struct("<IBBHHHHIIIHH")
CENTRAL_HEADER = struct.Struct("<IBBBBHHHHIIIHHHHHII")
END_RECORD = struct.Struct("<IHHHHIIH")
ZIP64_END_RECORD = struct.Struct("<IQHHIIQQQQ")
ZIP64_LOCATOR = struct.Struct("<IIQI")
LOCAL_SIGNATURE, CENTRAL_SIGNATURE, END_SIGNATURE = 0x04034B50, 0x02014B50, 0x06054B50
ZIP64_END_SIGNATURE, ZIP64_LOCATOR_SIGNATURE = 0x06064B50, 0x07064B50
ZIP64_EXTRA_ID = 1


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One member ready to be written: name, compression method, CRC and size of the content,
    and the content as stored in the zip (compressed when `method` is ZIP_DEFLATED)."""

    name: str
    method: int
    crc: int
    size: int
    data: bytes

    @classmethod
    def stored(cls, name: str, content: bytes) -> ZipMember:
        """`content` stored as it is."""
        return cls(name, zipfile.ZIP_STORED, zlib.crc32(content), len(content), content)

    @classmethod
    def deflated(cls, name: str, pieces: Iterable[bytes], level: int = zlib.Z_DEFAULT_COMPRESSION) -> ZipMember:
        """The content given in `pieces`, deflated as it comes (zipfile's raw deflate, and the same
        bytes as zipfile when fed the same pieces), so it is never held uncompressed as a whole."""
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        crc = size = 0
        chunks: list[bytes] = []
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
            size += len(piece)
            chunks.append(compressor.compress(piece))
        chunks.append(compressor.flush())
        return cls(name, zipfile.ZIP_DEFLATED, crc, size, b"".join(chunks))


def dos_time_and_date(date_time: DateTime) -> tuple[int, int]:
    """A date as the zip format stores it: MS-DOS time and date, to the even second."""
    year, month, day, hour, minute, second = date_time
    return hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day


def encoded_name(name: str) -> tuple[bytes, int]:
    """The member name's bytes and flags: ASCII as it is, anything else UTF-8 and flagged so."""
    return (name.encode("ascii"), 0) if name.isascii() else (name.encode("utf-8"), UTF8_NAME)


def central_entry(member: ZipMember, name: bytes, flags: int, offset: int, stamp: tuple[int, int],
                  mode: int) -> bytes:
    """The central directory entry of a member whose local header is at `offset`."""
    version, extra, header_offset = VERSION, b"", offset
    if offset > ZIP64_LIMIT:  # the offset moves to a ZIP64 extra field, as zipfile does
        version, extra, header_offset = ZIP64_VERSION, struct.pack("<HHQ", ZIP64_EXTRA_ID, 8, offset), 0xFFFFFFFF
    time, date = stamp
    header = CENTRAL_HEADER.pack(
        CENTRAL_SIGNATURE, version, MADE_ON_UNIX, version, 0, flags, member.method, time, date,
        member.crc, len(member.data), member.size, len(name), len(extra), 0, 0, 0, mode << 16, header_offset,
    )
    return header + name + extra


def end_records(count: int, central_size: int, central_offset: int) -> bytes:
    """The end of central directory record, preceded by the ZIP64 ones where zipfile writes them."""
    records = b""
    if count > COUNT_LIMIT or central_offset > ZIP64_LIMIT or central_size > ZIP64_LIMIT:
        records = ZIP64_END_RECORD.pack(ZIP64_END_SIGNATURE, 44, ZIP64_VERSION, ZIP64_VERSION, 0, 0,
                                        count, count, central_size, central_offset)
        records += ZIP64_LOCATOR.pack(ZIP64_LOCATOR_SIGNATURE, 0, central_offset + central_size, 1)
        count, central_size = min(count, 0xFFFF), min(central_size, 0xFFFFFFFF)
        central_offset = min(central_offset, 0xFFFFFFFF)
    return records + END_RECORD.pack(END_SIGNATURE, 0, 0, count, count, central_size, central_offset, 0)


def zip_pieces(members: Iterable[ZipMember], *, mode: int = 0o644) -> Iterator[bytes]:
    """A zip of `members`, in order, as consecutive pieces of bytes, one member at a time.

    `mode` is the Unix file mode every member is extracted with; every member is dated EPOCH.
    """
    stamp = dos_time_and_date(EPOCH)
    offset = count = 0
    central = bytearray()
    for member in members:
        if member.size > ZIP64_LIMIT or len(member.data) > ZIP64_LIMIT:
            raise ValueError(f"zip member {member.name} is larger than 2 GiB")
        name, flags = encoded_name(member.name)
        header = LOCAL_HEADER.pack(LOCAL_SIGNATURE, VERSION, 0, flags, member.method, *stamp, member.crc,
                                   len(member.data), member.size, len(name), 0) + name
        yield header
        yield member.data
        central += central_entry(member, name, flags, offset, stamp, mode)
        offset += len(header) + len(member.data)
        count += 1
    yield bytes(central)
    yield end_records(count, len(central), offset)


def write_members(handle: BinaryIO, members: Iterable[ZipMember], *, mode: int = 0o644) -> None:
    """Write a zip of `members` to `handle` (see `zip_pieces`), holding one member at a time."""
    for piece in zip_pieces(members, mode=mode):
        handle.write(piece)


def zip_bytes(members: Iterable[ZipMember], *, mode: int = 0o644) -> bytes:
    """The bytes of a zip of `members` (see `zip_pieces`)."""
    return b"".join(zip_pieces(members, mode=mode))


def write_zip(path: Path, files: Sequence[Path], root: Path) -> Path:
    """A zip of `files` (names relative to `root`, sorted), read from disk one file at a time.

    Entries are stored, not deflated: a .docx is itself a compressed zip, and deflating 100,000
    of them again would cost minutes for a few percent.
    """
    members = (ZipMember.stored(file.relative_to(root).as_posix(), file.read_bytes()) for file in sorted(files))
    return atomic_write_with(path, lambda handle: write_members(handle, members))
