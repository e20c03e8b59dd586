"""The summary rows of a workbook -> the context of 部门汇总报告.docx, the department's one report.

A finance office files one 部门项目支出绩效自评汇总报告 per department: an overview with the
figures (projects, total 全年预算数 and 全年执行数, the overall execution rate, the average score,
the count per grade), a table of the projects, the projects that fell short with the reasons the
workbook gives, and a chart. Everything here is computed from the rows of 汇总表 (`summary_row`,
values as JSON types, exact decimals as text) with the arithmetic of `core.totals`, which
汇总表's 合计 row uses too, so the two agree: the overall rate is Σ全年执行数 / Σ全年预算数, never the
mean of the rates.

A province's workbook may hold 100,000 projects; a document with a 100,000-row table helps no
reader. Above `TABLE_LIMIT` projects the table becomes one row per 主管部门 plus the
`LOWEST_COUNT` lowest-scoring projects, and the list of shortfalls keeps its `SHORTFALL_LIMIT`
lowest; 汇总表.xlsx keeps every project. `DEPARTMENT_VARIABLES` is the template's field table,
as `context.CONTEXT_VARIABLES` is for the project reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from pipeline.core.context import ContextVariable, Shape
from pipeline.core.formatting import (
    chinese_date,
    money_table,
    money_text,
    percent,
    round_half_up,
    score,
)
from pipeline.core.totals import Figures, by_department, exact, figures, lowest_first

__all__ = ["CHART_NAME", "DEPARTMENT_TEMPLATE", "DEPARTMENT_VARIABLES", "ChartPanel", "ProjectFigures", "chart_panels",
           "department_context", "project_figures"]

# The file name of the department template in the templates folder; it is not a project template.
DEPARTMENT_TEMPLATE = "department_report.docx"
# The name (Word's 选择窗格 name, wp:docPr/@name) of the template's picture the chart replaces.
CHART_NAME = "部门汇总图表"

TABLE_LIMIT = 200  # projects listed one by one; above, per 主管部门 and the lowest
LOWEST_COUNT = 20  # lowest-scoring projects listed when the table is per 主管部门
DEPARTMENT_LIMIT = 200  # 主管部门 rows at most (a province has a few hundred)
SHORTFALL_LIMIT = 50  # projects with their reasons at most
CHART_PROJECT_LIMIT = 30  # bars per project up to this many projects; above, per 主管部门 and the lowest
CHART_DEPARTMENT_LIMIT = 20  # 主管部门 bars at most (the lowest average scores)

BELOW_GOOD = frozenset({"中", "差"})  # "below 良": listed with their reasons
FULL_RATE = Decimal(1)

ITEM_FIELDS_OF_PROJECT = frozenset({"index", "project_id", "name", "department", "adjusted", "spent", "rate",
                                    "score", "grade"})

# The department template's field table, in the order templates/README.md documents it.
DEPARTMENT_VARIABLES: tuple[ContextVariable, ...] = (
    ContextVariable("title", Shape.TEXT),
    ContextVariable("unit", Shape.TEXT),
    ContextVariable("year", Shape.TEXT),
    ContextVariable("overview", Shape.TEXT),
    ContextVariable("scoring_rule", Shape.TEXT),
    ContextVariable("totals", Shape.RECORD,
                    frozenset({"projects", "adjusted", "spent", "rate", "average_score", "adjusted_text",
                               "spent_text"})),
    ContextVariable("grades", Shape.RECORD_LIST, frozenset({"grade", "count"})),
    ContextVariable("complete", Shape.TEXT),
    ContextVariable("table_note", Shape.TEXT),
    ContextVariable("projects", Shape.RECORD_LIST, ITEM_FIELDS_OF_PROJECT),
    ContextVariable("departments", Shape.RECORD_LIST,
                    frozenset({"index", "name", "projects", "adjusted", "spent", "rate", "average_score"})),
    ContextVariable("lowest", Shape.RECORD_LIST, ITEM_FIELDS_OF_PROJECT),
    ContextVariable("shortfall_note", Shape.TEXT),
    ContextVariable("shortfalls", Shape.RECORD_LIST,
                    frozenset({"index", "project_id", "name", "rate", "score", "grade", "reasons"})),
    ContextVariable("chart_caption", Shape.TEXT),
    ContextVariable("signature", Shape.TEXT),
    ContextVariable("report_date", Shape.TEXT),
    ContextVariable("report_date_iso", Shape.TEXT),
)
DEPARTMENT_KEYS: frozenset[str] = frozenset(v.name for v in DEPARTMENT_VARIABLES)
DEPARTMENT_DICT_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {v.name: v.fields for v in DEPARTMENT_VARIABLES if v.shape is Shape.RECORD})
DEPARTMENT_ITEM_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {v.name: v.fields for v in DEPARTMENT_VARIABLES if v.shape is Shape.RECORD_LIST})


@dataclass(frozen=True, slots=True)
class Unmet:
    """An indicator not fully met: 三级指标, 实际完成值 as the report shows it, 偏差原因 ("" when none)."""

    name: str
    actual: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProjectFigures:
    """One summary row as exact figures; `order` is its place in the workbook."""

    order: int
    project_id: str
    name: str
    department: str
    adjusted: Decimal
    spent: Decimal
    rate: Decimal
    score: Decimal
    grade: str
    rule: str
    deviation: str
    unmet: tuple[Unmet, ...]

    @property
    def short_of_budget(self) -> bool:
        """Spent less than the full-year budget."""
        return self.rate < FULL_RATE

    @property
    def short(self) -> bool:
        """Below 100% execution or graded below 良: listed with its reasons."""
        return self.short_of_budget or self.grade in BELOW_GOOD


def text(value: object) -> str:
    """A row's text field ("" for a missing value)."""
    return "" if value is None else str(value).strip()


def unmet_of(value: object) -> tuple[Unmet, ...]:
    """未完全达成: [[三级指标, 实际完成值, 偏差原因], …] as records (missing entries empty)."""
    if not isinstance(value, list | tuple):
        return ()
    found = []
    for entry in value:
        if isinstance(entry, list | tuple) and entry:
            cells = [text(cell) for cell in entry[:3]] + [""] * (3 - min(len(entry), 3))
            found.append(Unmet(*cells))
    return tuple(found)


def project_figures(order: int, row: Mapping[str, object]) -> ProjectFigures:
    """One summary row (keys of `core.context.summary_row`) read as exact figures."""
    return ProjectFigures(
        order=order,
        project_id=text(row.get("项目编号")),
        name=text(row.get("项目名称")),
        department=text(row.get("主管部门")),
        adjusted=exact(row.get("全年预算数(万元)")),
        spent=exact(row.get("全年执行数(万元)")),
        rate=exact(row.get("预算执行率")),
        score=exact(row.get("总得分")),
        grade=text(row.get("评价等级")),
        rule=text(row.get("评分规则")),
        deviation=text(row.get("预算执行偏差原因")),
        unmet=unmet_of(row.get("未完全达成")),
    )


def totals_of(projects: Sequence[ProjectFigures]) -> Figures:
    """The figures of `projects` (`core.totals`, as 汇总表's 合计 row): Σ全年预算数, Σ全年执行数,
    Σ执行/Σ预算, the mean score and the projects per grade (优, 良, 中, 差 with zeros, then others)."""
    return figures(len(projects), adjusted=(p.adjusted for p in projects), spent=(p.spent for p in projects),
                   scores=(p.score for p in projects), grades=(p.grade for p in projects))


def average_score(totals: Figures) -> Decimal:
    """The mean 总得分, exact (rounded only where shown); 0 without projects, where 汇总表 leaves
    its cell blank, because the report's sentence needs a number."""
    return Decimal(0) if totals.mean_score is None else totals.mean_score


def rate_text(rate: Decimal | None) -> str:
    """A rate as shown (85.62%), "—" where there is no budget to divide by."""
    return "—" if rate is None else percent(rate)


def lowest_projects(projects: Sequence[ProjectFigures]) -> list[ProjectFigures]:
    """Projects by score, then execution rate, lowest first; workbook order breaks ties."""
    return lowest_first(projects, lambda p: p.score, lambda p: p.rate)


def project_item(index: int, project: ProjectFigures) -> dict[str, str]:
    """One row of the projects table (money in 万元 with two decimals)."""
    return {"index": str(index), "project_id": project.project_id, "name": project.name,
            "department": project.department, "adjusted": money_table(project.adjusted),
            "spent": money_table(project.spent), "rate": percent(project.rate), "score": score(project.score),
            "grade": project.grade}


@dataclass(frozen=True, slots=True)
class DepartmentFigures:
    """The projects of one 主管部门, summed like 汇总表's 合计."""

    name: str
    projects: tuple[ProjectFigures, ...]
    totals: Figures

    @property
    def rate(self) -> Decimal | None:
        """Σ执行 / Σ预算 of the department's projects."""
        return self.totals.rate

    @property
    def average(self) -> Decimal:
        """The department's mean score."""
        return average_score(self.totals)


def departments_of(projects: Sequence[ProjectFigures]) -> list[DepartmentFigures]:
    """The projects grouped by 主管部门, departments in the order they first appear."""
    return [DepartmentFigures(name, tuple(members), totals_of(members))
            for name, members in by_department(projects, lambda p: p.department)]


def department_item(index: int, department: DepartmentFigures) -> dict[str, str]:
    """One row of the per-主管部门 table."""
    totals = department.totals
    return {"index": str(index), "name": department.name, "projects": str(totals.projects),
            "adjusted": money_table(totals.adjusted), "spent": money_table(totals.spent),
            "rate": rate_text(department.rate), "average_score": score(department.average)}


def reasons(project: ProjectFigures) -> list[str]:
    """Why a project fell short, in the workbook's words: the budget's deviation, then each
    indicator not fully met with its 偏差原因; a missing reason is said to be missing."""
    found = []
    if project.short_of_budget:
        balance = money_text(project.adjusted - project.spent)
        why = f"偏差原因：{project.deviation}" if project.deviation else "工作簿未填写预算执行偏差原因"
        found.append(f"预算执行率{percent(project.rate)}，结余{balance}万元；{why.rstrip('。')}。")
    for unmet in project.unmet:
        why = f"偏差原因：{unmet.reason}" if unmet.reason else "未填写偏差原因"
        actual = f"实际完成值{unmet.actual}，" if unmet.actual else ""
        found.append(f"{unmet.name}：{actual}{why.rstrip('。')}。")
    if not found:
        found.append(f"评价等级为{project.grade}，工作簿未说明原因。")
    return found


def shortfall_item(index: int, project: ProjectFigures) -> dict[str, object]:
    """A project below 100% execution or below 良, with its reasons."""
    return {"index": str(index), "project_id": project.project_id, "name": project.name,
            "rate": percent(project.rate), "score": score(project.score), "grade": project.grade,
            "reasons": reasons(project)}


def shortfalls(projects: Sequence[ProjectFigures]) -> tuple[list[ProjectFigures], int]:
    """The projects to list with reasons (workbook order, or the lowest SHORTFALL_LIMIT first
    when there are more) and how many short projects there are in all."""
    short = [p for p in projects if p.short]
    return (short if len(short) <= SHORTFALL_LIMIT else lowest_projects(short)[:SHORTFALL_LIMIT]), len(short)


def shortfall_note(listed: int, total: int) -> str:
    """The sentence above the list of shortfalls."""
    if total == 0:
        return "各项目预算均已全部执行，评价等级均在良及以上。"
    if listed == total:
        return f"预算未全部执行或评价等级在良以下的项目共{total}个，情况及原因如下："
    return (f"预算未全部执行或评价等级在良以下的项目共{total}个，以下列出得分最低的{listed}个，"
            "其余见汇总表：")


def grade_phrase(counts: Sequence[tuple[str, int]]) -> str:
    """优5个、良1个、中1个、差0个."""
    return "、".join(f"{grade}{count}个" for grade, count in counts)


def overview_sentence(totals: Figures) -> str:
    """The overview paragraph's figures in one sentence."""
    return (f"本次共对{totals.projects}个项目开展绩效自评。项目全年预算数合计{money_text(totals.adjusted)}万元，"
            f"全年执行数合计{money_text(totals.spent)}万元，总体预算执行率{rate_text(totals.rate)}；"
            f"平均得分{score(average_score(totals))}分，评价等级为{grade_phrase(list(totals.grades.items()))}。")


def common(values: Sequence[str]) -> str:
    """The value every entry shares, or "" when they differ (or there are none)."""
    distinct = set(values)
    return values[0] if len(distinct) == 1 else ""


def report_unit(projects: Sequence[ProjectFigures], title_hint: str) -> str:
    """Whose report it is: the one 主管部门 of every project, else `title_hint` (the workbook's name)."""
    return common([p.department for p in projects]) or title_hint


def table_note(count: int, departments: int, shown_departments: int) -> str:
    """The sentence above the table, saying what it lists."""
    if count <= TABLE_LIMIT:
        return "各项目情况如下表（金额单位：万元）。"
    more = f"（列出前{shown_departments}个，其余见汇总表）" if shown_departments < departments else ""
    return (f"项目共{count}个，逐项情况见汇总表。下表按主管部门汇总{more}，"
            f"并列出得分最低的{min(LOWEST_COUNT, count)}个项目（金额单位：万元）。")


def chart_caption(count: int, departments: int) -> str:
    """The caption under the chart, saying what its bars are."""
    if count <= CHART_PROJECT_LIMIT:
        return "图1  各项目得分与预算执行率"
    which = "各主管部门" if departments <= CHART_DEPARTMENT_LIMIT else f"平均得分最低的{CHART_DEPARTMENT_LIMIT}个主管部门"
    return f"图1  {which}平均得分与预算执行率（上），得分最低的{min(LOWEST_COUNT, count)}个项目（下）"


def department_context(rows: Sequence[Mapping[str, object]], *, run_date: date, title_hint: str,
                       year: str = "") -> dict[str, object]:
    """The department template's context from the workbook's summary rows (workbook order).

    `title_hint` names the report when the projects have several 主管部门 (the workbook's name);
    `year` (the projects' 年度, "" when unknown) goes into the title; the date is the run's.
    """
    projects = [project_figures(order, row) for order, row in enumerate(rows)]
    totals = totals_of(projects)
    departments = departments_of(projects)
    large = len(projects) > TABLE_LIMIT
    shown_departments = departments[:DEPARTMENT_LIMIT] if large else []
    listed, short_total = shortfalls(projects)
    unit = report_unit(projects, title_hint)
    return {
        "title": f"{unit}{year}{'年度' if year else ''}项目支出绩效自评汇总报告",
        "unit": unit,
        "year": year,
        "overview": overview_sentence(totals),
        "scoring_rule": common([p.rule for p in projects]),
        "totals": {"projects": str(totals.projects), "adjusted": money_table(totals.adjusted),
                   "spent": money_table(totals.spent), "rate": rate_text(totals.rate),
                   "average_score": score(average_score(totals)),
                   "adjusted_text": money_text(totals.adjusted), "spent_text": money_text(totals.spent)},
        "grades": [{"grade": grade, "count": str(count)} for grade, count in totals.grades.items()],
        "complete": "" if large else "1",
        "table_note": table_note(len(projects), len(departments), len(shown_departments)),
        "projects": [] if large else [project_item(i, p) for i, p in enumerate(projects, 1)],
        "departments": [department_item(i, d) for i, d in enumerate(shown_departments, 1)],
        "lowest": [project_item(i, p) for i, p in enumerate(lowest_projects(projects)[:LOWEST_COUNT], 1)] if large else [],
        "shortfall_note": shortfall_note(len(listed), short_total),
        "shortfalls": [shortfall_item(i, p) for i, p in enumerate(listed, 1)],
        "chart_caption": chart_caption(len(projects), len(departments)),
        "signature": unit,
        "report_date": chinese_date(run_date),
        "report_date_iso": run_date.isoformat(),
    }


@dataclass(frozen=True, slots=True)
class ChartPanel:
    """One panel of the chart: a bar pair per label, the score (0–100) and the rate in percent
    (None without a budget), top to bottom in the order given."""

    title: str
    labels: tuple[str, ...]
    ids: tuple[str, ...]  # what labels the bars when no Chinese font is installed
    scores: tuple[Decimal, ...]
    rates: tuple[Decimal | None, ...]


def project_panel(title: str, projects: Sequence[ProjectFigures]) -> ChartPanel:
    """A panel of one bar pair per project."""
    return ChartPanel(title, tuple(p.name for p in projects), tuple(p.project_id for p in projects),
                      tuple(round_half_up(p.score) for p in projects),
                      tuple(round_half_up(p.rate * 100) for p in projects))


def chart_panels(rows: Sequence[Mapping[str, object]]) -> tuple[ChartPanel, ...]:
    """What the chart draws: every project up to CHART_PROJECT_LIMIT; above, the 主管部门 (the
    CHART_DEPARTMENT_LIMIT lowest average scores when there are more) and the lowest projects."""
    projects = [project_figures(order, row) for order, row in enumerate(rows)]
    if len(projects) <= CHART_PROJECT_LIMIT:
        return (project_panel("各项目得分与预算执行率", projects),)
    departments = departments_of(projects)
    numbers = {d.name: str(index) for index, d in enumerate(departments, 1)}  # as in the table
    if len(departments) > CHART_DEPARTMENT_LIMIT:
        departments = lowest_first(departments, lambda d: d.average)[:CHART_DEPARTMENT_LIMIT]
        title = f"平均得分最低的{CHART_DEPARTMENT_LIMIT}个主管部门"
    else:
        title = "各主管部门平均得分与预算执行率"
    rates = tuple(None if d.rate is None else round_half_up(d.rate * 100) for d in departments)
    names = tuple(d.name for d in departments)
    ids = tuple(numbers[name] for name in names)
    per_department = ChartPanel(title, names, ids, tuple(round_half_up(d.average) for d in departments), rates)
    lowest = lowest_projects(projects)[:LOWEST_COUNT]
    return per_department, project_panel(f"得分最低的{len(lowest)}个项目", lowest)
