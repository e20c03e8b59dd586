"""The sheet XML scan: sheet parts, %-formatted cells and formula cells, read from the XML itself.

Calamine gives values but neither number formats nor formulas; openpyxl gives all three about ten
times slower. So the fast reader takes values from calamine and scans each sheet's XML
for the two things it lacks, piece by piece (`xml_pieces`), with literal searches where the XML
is written the usual way. What the scan cannot place exactly raises `NeedsOpenpyxl`, and that
sheet is read by openpyxl instead.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterable, Iterator

from pipeline.core.columns import column_number
from pipeline.xlsx.cells import is_percent_format

MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c(?=[\s>/])[^>]*>")
CELL_WITHOUT_REF = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c(?=[\s>/])(?![^>]*\sr=)[^>]*>")
UNUSUAL_CELL_TAG = re.compile(rb"<c[>/\t\n\r]")
USUAL_FORMULA_TAG = re.compile(rb"<f[ >/]")
FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f(?=[\s>/])")
CELL_REF = re.compile(rb'\sr\s*=\s*["\']\$?([A-Za-z]{1,3})\$?(\d+)["\']')
# The built-in number formats (ECMA-376 18.8.30) that are percentages; the others are not.
# Named here rather than imported from openpyxl, whose import alone costs a fresh process 0.3 s.
BUILTIN_PERCENT_FORMATS = {9: "0%", 10: "0.00%"}
ROW_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s>/]")
# Sheet XML is scanned in pieces of this size (see xml_pieces).
XML_PIECE_BYTES = 16 * 1024 * 1024


class NeedsOpenpyxl(Exception):
    """The fast reader cannot read this sheet exactly; openpyxl must."""


def sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> zip part of its worksheet XML."""
    from defusedxml import ElementTree

    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels.iter(f"{PKG_REL_NS}Relationship")}
    parts: dict[str, str] = {}
    for sheet in workbook.iter(f"{MAIN_NS}sheet"):
        target = targets.get(sheet.get(f"{REL_NS}id"), "")
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
        parts[sheet.get("name", "")] = part
    return parts


def percent_styles(archive: zipfile.ZipFile) -> set[int]:
    """Indexes of the cell formats (cellXfs) whose number format is a percentage."""
    from defusedxml import ElementTree

    try:
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
    except KeyError:
        return set()
    custom = {int(f.get("numFmtId", "-1")): f.get("formatCode", "")
              for f in styles.iter(f"{MAIN_NS}numFmt")}
    cell_xfs = styles.find(f"{MAIN_NS}cellXfs")
    found: set[int] = set()
    for index, xf in enumerate([] if cell_xfs is None else cell_xfs.findall(f"{MAIN_NS}xf")):
        number_id = int(xf.get("numFmtId", "0"))
        number_format = custom.get(number_id) or BUILTIN_PERCENT_FORMATS.get(number_id, "General")
        if is_percent_format(number_format):
            found.add(index)
    return found


def xml_cells(pieces: Iterable[bytes], percent: set[int]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(%-formatted cells, formula cells) of a worksheet's XML, as (Excel row, 0-based column).

    `pieces` is the XML in consecutive pieces that each end before a row (see `xml_pieces`), so
    no cell is split between two pieces.
    """
    if percent and 0 in percent:
        raise NeedsOpenpyxl("default style is a percentage")
    ids = b"|".join(str(i).encode() for i in sorted(percent))
    percent_cells: set[tuple[int, int]] = set()
    formulas: set[tuple[int, int]] = set()
    unprefixed = False
    for xml in pieces:
        unprefixed = unprefixed or b"<sheetData" in xml
        # The usual writing (Excel, LibreOffice, openpyxl): unprefixed tags, every cell `<c r="…"`,
        # attributes in double quotes. Then literal searches do; otherwise look at each tag.
        usual = is_usual_piece(xml, unprefixed)
        if not usual and CELL_WITHOUT_REF.search(xml):
            raise NeedsOpenpyxl("cells without r=")
        if percent:
            percent_cells.update(percent_cells_in(xml, ids, usual))
        formulas.update(formula_cells_in(xml, usual))
    return percent_cells, formulas


def is_usual_piece(xml: bytes, unprefixed: bool) -> bool:
    """True for sheet XML as Excel, LibreOffice and openpyxl write it: unprefixed tags (the sheet
    had an unprefixed `<sheetData`), every cell `<c r="…"` with double quotes."""
    return unprefixed and xml.count(b"<c ") == xml.count(b'<c r="') and UNUSUAL_CELL_TAG.search(xml) is None


def has_cells_without_references(pieces: Iterable[bytes]) -> bool:
    """True when a sheet has cells without an `r=` position: openpyxl reads those, not calamine."""
    unprefixed = False
    found = False
    for xml in pieces:  # consumed to the end: the caller's SheetExtent watches every piece
        unprefixed = unprefixed or b"<sheetData" in xml
        found = found or (not is_usual_piece(xml, unprefixed) and CELL_WITHOUT_REF.search(xml) is not None)
    return found


def percent_cells_in(xml: bytes, ids: bytes, usual: bool) -> Iterator[tuple[int, int]]:
    """Positions of the cells of a piece of sheet XML whose style index is one of `ids`."""
    if usual:
        # Every cell starts `<c r="B7"`. Searching for the style attribute alone is a literal
        # scan, three times faster than a pattern tried at each of a million cell tags; the
        # attribute counts when the tag it stands in is a cell's (not text that looks alike).
        styled = re.compile(rb' s="(?:' + ids + rb')"[ />]')
        for match in styled.finditer(xml):
            start = xml.rfind(b"<", 0, match.start())
            if xml.startswith(b'<c r="', start) and xml.find(b">", start) >= match.end() - 1:
                yield cell_position(xml[start:match.end()])
    else:
        style = re.compile(rb"\ss\s*=\s*[\"'](?:" + ids + rb")[\"']")
        for match in style.finditer(xml):
            start = xml.rfind(b"<", 0, match.start())
            tag = CELL_TAG.match(xml, start)
            if tag is not None and tag.end() > match.start():  # inside a cell's tag, not in text
                yield cell_position(tag.group())


def formula_cells_in(xml: bytes, usual: bool) -> Iterator[tuple[int, int]]:
    """Positions of the formula cells of a piece of sheet XML."""
    for match in (USUAL_FORMULA_TAG if usual else FORMULA_TAG).finditer(xml):
        # A formula is the first child of its cell, so the cell's tag is the last one before it.
        tags = list(CELL_TAG.finditer(xml, max(0, match.start() - 2000), match.start()))
        if not tags:
            tags = list(CELL_TAG.finditer(xml, 0, match.start()))
            if not tags:
                raise NeedsOpenpyxl("formula outside a cell")
        yield cell_position(tags[-1].group())


def xml_pieces(archive: zipfile.ZipFile, part: str, size: int = XML_PIECE_BYTES) -> Iterator[bytes]:
    """A zip part's XML in pieces of about `size` bytes, each cut just before a row's tag.

    A province's sheet is hundreds of MB of XML; scanning it piece by piece keeps that out of
    memory, and cutting before `<row` keeps every cell (with its formula) inside one piece.
    """
    with archive.open(part) as stream:
        carry = b""
        while block := stream.read(size):
            data = carry + block
            cut = last_row_start(data)
            carry = data[cut:]
            if cut:
                yield data[:cut]
        if carry:
            yield carry


def last_row_start(data: bytes) -> int:
    """Where the last `<row` (or `<x:row`) opening tag in `data` starts; 0 when there is none."""
    end = len(data)
    while (found := data.rfind(b"row", 0, end)) > 0:
        start = data.rfind(b"<", 0, found)
        tag = ROW_START.match(data, start) if start >= 0 else None
        if tag is not None and tag.end() == found + 4:
            return start
        end = found
    return 0


def cell_position(tag: bytes) -> tuple[int, int]:
    """(Excel row, 0-based column) of a cell's opening tag."""
    match = CELL_REF.search(tag)
    if match is None:
        raise NeedsOpenpyxl("cell without r=")
    return int(match[2]), column_number(match[1]) - 1
