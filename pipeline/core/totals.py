"""The figures of a set of summary rows taken together: the one owner of the 合计 arithmetic.

汇总表's 合计 row and 统计 sheet (`write.summarystats`) and 部门汇总报告 (`core.department`) both
show these figures, so both take them from here and agree: sums are exact (Decimal), the overall
预算执行率 is Σ全年执行数 / Σ全年预算数 (None without a budget), never the mean of the projects' rates,
and the score is the exact mean of the scores (rounded only where shown). Grades are counted in
`GRADE_ORDER` (the grades of every shipped profile, best first), then any other grade a profile
names in order of first appearance. 主管部门 are grouped in order of first appearance, and the
lowest-first order is by score, then rate, ties kept in workbook order.

A summary row's numbers are exact text (`core.context.summary_row`); `exact` reads one strictly,
`decimal_or_none` leniently (an empty or unreadable cell is None and adds nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeVar

__all__ = ["GRADE_ORDER", "Figures", "by_department", "decimal_or_none", "exact", "figures", "figures_of_rows",
           "grade_counts", "lowest_first", "mean_of", "overall_rate"]

# The grades of every shipped profile, best first; a profile's own names follow in first-seen order.
GRADE_ORDER = ("优", "良", "中", "差")
ZERO = Decimal(0)

T = TypeVar("T")


def exact(value: object) -> Decimal:
    """A row's number (exact text such as "89.974", or a JSON number) as a Decimal; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"不是数字：{value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"不是数字：{value!r}") from None
    if not number.is_finite():
        raise ValueError(f"不是数字：{value!r}")
    return number


def decimal_or_none(value: object) -> Decimal | None:
    """A summary row's figure (an exact string) as a Decimal; None when empty or unreadable."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def overall_rate(adjusted: Decimal, spent: Decimal) -> Decimal | None:
    """Σ全年执行数 / Σ全年预算数 (None without any budget): the 合计 rate, not a mean of rates."""
    return spent / adjusted if adjusted > 0 else None


def mean_of(values: Sequence[Decimal]) -> Decimal | None:
    """The exact mean of `values`; None when there are none."""
    return sum(values, ZERO) / len(values) if values else None


def grade_counts(grades: Iterable[str]) -> dict[str, int]:
    """Projects per grade: 优, 良, 中, 差 (zeros included), then any other grade given (each grade
    counted as given, "" too) in order of first appearance."""
    counts: dict[str, int] = dict.fromkeys(GRADE_ORDER, 0)
    for grade in grades:
        counts[grade] = counts.get(grade, 0) + 1
    return counts


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of a set of projects: count, exact sums, mean score, projects per grade."""

    projects: int
    initial: Decimal  # Σ年初预算数
    adjusted: Decimal  # Σ全年预算数
    spent: Decimal  # Σ全年执行数
    mean_score: Decimal | None  # None without any score
    grades: dict[str, int]  # as `grade_counts` gives them (zeros of GRADE_ORDER included)

    @property
    def rate(self) -> Decimal | None:
        """Σ执行 / Σ全年预算; None without a budget."""
        return overall_rate(self.adjusted, self.spent)


def figures(projects: int, *, adjusted: Iterable[Decimal], spent: Iterable[Decimal], scores: Iterable[Decimal],
            grades: Iterable[str], initial: Iterable[Decimal] = ()) -> Figures:
    """The figures of `projects` projects from their values (each iterable read once)."""
    return Figures(projects, sum(initial, ZERO), sum(adjusted, ZERO), sum(spent, ZERO), mean_of(list(scores)),
                   grade_counts(grades))


def figures_of_rows(rows: Sequence[Mapping[str, object]]) -> Figures:
    """The figures of summary rows read leniently: an empty or unreadable amount adds nothing, a
    missing score stays out of the mean, an empty 评价等级 is not counted."""
    def amounts(key: str) -> Iterable[Decimal]:
        return (decimal_or_none(row.get(key)) or ZERO for row in rows)
    scores = (s for s in (decimal_or_none(row.get("总得分")) for row in rows) if s is not None)
    grades = (g for g in (str(row.get("评价等级") or "") for row in rows) if g)
    return figures(len(rows), initial=amounts("年初预算数(万元)"), adjusted=amounts("全年预算数(万元)"),
                   spent=amounts("全年执行数(万元)"), scores=scores, grades=grades)


def by_department(items: Iterable[T], department: Callable[[T], str]) -> list[tuple[str, list[T]]]:
    """The items grouped by their 主管部门, departments in the order they first appear."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(department(item), []).append(item)
    return list(groups.items())


def lowest_first(items: Iterable[T], score: Callable[[T], Decimal | float | None],
                 rate: Callable[[T], Decimal | float | None] = lambda _: None) -> list[T]:
    """The items by score, then rate, lowest first: without a score last, a missing rate as 0,
    ties in the order given (workbook order)."""
    def key(item: T) -> tuple[bool, Decimal | float, Decimal | float]:
        item_score, item_rate = score(item), rate(item)
        return (item_score is None, 0 if item_score is None else item_score, 0 if item_rate is None else item_rate)
    return sorted(items, key=key)
