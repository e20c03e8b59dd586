"""Plain frozen records of a workbook's projects, handed between stages.

Pure data: the contract builds them from a valid workbook (`contract/build.py`), and everything
downstream (scores, report contexts) works on them without pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


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
    # The target as the office typed it, for the report (scoring reads `direction` and `target`):
    # the operator typed in the cell or in 指标方向 (">" stays ">", ASCII ">=" becomes "≥"; ""
    # when none was typed) and the number as typed ("1,000"; "" when the cell held a number).
    typed_operator: str = ""
    typed_number: str = ""
    typed_suffix: str = ""  # a direction word after the number as typed (95%以上)

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
    # The optional columns of the report's ending. `budget_deviation` is None when the workbook
    # has no 预算执行偏差原因 column at all (an older workbook, not asked for a reason), "" when
    # the column is there and the cell is empty. `signature` "" means 实施单位; `report_date`
    # None means the run's date.
    budget_deviation: str | None = None
    problems: str = ""
    improvements: str = ""
    signature: str = ""
    report_date: date | None = None
