"""Open an .xlsx safely and return one raw table per required sheet; reads, never judges values.

What this module settles is *where* things are: which sheet, which header row, which column, which
Excel row. Whether a value is acceptable is `validate.py`'s business. Cell values come back as
Python objects: `str` (trimmed), `Decimal` (numbers, exact as Excel shows them), or `None`.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from itertools import compress, repeat
from operator import is_not
from pathlib import Path

import pandas as pd

from pipeline.errors import Problem, Severity, WorkbookRefused

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted .xlsx is an OLE container holding a stream with this UTF-16 name.
ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")

# Quoted text ("%") and escaped characters (\%) in a number format print literally.
QUOTED_OR_ESCAPED = re.compile(r'"[^"]*"|\\.')

HINT_RESAVE = "请用 Excel 打开后另存为“Excel 工作簿(*.xlsx)”再提交。"
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
    """A header in canonical form: NFKC, without white space or line breaks."""
    return "".join(unicodedata.normalize("NFKC", str(text)).split())


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
    values: list[tuple[object, ...]] | list[list[object]],
    percent_cells: set[tuple[int, int]],
    formulas: set[tuple[int, int]],
    layout: SheetLayout,
    search_rows: int,
    convert: Callable[[object], object] | None = None,
) -> tuple[RawSheet | None, list[Problem]]:
    """One sheet's raw table from its cell values, its %-formatted cells and its formula cells.

    `values[i]` is Excel row i + 1 (empty cells None or ""); `percent_cells` and `formulas` hold
    (Excel row, 0-based column). The frame is built column by column.
    """
    problems: list[Problem] = []
    header_index = header_row_index(values, layout, search_rows)
    if header_index is None:
        guess, missing = best_header_guess(values, layout, search_rows)
        for header in sorted(missing, key=layout.required.index):
            problems.append(
                Problem(
                    layout.name, guess + 1 if values else None, header, "", Severity.ERROR,
                    f"{layout.name} 缺少必填列「{header}」（在前 {search_rows} 行中找不到含全部必填列的表头行）",
                )
            )
        return None, problems

    header_cells = values[header_index]
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
                    layout.name, header_index + 1, label, "", Severity.WARNING,
                    f"{layout.name} 第{header_index + 1}行有未知的列「{label}」，已忽略",
                )
            )
            continue
        if canonical in labels:
            problems.append(
                Problem(
                    layout.name, header_index + 1, label, "", Severity.ERROR,
                    f"{layout.name} 第{header_index + 1}行的列「{label}」重复出现，请只保留一列",
                )
            )
            continue
        columns[col] = canonical
        labels[canonical] = label

    first = header_index + 1  # 0-based index of the first data row; its Excel row is first + 1
    last_formula_row = max((r for r, _ in formulas), default=0)
    count = max(len(values), last_formula_row) - first
    body = values[first:]
    other = convert or convert_any
    percent_rows: dict[int, list[int]] = {}
    for r, c in percent_cells:
        if first < r <= first + count:
            percent_rows.setdefault(c, []).append(r - first - 1)
    converted: dict[str, list[object]] = {}
    raws: dict[str, list[object]] = {}
    width = len(body[0]) if body else 0
    # Calamine's rows all have one width: then one transpose gives every column at C speed.
    transposed = list(zip(*body, strict=True)) if body and all(len(row) == width for row in body) else None
    for col, canonical in columns.items():
        if transposed is not None and col < width:
            raw = list(transposed[col])
        else:
            raw = [row[col] if col < len(row) else None for row in body]
        raw.extend([None] * (count - len(raw)))
        cells = shared_conversions(raw, other)
        for i in percent_rows.get(col, ()):
            if type(raw[i]) in (int, float):
                cells[i] = cell_value(raw[i], "0%")
        converted[canonical] = cells
        raws[canonical] = raw
    for r, c in sorted(formulas):
        if c in columns and r > first and raws[columns[c]][r - first - 1] in (None, ""):
            label = labels[columns[c]]
            problems.append(
                Problem(layout.name, r, label, "(公式)", Severity.ERROR,
                        f"{layout.name} 第{r}行「{label}」：{HINT_FORMULA}")
            )

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


def shared_conversions(raw: list[object], convert: Callable[[object], object]) -> list[object]:
    """Each cell converted, with one object per distinct value of the column.

    The same 一级指标, unit, weight or target repeats on thousands of rows; sharing one object
    per value saves the conversions and keeps 100,000 projects' tables smaller. Text is keyed by
    itself; other values by (type, value), since 1 == 1.0 == True must not share a conversion.
    """
    texts: dict[str, str | None] = {}
    others: dict[tuple[type, object], object] = {}
    cells: list[object] = []
    append = cells.append
    for value in raw:
        if value.__class__ is str:
            cell = texts.get(value, texts)
            if cell is texts:
                cell = texts[value] = value.strip() or None
        else:
            key = (value.__class__, value)
            cell = others.get(key, others)
            if cell is others:
                cell = others[key] = convert(value)
        append(cell)
    return cells


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
STYLE_ATTR = re.compile(rb'\ss\s*=\s*["\'](\d+)["\']')


class NeedsOpenpyxl(Exception):
    """The fast reader cannot read this sheet exactly; openpyxl must."""


def column_index(letters: bytes) -> int:
    """0-based column of a column name (A -> 0, AA -> 26)."""
    index = 0
    for char in letters.upper():
        index = index * 26 + char - 64
    return index - 1


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
    from openpyxl.styles.numbers import BUILTIN_FORMATS

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
        number_format = custom.get(number_id) or BUILTIN_FORMATS.get(number_id, "General")
        if is_percent_format(number_format):
            found.add(index)
    return found


def xml_cells(xml: bytes, percent: set[int]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(%-formatted cells, formula cells) of a worksheet's XML, as (Excel row, 0-based column)."""
    # The usual writing (Excel, LibreOffice, openpyxl): unprefixed tags, every cell `<c r="…"`,
    # attributes in double quotes. Then literal searches do; otherwise look at each tag.
    usual = (b"<sheetData" in xml and xml.count(b"<c ") == xml.count(b'<c r="')
             and UNUSUAL_CELL_TAG.search(xml) is None)
    if not usual and CELL_WITHOUT_REF.search(xml):
        raise NeedsOpenpyxl("cells without r=")
    percent_cells: set[tuple[int, int]] = set()
    if percent:
        if 0 in percent:
            raise NeedsOpenpyxl("default style is a percentage")
        ids = b"|".join(str(i).encode() for i in sorted(percent))
        if usual:
            # Every cell starts `<c r="B7"`. Searching for the style attribute alone is a literal
            # scan, three times faster than a pattern tried at each of a million cell tags; the
            # attribute counts when the tag it stands in is a cell's (not text that looks alike).
            styled = re.compile(rb' s="(?:' + ids + rb')"[ />]')
            for match in styled.finditer(xml):
                start = xml.rfind(b"<", 0, match.start())
                if xml.startswith(b'<c r="', start) and xml.find(b">", start) >= match.end() - 1:
                    percent_cells.add(cell_position(xml[start:match.end()]))
        else:
            style = re.compile(rb"\ss\s*=\s*[\"'](?:" + ids + rb")[\"']")
            for match in style.finditer(xml):
                start = xml.rfind(b"<", 0, match.start())
                tag = CELL_TAG.match(xml, start)
                if tag is not None and tag.end() > match.start():  # inside a cell's tag, not in text
                    percent_cells.add(cell_position(tag.group()))
    formulas: set[tuple[int, int]] = set()
    for match in (USUAL_FORMULA_TAG if usual else FORMULA_TAG).finditer(xml):
        # A formula is the first child of its cell, so the cell's tag is the last one before it.
        tags = list(CELL_TAG.finditer(xml, max(0, match.start() - 2000), match.start()))
        if not tags:
            tags = list(CELL_TAG.finditer(xml, 0, match.start()))
            if not tags:
                raise NeedsOpenpyxl("formula outside a cell")
        formulas.add(cell_position(tags[-1].group()))
    return percent_cells, formulas


def cell_position(tag: bytes) -> tuple[int, int]:
    """(Excel row, 0-based column) of a cell's opening tag."""
    match = CELL_REF.search(tag)
    if match is None:
        raise NeedsOpenpyxl("cell without r=")
    return int(match[2]), column_index(match[1])


def calamine_values(rows: list[list[object]], search_rows: int) -> list[list[object]]:
    """Calamine's rows, whole numbers in the header search rows as int (as openpyxl reads them)."""
    for row in rows[:search_rows]:
        for index, value in enumerate(row):
            if value.__class__ is float and value.is_integer() and -(2**53) < value < 2**53:
                row[index] = int(value)
    return rows


def calamine_rows(path: Path, sheet: str) -> list[list[object]]:
    """Every row of a sheet as calamine reads it (row i is Excel row i + 1); one reader per thread."""
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def read_workbook(path: Path, layouts: Iterable[SheetLayout], search_rows: int = 10) -> RawWorkbook:
    """Read the required sheets of an .xlsx; structural problems come back as records.

    Values come from calamine; number formats and formula cells from the sheet XML. A sheet the
    XML scan cannot place (cells without `r=`, dates, …) is read with openpyxl instead.
    Raises WorkbookRefused when the file is not a readable .xlsx at all.
    """
    from python_calamine import CalamineWorkbook

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
    # Calamine parses without the GIL: let it parse the sheets in threads while this thread
    # scans the XML for formats and formulas.
    executor = ThreadPoolExecutor(max_workers=2)
    pending = {layout.name: executor.submit(calamine_rows, path, actual)
               for layout in layouts if (actual := sheet_by_name(names, layout.name)) is not None}
    try:
        with archive:
            parts = sheet_parts(archive)
            percent = percent_styles(archive)
            for layout in layouts:
                actual = sheet_by_name(names, layout.name)
                if actual is None:
                    problems.append(missing_sheet(layout, names))
                    continue
                try:
                    if actual not in parts:
                        raise NeedsOpenpyxl("sheet part not found")
                    percent_cells, formulas = xml_cells(archive.read(parts[actual]), percent)
                    rows = pending[layout.name].result()
                    values = calamine_values(rows, search_rows)
                    sheet, found = read_sheet(values, percent_cells, formulas, layout, search_rows,
                                              convert_calamine)
                except NeedsOpenpyxl:
                    slow.append(layout.name)
                    continue
                problems.extend(found)
                if sheet is not None:
                    sheets[layout.name] = sheet
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
