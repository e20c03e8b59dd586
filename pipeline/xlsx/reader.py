"""Open an .xlsx safely and return one raw table per required sheet; reads, never judges values.

The fast reader: calamine parses the values (in Rust, without the GIL, in threads), the sheet XML
scan adds number formats, formula cells and merged areas, and a sheet the scan cannot place is
read by openpyxl instead (`fallback.py`). Cell values come back as Python objects: `str`
(trimmed), `Decimal` (numbers, exact as Excel shows them), or `None` (see `cells.py`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from decimal import Decimal
from itertools import chain, islice
from pathlib import Path

from pipeline.errors import Problem, WorkbookRefused
from pipeline.xlsx.archive import SheetExtent
from pipeline.xlsx.cells import cell_value
from pipeline.xlsx.fallback import read_workbook_openpyxl
from pipeline.xlsx.layout import (
    RawSheet,
    RawWorkbook,
    SheetLayout,
    header_row_index,
    hidden_sheet,
    missing_sheet,
    sheet_by_name,
)
from pipeline.xlsx.merged import MergedArea, filled_down, merged_areas, merged_cell_problems
from pipeline.xlsx.refusal import refusal_to_open, refusal_while_reading, refuse_unreadable
from pipeline.xlsx.sheetxml import (
    NeedsOpenpyxl,
    has_cells_without_references,
    percent_styles,
    sheet_parts,
    xml_cells,
    xml_pieces,
)
from pipeline.xlsx.table import read_sheet


def read_workbook(path: Path, layouts: Iterable[SheetLayout], search_rows: int = 10) -> RawWorkbook:
    """Read the required sheets of an .xlsx; structural problems come back as records.

    Values come from calamine; number formats and formula cells from the sheet XML. A sheet the
    XML scan cannot place (cells without `r=`, dates, …) is read with openpyxl instead.
    Raises WorkbookRefused when the file is not a readable .xlsx at all.
    """
    from python_calamine import CalamineWorkbook, SheetVisibleEnum

    path = Path(path)
    layouts = list(layouts)
    refuse_unreadable(path)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # calamine raises its own types for damaged files
        raise refusal_to_open(path, exc) from exc
    sheets: dict[str, RawSheet] = {}
    problems: list[Problem] = []
    slow: list[str] = []
    names = list(workbook.sheet_names)
    hidden = {sheet.name for sheet in workbook.sheets_metadata if sheet.visible != SheetVisibleEnum.Visible}
    executor = ThreadPoolExecutor(max_workers=2)
    pending: dict[str, Future] = {}
    scans: dict[str, tuple[set[tuple[int, int]], set[tuple[int, int]], list[MergedArea]]] = {}
    try:
        with archive:
            parts = sheet_parts(archive)
            percent = percent_styles(archive)
            # Each sheet's XML is scanned (formats, formulas, merged cells) before calamine sees
            # the sheet: calamine builds the whole used rectangle in memory and aborts the process
            # when it cannot, so a sheet reaching XFD1048576 is refused first, and a sheet the scan
            # cannot place goes to openpyxl. Calamine parses without the GIL: it parses the sheets
            # already scanned in threads while this thread scans the next one, starting with the
            # sheet whose table takes longest to parse and build (most XML times most columns),
            # and each table is built as soon as its sheet is parsed.
            by_name = {layout.name: layout for layout in layouts}
            found_sheets = {layout.name: actual for layout in layouts
                            if (actual := sheet_by_name(names, layout.name)) is not None and actual in parts}
            work = {name: archive.getinfo(parts[actual]).file_size * len(by_name[name].known)
                    for name, actual in found_sheets.items()}
            # The heaviest sheet is parsed first, on one thread; the others, lightest first, on the
            # other, so that their tables are built while the heaviest is still being parsed.
            by_work = sorted(found_sheets, key=lambda n: -work[n])
            order = by_work[:1] + sorted(by_work[1:], key=lambda n: work[n])
            extents: dict[str, SheetExtent] = {}
            for name in order:
                # First only what makes a sheet unsafe for calamine (a quick pass), so that the
                # parses, the longest step of reading, start while the formats and formulas are
                # scanned in a second pass over the XML.
                extents[name] = SheetExtent(path, found_sheets[name])
                if has_cells_without_references(extents[name].watch(xml_pieces(archive, parts[found_sheets[name]]))):
                    continue  # never given to calamine: read by openpyxl below
                pending[name] = executor.submit(parsed_sheet, path, found_sheets[name])
            for name in order:
                if name not in pending:
                    continue
                try:
                    percent_cells, formulas = xml_cells(xml_pieces(archive, parts[found_sheets[name]]), percent)
                except NeedsOpenpyxl:
                    pending.pop(name).cancel()
                    continue
                scans[name] = (percent_cells, formulas, merged_areas(extents[name].last))
            tables: dict[str, tuple[RawSheet | None, list[Problem]]] = {}
            for future in as_completed(list(pending.values())):
                name = next(n for n, f in pending.items() if f is future)
                del pending[name]  # the parsed sheet is freed as soon as its table is built
                layout = by_name[name]
                percent_cells, formulas, areas = scans.pop(name)
                try:
                    rows = calamine_rows(future.result(), search_rows)
                    del future
                    head = list(islice(rows, search_rows)) if areas else []
                    header_index = header_row_index(head, layout, search_rows) if areas else None
                    header_cells = list(head[header_index]) if header_index is not None else []
                    sheet, found = read_sheet(chain(head, rows), percent_cells, formulas, layout, search_rows,
                                              convert_calamine)
                    del rows, head
                except NeedsOpenpyxl:
                    continue
                if sheet is not None and header_cells:
                    merged = merged_cell_problems(sheet, header_cells, areas)
                    sheet, found = filled_down(sheet, merged.fills), [*found, *merged.problems]
                tables[name] = (sheet, found)
            for layout in layouts:  # problems in the layouts' order, as a single reader gives them
                actual = sheet_by_name(names, layout.name)
                if actual is None:
                    problems.append(missing_sheet(layout, names))
                    continue
                if actual in hidden:
                    problems.append(hidden_sheet(layout, actual))
                if layout.name not in tables:
                    slow.append(layout.name)
                    continue
                sheet, found = tables.pop(layout.name)
                problems.extend(found)
                if sheet is not None:
                    sheets[layout.name] = sheet
    except WorkbookRefused:
        raise
    except Exception as exc:  # a damaged part surfaces only while reading it
        raise refusal_while_reading(path, exc) from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    if not slow:
        return RawWorkbook(path, sheets, tuple(problems))
    fallback = read_workbook_openpyxl(path, layouts, search_rows, only=slow)
    # Keep the layouts' order for sheets and problems, as a single reader would give them.
    by_sheet: dict[str, list[Problem]] = {}
    for problem in (*problems, *fallback.problems):
        by_sheet.setdefault(problem.sheet, []).append(problem)
    read_sheets = {**sheets, **fallback.sheets}
    return RawWorkbook(
        path, {lay.name: read_sheets[lay.name] for lay in layouts if lay.name in read_sheets},
        tuple(p for lay in layouts for p in by_sheet.get(lay.name, [])),
    )


def convert_calamine(value: object) -> object:
    """`cell_value` of a calamine cell as openpyxl would have read it; dates need openpyxl.

    Calamine gives every number as a float and an empty cell as ""; openpyxl gives whole
    numbers stored without a decimal point as int, which `cell_value` reads exactly.
    """
    # `value.__class__ is`, not isinstance: exact types, as fast, and mypy narrows on it too.
    if value.__class__ is float:
        if value.is_integer() and -(2**53) < value < 2**53:
            return Decimal(int(value))
        return Decimal(f"{value:.15g}")
    if value.__class__ is str:
        return value.strip() or None
    kind = value.__class__
    if kind is bool or kind is int:
        return cell_value(value, None)
    if value is None:
        return None
    raise NeedsOpenpyxl(f"cell of type {kind.__name__}")


def calamine_values(rows: list[list[object]], search_rows: int) -> list[list[object]]:
    """Calamine's rows, whole numbers in the header search rows as int (as openpyxl reads them)."""
    for row in rows[:search_rows]:
        for index, value in enumerate(row):
            if value.__class__ is float and value.is_integer() and -(2**53) < value < 2**53:
                row[index] = int(value)
    return rows


def parsed_sheet(path: Path, sheet: str):  # noqa: ANN201 - python_calamine.CalamineSheet
    """A sheet parsed by calamine (in Rust, without the GIL); one reader per thread."""
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet)


def calamine_rows(sheet, search_rows: int) -> Iterator[list[object]]:  # noqa: ANN001 - CalamineSheet
    """A parsed sheet's rows one at a time, row i being Excel row i + 1.

    python-calamine's `iter_rows` starts at row 1 but at the first filled column; the columns
    before it are put back as empty cells so that positions match the sheet XML (pinned by a test).
    """
    if sheet.start is None:  # an empty sheet
        return iter(())
    left = sheet.start[1]
    padding = [""] * left
    rows = sheet.iter_rows() if not left else ([*padding, *row] for row in sheet.iter_rows())
    return chain(calamine_values(list(islice(rows, search_rows)), search_rows), rows)
