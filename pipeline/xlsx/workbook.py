"""Open an .xlsx safely and return one raw table per required sheet; reads, never judges values.

What this module settles is *where* things are: which sheet, which header row, which column, which
Excel row. Whether a value is acceptable is `validate.py`'s business. Cell values come back as
Python objects: `str` (trimmed), `Decimal` (numbers, exact as Excel shows them), or `None`.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import warnings
import zipfile
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from itertools import chain, compress, islice, repeat
from operator import is_not
from pathlib import Path
from typing import TypeVar

import pandas as pd

from pipeline.core.headers import folded
from pipeline.errors import Problem, Severity, WorkbookRefused
from pipeline.xlsx.archive import SheetExtent, column_name, column_number, refuse_unsafe_archive

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted .xlsx is an OLE container holding a stream with this UTF-16 name.
ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")

# Quoted text ("%") and escaped characters (\%) in a number format print literally.
QUOTED_OR_ESCAPED = re.compile(r'"[^"]*"|\\.')

HINT_RESAVE = "请用 Excel 打开后另存为“Excel 工作簿(*.xlsx)”再提交。"
T = TypeVar("T")
# Rows converted at a time: bounded memory for any sheet, and large enough to keep the
# column-at-a-time conversion at C speed.
BATCH_ROWS = 20_000

HINT_FORMULA = "该单元格是没有计算结果的公式，请用 Excel 打开该文件、保存后再提交。"


@dataclass(frozen=True, slots=True)
class SheetLayout:
    """What the reader must find on a sheet: its name and the headers, by canonical form."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        """Every header this sheet may carry."""
        return self.required + self.optional


@dataclass(frozen=True, slots=True)
class RawSheet:
    """One sheet's cells below its header row.

    `frame` has the canonical headers as columns, object dtype, and the Excel row number as
    index; `labels` maps each canonical header to the text the user typed, for messages.
    """

    name: str
    header_row: int
    frame: pd.DataFrame
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RawWorkbook:
    """The required sheets found in a workbook, and what kept the rest from being read."""

    path: Path
    sheets: Mapping[str, RawSheet]
    problems: tuple[Problem, ...] = field(default=())


def normalized_header(text: object) -> str:
    """A header in canonical form (`headers.folded`)."""
    return folded(str(text))


def cell_value(value: object, number_format: str | None) -> object:
    """A cell's value as the reader hands it on: trimmed text, exact Decimal, or None.

    A number shown with a `%` format holds 0.9919 for 99.19%; it is returned as the text
    "99.19%" so that the unit travels with the number into validation.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        number = Decimal(value) if isinstance(value, int) else Decimal(f"{value:.15g}")  # Excel shows 15 digits
        if number_format and is_percent_format(number_format):
            return f"{plain_decimal(number * 100)}%"
        return number
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    text = str(value).strip()
    return text or None


@lru_cache(maxsize=256)  # a workbook uses few formats, on many cells
def is_percent_format(number_format: str) -> bool:
    """True for a format that scales by 100 (`0.00%`), not one that only prints a quoted "%"."""
    return "%" in QUOTED_OR_ESCAPED.sub("", number_format)


def plain_decimal(number: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros ("100", "99.19")."""
    text = format(number.normalize(), "f")
    return text


def refuse_unreadable(path: Path) -> None:
    """Raise WorkbookRefused with a Chinese reason when the file cannot be an .xlsx workbook."""
    if not path.exists():
        raise WorkbookRefused(path, "文件不存在。")
    if path.is_dir():
        raise WorkbookRefused(path, "这是一个文件夹，不是工作簿。")
    size = path.stat().st_size
    if size == 0:
        raise WorkbookRefused(path, "文件是空的（0 字节）。" + HINT_RESAVE)
    with path.open("rb") as handle:
        head = handle.read(8)
        if head == OLE_MAGIC:
            handle.seek(0)
            body = handle.read(4 * 1024 * 1024)
            if ENCRYPTED_MARK in body:
                raise WorkbookRefused(
                    path, "工作簿设置了打开密码，无法读取。请在 Excel 中取消密码后另存再提交。"
                )
            raise WorkbookRefused(path, "这是旧版 Excel 97-2003 (.xls) 文件。" + HINT_RESAVE)
    if not zipfile.is_zipfile(path):
        raise WorkbookRefused(
            path, "不是 Excel 工作簿（.xlsx），可能是文本、CSV 或已损坏的文件。" + HINT_RESAVE
        )
    refuse_unsafe_archive(path)  # zip bombs and XML entities, before any parser sees the file


def open_workbook(path: Path, *, data_only: bool):  # noqa: ANN201 - openpyxl has no public type
    """Open the workbook read-only with openpyxl, mapping its failures to WorkbookRefused."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            # openpyxl warns about data validation and other features it drops; irrelevant here.
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise WorkbookRefused(
            path, f"无法作为 Excel 工作簿打开（{type(exc).__name__}），文件可能已损坏。" + HINT_RESAVE
        ) from exc


def sheet_by_name(names: Iterable[str], wanted: str) -> str | None:
    """The workbook's own name of the sheet whose normalised name is `wanted`."""
    for name in names:
        if normalized_header(name) == normalized_header(wanted):
            return name
    return None


def header_row_index(rows: list[tuple[object, ...]], layout: SheetLayout, search_rows: int) -> int | None:
    """0-based index of the first row, among the first `search_rows`, holding every required header."""
    required = set(layout.required)
    for index, row in enumerate(rows[:search_rows]):
        present = {normalized_header(v) for v in row if v is not None}
        if required <= present:
            return index
    return None


def best_header_guess(rows: list[tuple[object, ...]], layout: SheetLayout, search_rows: int) -> tuple[int, set[str]]:
    """The row (0-based) that holds most required headers, and the required headers it lacks."""
    required = set(layout.required)
    best, best_missing = 0, required
    for index, row in enumerate(rows[:search_rows]):
        present = {normalized_header(v) for v in row if v is not None}
        missing = required - present
        if len(missing) < len(best_missing):
            best, best_missing = index, missing
    return best, best_missing


def read_sheet(
    rows: Iterable[Sequence[object]],
    percent_cells: set[tuple[int, int]],
    formulas: set[tuple[int, int]],
    layout: SheetLayout,
    search_rows: int,
    convert: Callable[[object], object] | None = None,
) -> tuple[RawSheet | None, list[Problem]]:
    """One sheet's raw table from its rows of cell values, its %-formatted cells and its formula cells.

    The i-th row of `rows` is Excel row i + 1 (empty cells None or ""); `percent_cells` and
    `formulas` hold (Excel row, 0-based column). Rows are consumed in batches, converted column by
    column, so a province's sheet never exists as a second full copy of Python objects.
    """
    problems: list[Problem] = []
    rows = iter(rows)
    head = list(islice(rows, search_rows))
    header_index = header_row_index(head, layout, search_rows)
    if header_index is None:
        guess, missing = best_header_guess(head, layout, search_rows)
        for header in sorted(missing, key=layout.required.index):
            problems.append(
                Problem(
                    layout.name, guess + 1 if head else None, header, "", Severity.ERROR,
                    f"{layout.name} 缺少必填列「{header}」（在前 {search_rows} 行中找不到含全部必填列的表头行）",
                )
            )
        return None, problems
    columns, labels, found = header_columns(head[header_index], header_index + 1, layout)
    problems.extend(found)

    first = header_index + 1  # 0-based index of the first data row; its Excel row is first + 1
    other = convert or convert_any
    percent = sorted((r, c) for r, c in percent_cells if r > first and c in columns)
    formula_cells = sorted((r, c) for r, c in formulas if r > first and c in columns)
    memos = {col: ColumnMemo() for col in columns}
    converted: dict[str, list[object]] = {canonical: [] for canonical in columns.values()}
    last_formula_row = max((r for r, _ in formula_cells), default=0)
    next_row = first + 1  # Excel row of the batch's first row
    for batch in batched(chain(head[first:], rows), BATCH_ROWS):
        last = next_row + len(batch) - 1
        width = len(batch[0])
        # Calamine's rows all have one width: then one transpose gives every column at C speed.
        transposed = list(zip(*batch, strict=True)) if all(len(row) == width for row in batch) else None
        percent_rows = rows_by_column(cells_between(percent, next_row, last))
        formula_rows = rows_by_column(cells_between(formula_cells, next_row, last))
        for col, canonical in columns.items():
            if transposed is not None:
                raw = list(transposed[col]) if col < width else [None] * len(batch)
            else:
                raw = [row[col] if col < len(row) else None for row in batch]
            cells = shared_conversions(raw, other, memos[col])
            percent_texts = memos[col].percent_texts
            for r in percent_rows.get(col, ()):
                value = raw[r - next_row]
                if type(value) in (int, float):
                    # Shared like the column's other values (see shared_conversions).
                    if (key := (type(value), value)) not in percent_texts:
                        percent_texts[key] = cell_value(value, "0%")
                    cells[r - next_row] = percent_texts[key]
            # A formula cell without a value: the file was written by a tool that never computed it.
            formula_rows[col] = [r for r in formula_rows.get(col, ()) if raw[r - next_row] in (None, "")]
            converted[canonical].extend(cells)
        problems.extend(formula_problem(layout.name, r, labels[columns[c]])
                        for r, c in sorted((r, c) for c, found in formula_rows.items() for r in found))
        next_row = last + 1
    # Formula cells below the last row with a value have no value at all.
    problems.extend(formula_problem(layout.name, r, labels[columns[c]])
                    for r, c in cells_between(formula_cells, next_row, last_formula_row))
    count = max(next_row - 1, last_formula_row) - first
    for cells in converted.values():
        cells.extend([None] * (count - len(cells)))

    keep = filled_rows(converted.values(), count)
    if len(keep) == count:  # the usual case: no empty rows to drop
        data = {name: converted.get(name) or [None] * count for name in layout.known}
    else:
        data = {name: ([converted[name][i] for i in keep] if name in converted else [None] * len(keep))
                for name in layout.known}
    frame = pd.DataFrame(
        data, index=pd.Index([first + 1 + i for i in keep], name="excel_row", dtype="int64"),
        columns=list(layout.known), dtype=object,
    )
    return RawSheet(layout.name, header_index + 1, frame, labels), problems


def header_columns(header_cells: Sequence[object], excel_row: int,
                   layout: SheetLayout) -> tuple[dict[int, str], dict[str, str], list[Problem]]:
    """Column index -> canonical header, canonical header -> typed label, and the header's problems."""
    problems: list[Problem] = []
    columns: dict[int, str] = {}
    labels: dict[str, str] = {}
    for col, raw in enumerate(header_cells):
        if raw is None or not str(raw).strip():
            continue
        canonical = normalized_header(raw)
        label = str(raw).strip()
        if canonical not in layout.known:
            problems.append(
                Problem(
                    layout.name, excel_row, label, "", Severity.WARNING,
                    f"{layout.name} 第{excel_row}行有未知的列「{label}」，已忽略",
                )
            )
            continue
        if canonical in labels:
            problems.append(
                Problem(
                    layout.name, excel_row, label, "", Severity.ERROR,
                    f"{layout.name} 第{excel_row}行的列「{label}」重复出现，请只保留一列",
                )
            )
            continue
        columns[col] = canonical
        labels[canonical] = label
    return columns, labels, problems


def formula_problem(sheet: str, row: int, label: str) -> Problem:
    """The error of a formula cell without a saved result."""
    return Problem(sheet, row, label, "(公式)", Severity.ERROR, f"{sheet} 第{row}行「{label}」：{HINT_FORMULA}")


def rows_by_column(cells: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Column -> the rows of the given (row, column) pairs."""
    grouped: dict[int, list[int]] = {}
    for row, col in cells:
        grouped.setdefault(col, []).append(row)
    return grouped


def cells_between(cells: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """The (row, column) pairs of a sorted list whose row lies in first..last."""
    return cells[bisect_left(cells, (first, -1)):bisect_left(cells, (last + 1, -1))]


@dataclass(slots=True)
class ColumnMemo:
    """A column's conversions so far, shared by its batches (see `shared_conversions`)."""

    by_value: dict[object, object] = field(default_factory=dict)
    by_type_and_value: dict[tuple[type, object], object] = field(default_factory=dict)
    numeric_types: set[type] = field(default_factory=set)
    percent_texts: dict[tuple[type, object], str] = field(default_factory=dict)  # 0.9919 -> "99.19%"

    @property
    def mixes_bool_and_numbers(self) -> bool:
        """True once the column has held both booleans and numbers (True == 1 == 1.0)."""
        return bool in self.numeric_types and len(self.numeric_types) > 1


NUMERIC_TYPES = frozenset((bool, int, float))


def shared_conversions(raw: list[object], convert: Callable[[object], object],
                       memo: ColumnMemo | None = None) -> list[object]:
    """Each cell converted, with one object per distinct value of the column.

    The same 一级指标, unit, weight or target repeats on thousands of rows; sharing one object
    per value saves the conversions and keeps 100,000 projects' tables smaller. Each distinct
    value is converted once and the column is then mapped through the memo at C speed. Values
    are keyed by themselves (1 and 1.0 convert alike) unless the column mixes booleans and
    numbers, since True == 1 but converts to 是: then by (type, value). Pass the same `memo`
    for each batch of a column.
    """
    memo = ColumnMemo() if memo is None else memo
    memo.numeric_types.update(NUMERIC_TYPES.intersection(map(type, raw)))
    if not memo.mixes_bool_and_numbers:
        known = memo.by_value
        for value in set(raw).difference(known):
            known[value] = (value.strip() or None) if value.__class__ is str else convert(value)
        with contextlib.suppress(KeyError):  # a NaN (<v>NaN</v>) is not equal to itself
            return list(map(known.__getitem__, raw))
    typed = memo.by_type_and_value
    cells: list[object] = []
    for value in raw:
        key = (value.__class__, value)
        cell = typed.get(key, typed)
        if cell is typed:
            cell = typed[key] = (value.strip() or None) if value.__class__ is str else convert(value)
        cells.append(cell)
    return cells


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items (itertools.batched arrives in Python 3.12)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def filled_rows(columns: Iterable[list[object]], count: int) -> list[int]:
    """Indexes of the rows with at least one cell that is not None, in order."""
    empty = set(range(count))
    for cells in columns:
        # compress() and map() run at C speed; usually the first column fills almost every row.
        empty.difference_update(compress(range(count), map(is_not, cells, repeat(None))))
        if not empty:
            return list(range(count))
    return [i for i in range(count) if i not in empty]


def convert_any(value: object) -> object:
    """`cell_value` of a cell without a number format."""
    return cell_value(value, None)


def convert_calamine(value: object) -> object:
    """`cell_value` of a calamine cell as openpyxl would have read it; dates need openpyxl.

    Calamine gives every number as a float and an empty cell as ""; openpyxl gives whole
    numbers stored without a decimal point as int, which `cell_value` reads exactly.
    """
    kind = value.__class__
    if kind is float:
        if value.is_integer() and -(2**53) < value < 2**53:
            return Decimal(int(value))
        return Decimal(f"{value:.15g}")
    if kind is str:
        return value.strip() or None
    if kind is bool or kind is int:
        return cell_value(value, None)
    if value is None:
        return None
    raise NeedsOpenpyxl(f"cell of type {kind.__name__}")


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
                found = [*found, *merged_cell_problems(sheet, values[header_index], areas)]
            problems.extend(found)
            if sheet is not None:
                sheets[layout.name] = sheet
    except WorkbookRefused:
        raise
    except Exception as exc:  # a damaged part surfaces only while iterating
        raise WorkbookRefused(path, f"读取时出错（{type(exc).__name__}），文件可能已损坏。{HINT_RESAVE}") from exc
    finally:
        workbook.close()
    return RawWorkbook(path, sheets, tuple(problems))


def missing_sheet(layout: SheetLayout, names: list[str]) -> Problem:
    """The problem of a required sheet the workbook lacks."""
    return Problem(layout.name, None, "", "", Severity.ERROR,
                   f"缺少工作表「{layout.name}」（现有工作表：{'、'.join(names)}）")


# --- the fast reader: calamine for values, the sheet XML for formats and formulas -----------

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
STYLE_ATTR = re.compile(rb'\ss\s*=\s*["\'](\d+)["\']')


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
        raise WorkbookRefused(
            path, f"无法作为 Excel 工作簿打开（{type(exc).__name__}），文件可能已损坏。" + HINT_RESAVE
        ) from exc
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
            heaviest, *others = sorted(found_sheets, key=lambda n: -work[n]) or [None]
            order = [name for name in (heaviest, *sorted(others, key=lambda n: work[n])) if name is not None]
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
                    found = [*found, *merged_cell_problems(sheet, header_cells, areas)]
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
        raise WorkbookRefused(path, f"读取时出错（{type(exc).__name__}），文件可能已损坏。{HINT_RESAVE}") from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    if not slow:
        return RawWorkbook(path, sheets, tuple(problems))
    fallback = read_workbook_openpyxl(path, layouts, search_rows, only=slow)
    # Keep the layouts' order for sheets and problems, as a single reader would give them.
    by_sheet: dict[str, list[Problem]] = {}
    for problem in (*problems, *fallback.problems):
        by_sheet.setdefault(problem.sheet, []).append(problem)
    merged = {**sheets, **fallback.sheets}
    return RawWorkbook(
        path, {lay.name: merged[lay.name] for lay in layouts if lay.name in merged},
        tuple(p for lay in layouts for p in by_sheet.get(lay.name, [])),
    )


# --- merged cells and hidden sheets (read_workbook) ----------------------------------------------

MERGE_REF = re.compile(
    rb'<(?:[A-Za-z_][\w.-]*:)?mergeCell\s[^>]*?ref\s*=\s*["\']\$?([A-Z]{1,3})\$?(\d+):\$?([A-Z]{1,3})\$?(\d+)["\']'
)
MergedArea = tuple[int, int, int, int]  # first row, first column, last row, last column (rows 1-based, columns 0-based)


def merged_areas(xml: bytes) -> list[MergedArea]:
    """The merged areas in (the last piece of) a sheet's XML; they follow the cells, so only the tail is searched."""
    end = xml.rfind(b"sheetData>")
    tail = xml[end:] if end >= 0 else xml
    return [(int(m[2]), column_number(m[1]) - 1, int(m[4]), column_number(m[3]) - 1) for m in MERGE_REF.finditer(tail)]


def merged_cell_problems(sheet: RawSheet, header_cells: Sequence[object], areas: Iterable[MergedArea]) -> list[Problem]:
    """An error for each merged area over the data rows of a known column, naming its first row and column.

    A merged area keeps its value in its top-left cell only, so the rows below would read as empty
    and fail as 不能为空, which says nothing about the merge. The value is therefore copied down
    the area's first column (the error still blocks the reports), so that only the merge is reported.
    """
    known: dict[int, str] = {}
    for col, text in enumerate(header_cells):
        canonical = normalized_header(text) if text is not None else ""
        if canonical in sheet.labels and canonical not in known.values():
            known[col] = canonical
    frame = sheet.frame
    problems: list[Problem] = []
    for top, left, bottom, right in areas:
        first = max(top, sheet.header_row + 1)
        columns = [known[col] for col in range(left, right + 1) if col in known]
        if bottom < first or not columns:
            continue  # a title above the header, or columns the reader ignores
        label = sheet.labels[columns[0]]
        value = frame.at[top, known[left]] if top == first and left in known and top in frame.index else None
        place = f"{column_name(left)}{top}:{column_name(right)}{bottom}"
        problems.append(Problem(
            sheet.name, first, label, "" if value is None else str(value), Severity.ERROR,
            f"{sheet.name} 第{first}行「{label}」在合并单元格 {place}（第{top}–{bottom}行）中，"
            "请取消合并单元格，并在每一行分别填写",
        ))
        if value is not None:
            for row in frame.index[(frame.index > first) & (frame.index <= bottom)]:
                if frame.at[row, known[left]] is None:
                    frame.at[row, known[left]] = value
    return problems


def sheet_merged_areas(path: Path, sheet: str) -> list[MergedArea]:
    """The merged areas of one sheet, read from its XML (openpyxl's read-only mode does not give them)."""
    with zipfile.ZipFile(path) as archive:
        part = sheet_parts(archive).get(sheet)
        last = deque(xml_pieces(archive, part) if part is not None else (), maxlen=1)  # they follow the cells
    return merged_areas(last[0] if last else b"")


def hidden_sheet(layout: SheetLayout, actual: str) -> Problem:
    """The warning for a required sheet that is hidden in Excel: it is read all the same."""
    return Problem(layout.name, None, "", "", Severity.WARNING,
                   f"工作表「{actual}」在 Excel 中是隐藏的，其内容仍参与校验并写入报告；如果其中的数据已作废，请删除后再提交")
