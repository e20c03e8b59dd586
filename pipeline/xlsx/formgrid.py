"""The cells of a printed 自评表 sheet as a grid: values, merged areas and cell addresses.

The four-sheet contract is read column by column (`reader.py`); an official form is a page, read
by its labels (`formsheet.py`). Forms are small (one page per project): they are read with
openpyxl's read-only mode, their merged areas from the sheet XML, after the same refusals as any
workbook (`refusal.py`: not an .xlsx, encrypted, hostile zips).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from openpyxl.utils import get_column_letter

from pipeline.errors import WorkbookRefused
from pipeline.xlsx.cells import cell_value, excel_number, is_percent_format
from pipeline.xlsx.merged import MergedArea, every_sheet_merged_areas
from pipeline.xlsx.refusal import refusal_to_open, refusal_while_reading, refuse_unreadable
from pipeline.xlsx.table import PercentCell

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


def merged_tops(areas: Iterable[MergedArea]) -> dict[Cell, Cell]:
    """Every cell of each merged area -> its top-left cell (the top-left itself included)."""
    tops: dict[Cell, Cell] = {}
    for top, left, bottom, right in areas:  # Excel rows, 0-based columns
        for row in range(top, bottom + 1):
            for column in range(left + 1, right + 2):
                tops[(row, column)] = (top, left + 1)
    return tops


def sheet_grid(values_sheet, formulas_sheet, areas: list[MergedArea]) -> FormGrid:  # noqa: ANN001
    """One sheet's grid from the workbook opened twice (cached values, and the formulas) in
    openpyxl's read-only mode, and its merged areas read from the sheet XML: the normal mode
    binds a style to every merged cell, 50 ms a form."""
    values: dict[Cell, object] = {}
    uncached: set[Cell] = set()
    values_sheet.reset_dimensions()  # read-only mode trusts <dimension>, which some writers get wrong
    formulas_sheet.reset_dimensions()
    for row in values_sheet.iter_rows():
        for cell in row:
            value = getattr(cell, "value", None)
            if value is not None:
                number_format = getattr(cell, "number_format", None)
                percent = isinstance(value, int | float) and not isinstance(value, bool) and number_format \
                    and is_percent_format(number_format)
                # As the table reader: a %-cell reads as its shown text but keeps what it holds,
                # so a 100 typed into a %-formatted money cell is told as such (`contract/cells.py`).
                converted = PercentCell(excel_number(value)) if percent else cell_value(value, number_format)
                if converted is not None:
                    values[(cell.row, cell.column)] = converted
    for row in formulas_sheet.iter_rows():
        for cell in row:
            if getattr(cell, "data_type", None) == "f" and (cell.row, cell.column) not in values:
                uncached.add((cell.row, cell.column))
    tops = merged_tops(areas)
    cells = [*values, *uncached, *tops]
    rows = max((r for r, _ in cells), default=0)
    columns = max((c for _, c in cells), default=0)
    return FormGrid(values_sheet.title, values, tops, frozenset(uncached), rows, columns)


def open_both(path: Path):  # noqa: ANN201 - openpyxl workbooks
    """The workbook with cached values, and with formulas (to tell an uncalculated formula)."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # data validations and other features openpyxl drops
            return (openpyxl.load_workbook(path, read_only=True, data_only=True),
                    openpyxl.load_workbook(path, read_only=True, data_only=False))
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise refusal_to_open(path, exc) from exc


def form_grids(path: Path) -> list[FormGrid]:
    """The grid of every visible worksheet, in the workbook's order (hidden sheets hold codes and
    lists, never a project). Raises WorkbookRefused when the file is not a readable .xlsx."""
    path = Path(path)
    refuse_unreadable(path)
    values_book, formulas_book = open_both(path)
    try:
        areas = every_sheet_merged_areas(path)
        return [sheet_grid(sheet, formulas_book[sheet.title], areas.get(sheet.title, []))
                for sheet in values_book.worksheets if sheet.sheet_state == "visible"]
    except WorkbookRefused:
        raise
    except Exception as exc:  # a damaged part surfaces only while iterating
        raise refusal_while_reading(path, exc) from exc
    finally:
        values_book.close()
        formulas_book.close()
