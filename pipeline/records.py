"""Plain frozen records handed between stages, and `projects_from` that builds them.

This is the last place pandas is seen: everything downstream works on these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from pipeline.schemas import (
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
    from pipeline.validate import ValidWorkbook


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


def projects_from(valid: ValidWorkbook) -> list[Project]:
    """One Project per row of 项目, in workbook order, with its money, principles and indicators."""
    funding: dict[str, list[Funding]] = {}
    for rec in valid.funding.to_dict("records"):
        funding.setdefault(rec[FundingSheet.project_id], []).append(
            Funding(rec[FundingSheet.source], rec[FundingSheet.initial_budget_wan],
                    rec[FundingSheet.adjusted_budget_wan], rec[FundingSheet.spent_wan])
        )
    principles: dict[str, list[tuple[int, str]]] = {}
    for rec in valid.principles.to_dict("records"):
        principles.setdefault(rec[PrincipleSheet.project_id], []).append(
            (rec[PrincipleSheet.seq], rec[PrincipleSheet.content])
        )
    indicators: dict[str, list[Indicator]] = {}
    for row, rec in zip(valid.indicators.index, valid.indicators.to_dict("records"), strict=True):
        indicators.setdefault(rec[IndicatorSheet.project_id], []).append(
            Indicator(
                excel_row=int(row), level1=rec[IndicatorSheet.level1], level2=rec[IndicatorSheet.level2],
                name=rec[IndicatorSheet.name], direction=rec[DIRECTION], target=rec[TARGET_NUMBER],
                target_text=rec[TARGET_TEXT], unit=rec[UNIT], actual=rec[ACTUAL_NUMBER],
                grade=rec[ACTUAL_GRADE], actual_text=rec[ACTUAL_TEXT],
                weight=rec[IndicatorSheet.weight], numerator=rec[IndicatorSheet.numerator],
                denominator=rec[IndicatorSheet.denominator], self_score=rec[IndicatorSheet.self_score],
                deviation=text_or_empty(rec[IndicatorSheet.deviation]),
            )
        )
    projects: list[Project] = []
    for row, rec in zip(valid.projects.index, valid.projects.to_dict("records"), strict=True):
        pid = rec[ProjectSheet.project_id]
        department = rec[ProjectSheet.department]
        projects.append(
            Project(
                excel_row=int(row), project_id=pid, name=rec[ProjectSheet.project_name],
                year=int(rec[ProjectSheet.year]), department=department,
                implementing_unit=rec[ProjectSheet.implementing_unit] or department,
                overview=rec[ProjectSheet.overview],
                annual_goal=text_or_empty(rec[ProjectSheet.annual_goal]),
                performance=text_or_empty(rec[ProjectSheet.performance]),
                template=rec[ProjectSheet.template],
                funding=tuple(funding.get(pid, ())),
                principles=tuple(text for _, text in sorted(principles.get(pid, []))),
                indicators=tuple(indicators.get(pid, ())),
            )
        )
    return projects
