"""Cells to typed values: numbers as exact Decimals, text trimmed, dates, and an indicator row's
direction, target, unit and completion split out of what was typed (≥90%, 96.7%, 达成预期指标).

Each parse either gives a value or says, in Chinese, why it cannot; the sentences become
`Problem` records located at their sheet, row and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from itertools import repeat
from operator import is_not

import pandas as pd

from pipeline.contract.quantities import (
    NUMBER_RE,
    OPERATOR_SHOWN,
    QUANTITY_RE,
    SUFFIX_WORDS,
    cell_direction,
    direction_of,
    normalized_text,
    result_fraction,
    unit_of,
    unit_problem,
)
from pipeline.contract.schemas import (
    ACTUAL_GRADE,
    ACTUAL_NUMBER,
    ACTUAL_TEXT,
    CELL_DENOMINATOR,
    CELL_NUMERATOR,
    DIRECTION,
    DIRECTIONS,
    PARSED_INDICATOR_COLUMNS,
    TARGET_NUMBER,
    TARGET_TEXT,
    TYPED_NUMBER,
    TYPED_OPERATOR,
    TYPED_SUFFIX,
    UNIT,
    IndicatorSheet,
    columns_of,
    sheet_name,
)
from pipeline.core.profile import ScoringProfile
from pipeline.errors import Problem, Severity
from pipeline.xlsx.cells import plain_decimal
from pipeline.xlsx.layout import RawSheet
from pipeline.xlsx.table import PercentCell

# 定性 results as offices word them, each read as the grade it means; tried after the grades
# themselves, so "达成预期指标" stays 达成.
GRADE_WORDS = {"达到预期": "达成", "达到年度指标": "达成", "完成年度目标": "达成",
               "基本达成": "部分达成", "基本达到预期": "部分达成"}


def shown(value: object) -> str:
    """A cell value as quoted back to the user."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    return str(value)


def text_value(value: object) -> str | None:
    """A text cell's value; numbers typed into text columns (项目编号 1001) become their digits."""
    return None if value is None else shown(value).strip() or None


# Excel never stores these, but a damaged or hand-made file can (<v>NaN</v>, <v>INF</v>), and
# no score can be computed from them.
NOT_FINITE = "不是有效的数字（文件中存的是 NaN 或无穷大，通常是文件损坏或由其他软件生成），请重新输入数字后保存"


def number_value(value: object) -> tuple[Decimal | None, str | None]:
    """(number, None) for a numeric cell or unambiguous numeric text, else (None, why not)."""
    if isinstance(value, Decimal):
        return (value, None) if value.is_finite() else (None, NOT_FINITE)
    if value is None:
        return value, None
    text = normalized_text(str(value))
    if NUMBER_RE.match(text):
        return Decimal(text.replace(",", "")), None
    match = QUANTITY_RE.match(text)
    if match and match["unit"] and not match["direction"] and not match["suffix"]:
        return None, f"带有单位「{match['unit']}」，请只填数字，例如 {match['number']}（单位见列名）"
    return None, "不是数字，请填写数字"


def integer_value(value: object) -> tuple[int | None, str | None]:
    """(integer, None) for a whole number, else (None, why not)."""
    number, why = number_value(value)
    if why or number is None:
        return None, why
    if number != number.to_integral_value():
        return None, "应为整数"
    return int(number), None


# A date typed as text: 2021-03-15 (also an ISO date and time, as the reader gives a date cell),
# 2021/3/15, 2021.3.15 or 2021年3月15日 (号 for 日 too); compared after `normalized_text`, so
# full-width digits are read too.
DATE_FORMS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:T?\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]$"),
)
DATE_HINT = "请填写日期格式的单元格，或写成 2021-03-15、2021/3/15、2021.3.15 或 2021年3月15日"
# The years a report can be dated in: those of the 年度 column's rule.
DATE_YEARS = range(2000, 2101)


def checked_year(day: date, typed: str) -> tuple[date | None, str | None]:
    """(day, None) when its year is one a report can carry, else (None, why not)."""
    if day.year in DATE_YEARS:
        return day, None
    return None, f"为 {typed}，年份应在 {DATE_YEARS.start}–{DATE_YEARS.stop - 1} 之间：{DATE_HINT}"


def date_value(value: object) -> tuple[date | None, str | None]:
    """(date, None) for a date cell or a date typed in one of `DATE_FORMS`, else (None, why not)."""
    if value is None:
        return None, None
    if isinstance(value, date):
        return checked_year(value, shown(value))
    if isinstance(value, Decimal):  # a date cell arrives as text: a number is a serial or a typo
        return None, f"为 {shown(value)}，是数字而不是日期：{DATE_HINT}"
    text = normalized_text(str(value))
    for form in DATE_FORMS:
        match = form.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return checked_year(date(year, month, day), shown(value))
            except ValueError:
                return None, f"为 {shown(value)}，不是存在的日期（{year}年没有{month}月{day}日）：{DATE_HINT}"
    return None, f"为 {shown(value)}，不是日期：{DATE_HINT}"


PARSERS: dict[str, Callable[[object], tuple[object, str | None]]] = {
    "text": lambda v: (text_value(v), None),
    "number": number_value,
    "integer": integer_value,
    "date": date_value,
    "cell": lambda v: (v, None),
}


def percent_cell_hint(cell: PercentCell, column: str) -> str:
    """Why a %-formatted cell cannot stand in a number column, saying what it shows and what it
    holds: typed into a % cell, 100 is stored as 1 and shown as 100%, and either could be what the
    office meant, so neither is offered as the number to type."""
    held = plain_decimal(cell.held)
    what = ("金额列", "以万元计的金额") if "万元" in column else ("此列", "数字")
    return (f"的单元格设置为百分比格式，显示为 {cell}（实际值 {held}）；{what[0]}请把单元格格式改为「常规」或「数值」"
            f"（改后显示 {held}），再核对并填写{what[1]}")


def located(sheet: str, row: int | None, label: str, value: object, message: str,
            severity: Severity = Severity.ERROR) -> Problem:
    """A problem whose sentence starts with where it is: `资金 第5行「列」…`."""
    where = f"{sheet} 第{row}行「{label}」" if row is not None else f"{sheet}「{label}」"
    return Problem(sheet, row, label, shown(value), severity, f"{where}{message}")


def typed_frame(raw: RawSheet, kinds: Mapping[str, str]) -> tuple[pd.DataFrame, list[Problem], set[tuple[int, str]]]:
    """The sheet with each column parsed per its kind, the parse problems, and their cells."""
    problems: list[Problem] = []
    bad_cells: set[tuple[int, str]] = set()
    columns: dict[str, list[object]] = {}
    rows = raw.frame.index.tolist()
    for column, kind in kinds.items():
        values = raw.frame[column].tolist()
        if kind == "cell":  # parsed later (indicator_cells); a non-finite number is reported here
            columns[column] = values
            for row, value in zip(rows, values, strict=True):
                if value.__class__ is Decimal and not value.is_finite():
                    problems.append(located(raw.name, int(row), raw.labels.get(column, column), value, NOT_FINITE))
                    bad_cells.add((int(row), column))
            continue
        if kind == "text":  # the common case: the reader already trimmed text and made "" None
            columns[column] = [v if v is None or v.__class__ is str else text_value(v) for v in values]
            continue
        parse = PARSERS[kind]
        parsed: list[object] = []
        for row, value in zip(rows, values, strict=True):
            if kind == "number" and (value is None or (value.__class__ is Decimal and value.is_finite())):
                parsed.append(value)
                continue
            result, why = parse(value)
            if why and isinstance(value, PercentCell):
                why = percent_cell_hint(value, column)
            if why:
                problems.append(located(raw.name, int(row), raw.labels.get(column, column), value, why))
                bad_cells.add((int(row), column))
            parsed.append(result)
        columns[column] = parsed
    frame = pd.DataFrame(columns, index=raw.frame.index, dtype=object)
    return frame, problems, bad_cells


# Completion is a ratio of actual to target: for a negative value it has no meaning (≥ −3 met by
# −10 would score full marks), so a reduction is written as ≤ with a positive value.
NEGATIVE_HINT = "不能为负数：完成率按实际完成值与指标值之比计算，负数没有意义；“降低”类指标请写成 ≤ 和正数（例如 投诉率 ≤5%）"

IND = columns_of(IndicatorSheet)
# The cells `indicator_cells` reads.
INDICATOR_INPUTS = (IND.direction, IND.unit, IND.target, IND.actual, IND.numerator, IND.denominator,
                    IND.self_score, IND.weight)
FRACTION = frozenset((IND.numerator, IND.denominator))
QUANTITATIVE = frozenset(("≥", "≤", "="))


def grade_in(text: str, profile: ScoringProfile) -> str | None:
    """The 定性 grade a completion text starts with, in the profile's words or an office's
    (达到预期 -> 达成, 基本达成 -> 部分达成), or None."""
    grade = profile.grade_of(text)
    if grade is not None:
        return grade
    return next((g for word, g in GRADE_WORDS.items() if text.startswith(word) and g in profile.qualitative_bands),
                None)


GRADE_HINT = ("，定性指标的完成值应以“达成”“部分达成”或“未达成”开头（也可写 "
              + "、".join(GRADE_WORDS) + "）")


def indicator_cells(row: int, record: Mapping[str, object], labels: Mapping[str, str],
                    profile: ScoringProfile) -> tuple[dict[str, object], list[Problem]]:
    """Direction, target, unit and completion of one indicator row, split out of its cells."""
    sheet = sheet_name(IndicatorSheet)
    problems: list[Problem] = []

    def problem(column: str, value: object, message: str) -> None:
        problems.append(located(sheet, row, labels.get(column, column), value, message))

    typed_direction = record[IND.direction]
    direction = None
    typed_operator = ""  # the operator as the office typed it, in the cell or else in 指标方向
    typed_suffix = ""  # likewise a direction word after the number (95%以上)
    if typed_direction is not None:
        column_word = normalized_text(shown(typed_direction))
        direction = direction_of(shown(typed_direction))
        typed_operator = OPERATOR_SHOWN.get(column_word, "")
        typed_suffix = column_word if column_word in SUFFIX_WORDS else ""
        if direction is None:
            problem(IND.direction, typed_direction, f"为 {shown(typed_direction)}，应为 " + "、".join(DIRECTIONS))
    unit = row_unit = unit_of(text_value(record[IND.unit]))

    target = record[IND.target]
    target_number: Decimal | None = None
    target_text = shown(target)
    typed_number = ""
    if isinstance(target, Decimal) and not target.is_finite():
        pass  # reported by typed_frame
    elif isinstance(target, Decimal):
        target_number = target
    elif target is not None:
        match = QUANTITY_RE.match(normalized_text(target_text))
        if match:
            target_number = Decimal(match["number"].replace(",", ""))
            typed_number = match["number"]
            stated, why = cell_direction(match)
            if why:
                problem(IND.target, target, f"为 {target_text}，{why}")
            if match["direction"] or match["suffix"]:  # the cell's own words, not 指标方向's, are printed
                typed_operator = OPERATOR_SHOWN.get(match["direction"] or "", "")
                typed_suffix = match["suffix"] or ""
            cell_unit = unit_of(match["unit"])
            if stated and direction and stated != direction and typed_direction is not None:
                problem(IND.target, target,
                        f"为 {target_text}，方向「{stated}」与「指标方向」列的「{direction}」不一致")
            direction = direction or stated
            # Only a quantity has a unit: a 定性 target may start with a number (2020年底前完成).
            not_unit = unit_problem(match["unit"], unit, "≥95%、≥50个") if (
                match["unit"] and direction in QUANTITATIVE) else None
            if not_unit:
                problem(IND.target, target, f"为 {target_text}，{not_unit}")
                cell_unit = ""
            elif cell_unit and unit and cell_unit != unit:
                problem(IND.target, target,
                        f"为 {target_text}，单位「{cell_unit}」与「计量单位」列的「{unit}」不一致")
            unit = unit or cell_unit
        elif direction in (None, "定性"):
            direction = "定性"
        else:
            problem(IND.target, target, f"为 {target_text}，「{direction}」指标的年度指标值应为数字")
    if target_number is not None and target_number < 0:
        problem(IND.target, target, f"为 {target_text}，{NEGATIVE_HINT}")
    if target_number is not None and direction is None and not problems:
        problem(IND.direction, typed_direction,
                "不能为空：请填写 ≥、≤、= 或 定性，或在年度指标值中写明（例如 ≥90%）")

    actual = record[IND.actual]
    has_fraction = record[IND.numerator] is not None and record[IND.denominator] is not None
    actual_number: Decimal | None = None
    cell_numerator: Decimal | None = None  # a fraction the result cell carries: 96.7%（59/61）
    cell_denominator: Decimal | None = None
    grade: str | None = None
    if direction == "定性":
        grade = grade_in(normalized_text(shown(actual)), profile) if actual is not None else None
        if grade is None:
            problem(IND.actual, actual, ("不能为空" if actual is None else f"为 {shown(actual)}") + GRADE_HINT)
        else:
            self_score, weight = record[IND.self_score], record[IND.weight]
            if isinstance(self_score, Decimal) and isinstance(weight, Decimal) and weight > 0:
                band = profile.qualitative_bands[grade]
                if not band.contains(self_score / weight):
                    upper = "≤" if band.high_inclusive else "<"
                    problem(IND.self_score, self_score,
                            f"为 {shown(self_score)}，完成情况为“{grade}”时应在分值的 "
                            f"{band.low:.0%}–{band.high:.0%} 之间（{plain_decimal(weight * band.low)} ≤ 得分 "
                            f"{upper} {plain_decimal(weight * band.high)}）")
    elif direction is not None:
        if isinstance(actual, Decimal) and not actual.is_finite():
            pass  # reported by typed_frame
        elif isinstance(actual, Decimal):
            actual_number = actual
        elif actual is not None:
            result = normalized_text(shown(actual))
            if (split := result_fraction(result)) is not None:
                result, cell_numerator, cell_denominator = split
                if cell_denominator == 0:
                    problem(IND.actual, actual,
                            f"为 {shown(actual)}，括号中分数 {plain_decimal(cell_numerator)}/0 的分母为 0，"
                            "无法计算完成值：请填写实际的分子和分母，例如 96.7%（59/61）")
                    cell_numerator = cell_denominator = None
            match = QUANTITY_RE.match(result)
            not_unit = unit_problem(match["unit"], row_unit, "96%、50个") if match and match["unit"] else None
            if match and not match["direction"] and not match["suffix"] and not_unit:
                problem(IND.actual, actual, f"为 {shown(actual)}，{not_unit}")
            elif match and not match["direction"] and not match["suffix"]:
                actual_number = Decimal(match["number"].replace(",", ""))
                actual_unit = unit_of(match["unit"])
                if actual_unit and unit and actual_unit != unit:
                    problem(IND.actual, actual,
                            f"为 {shown(actual)}，单位「{actual_unit}」与指标的单位「{unit}」不一致")
                unit = unit or actual_unit
            else:
                problem(IND.actual, actual,
                        f"为 {shown(actual)}，定量指标应填写完成的数值（例如 96.7% 或 50），不能只填文字")
        elif not has_fraction:
            problem(IND.actual, actual, "不能为空：请填写完成的数值，或填写「分子」和「分母」")
    if actual_number is not None and actual_number < 0:
        problem(IND.actual, actual, f"为 {shown(actual)}，{NEGATIVE_HINT}")
    parsed: dict[str, object] = {
        DIRECTION: direction, TARGET_NUMBER: target_number, TARGET_TEXT: target_text,
        UNIT: unit, ACTUAL_NUMBER: actual_number, ACTUAL_GRADE: grade, ACTUAL_TEXT: shown(actual),
        TYPED_OPERATOR: typed_operator, TYPED_NUMBER: typed_number, TYPED_SUFFIX: typed_suffix,
        CELL_NUMERATOR: cell_numerator, CELL_DENOMINATOR: cell_denominator}
    return parsed, problems


def indicator_frame(frame: pd.DataFrame, labels: Mapping[str, str],
                    profile: ScoringProfile) -> tuple[pd.DataFrame, list[Problem]]:
    """The indicator table with its cells split into direction, numbers, unit and grade."""
    parsed_rows: list[dict[str, object]] = []
    problems: list[Problem] = []
    # indicator_cells is pure: rows with the same cells (≥95% / 98.2 / % …) parse alike, and in
    # a province's workbook most rows repeat another's. Rows with problems are not remembered,
    # since their messages name the row.
    memo: dict[tuple[object, ...], dict[str, object]] = {}
    columns = [frame[name].tolist() for name in INDICATOR_INPUTS]
    # Of 分子 and 分母 only their presence matters here. The other cells are keyed by identity:
    # the reader shares one object per distinct cell value, and identity never confuses
    # Decimal("1.00") with Decimal("1"), which are equal but not shown alike.
    key_columns = [list(map(is_not, cells, repeat(None))) if name in FRACTION else list(map(id, cells))
                   for name, cells in zip(INDICATOR_INPUTS, columns, strict=True)]
    for row, key, values in zip(frame.index.tolist(), zip(*key_columns, strict=True), zip(*columns, strict=True),
                                strict=True):
        parsed = memo.get(key)
        if parsed is None:
            record = dict(zip(INDICATOR_INPUTS, values, strict=True))
            parsed, found = indicator_cells(int(row), record, labels, profile)
            if found:
                problems.extend(found)
            else:
                memo[key] = parsed
        parsed_rows.append(parsed)
    extra = pd.DataFrame(parsed_rows, index=frame.index, dtype=object,
                         columns=list(PARSED_INDICATOR_COLUMNS))
    joined = frame.join(extra)
    if any(parsed[CELL_NUMERATOR] is not None for parsed in parsed_rows):
        numerators, denominators, found = fractions_with_cells(frame, parsed_rows, labels)
        problems.extend(found)
        joined[IND.numerator], joined[IND.denominator] = numerators, denominators
    return joined, problems


def fractions_with_cells(frame: pd.DataFrame, parsed_rows: list[dict[str, object]],
                         labels: Mapping[str, str]) -> tuple[list[object], list[object], list[Problem]]:
    """分子 and 分母 of each row, with those a result cell carries ("96.7%（59/61）") where the two
    columns are empty, so that the fraction is used and the typed rate checked against it as when
    the columns are filled; and an error at each result cell whose fraction the filled columns
    contradict. (One column without the other is reported by the schema.)"""
    sheet = sheet_name(IndicatorSheet)
    numerators, denominators = frame[IND.numerator].tolist(), frame[IND.denominator].tolist()
    problems: list[Problem] = []
    for i, (row, actual, parsed) in enumerate(zip(frame.index.tolist(), frame[IND.actual].tolist(), parsed_rows,
                                                  strict=True)):
        numerator, denominator = parsed[CELL_NUMERATOR], parsed[CELL_DENOMINATOR]
        if numerator is None:
            continue
        typed = numerators[i], denominators[i]
        if typed == (None, None):
            numerators[i], denominators[i] = numerator, denominator
        elif None not in typed and typed != (numerator, denominator):
            columns = f"「{labels.get(IND.numerator, IND.numerator)}」「{labels.get(IND.denominator, IND.denominator)}」"
            problems.append(located(
                sheet, int(row), labels.get(IND.actual, IND.actual), actual,
                f"为 {shown(actual)}，括号中的 {shown(numerator)}/{shown(denominator)} 与{columns}列的 "
                f"{shown(typed[0])}/{shown(typed[1])} 不一致：请改成一致，或只在一处填写"))
    return numerators, denominators, problems
