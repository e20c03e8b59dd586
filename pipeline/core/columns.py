"""Excel's column letters and column numbers, both ways.

The reader places cells by their `r="B7"` references and names merged areas in messages; the
tables we write name each cell; the archive checks refuse columns beyond a limit. All of them
count columns the way Excel does, so the one pair of conversions lives here, free of any library.
"""


def column_name(index: int) -> str:
    """Excel's name of a 0-based column (0 -> A, 26 -> AA)."""
    name = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        name = chr(65 + remainder) + name
    return name


def column_number(letters: bytes) -> int:
    """1-based column of a column name in either case (A -> 1, aa -> 27, XFD -> 16384)."""
    number = 0
    for char in letters.upper():
        number = number * 26 + char - 64
    return number
