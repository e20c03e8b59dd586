"""The openpyxl reader: slow but exact, for sheets the fast reader cannot place.

openpyxl reads number formats and formula cells itself, but about ten times slower than calamine
reads values, so it reads only the sheets the sheet-XML scan gives up on (cells without `r=`,
dates, a percentage as default style, …); the tests also use it as the reference the fast reader
must match. Its rows go through the same `read_sheet` and merged-cell checks as the fast reader's.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterable
from pathlib import Path

from pipeline.errors import Problem, WorkbookRefused
from pipeline.xlsx.cells import is_percent_format
from pipeline.xlsx.layout import (
    RawSheet,
    RawWorkbook,
    SheetLayout,
    header_row_index,
    missing_sheet,
    sheet_by_name,
)
from pipeline.xlsx.merged import filled_down, merged_cell_problems, sheet_merged_areas
from pipeline.xlsx.refusal import refusal_to_open, refusal_while_reading, refuse_unreadable
from pipeline.xlsx.table import read_sheet


def open_workbook(path: Path, *, data_only: bool):  # noqa: ANN201 - openpyxl has no public type
    """Open the workbook read-only with openpyxl, mapping its failures to WorkbookRefused."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            # openpyxl warns about data validation and other features it drops; irrelevant here.
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise refusal_to_open(path, exc) from exc


def sheet_cells(worksheet) -> tuple[list[tuple[object, ...]], set[tuple[int, int]]]:  # noqa: ANN001
    """Values of every row of an openpyxl read-only worksheet, and its %-formatted cells."""
    values: list[tuple[object, ...]] = []
    percent: set[tuple[int, int]] = set()
    worksheet.reset_dimensions()  # read-only mode trusts <dimension>, which some writers get wrong
    for r, row in enumerate(worksheet.iter_rows(), start=1):
        values.append(tuple(getattr(c, "value", None) for c in row))
        for c, cell in enumerate(row):
            number_format = getattr(cell, "number_format", None)
            if number_format and is_percent_format(number_format):
                percent.add((r, c))
    return values, percent


def uncached_formula_cells(path: Path, sheet_name: str) -> set[tuple[int, int]]:
    """(Excel row, 0-based column) of the formula cells of a sheet, read without cached values."""
    workbook = open_workbook(path, data_only=False)
    try:
        cells: set[tuple[int, int]] = set()
        workbook[sheet_name].reset_dimensions()  # as in sheet_cells
        for r, row in enumerate(workbook[sheet_name].iter_rows(), start=1):
            for c, cell in enumerate(row):
                if getattr(cell, "data_type", None) == "f":
                    cells.add((r, c))
        return cells
    finally:
        workbook.close()


def read_workbook_openpyxl(path: Path, layouts: Iterable[SheetLayout], search_rows: int = 10,
                           only: Collection[str] | None = None) -> RawWorkbook:
    """`read_workbook` through openpyxl alone (slow; for sheets the fast reader cannot place).

    With `only`, just the sheets of those names are read (missing-sheet problems still reported).
    """
    path = Path(path)
    refuse_unreadable(path)
    workbook = open_workbook(path, data_only=True)
    sheets: dict[str, RawSheet] = {}
    problems: list[Problem] = []
    try:
        names = list(workbook.sheetnames)
        for layout in layouts:
            if only is not None and layout.name not in only:
                continue
            actual = sheet_by_name(names, layout.name)
            if actual is None:
                problems.append(missing_sheet(layout, names))
                continue
            values, percent = sheet_cells(workbook[actual])
            # Formula cells only matter where no cached value was stored; look only then.
            has_gaps = any(v is None for row in values for v in row)
            formulas = uncached_formula_cells(path, actual) if has_gaps else set()
            sheet, found = read_sheet(values, percent, formulas, layout, search_rows)
            areas = sheet_merged_areas(path, actual) if sheet is not None else []
            header_index = header_row_index(values, layout, search_rows) if areas else None
            if sheet is not None and header_index is not None:
                merged = merged_cell_problems(sheet, values[header_index], areas)
                sheet, found = filled_down(sheet, merged.fills), [*found, *merged.problems]
            problems.extend(found)
            if sheet is not None:
                sheets[layout.name] = sheet
    except WorkbookRefused:
        raise
    except Exception as exc:  # a damaged part surfaces only while iterating
        raise refusal_while_reading(path, exc) from exc
    finally:
        workbook.close()
    return RawWorkbook(path, sheets, tuple(problems))
