"""Turn raw sheets into typed, checked tables, or every problem at once.

Three passes, each collecting `Problem` records instead of stopping at the first one:
1. cells -> typed values per the schema's column kinds (`cells.py`, numbers as exact Decimal);
2. pandera, lazily, with each failure case translated into a Chinese sentence;
3. rules that span rows or sheets (ids exist, weights add up, 定性 bands, template files).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import pandera.pandas as pa

from pipeline.contract.cells import indicator_frame, located, shown, typed_frame
from pipeline.contract.problemsort import enriched
from pipeline.contract.schemas import (
    FundingSheet,
    IndicatorSheet,
    PrincipleSheet,
    ProjectSheet,
    column_kinds,
    sheet_layout,
    sheet_name,
)
from pipeline.core.forms import LEVEL2_BY_LEVEL1
from pipeline.core.profile import ScoringProfile
from pipeline.errors import Problem, ValidationFailed, has_errors
from pipeline.xlsx.layout import RawWorkbook
from pipeline.xlsx.table import is_formula_problem


@dataclass(frozen=True, slots=True)
class ValidWorkbook:
    """Typed tables that passed every rule, indexed by Excel row, and the warnings found.

    Each table has every column of its model; `present` says which of them the workbook has
    (a missing optional column reads as empty cells, and for some that differs from a column
    left empty: see `build.py`).
    """

    projects: pd.DataFrame
    funding: pd.DataFrame
    principles: pd.DataFrame
    indicators: pd.DataFrame
    labels: Mapping[str, Mapping[str, str]]
    warnings: tuple[Problem, ...]
    present: Mapping[str, frozenset[str]]


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


# The cells a row-level rule reads where an empty cell fails it: when one of them is already
# reported (text that is no number, a formula without a result), the rule's failure is no news.
FRAME_CHECK_CELLS: Mapping[str, tuple[str, ...]] = {
    "fraction_complete": (IndicatorSheet.numerator, IndicatorSheet.denominator),
}


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
            if any((row, cell) in skip for cell in FRAME_CHECK_CELLS.get(check, ())):
                continue  # a cell the rule compares is already reported (unreadable, or a formula)
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
                    f"：项目 {project_id} 的指标分值合计为 {shown(total)}，按「{profile.name}」评分规则应为 "
                    f"{shown(profile.indicator_weight_total)}（另 {shown(profile.budget_weight)} 分为预算执行率）"))

    if template_names is not None:
        template_label = labels["项目"].get(ProjectSheet.template, ProjectSheet.template)
        for row, name in zip(projects.index.tolist(), projects[ProjectSheet.template].tolist(), strict=True):
            if name is not None and name not in template_names:
                problems.append(located("项目", int(row), template_label, name,
                                        f"为 {name}，templates 文件夹中没有这个模板（现有：{'、'.join(sorted(template_names))}）"))
    return problems


def formula_cells(problems: Collection[Problem], sheet: str, labels: Mapping[str, str]) -> set[tuple[int, str]]:
    """(Excel row, column) of a sheet's formula cells without a saved result, from the reader's
    problems, which name the column by its header as typed (`labels`: column -> header)."""
    columns = {label: column for column, label in labels.items()}
    return {(p.excel_row, columns[p.column]) for p in problems
            if p.sheet == sheet and p.excel_row is not None and p.column in columns and is_formula_problem(p)}


def one_problem_per_formula_cell(problems: list[Problem]) -> list[Problem]:
    """The problems without those at a formula cell that has no saved result, except its own.

    Such a cell reads as empty, so the rules also find it empty ("不能为空"), which is not true
    of the cell the office sees and would send it looking for a second mistake.
    """
    formula_cells = {(p.sheet, p.excel_row, p.column) for p in problems if is_formula_problem(p)}
    if not formula_cells:
        return problems
    return [p for p in problems if is_formula_problem(p) or (p.sheet, p.excel_row, p.column) not in formula_cells]


def validate_workbook(raw: RawWorkbook, template_names: Collection[str] | None,
                      profile: ScoringProfile) -> ValidWorkbook:
    """Check a raw workbook against the contract; raise ValidationFailed with every problem found.

    `template_names` are the templates a project may name (None: not checked).
    """
    problems: list[Problem] = list(raw.problems)
    tables: dict[str, pd.DataFrame] = {}
    labels: dict[str, Mapping[str, str]] = {}
    present: dict[str, frozenset[str]] = {}
    for model in (ProjectSheet, FundingSheet, PrincipleSheet, IndicatorSheet):
        name = sheet_name(model)
        raw_sheet = raw.sheets.get(name)
        if raw_sheet is None:
            continue
        sheet_labels = {c: raw_sheet.labels.get(c, c) for c in sheet_layout(model).known}
        labels[name] = sheet_labels
        present[name] = frozenset(raw_sheet.labels)
        frame, found, bad_cells = typed_frame(raw_sheet, column_kinds(model))
        problems.extend(found)
        skip = bad_cells | formula_cells(raw.problems, name, raw_sheet.labels)
        problems.extend(schema_problems(frame, model, sheet_labels, skip))
        if model is IndicatorSheet:
            frame, found = indicator_frame(frame, sheet_labels, profile)
            problems.extend(found)
        tables[name] = frame
    if sheet_name(ProjectSheet) in tables:
        problems.extend(cross_sheet_problems(tables, labels, template_names, profile))
    problems = enriched(one_problem_per_formula_cell(problems), tables, raw.sheets)
    if has_errors(problems):
        raise ValidationFailed(problems)
    return ValidWorkbook(
        projects=tables["项目"], funding=tables["资金"], principles=tables["使用原则"],
        indicators=tables["绩效指标"], labels=labels, warnings=tuple(problems), present=present,
    )
