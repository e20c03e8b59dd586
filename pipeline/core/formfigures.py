"""The figures a printed 自评表 types by hand, checked against the computed ones.

The form carries the budget row's 分值, 执行率 and 得分, the 总分 and often the 自评等级, each
typed by a clerk and often wrong (86.20% typed 86%, 8.62 typed 9, a 总分 row 0/0/0). The report
uses the computed figures; each typed one that differs is a 警告 at its cell quoting both, so
the office can correct its form. (Each indicator's typed 得分 is its 自评得分 and is checked
with the indicators, `indicators.py`.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pipeline.core.formatting import percent, plain_number, round_half_up, score
from pipeline.core.headers import folded
from pipeline.core.indicators import ProjectResult
from pipeline.errors import Problem, Severity

HUNDRED = Decimal(100)
NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
# Grades as offices type them: 优秀, 良好 … are 优, 良 ….
GRADE_WORDS = {"优秀": "优", "良好": "良", "中等": "中", "较差": "差", "合格": "中", "不合格": "差"}


@dataclass(frozen=True, slots=True)
class TypedFigure:
    """One hand-typed figure of a form: its value as read, and where it is."""

    value: object  # Decimal, text ("86%"), or None when the cell is empty
    sheet: str
    row: int
    address: str  # "G6"
    label: str  # the form's header: 执行率, 得分, 总分 …


@dataclass(frozen=True, slots=True)
class TypedFigures:
    """The hand-typed figures of one project's form (None: the form has no such cell)."""

    budget_weight: TypedFigure | None = None
    rate: TypedFigure | None = None
    budget_score: TypedFigure | None = None
    total: TypedFigure | None = None
    grade: TypedFigure | None = None


def typed_number(value: object) -> Decimal | None:
    """A typed figure as a number ("86%" -> 86, 8.62 -> 8.62); None when it is not one."""
    if isinstance(value, Decimal):
        return value
    text = folded(str(value)) if value is not None else ""
    text = text.removesuffix("%").removesuffix("分").replace(",", "")
    if not NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def typed_percent(value: object) -> Decimal | None:
    """A typed rate in percent: "86%" -> 86, a fraction 0.862 -> 86.2, a bare 86 -> 86."""
    number = typed_number(value)
    if number is None:
        return None
    is_text_percent = isinstance(value, str) and folded(value).endswith("%")
    return number if is_text_percent or number > 1 else number * HUNDRED


def shown(value: object) -> str:
    """A typed value as the message quotes it."""
    return plain_number(value) if isinstance(value, Decimal) else str(value)


def figure_warning(figure: TypedFigure, message: str) -> Problem:
    """A 警告 at the figure's cell, its sentence starting with where it is (sheet!E14)."""
    return Problem(figure.sheet, figure.row, f"{figure.address}（{figure.label}）", shown(figure.value),
                   Severity.WARNING, f"{figure.sheet}!{figure.address}「{figure.label}」{message}",
                   cell=figure.address)


def rate_warning(figure: TypedFigure, result: ProjectResult) -> Problem | None:
    """执行率 typed otherwise than spent / budget, to two decimals of a percentage."""
    typed = typed_percent(figure.value)
    computed = round_half_up(result.execution_rate * HUNDRED, 2)
    if typed is not None and typed == computed:
        return None
    return figure_warning(figure, (
        f"填的是 {shown(figure.value)}，按全年执行数 {plain_number(result.spent_wan)} 万元 ÷ 全年预算数 "
        f"{plain_number(result.adjusted_budget_wan)} 万元 计算为 {percent(result.execution_rate)}；报告使用计算值"))


def score_warning(figure: TypedFigure, computed: Decimal, how: str) -> Problem | None:
    """A typed score that differs from the computed one by more than rounding to 2 decimals."""
    typed = typed_number(figure.value)
    if typed is not None and round_half_up(typed, 2) == computed:
        return None
    return figure_warning(figure, f"填的是 {shown(figure.value) if figure.value is not None else '空'}，"
                                  f"{how}为 {score(computed)}；报告使用计算值")


def grade_warning(figure: TypedFigure, result: ProjectResult) -> Problem | None:
    """自评等级 typed otherwise than the grade of the computed total."""
    typed = folded(str(figure.value or "")).removesuffix("级")
    if GRADE_WORDS.get(typed, typed) == result.grade:
        return None
    return figure_warning(figure, f"填的是 {shown(figure.value) if figure.value is not None else '空'}，"
                                  f"按总分 {score(result.total_score)} 应为「{result.grade}」；报告使用「{result.grade}」")


def weight_warning(figure: TypedFigure, result: ProjectResult, profile_name: str) -> Problem | None:
    """The budget row's 分值 typed otherwise than the profile's budget weight."""
    typed = typed_number(figure.value)
    if typed is None or typed == result.budget_weight:
        return None
    return figure_warning(figure, f"为 {shown(figure.value)}，按「{profile_name}」评分规则预算执行的分值为 "
                                  f"{plain_number(result.budget_weight)}；报告按 {plain_number(result.budget_weight)} 分计")


def typed_figure_warnings(result: ProjectResult, figures: TypedFigures, profile_name: str) -> tuple[Problem, ...]:
    """The 警告 of every typed figure of a form that differs from what the figures give."""
    found: list[Problem | None] = []
    if figures.budget_weight is not None:
        found.append(weight_warning(figures.budget_weight, result, profile_name))
    if figures.rate is not None:
        found.append(rate_warning(figures.rate, result))
    if figures.budget_score is not None:
        found.append(score_warning(figures.budget_score, result.budget_score,
                                   f"按执行率 {percent(result.execution_rate)} × 分值 "
                                   f"{plain_number(result.budget_weight)} 计算"))
    if figures.total is not None:
        found.append(score_warning(figures.total, result.total_score,
                                   f"预算执行得分 {score(result.budget_score)} 与各指标得分之和"))
    if figures.grade is not None and figures.grade.value is not None:
        found.append(grade_warning(figures.grade, result))
    return tuple(problem for problem in found if problem is not None)

