"""ProjectResult -> the template context: the data contract with the Word templates.

Every variable a template may use is produced here, already formatted as text; templates do no
arithmetic. `CONTEXT_VARIABLES` is the template's field table: each variable, its shape and the
fields of its dict or of each item of its list. `report_context()` builds exactly that (tests hold
it to the table), templates/README.md documents it for template authors (tests check that too),
and `perfreport check-template` derives the names and fields it accepts from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from pipeline.core.formatting import (
    fixed,
    money_table,
    money_text,
    percent,
    quantity,
    score,
    weight,
)
from pipeline.core.indicators import IndicatorResult, ProjectResult


class Shape(StrEnum):
    """What a context variable holds, which decides how a template may use it."""

    TEXT = "text"  # {{ title }}
    TEXT_LIST = "list of text"  # {%p for para in overview %}
    RECORD = "dict of text"  # {{ budget.rate }}: the fields are known
    RECORD_LIST = "list of dicts of text"  # {%tr for ind in indicators %}{{ ind.score }}: each item's fields are known


@dataclass(frozen=True, slots=True)
class ContextVariable:
    """One variable of the template context; `fields` are the keys of its dict, or of each item of its list."""

    name: str
    shape: Shape
    fields: frozenset[str] = frozenset()


# The template's field table, in the order templates/README.md documents it.
CONTEXT_VARIABLES: tuple[ContextVariable, ...] = (
    ContextVariable("title", Shape.TEXT),
    ContextVariable("project_id", Shape.TEXT),
    ContextVariable("project_name", Shape.TEXT),
    ContextVariable("year", Shape.TEXT),
    ContextVariable("department", Shape.TEXT),
    ContextVariable("implementing_unit", Shape.TEXT),
    ContextVariable("overview", Shape.TEXT_LIST),
    ContextVariable("money_sentence", Shape.TEXT),
    ContextVariable("annual_goal", Shape.TEXT),
    ContextVariable("principles", Shape.TEXT_LIST),
    ContextVariable("performance", Shape.TEXT_LIST),
    ContextVariable("budget", Shape.RECORD,
                    frozenset({"initial", "adjusted", "spent", "rate", "weight", "score"})),
    ContextVariable("funding", Shape.RECORD_LIST, frozenset({"source", "initial", "adjusted", "spent"})),
    ContextVariable("indicators", Shape.RECORD_LIST,
                    frozenset({"level1", "level2", "name", "target", "actual", "unit", "weight", "score",
                               "deviation"})),
    ContextVariable("weight_total", Shape.TEXT),
    ContextVariable("total_score", Shape.TEXT),
    ContextVariable("grade", Shape.TEXT),
)


def fields_by_name(shape: Shape) -> Mapping[str, frozenset[str]]:
    """The fields of every variable of `shape` in the table, by variable name (read-only)."""
    return MappingProxyType({v.name: v.fields for v in CONTEXT_VARIABLES if v.shape is shape})


# Views of the table for the template check: every variable name, the fields of each dict
# (budget), the fields of each item of the lists of dicts (funding, indicators).
CONTEXT_KEYS: frozenset[str] = frozenset(v.name for v in CONTEXT_VARIABLES)
DICT_FIELDS: Mapping[str, frozenset[str]] = fields_by_name(Shape.RECORD)
ITEM_FIELDS: Mapping[str, frozenset[str]] = fields_by_name(Shape.RECORD_LIST)


def paragraphs(text: str) -> list[str]:
    """Paragraphs of a text cell: a blank line separates them; single line breaks are kept apart too."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    return [line for line in lines if line]


def money_sentence(result: ProjectResult) -> str:
    """The sentence that says what happened to the money, honest when not all was spent."""
    year = result.project.year
    if result.spent_wan == result.adjusted_budget_wan:
        return f"{year}年度{result.project.name}{money_text(result.spent_wan)}万元使用完毕。"
    return (f"{year}年度全年预算{money_text(result.adjusted_budget_wan)}万元，"
            f"实际执行{money_text(result.spent_wan)}万元，预算执行率{percent(result.execution_rate)}。")


def target_text(result: IndicatorResult) -> str:
    """指标值 as the table shows it: direction, number and unit (≥90%), or the 定性 text."""
    ind = result.indicator
    if ind.qualitative or ind.target is None:
        return ind.target_text
    return f"{ind.direction}{quantity(ind.target, ind.unit)}"


def actual_text(result: IndicatorResult) -> str:
    """完成值 as the table shows it: one decimal for rates from 分子/分母, as typed otherwise."""
    ind = result.indicator
    if result.actual is None:
        return ind.actual_text
    if result.from_fraction:
        places = 1 if ind.unit == "%" else 2
        return f"{fixed(result.actual, places)}{ind.unit}"
    return quantity(result.actual, ind.unit)


def indicator_row(result: IndicatorResult) -> dict[str, str]:
    """One row of the 自评表."""
    ind = result.indicator
    return {
        "level1": ind.level1,
        "level2": ind.level2,
        "name": ind.name,
        "target": target_text(result),
        "actual": actual_text(result),
        "unit": ind.unit,
        "weight": weight(ind.weight),
        "score": score(result.score),
        "deviation": ind.deviation,
    }


def report_context(result: ProjectResult) -> dict[str, object]:
    """The complete, formatted context of one project's report."""
    project = result.project
    return {
        "title": f"{project.name}绩效评价报告",
        "project_id": project.project_id,
        "project_name": project.name,
        "year": str(project.year),
        "department": project.department,
        "implementing_unit": project.implementing_unit,
        "overview": paragraphs(project.overview),
        "money_sentence": money_sentence(result),
        "annual_goal": project.annual_goal,
        "principles": list(project.principles),
        "performance": paragraphs(project.performance),
        "budget": {
            "initial": money_table(result.initial_budget_wan),
            "adjusted": money_table(result.adjusted_budget_wan),
            "spent": money_table(result.spent_wan),
            "rate": percent(result.execution_rate),
            "weight": weight(result.budget_weight),
            "score": score(result.budget_score),
        },
        "funding": [
            {
                "source": f.source,
                "initial": money_table(f.initial_budget_wan),
                "adjusted": money_table(f.adjusted_budget_wan),
                "spent": money_table(f.spent_wan),
            }
            for f in project.funding
        ],
        "indicators": [indicator_row(r) for r in result.indicators],
        "weight_total": weight(result.weight_total),
        "total_score": score(result.total_score),
        "grade": result.grade,
    }


def summary_row(result: ProjectResult) -> dict[str, object]:
    """One row of 汇总表.xlsx: 编号, 名称, 预算, 执行, 执行率, 得分, 等级, 警告数."""
    return {
        "项目编号": result.project.project_id,
        "项目名称": result.project.name,
        "全年预算数(万元)": float(money_table(result.adjusted_budget_wan)),
        "全年执行数(万元)": float(money_table(result.spent_wan)),
        "预算执行率": percent(result.execution_rate),
        "总得分": float(score(result.total_score)),
        "评价等级": result.grade,
        "警告数": len(result.warnings),
    }

