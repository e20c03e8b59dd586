"""Turn raw sheets into typed, checked tables, or every problem at once.

Three passes, each collecting `Problem` records instead of stopping at the first one:
1. cells -> typed values per the schema's column kinds (numbers as exact Decimal);
2. pandera, lazily, with each failure case translated into a Chinese sentence;
3. rules that span rows or sheets (ids exist, weights add up, 定性 bands, template files).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from itertools import repeat
from operator import is_not

import pandas as pd
import pandera.pandas as pa

from pipeline.contract.schemas import (
    ACTUAL_GRADE,
    ACTUAL_NUMBER,
    ACTUAL_TEXT,
    DIRECTION,
    DIRECTIONS,
    LEVEL2_BY_LEVEL1,
    PARSED_INDICATOR_COLUMNS,
    TARGET_NUMBER,
    TARGET_TEXT,
    UNIT,
    FundingSheet,
    IndicatorSheet,
    PrincipleSheet,
    ProjectSheet,
    column_kinds,
    sheet_layout,
    sheet_name,
)
from pipeline.core.headers import folded
from pipeline.core.profile import DEFAULT_PROFILE, ScoringProfile
from pipeline.core.records import columns_of
from pipeline.errors import Problem, Severity, ValidationFailed, has_errors
from pipeline.xlsx.workbook import RawSheet, RawWorkbook, plain_decimal

NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
NUMBER_RE = re.compile(rf"^{NUMBER}$")
QUANTITY_RE = re.compile(rf"^(?P<direction>>=|<=|==|≥|≤|=|>|<)?(?P<number>{NUMBER})(?P<unit>[^\d].*)?$")
DIRECTION_ALIASES = {">=": "≥", ">": "≥", "≥": "≥", "<=": "≤", "<": "≤", "≤": "≤", "=": "=", "==": "=", "定性": "定性"}
UNIT_ALIASES = {"百分比": "%", "%": "%"}



@dataclass(frozen=True, slots=True)
class ValidWorkbook:
    """Typed tables that passed every rule, indexed by Excel row, and the warnings found."""

    projects: pd.DataFrame
    funding: pd.DataFrame
    principles: pd.DataFrame
    indicators: pd.DataFrame
    labels: Mapping[str, Mapping[str, str]]
    warnings: tuple[Problem, ...]


@lru_cache(maxsize=8192)
def normalized_text(text: str) -> str:
    """Text as compared for numbers and units (`headers.folded`), remembered: the same few
    spellings come back on every row."""
    return folded(text)


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


def number_value(value: object) -> tuple[Decimal | None, str | None]:
    """(number, None) for a numeric cell or unambiguous numeric text, else (None, why not)."""
    if value is None or isinstance(value, Decimal):
        return value, None
    text = normalized_text(str(value))
    if NUMBER_RE.match(text):
        return Decimal(text.replace(",", "")), None
    match = QUANTITY_RE.match(text)
    if match and not match["direction"]:
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


PARSERS: dict[str, Callable[[object], tuple[object, str | None]]] = {
    "text": lambda v: (text_value(v), None),
    "number": number_value,
    "integer": integer_value,
    "cell": lambda v: (v, None),
}


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
        if kind == "cell":
            columns[column] = values
            continue
        if kind == "text":  # the common case: the reader already trimmed text and made "" None
            columns[column] = [v if v is None or v.__class__ is str else text_value(v) for v in values]
            continue
        parse = PARSERS[kind]
        parsed: list[object] = []
        for row, value in zip(rows, values, strict=True):
            if kind == "number" and (value is None or value.__class__ is Decimal):
                parsed.append(value)
                continue
            result, why = parse(value)
            if why:
                problems.append(located(raw.name, int(row), raw.labels.get(column, column), value, why))
                bad_cells.add((int(row), column))
            parsed.append(result)
        columns[column] = parsed
    frame = pd.DataFrame(columns, index=raw.frame.index, dtype=object)
    return frame, problems, bad_cells


def expectation(check: str, column: str, model: type[pa.DataFrameModel]) -> str:
    """What a failed built-in pandera check asked for, in Chinese."""
    if check == "not_nullable":
        return "不能为空"
    if check == "field_uniqueness":
        return "与其他行重复，应唯一"
    if check == "multiple_fields_uniqueness":
        return "重复：同一项目的序号不能相同"
    if check.startswith("isin"):
        allowed = next(c.statistics["allowed_values"] for c in model.to_schema().columns[column].checks
                       if c.name == "isin")
        return "应为以下之一：" + "、".join(allowed)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", check)
    if check.startswith("greater_than_or_equal_to"):
        return f"应不小于 {numbers[0]}"
    if check.startswith("greater_than"):
        return f"应大于 {numbers[0]}"
    if check.startswith("in_range"):
        return f"应在 {numbers[0]} 到 {numbers[1]} 之间"
    if check.startswith("str_length"):
        return f"长度应为 {numbers[0]} 到 {numbers[1]} 个字符"
    if check == "at_most_two_decimals":
        return "最多保留两位小数（得分按两位小数计算）"
    return f"不符合规则 {check}"


def frame_check_problem(check: str, sheet: str, row: int, record: pd.Series,
                        labels: Mapping[str, str]) -> Problem:
    """The problem of a failed row-level rule of a sheet model, quoting the values involved."""
    def label(column: str) -> str:
        return labels.get(column, column)

    if check == "spent_within_budget":
        spent, budget = record[FundingSheet.spent_wan], record[FundingSheet.adjusted_budget_wan]
        return located(sheet, row, label(FundingSheet.spent_wan), spent,
                       f"为 {shown(spent)}，超过全年预算数 {shown(budget)}")
    if check == "level2_matches_level1":
        level1, level2 = record[IndicatorSheet.level1], record[IndicatorSheet.level2]
        allowed = "、".join(LEVEL2_BY_LEVEL1.get(level1, ()))
        return located(sheet, row, label(IndicatorSheet.level2), level2,
                       f"为 {shown(level2)}，不属于一级指标「{shown(level1)}」，应为：{allowed}")
    if check == "fraction_complete":
        return located(sheet, row, label(IndicatorSheet.denominator), record[IndicatorSheet.denominator],
                       "与「分子」须同时填写或同时留空")
    if check == "self_score_within_weight":
        score, weight = record[IndicatorSheet.self_score], record[IndicatorSheet.weight]
        return located(sheet, row, label(IndicatorSheet.self_score), score,
                       f"为 {shown(score)}，超过分值 {shown(weight)}")
    return located(sheet, row, "", "", f"不符合规则 {check}")


def schema_problems(frame: pd.DataFrame, model: type[pa.DataFrameModel], labels: Mapping[str, str],
                    skip: set[tuple[int, str]]) -> list[Problem]:
    """Every failure of `model` on `frame`, lazily, as problems (cells that failed parsing skipped)."""
    sheet = sheet_name(model)
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    problems: list[Problem] = []
    seen: set[tuple[int, str, str]] = set()
    for case in cases.itertuples(index=False):
        row = None if pd.isna(case.index) else int(case.index)
        column, check = case.column, str(case.check)
        if row is None:
            continue  # whole-column failures (dtype) cannot happen with object columns
        if column in frame.columns and (row, column) in skip:
            continue
        if case.schema_context == "DataFrameSchema" and check not in ("multiple_fields_uniqueness",):
            key = (row, "", check)
            if key not in seen:
                seen.add(key)
                problems.append(frame_check_problem(check, sheet, row, frame.loc[row], labels))
            continue
        if check == "multiple_fields_uniqueness" and column != PrincipleSheet.seq:
            continue  # one message per duplicated row, on 序号 rather than on every key column
        key = (row, str(column), check)
        if key in seen:
            continue
        seen.add(key)
        value = frame.at[row, column] if column in frame.columns else case.failure_case
        reason = expectation(check, column, model)
        text = "不能为空" if reason == "不能为空" else f"为 {shown(value)}，{reason}"
        problems.append(located(sheet, row, labels.get(column, column), value, text))
    return problems


@lru_cache(maxsize=1024)
def direction_of(text: str | None) -> str | None:
    """The canonical direction (≥ ≤ = 定性) of a typed direction, or None if unknown."""
    return None if text is None else DIRECTION_ALIASES.get(normalized_text(text))


@lru_cache(maxsize=1024)
def unit_of(text: str | None) -> str:
    """A unit in canonical form (百分比 -> %), "" when absent."""
    if not text:
        return ""
    unit = normalized_text(text)
    return UNIT_ALIASES.get(unit, unit)


IND = columns_of(IndicatorSheet)
# The cells `indicator_cells` reads.
INDICATOR_INPUTS = (IND.direction, IND.unit, IND.target, IND.actual, IND.numerator, IND.denominator,
                    IND.self_score, IND.weight)
FRACTION = frozenset((IND.numerator, IND.denominator))


def indicator_cells(row: int, record: Mapping[str, object], labels: Mapping[str, str],
                    profile: ScoringProfile) -> tuple[dict[str, object], list[Problem]]:
    """Direction, target, unit and completion of one indicator row, split out of its cells."""
    sheet = sheet_name(IndicatorSheet)
    problems: list[Problem] = []

    def problem(column: str, value: object, message: str) -> None:
        problems.append(located(sheet, row, labels.get(column, column), value, message))

    typed_direction = record[IND.direction]
    direction = None
    if typed_direction is not None:
        direction = direction_of(shown(typed_direction))
        if direction is None:
            problem(IND.direction, typed_direction, f"为 {shown(typed_direction)}，应为 " + "、".join(DIRECTIONS))
    unit = unit_of(text_value(record[IND.unit]))

    target = record[IND.target]
    target_number: Decimal | None = None
    target_text = shown(target)
    if isinstance(target, Decimal):
        target_number = target
    elif target is not None:
        match = QUANTITY_RE.match(normalized_text(target_text))
        if match:
            target_number = Decimal(match["number"].replace(",", ""))
            cell_direction = DIRECTION_ALIASES.get(match["direction"] or "")
            cell_unit = unit_of(match["unit"])
            if cell_direction and direction and cell_direction != direction and typed_direction is not None:
                problem(IND.target, target,
                        f"为 {target_text}，方向「{cell_direction}」与「指标方向」列的「{direction}」不一致")
            direction = direction or cell_direction
            if cell_unit and unit and cell_unit != unit:
                problem(IND.target, target,
                        f"为 {target_text}，单位「{cell_unit}」与「计量单位」列的「{unit}」不一致")
            unit = unit or cell_unit
        elif direction in (None, "定性"):
            direction = "定性"
        else:
            problem(IND.target, target, f"为 {target_text}，「{direction}」指标的年度指标值应为数字")
    if target_number is not None and direction is None and not problems:
        problem(IND.direction, typed_direction,
                "不能为空：请填写 ≥、≤、= 或 定性，或在年度指标值中写明（例如 ≥90%）")

    actual = record[IND.actual]
    has_fraction = record[IND.numerator] is not None and record[IND.denominator] is not None
    actual_number: Decimal | None = None
    grade: str | None = None
    if direction == "定性":
        grade = profile.grade_of(normalized_text(shown(actual))) if actual is not None else None
        if grade is None:
            problem(IND.actual, actual,
                    ("不能为空" if actual is None else f"为 {shown(actual)}") +
                    "，定性指标的完成值应以“达成”“部分达成”或“未达成”开头")
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
        if isinstance(actual, Decimal):
            actual_number = actual
        elif actual is not None:
            match = QUANTITY_RE.match(normalized_text(shown(actual)))
            if match and not match["direction"]:
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
    parsed = {DIRECTION: direction, TARGET_NUMBER: target_number, TARGET_TEXT: target_text,
              UNIT: unit, ACTUAL_NUMBER: actual_number, ACTUAL_GRADE: grade, ACTUAL_TEXT: shown(actual)}
    return parsed, problems


def frame_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """`frame.to_dict("records")` for object columns, without boxing each value through pandas."""
    names = list(frame.columns)
    return [dict(zip(names, values, strict=True))
            for values in zip(*(frame[name].tolist() for name in names), strict=True)]


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
    return frame.join(extra), problems


def first_rows(frame: pd.DataFrame, column: str) -> dict[str, int]:
    """The first Excel row of each value of `column` (a project's first row on a sheet)."""
    firsts: dict[str, int] = {}
    for row, value in zip(frame.index.tolist(), frame[column].tolist(), strict=True):
        firsts.setdefault(value, int(row))
    return firsts


def rows_by_project(frame: pd.DataFrame, column: str, value_column: str) -> dict[object, list[tuple[int, object]]]:
    """(Excel row, value of `value_column`) of each project's rows, in sheet order, keyed by id."""
    groups: dict[object, list[tuple[int, object]]] = {}
    for row, key, value in zip(frame.index.tolist(), frame[column].tolist(), frame[value_column].tolist(),
                               strict=True):
        groups.setdefault(key, []).append((int(row), value))
    return groups


def cross_sheet_problems(tables: Mapping[str, pd.DataFrame], labels: Mapping[str, Mapping[str, str]],
                         template_names: Collection[str] | None, profile: ScoringProfile) -> list[Problem]:
    """Rules between sheets: ids exist, money and indicators per project, weights, templates."""
    problems: list[Problem] = []
    projects = tables[sheet_name(ProjectSheet)]
    project_rows = first_rows(projects, ProjectSheet.project_id)
    known = set(project_rows) - {None}

    for model in (FundingSheet, PrincipleSheet, IndicatorSheet):
        name = sheet_name(model)
        frame = tables.get(name)
        if frame is None:
            continue
        label = labels[name].get(model.project_id, model.project_id)
        for row, project_id in zip(frame.index.tolist(), frame[model.project_id].tolist(), strict=True):
            if project_id is not None and project_id not in known:
                problems.append(located(name, int(row), label, project_id,
                                        f"为 {project_id}，该项目编号在「项目」表中不存在"))

    funding = tables.get(sheet_name(FundingSheet))
    indicators = tables.get(sheet_name(IndicatorSheet))
    id_label = labels[sheet_name(ProjectSheet)].get(ProjectSheet.project_id, ProjectSheet.project_id)
    funding_rows = None if funding is None else rows_by_project(
        funding, FundingSheet.project_id, FundingSheet.adjusted_budget_wan)
    indicator_rows = None if indicators is None else rows_by_project(
        indicators, IndicatorSheet.project_id, IndicatorSheet.weight)
    for project_id, row in project_rows.items():
        if project_id is None:
            continue
        if funding_rows is not None:
            rows = funding_rows.get(project_id, [])
            if not rows:
                problems.append(located("项目", row, id_label, project_id,
                                        f"为 {project_id}，该项目在「资金」表中没有任何行，至少需要一行"))
            else:
                budgets = [v for _, v in rows if isinstance(v, Decimal)]
                if len(budgets) == len(rows) and sum(budgets, Decimal(0)) <= 0:
                    first = rows[0][0]
                    problems.append(located("资金", first, labels["资金"].get(FundingSheet.adjusted_budget_wan,
                                                                               FundingSheet.adjusted_budget_wan),
                                            shown(sum(budgets, Decimal(0))),
                                            f"：项目 {project_id} 的全年预算数合计为 0，应大于 0"))
        if indicator_rows is not None:
            rows = indicator_rows.get(project_id, [])
            if not rows:
                problems.append(located("项目", row, id_label, project_id,
                                        f"为 {project_id}，该项目在「绩效指标」表中没有指标"))
                continue
            weights = [v for _, v in rows if isinstance(v, Decimal)]
            total = sum(weights, Decimal(0))
            if len(weights) == len(rows) and total != profile.indicator_weight_total:
                first = rows[0][0]
                problems.append(located(
                    "绩效指标", first, labels["绩效指标"].get(IndicatorSheet.weight, IndicatorSheet.weight),
                    shown(total),
                    f"：项目 {project_id} 的指标分值合计为 {shown(total)}，应为 "
                    f"{shown(profile.indicator_weight_total)}（另 {shown(profile.budget_weight)} 分为预算执行率）"))

    if template_names is not None:
        template_label = labels["项目"].get(ProjectSheet.template, ProjectSheet.template)
        for row, name in zip(projects.index.tolist(), projects[ProjectSheet.template].tolist(), strict=True):
            if name is not None and name not in template_names:
                problems.append(located("项目", int(row), template_label, name,
                                        f"为 {name}，templates 文件夹中没有这个模板（现有：{'、'.join(sorted(template_names))}）"))
    return problems


def validate_workbook(raw: RawWorkbook, template_names: Collection[str] | None = None,
                      profile: ScoringProfile = DEFAULT_PROFILE) -> ValidWorkbook:
    """Check a raw workbook against the contract; raise ValidationFailed with every problem found."""
    problems: list[Problem] = list(raw.problems)
    tables: dict[str, pd.DataFrame] = {}
    labels: dict[str, Mapping[str, str]] = {}
    for model in (ProjectSheet, FundingSheet, PrincipleSheet, IndicatorSheet):
        name = sheet_name(model)
        raw_sheet = raw.sheets.get(name)
        if raw_sheet is None:
            continue
        sheet_labels = {c: raw_sheet.labels.get(c, c) for c in sheet_layout(model).known}
        labels[name] = sheet_labels
        frame, found, bad_cells = typed_frame(raw_sheet, column_kinds(model))
        problems.extend(found)
        problems.extend(schema_problems(frame, model, sheet_labels, bad_cells))
        if model is IndicatorSheet:
            frame, found = indicator_frame(frame, sheet_labels, profile)
            problems.extend(found)
        tables[name] = frame
    if sheet_name(ProjectSheet) in tables:
        problems.extend(cross_sheet_problems(tables, labels, template_names, profile))
    if has_errors(problems):
        raise ValidationFailed(problems)
    return ValidWorkbook(
        projects=tables["项目"], funding=tables["资金"], principles=tables["使用原则"],
        indicators=tables["绩效指标"], labels=labels, warnings=tuple(problems),
    )
