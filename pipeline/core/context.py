"""ProjectResult -> the template context: the data contract with the Word templates.

Every variable a template may use is produced here, already formatted as text; templates do no
arithmetic. The keys are documented in templates/README.md and checked by tests.
"""

from __future__ import annotations

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


# The variables every template may use; tests check report_context() returns exactly these.
CONTEXT_KEYS: frozenset[str] = frozenset({
    "title", "project_id", "project_name", "year", "department", "implementing_unit", "overview",
    "money_sentence", "annual_goal", "principles", "performance", "budget", "funding",
    "indicators", "weight_total", "total_score", "grade",
})


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

