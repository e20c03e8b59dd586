"""The cells of a printed 自评表 sheet as a grid: values, merged areas and cell addresses.

The four-sheet contract is read column by column (`reader.py`); an official form is a page, read
by its labels (`formsheet.py`). Forms are small (one page per project), so they are read with
openpyxl in its normal mode, the one that knows merged areas, after the same refusals as any
workbook (`refusal.py`: not an .xlsx, encrypted, hostile zips).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from openpyxl.utils import get_column_letter

from pipeline.errors import WorkbookRefused
from pipeline.xlsx.cells import cell_value
from pipeline.xlsx.refusal import refusal_to_open, refusal_while_reading, refuse_unreadable

Cell = tuple[int, int]  # (Excel row, Excel column), both from 1


@dataclass(frozen=True, slots=True)
class FormGrid:
    """One visible sheet: each filled cell's value as the reader hands values on (`cells.py`),
    where merged areas begin, and the formula cells Excel never calculated."""

    sheet: str
    values: Mapping[Cell, object]
    merged_top: Mapping[Cell, Cell]  # every cell of a merged area -> its top-left cell
    uncached: frozenset[Cell]
    rows: int
    columns: int

    def value(self, cell: Cell) -> object:
        """The value shown at `cell`: a merged area shows its top-left value in each of its cells."""
        return self.values.get(self.merged_top.get(cell, cell))

    def text(self, cell: Cell) -> str:
        """The value at `cell` as text ("" when empty)."""
        value = self.value(cell)
        return "" if value is None else str(value)

    def origin(self, cell: Cell) -> Cell:
        """The cell that holds what `cell` shows (the top-left of its merged area)."""
        return self.merged_top.get(cell, cell)

    def is_merged_continuation(self, cell: Cell) -> bool:
        """True for a cell inside a merged area other than its top-left."""
        return self.merged_top.get(cell, cell) != cell

    def row_texts(self, row: int) -> Iterator[tuple[int, str]]:
        """(column, text) of each cell of `row` that starts a value (merged continuations skipped)."""
        for column in range(1, self.columns + 1):
            if not self.is_merged_continuation((row, column)):
                text = self.text((row, column))
                if text:
                    yield column, text


def address(cell: Cell) -> str:
    """The Excel address of a cell ("E14")."""
    return f"{get_column_letter(cell[1])}{cell[0]}"


def merged_tops(worksheet) -> dict[Cell, Cell]:  # noqa: ANN001 - openpyxl has no public type
    """Every cell of each merged area -> its top-left cell (the top-left itself included)."""
    tops: dict[Cell, Cell] = {}
    for area in worksheet.merged_cells.ranges:
        top = (area.min_row, area.min_col)
        for row in range(area.min_row, area.max_row + 1):
            for column in range(area.min_col, area.max_col + 1):
                tops[(row, column)] = top
    return tops


def sheet_grid(values_sheet, formulas_sheet) -> FormGrid:  # noqa: ANN001 - openpyxl worksheets
    """One sheet's grid from the workbook opened twice: cached values, and the formulas."""
    values: dict[Cell, object] = {}
    uncached: set[Cell] = set()
    for row in values_sheet.iter_rows():
        for cell in row:
            value = cell_value(cell.value, cell.number_format)
            if value is not None:
                values[(cell.row, cell.column)] = value
    for row in formulas_sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f" and (cell.row, cell.column) not in values:
                uncached.add((cell.row, cell.column))
    return FormGrid(values_sheet.title, values, merged_tops(values_sheet), frozenset(uncached),
                    values_sheet.max_row, values_sheet.max_column)


def open_both(path: Path):  # noqa: ANN201 - openpyxl workbooks
    """The workbook with cached values, and with formulas (to tell an uncalculated formula)."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # data validations and other features openpyxl drops
            return (openpyxl.load_workbook(path, data_only=True),
                    openpyxl.load_workbook(path, data_only=False))
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise refusal_to_open(path, exc) from exc


def form_grids(path: Path) -> list[FormGrid]:
    """The grid of every visible worksheet, in the workbook's order (hidden sheets hold codes and
    lists, never a project). Raises WorkbookRefused when the file is not a readable .xlsx."""
    path = Path(path)
    refuse_unreadable(path)
    values_book, formulas_book = open_both(path)
    try:
        return [sheet_grid(sheet, formulas_book[sheet.title]) for sheet in values_book.worksheets
                if sheet.sheet_state == "visible"]
    except WorkbookRefused:
        raise
    except Exception as exc:  # a damaged part surfaces only while iterating
        raise refusal_while_reading(path, exc) from exc
    finally:
        values_book.close()
        formulas_book.close()
