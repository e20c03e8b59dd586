"""Open an .xlsx safely and return one raw table per required sheet; reads, never judges values.

What this module settles is *where* things are: which sheet, which header row, which column, which
Excel row. Whether a value is acceptable is `validate.py`'s business. Cell values come back as
Python objects: `str` (trimmed), `Decimal` (numbers, exact as Excel shows them), or `None`.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
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
    values: list[tuple[object, ...]],
    formats: list[tuple[str | None, ...]],
    formulas: set[tuple[int, int]],
    layout: SheetLayout,
    search_rows: int,
) -> tuple[RawSheet | None, list[Problem]]:
    """One sheet's raw table from its cell values, number formats and uncached formula cells."""
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

    records: list[dict[str, object]] = []
    excel_rows: list[int] = []
    for index in range(header_index + 1, len(values)):
        row, fmt = values[index], formats[index]
        excel_row = index + 1
        record: dict[str, object] = {}
        for col, canonical in columns.items():
            raw = row[col] if col < len(row) else None
            if raw is None and (excel_row, col) in formulas:
                problems.append(
                    Problem(layout.name, excel_row, labels[canonical], "(公式)", Severity.ERROR,
                            f"{layout.name} 第{excel_row}行「{labels[canonical]}」：{HINT_FORMULA}")
                )
            number_format = fmt[col] if col < len(fmt) else None
            record[canonical] = cell_value(raw, number_format)
        if all(v is None for v in record.values()):
            continue
        records.append(record)
        excel_rows.append(excel_row)

    frame = pd.DataFrame(
        records, index=pd.Index(excel_rows, name="excel_row", dtype="int64"),
        columns=list(layout.known), dtype=object,
    )
    return RawSheet(layout.name, header_index + 1, frame, labels), problems


def sheet_cells(worksheet) -> tuple[list[tuple[object, ...]], list[tuple[str | None, ...]]]:  # noqa: ANN001
    """Values and number formats of every row of an openpyxl read-only worksheet."""
    values: list[tuple[object, ...]] = []
    formats: list[tuple[str | None, ...]] = []
    worksheet.reset_dimensions()  # read-only mode trusts <dimension>, which some writers get wrong
    for row in worksheet.iter_rows():
        values.append(tuple(getattr(c, "value", None) for c in row))
        formats.append(tuple(getattr(c, "number_format", None) for c in row))
    return values, formats


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


def read_workbook(path: Path, layouts: Iterable[SheetLayout], search_rows: int = 10) -> RawWorkbook:
    """Read the required sheets of an .xlsx; structural problems come back as records.

    Raises WorkbookRefused when the file is not a readable .xlsx at all.
    """
    path = Path(path)
    refuse_unreadable(path)
    workbook = open_workbook(path, data_only=True)
    sheets: dict[str, RawSheet] = {}
    problems: list[Problem] = []
    try:
        names = list(workbook.sheetnames)
        for layout in layouts:
            actual = sheet_by_name(names, layout.name)
            if actual is None:
                problems.append(
                    Problem(layout.name, None, "", "", Severity.ERROR,
                            f"缺少工作表「{layout.name}」（现有工作表：{'、'.join(names)}）")
                )
                continue
            values, formats = sheet_cells(workbook[actual])
            # Formula cells only matter where no cached value was stored; look only then.
            has_gaps = any(v is None for row in values for v in row)
            formulas = uncached_formula_cells(path, actual) if has_gaps else set()
            sheet, found = read_sheet(values, formats, formulas, layout, search_rows)
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
