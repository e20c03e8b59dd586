"""Merged cells over the data rows: where they are, the error for each, and the value they hide.

A merged area keeps its value in its top-left cell only, so the rows below would read as empty
and fail as 不能为空, which says nothing about the merge. Each area over the data rows of a known
column is therefore an error naming its first row and column, and its value is copied down the
area's first column (the error still blocks the reports), so that only the merge is reported.
The merged areas follow the cells in the sheet XML, so only the XML's last piece is searched.
"""

from __future__ import annotations

import re
import zipfile
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.core.columns import column_name, column_number
from pipeline.errors import Problem, Severity
from pipeline.xlsx.layout import RawSheet, normalized_header
from pipeline.xlsx.sheetxml import sheet_parts, xml_pieces

MERGE_REF = re.compile(
    rb'<(?:[A-Za-z_][\w.-]*:)?mergeCell\s[^>]*?ref\s*=\s*["\']\$?([A-Z]{1,3})\$?(\d+):\$?([A-Z]{1,3})\$?(\d+)["\']'
)
MergedArea = tuple[int, int, int, int]  # first row, first column, last row, last column (rows 1-based, columns 0-based)
Cell = tuple[int, str]  # (Excel row, canonical header)


@dataclass(frozen=True, slots=True)
class MergedCells:
    """What a sheet's merged areas come to: an error for each area over the data rows of a known
    column, and the value each hides, for the empty cells below its top-left cell."""

    problems: tuple[Problem, ...]
    fills: Mapping[Cell, object]


def merged_areas(xml: bytes) -> list[MergedArea]:
    """The merged areas in (the last piece of) a sheet's XML; they follow the cells, so only the tail is searched."""
    end = xml.rfind(b"sheetData>")
    tail = xml[end:] if end >= 0 else xml
    return [(int(m[2]), column_number(m[1]) - 1, int(m[4]), column_number(m[3]) - 1) for m in MERGE_REF.finditer(tail)]


def part_merged_areas(archive: zipfile.ZipFile, part: str | None) -> list[MergedArea]:
    """The merged areas of the sheet XML at `part` (none when there is no such part)."""
    last = deque(xml_pieces(archive, part) if part is not None else (), maxlen=1)  # they follow the cells
    return merged_areas(last[0] if last else b"")


def sheet_merged_areas(path: Path, sheet: str) -> list[MergedArea]:
    """The merged areas of one sheet, read from its XML (openpyxl's read-only mode does not give them)."""
    with zipfile.ZipFile(path) as archive:
        return part_merged_areas(archive, sheet_parts(archive).get(sheet))


def every_sheet_merged_areas(path: Path) -> dict[str, list[MergedArea]]:
    """The merged areas of every sheet by name, the workbook opened once (a book of forms)."""
    with zipfile.ZipFile(path) as archive:
        return {sheet: part_merged_areas(archive, part) for sheet, part in sheet_parts(archive).items()}


def known_columns(sheet: RawSheet, header_cells: Sequence[object]) -> dict[int, str]:
    """0-based column -> canonical header, for the header cells the sheet kept (first of each)."""
    known: dict[int, str] = {}
    for col, text in enumerate(header_cells):
        canonical = normalized_header(text) if text is not None else ""
        if canonical in sheet.labels and canonical not in known.values():
            known[col] = canonical
    return known


def merged_cell_problems(sheet: RawSheet, header_cells: Sequence[object], areas: Iterable[MergedArea]) -> MergedCells:
    """An error for each merged area over the data rows of a known column, naming its first row and
    column, and the cells to fill with the area's value (see the module's docstring).

    The sheet is not changed: `filled_down` applies the fills. Areas are taken in order, and an
    area's value may be one an earlier area copied down, as if each area were filled in turn.
    """
    known = known_columns(sheet, header_cells)
    frame = sheet.frame
    fills: dict[Cell, object] = {}

    def current(row: int, column: str) -> object:
        """The cell's value once the earlier areas are filled."""
        return fills[(row, column)] if (row, column) in fills else frame.at[row, column]

    problems: list[Problem] = []
    for top, left, bottom, right in areas:
        first = max(top, sheet.header_row + 1)
        columns = [known[col] for col in range(left, right + 1) if col in known]
        if bottom < first or not columns:
            continue  # a title above the header, or columns the reader ignores
        label = sheet.labels[columns[0]]
        value = current(top, known[left]) if top == first and left in known and top in frame.index else None
        place = f"{column_name(left)}{top}:{column_name(right)}{bottom}"
        problems.append(Problem(
            sheet.name, first, label, "" if value is None else str(value), Severity.ERROR,
            f"{sheet.name} 第{first}行「{label}」在合并单元格 {place}（第{top}–{bottom}行）中，"
            "请取消合并单元格，并在每一行分别填写",
        ))
        if value is not None:
            for row in frame.index[(frame.index > first) & (frame.index <= bottom)]:
                if current(row, known[left]) is None:
                    fills[(row, known[left])] = value
    return MergedCells(tuple(problems), fills)


def filled_down(sheet: RawSheet, fills: Mapping[Cell, object]) -> RawSheet:
    """The sheet with the given cells set (a copy of its frame); the sheet itself when there are none."""
    if not fills:
        return sheet
    frame = sheet.frame.copy()
    for (row, column), value in fills.items():
        frame.at[row, column] = value
    return replace(sheet, frame=frame)
