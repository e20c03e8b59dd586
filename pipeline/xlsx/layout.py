"""What the reader looks for on a sheet (`SheetLayout`), what it hands on (`RawSheet`,
`RawWorkbook`), and where a layout's sheet and header row are found.

The reader settles *where* things are: which sheet, which header row, which column, which Excel
row. Whether a value is acceptable is the contract's business. Sheet names and headers are
compared in canonical form (`headers.folded`), so full-width letters and stray spaces match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.core.headers import folded
from pipeline.errors import Problem, Severity


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
    index; `labels` maps each canonical header to the text the user typed, for messages;
    `positions` each found header to its 0-based column, so a message can name the cell (D21).
    """

    name: str
    header_row: int
    frame: pd.DataFrame
    labels: Mapping[str, str]
    positions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RawWorkbook:
    """The required sheets found in a workbook, and what kept the rest from being read."""

    path: Path
    sheets: Mapping[str, RawSheet]
    problems: tuple[Problem, ...] = field(default=())


def normalized_header(text: object) -> str:
    """A header in canonical form (`headers.folded`)."""
    return folded(str(text))


def sheet_by_name(names: Iterable[str], wanted: str) -> str | None:
    """The workbook's own name of the sheet whose normalised name is `wanted`."""
    for name in names:
        if normalized_header(name) == normalized_header(wanted):
            return name
    return None


def header_row_index(rows: Sequence[Sequence[object]], layout: SheetLayout, search_rows: int) -> int | None:
    """0-based index of the first row, among the first `search_rows`, holding every required header."""
    required = set(layout.required)
    for index, row in enumerate(rows[:search_rows]):
        present = {normalized_header(v) for v in row if v is not None}
        if required <= present:
            return index
    return None


def best_header_guess(rows: Sequence[Sequence[object]], layout: SheetLayout, search_rows: int) -> tuple[int, set[str]]:
    """The row (0-based) that holds most required headers, and the required headers it lacks."""
    required = set(layout.required)
    best, best_missing = 0, required
    for index, row in enumerate(rows[:search_rows]):
        present = {normalized_header(v) for v in row if v is not None}
        missing = required - present
        if len(missing) < len(best_missing):
            best, best_missing = index, missing
    return best, best_missing


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


def missing_sheet(layout: SheetLayout, names: list[str]) -> Problem:
    """The problem of a required sheet the workbook lacks."""
    return Problem(layout.name, None, "", "", Severity.ERROR,
                   f"缺少工作表「{layout.name}」（现有工作表：{'、'.join(names)}）")


def hidden_sheet(layout: SheetLayout, actual: str) -> Problem:
    """The warning for a required sheet that is hidden in Excel: it is read all the same."""
    return Problem(layout.name, None, "", "", Severity.WARNING,
                   f"工作表「{actual}」在 Excel 中是隐藏的，其内容仍参与校验并写入报告；如果其中的数据已作废，请删除后再提交")
