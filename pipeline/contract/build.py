"""The records built from a valid workbook: one `Project` per row of 项目.

This is the last place pandas is seen: everything downstream works on the plain dataclasses of
`core/records.py`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from pipeline.contract.schemas import (
    ACTUAL_GRADE,
    ACTUAL_NUMBER,
    ACTUAL_TEXT,
    DIRECTION,
    TARGET_NUMBER,
    TARGET_TEXT,
    TYPED_NUMBER,
    TYPED_OPERATOR,
    TYPED_SUFFIX,
    UNIT,
    FundingSheet,
    IndicatorSheet,
    PrincipleSheet,
    ProjectSheet,
    columns_of,
    sheet_name,
)
from pipeline.core.records import Funding, Indicator, Project

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.contract.validate import ValidWorkbook


def text_or_empty(value: object) -> str:
    """A text cell's value, "" for an empty cell."""
    return "" if value is None else str(value)


# The cells of a valid table have the types validation gave them; pandas hands them on as plain
# objects, so each is narrowed here, where the records take them over.
def required_text(value: object) -> str:
    """A cell of a required text column (项目编号, 项目名称, …): validation made it a non-empty str."""
    assert isinstance(value, str), "validation guarantees text in a required text column"
    return value


def optional_text(value: object) -> str | None:
    """A cell of an optional text column (实施单位, 模板): a str, or None when left empty."""
    assert value is None or isinstance(value, str), "validation guarantees text or nothing"
    return value


def whole_number(value: object) -> int:
    """A cell of a required integer column (年度): validation made it an int."""
    assert isinstance(value, int), "validation guarantees an integer"
    return value


def optional_date(value: object) -> date | None:
    """A cell of the optional date column (报告日期): a date, or None when left empty."""
    assert value is None or isinstance(value, date), "validation guarantees a date or nothing"
    return value


def frame_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """`frame.to_dict("records")` for object columns, without boxing each value through pandas."""
    names = list(frame.columns)
    return [dict(zip(names, values, strict=True))
            for values in zip(*(frame[name].tolist() for name in names), strict=True)]


def projects_from(valid: ValidWorkbook) -> list[Project]:
    """One Project per row of 项目, in workbook order, with its money, principles and indicators."""
    F, PR, IND, PJ = (columns_of(m) for m in (FundingSheet, PrincipleSheet, IndicatorSheet, ProjectSheet))  # noqa: N806
    def columns(frame: pd.DataFrame, *names: str) -> zip:  # noqa: ANN202 - rows as tuples
        return zip(*(frame[name].tolist() for name in names), strict=True)

    funding: dict[str, list[Funding]] = {}
    for pid, source, initial, adjusted, spent in columns(
            valid.funding, F.project_id, F.source, F.initial_budget_wan, F.adjusted_budget_wan, F.spent_wan):
        funding.setdefault(pid, []).append(Funding(source, initial, adjusted, spent))
    principles: dict[str, list[tuple[int, str]]] = {}
    for pid, seq, content in columns(valid.principles, PR.project_id, PR.seq, PR.content):
        principles.setdefault(pid, []).append((seq, content))
    indicators: dict[str, list[Indicator]] = {}
    frame = valid.indicators
    for (row, pid, level1, level2, name, direction, target, target_text, unit, actual, grade, actual_text, weight,
         numerator, denominator, self_score, deviation, typed_operator, typed_number, typed_suffix) in zip(
            frame.index.tolist(), *(frame[column].tolist() for column in (
                IND.project_id, IND.level1, IND.level2, IND.name, DIRECTION, TARGET_NUMBER, TARGET_TEXT, UNIT,
                ACTUAL_NUMBER, ACTUAL_GRADE, ACTUAL_TEXT, IND.weight, IND.numerator, IND.denominator,
                IND.self_score, IND.deviation, TYPED_OPERATOR, TYPED_NUMBER, TYPED_SUFFIX)), strict=True):
        indicators.setdefault(pid, []).append(Indicator(
            int(row), level1, level2, name, direction, target, target_text, unit, actual, grade, actual_text,
            weight, numerator, denominator, self_score, text_or_empty(deviation), typed_operator, typed_number,
            typed_suffix))
    # Without a 预算执行偏差原因 column (a workbook made before it) no reason is asked for.
    asks_deviation = PJ.budget_deviation in valid.present.get(sheet_name(ProjectSheet), frozenset())
    projects: list[Project] = []
    for row, rec in zip(valid.projects.index, frame_records(valid.projects), strict=True):
        pid = required_text(rec[PJ.project_id])
        department = required_text(rec[PJ.department])
        implementing_unit = optional_text(rec[PJ.implementing_unit]) or department
        projects.append(
            Project(
                excel_row=int(row), project_id=pid, name=required_text(rec[PJ.project_name]),
                year=whole_number(rec[PJ.year]), department=department,
                implementing_unit=implementing_unit,
                overview=required_text(rec[PJ.overview]),
                annual_goal=text_or_empty(rec[PJ.annual_goal]),
                performance=text_or_empty(rec[PJ.performance]),
                template=optional_text(rec[PJ.template]),
                funding=tuple(funding.get(pid, ())),
                principles=tuple(text for _, text in sorted(principles.get(pid, []))),
                indicators=tuple(indicators.get(pid, ())),
                budget_deviation=text_or_empty(rec[PJ.budget_deviation]) if asks_deviation else None,
                problems=text_or_empty(rec[PJ.problems]),
                improvements=text_or_empty(rec[PJ.improvements]),
                signature=optional_text(rec[PJ.signature]) or implementing_unit,
                report_date=optional_date(rec[PJ.report_date]),
            )
        )
    return projects
