"""Cell values as the reader hands them on: trimmed `str`, exact `Decimal`, or `None`.

A number comes back as Excel shows it (15 significant digits), a %-formatted number as the text
"99.19%" so that its unit travels into validation, a boolean as 是/否 and a date as ISO text.
Columns are converted with one object per distinct value (`shared_conversions`), since the same
texts and numbers repeat on thousands of rows.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

# Quoted text ("%") and escaped characters (\%) in a number format print literally.
QUOTED_OR_ESCAPED = re.compile(r'"[^"]*"|\\.')
NUMERIC_TYPES = frozenset((bool, int, float))


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
        number = excel_number(value)
        if number_format and is_percent_format(number_format):
            return percent_text(number)
        return number
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def excel_number(value: int | float) -> Decimal:
    """A number as Excel shows it: an int exactly, a float to its 15 significant digits."""
    return Decimal(value) if isinstance(value, int) else Decimal(f"{value:.15g}")


def percent_text(number: Decimal) -> str:
    """A number shown with a % format, as the text that carries its unit: 0.9919 -> "99.19%"."""
    return f"{plain_decimal(number * 100)}%"


@lru_cache(maxsize=256)  # a workbook uses few formats, on many cells
def is_percent_format(number_format: str) -> bool:
    """True for a format that scales by 100 (`0.00%`), not one that only prints a quoted "%"."""
    return "%" in QUOTED_OR_ESCAPED.sub("", number_format)


def plain_decimal(number: Decimal) -> str:
    """A Decimal as plain text without exponent or trailing zeros ("100", "99.19")."""
    return format(number.normalize(), "f")


def convert_any(value: object) -> object:
    """`cell_value` of a cell without a number format."""
    return cell_value(value, None)


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
