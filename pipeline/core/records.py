"""Plain frozen records handed between stages, and `projects_from` that builds them.

This is the last place pandas is seen: everything downstream works on these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING

from pipeline.contract.schemas import (
    ACTUAL_GRADE,
    ACTUAL_NUMBER,
    ACTUAL_TEXT,
    DIRECTION,
    TARGET_NUMBER,
    TARGET_TEXT,
    UNIT,
    FundingSheet,
    IndicatorSheet,
    PrincipleSheet,
    ProjectSheet,
)

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.contract.validate import ValidWorkbook


@dataclass(frozen=True, slots=True)
class Funding:
    """One source of a project's money, in 万元."""

    source: str
    initial_budget_wan: Decimal
    adjusted_budget_wan: Decimal
    spent_wan: Decimal


@dataclass(frozen=True, slots=True)
class Indicator:
    """One performance indicator as the workbook states it (direction, target, actual)."""

    excel_row: int
    level1: str
    level2: str
    name: str
    direction: str  # ≥ ≤ = 定性
    target: Decimal | None  # None for 定性
    target_text: str
    unit: str
    actual: Decimal | None  # as typed; None when only 分子/分母 are given, or 定性
    grade: str | None  # 达成 / 部分达成 / 未达成 for 定性
    actual_text: str
    weight: Decimal
    numerator: Decimal | None
    denominator: Decimal | None
    self_score: Decimal | None
    deviation: str

    @property
    def qualitative(self) -> bool:
        """True for a 定性 indicator."""
        return self.direction == "定性"


@dataclass(frozen=True, slots=True)
class Project:
    """Everything the workbook says about one project."""

    excel_row: int
    project_id: str
    name: str
    year: int
    department: str
    implementing_unit: str
    overview: str
    annual_goal: str
    performance: str
    template: str | None
    funding: tuple[Funding, ...]
    principles: tuple[str, ...]
    indicators: tuple[Indicator, ...]


def text_or_empty(value: object) -> str:
    """A text cell's value, "" for an empty cell."""
    return "" if value is None else str(value)


def columns_of(model: type) -> SimpleNamespace:
    """A model's column names as plain attributes (a pandera model's are slow descriptors)."""
    return SimpleNamespace(**{name: getattr(model, name) for name in model.__annotations__})


def projects_from(valid: ValidWorkbook) -> list[Project]:
    """One Project per row of 项目, in workbook order, with its money, principles and indicators."""
    from pipeline.contract.validate import frame_records

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
    for row, pid, *cells in zip(frame.index.tolist(), *(frame[name].tolist() for name in (
            IND.project_id, IND.level1, IND.level2, IND.name, DIRECTION, TARGET_NUMBER, TARGET_TEXT, UNIT,
            ACTUAL_NUMBER, ACTUAL_GRADE, ACTUAL_TEXT, IND.weight, IND.numerator, IND.denominator,
            IND.self_score, IND.deviation)), strict=True):
        cells[-1] = text_or_empty(cells[-1])
        indicators.setdefault(pid, []).append(Indicator(int(row), *cells))
    projects: list[Project] = []
    for row, rec in zip(valid.projects.index, frame_records(valid.projects), strict=True):
        pid = rec[PJ.project_id]
        department = rec[PJ.department]
        projects.append(
            Project(
                excel_row=int(row), project_id=pid, name=rec[PJ.project_name],
                year=int(rec[PJ.year]), department=department,
                implementing_unit=rec[PJ.implementing_unit] or department,
                overview=rec[PJ.overview],
                annual_goal=text_or_empty(rec[PJ.annual_goal]),
                performance=text_or_empty(rec[PJ.performance]),
                template=rec[PJ.template],
                funding=tuple(funding.get(pid, ())),
                principles=tuple(text for _, text in sorted(principles.get(pid, []))),
                indicators=tuple(indicators.get(pid, ())),
            )
        )
    return projects
