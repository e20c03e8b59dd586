"""One sheet's raw table from its rows of cell values: header row, columns, and Excel rows.

Both readers (calamine and openpyxl) hand their rows to `read_sheet`, so a sheet reads the same
whichever read it. Rows are converted in batches, column by column, so memory stays bounded for a
province's sheet of 800,000 rows and the conversion runs at C speed. Formula cells without a saved
result are reported here, since only the reader can tell them from empty cells.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import chain, compress, islice, repeat
from operator import is_not
from typing import TypeVar

import pandas as pd

from pipeline.errors import Problem, Severity
from pipeline.xlsx.cells import (
    ColumnMemo,
    convert_any,
    excel_number,
    percent_text,
    shared_conversions,
)
from pipeline.xlsx.layout import (
    RawSheet,
    SheetLayout,
    best_header_guess,
    header_columns,
    header_row_index,
)

T = TypeVar("T")
# Rows converted at a time: bounded memory for any sheet, and large enough to keep the
# column-at-a-time conversion at C speed.
BATCH_ROWS = 20_000

HINT_FORMULA = "该单元格是没有计算结果的公式，请用 Excel 打开该文件、保存后再提交。"
FORMULA_SHOWN = "(公式)"  # the value a formula problem quotes: the cell holds nothing else


class PercentCell(str):
    """The text of a %-formatted number cell as Excel shows it ("100%"), which also keeps the
    number the cell holds (`held`, 1).

    Where a percentage is meant (实际完成值) the text is all that counts, and it travels as any
    text; where a plain number is asked for (an amount in 万元), the message can then say what the
    cell shows *and* holds, rather than take the shown text for what the office typed.
    """

    held: Decimal

    def __new__(cls, held: Decimal) -> PercentCell:
        cell = super().__new__(cls, percent_text(held))
        cell.held = held
        return cell

    def __reduce__(self) -> tuple[type[PercentCell], tuple[Decimal]]:
        """Copied and pickled from the number it holds (str's own way would pass the text)."""
        return PercentCell, (self.held,)


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
                if value.__class__ is int or value.__class__ is float:  # not bool: that shows 是/否
                    # Shared like the column's other values (see shared_conversions).
                    if (key := (type(value), value)) not in percent_texts:
                        percent_texts[key] = PercentCell(excel_number(value))
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
    positions = {canonical: col for col, canonical in columns.items()}
    return RawSheet(layout.name, header_index + 1, frame, labels, positions), problems


def formula_problem(sheet: str, row: int, label: str) -> Problem:
    """The error of a formula cell without a saved result."""
    return Problem(sheet, row, label, FORMULA_SHOWN, Severity.ERROR, f"{sheet} 第{row}行「{label}」：{HINT_FORMULA}")


def is_formula_problem(problem: Problem) -> bool:
    """Whether a problem is that of a formula cell without a saved result (`formula_problem`):
    such a cell reads as empty, and its being empty is no second error."""
    return problem.value == FORMULA_SHOWN and problem.message.endswith(HINT_FORMULA)


def rows_by_column(cells: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Column -> the rows of the given (row, column) pairs."""
    grouped: dict[int, list[int]] = {}
    for row, col in cells:
        grouped.setdefault(col, []).append(row)
    return grouped


def cells_between(cells: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """The (row, column) pairs of a sorted list whose row lies in first..last."""
    return cells[bisect_left(cells, (first, -1)):bisect_left(cells, (last + 1, -1))]


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
