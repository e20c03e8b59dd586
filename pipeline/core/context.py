"""ProjectResult -> the template context: the data contract with the Word templates.

Every variable a template may use is produced here, already formatted as text; templates do no
arithmetic. `CONTEXT_VARIABLES` is the template's field table: each variable, its shape and the
fields of its dict or of each item of its list. `report_context()` builds exactly that (tests hold
it to the table), templates/README.md documents it for template authors (tests check that too),
and `perfreport check-template` derives the names and fields it accepts from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from pipeline.core.formatting import (
    chinese_date,
    computed_value,
    money_table,
    money_text,
    percent,
    plain_number,
    quantity,
    score,
    weight,
)
from pipeline.core.forms import FUNDING_SOURCES, funding_source, level_rank
from pipeline.core.indicators import IndicatorResult, ProjectResult
from pipeline.core.narrative import balance, money_sentence, paragraphs, sentence_body
from pipeline.core.profile import ScoringProfile
from pipeline.core.records import Funding

__all__ = ["CONTEXT_KEYS", "CONTEXT_VARIABLES", "DICT_FIELDS", "ITEM_FIELDS", "ContextVariable", "Shape",
           "money_sentence", "paragraphs", "report_context", "summary_row"]

WAN = "万元"


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


MONEY_FIELDS = frozenset({"initial", "adjusted", "spent"})

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
    ContextVariable("goal_sentence", Shape.TEXT),
    ContextVariable("principles", Shape.TEXT_LIST),
    ContextVariable("performance", Shape.TEXT_LIST),
    ContextVariable("budget", Shape.RECORD,
                    MONEY_FIELDS | {"rate", "weight", "score", "balance", "adjusted_text", "spent_text"}),
    ContextVariable("budget_deviation", Shape.TEXT),
    ContextVariable("funding", Shape.RECORD_LIST, MONEY_FIELDS | {"source"}),
    ContextVariable("sources", Shape.RECORD_LIST, MONEY_FIELDS | {"label"}),
    ContextVariable("indicators", Shape.RECORD_LIST,
                    frozenset({"level1", "level2", "name", "target", "actual", "unit", "weight", "score",
                               "deviation", "fraction"})),
    ContextVariable("weight_total", Shape.TEXT),
    ContextVariable("total_score", Shape.TEXT),
    ContextVariable("grade", Shape.TEXT),
    ContextVariable("conclusion", Shape.TEXT),
    ContextVariable("scoring_rule", Shape.TEXT),
    ContextVariable("scoring_note", Shape.TEXT),
    ContextVariable("problems", Shape.TEXT_LIST),
    ContextVariable("improvements", Shape.TEXT_LIST),
    ContextVariable("signature", Shape.TEXT),
    ContextVariable("report_date", Shape.TEXT),
    ContextVariable("report_date_iso", Shape.TEXT),
)


def fields_by_name(shape: Shape) -> Mapping[str, frozenset[str]]:
    """The fields of every variable of `shape` in the table, by variable name (read-only)."""
    return MappingProxyType({v.name: v.fields for v in CONTEXT_VARIABLES if v.shape is shape})


# Views of the table for the template check: every variable name, the fields of each dict
# (budget), the fields of each item of the lists of dicts (funding, sources, indicators).
CONTEXT_KEYS: frozenset[str] = frozenset(v.name for v in CONTEXT_VARIABLES)
DICT_FIELDS: Mapping[str, frozenset[str]] = fields_by_name(Shape.RECORD)
ITEM_FIELDS: Mapping[str, frozenset[str]] = fields_by_name(Shape.RECORD_LIST)


def goal_sentence(result: ProjectResult) -> str:
    """年度目标 folded into prose with exactly one closing 。, "" without one."""
    goal = sentence_body(result.project.annual_goal)
    return f"该项目年度总体目标是：{goal}。" if goal else ""


def conclusion(result: ProjectResult) -> str:
    """The conclusion with score and grade: 经自评，该项目得分97.85分，评价等级为优。"""
    return f"经自评，该项目得分{score(result.total_score)}分，评价等级为{result.grade}。"


def grade_bands_text(profile: ScoringProfile) -> str:
    """The grade bands in words: 90分（含）以上为优、80分（含）至90分为良、…、60分以下为差. Each band
    runs from its lowest total (included) up to the next band's; the best one has no top but the
    full score, the one that starts at 0 is "below" the band above it. Words, not a dash: the
    sentence breaks anywhere in running text without leaving a "–" at a line's end."""
    full = profile.budget_weight + profile.indicator_weight_total
    uppers = (full, *(low for low, _ in profile.grade_bands[:-1]))
    parts: list[str] = []
    for (low, name), upper in zip(profile.grade_bands, uppers, strict=True):
        if low == upper:
            parts.append(f"{weight(low)}分为{name}")
        elif low > 0:
            top = "以上" if upper == full else f"至{weight(upper)}分"
            parts.append(f"{weight(low)}分（含）{top}为{name}")
        elif upper < full:
            parts.append(f"{weight(upper)}分以下为{name}")
        else:  # a single band covering every total
            parts.append(f"0至{weight(full)}分为{name}")
    return "、".join(parts)


def scoring_note(result: ProjectResult) -> str:
    """评分说明: the scoring rules by name, with their weights and grade bands, so a reader knows
    which scheme the score and grade follow ("本次评价按「湖北」评分规则计分：预算执行率20分，…")."""
    profile = result.profile
    full = profile.budget_weight + profile.indicator_weight_total
    return (f"本次评价按「{profile.name}」评分规则计分：预算执行率{weight(profile.budget_weight)}分，"
            f"绩效指标{weight(profile.indicator_weight_total)}分，满分{weight(full)}分；"
            f"按总分确定评价等级，{grade_bands_text(profile)}。")


def amount_text(value: Decimal, unit: str, typed: str = "") -> str:
    """A target or value with its unit: 万元 with two decimals (90.00万元), other numbers as typed
    (1,000件) or without trailing zeros (74批)."""
    if unit == WAN:
        return f"{money_table(value)}{unit}"
    return f"{typed}{unit}" if typed else quantity(value, unit)


def target_text(result: IndicatorResult) -> str:
    """指标值 as the office typed it: its operator (">95%" stays ">95%"), its number ("≥1,000件"),
    万元 with two decimals ("≤90.00万元"); the 定性 text as typed."""
    ind = result.indicator
    if ind.qualitative or ind.target is None:
        return ind.target_text
    operator = ind.typed_operator or ("" if ind.typed_suffix else ind.direction)  # "95%以上" says it after
    return f"{operator}{amount_text(ind.target, ind.unit, ind.typed_number)}{ind.typed_suffix}"


def actual_text(result: IndicatorResult) -> str:
    """完成值 as the table shows it: one decimal for rates from 分子/分母, 万元 with two decimals,
    as typed otherwise."""
    ind = result.indicator
    if result.actual is None:
        return ind.actual_text
    if result.from_fraction:
        return computed_value(result.actual, ind.unit)
    return amount_text(result.actual, ind.unit)


def fraction_text(result: IndicatorResult) -> str:
    """分子/分母 as typed numbers ("59/61"), "" when the indicator has none."""
    ind = result.indicator
    if ind.numerator is None or ind.denominator is None:
        return ""
    return f"{plain_number(ind.numerator)}/{plain_number(ind.denominator)}"


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
        "fraction": fraction_text(result),
    }


def in_form_order(results: Sequence[IndicatorResult]) -> list[IndicatorResult]:
    """Indicators in the official form's order (产出 → 效益 → 满意度 → 成本, each 二级 in its
    order); a stable sort, so indicators of one 二级 keep the workbook's order."""
    return sorted(results, key=lambda r: level_rank(r.indicator.level1, r.indicator.level2))


def source_rows(funding: Sequence[Funding]) -> list[dict[str, str]]:
    """The form's three 其中 rows (财政拨款, 上年结转, 其他资金), each summed over the project's rows
    of that source; a source the project has no row of shows empty amounts."""
    rows: list[dict[str, str]] = []
    for label in FUNDING_SOURCES:
        mine = [f for f in funding if funding_source(f.source) == label]  # 本年财政拨款 is 财政拨款
        if not mine:
            rows.append({"label": label, "initial": "", "adjusted": "", "spent": ""})
            continue
        rows.append({
            "label": label,
            "initial": money_table(sum((f.initial_budget_wan for f in mine), Decimal(0))),
            "adjusted": money_table(sum((f.adjusted_budget_wan for f in mine), Decimal(0))),
            "spent": money_table(sum((f.spent_wan for f in mine), Decimal(0))),
        })
    return rows


def report_context(result: ProjectResult, run_date: date) -> dict[str, object]:
    """The complete, formatted context of one project's report.

    `run_date` is the run's date (decided once per run by the caller, from SOURCE_DATE_EPOCH or
    the calendar): the report's date when the project gives no 报告日期.
    """
    project = result.project
    day = project.report_date or run_date
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
        "goal_sentence": goal_sentence(result),
        "principles": list(project.principles),
        "performance": paragraphs(project.performance),
        "budget": {
            "initial": money_table(result.initial_budget_wan),
            "adjusted": money_table(result.adjusted_budget_wan),
            "spent": money_table(result.spent_wan),
            "rate": percent(result.execution_rate),
            "weight": weight(result.budget_weight),
            "score": score(result.budget_score),
            "balance": money_table(balance(result)),
            # The same amounts as running text writes them (100万元, 85.62万元: no trailing zeros).
            "adjusted_text": money_text(result.adjusted_budget_wan),
            "spent_text": money_text(result.spent_wan),
        },
        "budget_deviation": project.budget_deviation or "",
        "funding": [
            {
                "source": f.source,
                "initial": money_table(f.initial_budget_wan),
                "adjusted": money_table(f.adjusted_budget_wan),
                "spent": money_table(f.spent_wan),
            }
            for f in project.funding
        ],
        "sources": source_rows(project.funding),
        "indicators": [indicator_row(r) for r in in_form_order(result.indicators)],
        "weight_total": weight(result.weight_total),
        "total_score": score(result.total_score),
        "grade": result.grade,
        "conclusion": conclusion(result),
        "scoring_rule": result.profile_name,
        "scoring_note": scoring_note(result),
        "problems": paragraphs(project.problems),
        "improvements": paragraphs(project.improvements),
        "signature": project.signature or project.implementing_unit,
        "report_date": chinese_date(day),
        "report_date_iso": day.isoformat(),
    }


def exact(value: Decimal) -> str:
    """A Decimal as an exact string without exponent ("85.62", "100", "0.8562"), so it travels as
    JSON and comes back as the same Decimal."""
    return format(value, "f")


def shortfalls(result: ProjectResult) -> list[list[str]]:
    """The indicators not fully met (completion below 100%), in form order: [三级指标, 实际完成值 as
    the report shows it, 偏差原因]."""
    return [[r.indicator.name, actual_text(r), r.indicator.deviation]
            for r in in_form_order(result.indicators) if r.completion < 1]


def summary_row(result: ProjectResult, profile: ScoringProfile) -> dict[str, object]:
    """One project's row of the whole-workbook outputs (汇总表, 部门汇总报告), as JSON types: money
    and the rate as exact decimal strings (each writer rounds or formats as it shows them), the
    score as the report prints it, and the scoring profile the 得分 and 等级 follow (a 湖北 85 and
    a national 85 are not the same figure). Writers pick their columns; `报告文件` is added by the run."""
    project = result.project
    return {
        "项目编号": project.project_id,
        "项目名称": project.name,
        "主管部门": project.department,
        "实施单位": project.implementing_unit,
        "年初预算数(万元)": exact(result.initial_budget_wan),
        "全年预算数(万元)": exact(result.adjusted_budget_wan),
        "全年执行数(万元)": exact(result.spent_wan),
        "预算执行率": exact(result.execution_rate),
        "总得分": score(result.total_score),
        "评价等级": result.grade,
        "警告数": len(result.warnings),
        "评分规则": profile.name,
        "预算执行偏差原因": project.budget_deviation or "",
        "未完全达成": shortfalls(result),
    }
