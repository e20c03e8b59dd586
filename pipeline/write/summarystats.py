"""The figures of 汇总表 taken together: its 合计 row and its 统计 sheet with native bar charts.

Totals are exact (Decimal sums of the rows' exact strings): the overall 预算执行率 is Σ执行/Σ全年
预算, not the mean of the projects' rates, and the score is the mean of the scores as printed; the
arithmetic is `core.totals`', shared with 部门汇总报告.
Charts stay readable at any size: a workbook of up to CHART_ALL projects charts each of them; a
larger one charts the CHART_LOWEST lowest-scoring (never 100,000 bars), and one with several
主管部门 adds a chart per department (the lowest CHART_LOWEST when there are more than CHART_ALL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from pipeline.core import totals
from pipeline.core.totals import decimal_or_none

CHART_ALL = 30  # up to this many bars, every one is charted
CHART_LOWEST = 20  # past it, only the lowest-scoring
LABEL_CHARS = 16  # a bar's label: the project's name cut to this many characters


def grade_text(grades: Mapping[str, int]) -> str:
    """The projects per grade in one cell: "优5、良1、中1"."""
    return "、".join(f"{grade}{count}" for grade, count in grades.items())


@dataclass(frozen=True, slots=True)
class Totals:
    """The figures of a group of summary rows (all of them: the 合计 row; one 主管部门's)."""

    name: str
    projects: int
    initial: Decimal
    adjusted: Decimal
    spent: Decimal
    rate: Decimal | None  # Σ执行 / Σ全年预算; None without a budget
    mean_score: Decimal | None
    grades: dict[str, int]
    warnings: int

    @classmethod
    def of(cls, rows: Sequence[Mapping[str, object]], name: str = "合计") -> Totals:
        """The totals of `rows` (`core.totals.figures_of_rows`). Only the grades that occur are kept:
        the 合计 cell and the 评价等级分布 table list no zero grades, unlike 部门汇总报告."""
        figures = totals.figures_of_rows(rows)
        warnings = sum(int(w) for w in (decimal_or_none(row.get("警告数")) for row in rows) if w is not None)
        grades = {grade: count for grade, count in figures.grades.items() if count}
        return cls(name, figures.projects, figures.initial, figures.adjusted, figures.spent, figures.rate,
                   figures.mean_score, grades, warnings)


def by_department(rows: Sequence[Mapping[str, object]]) -> list[Totals]:
    """The totals of each 主管部门, in order of first appearance (an empty one named "（未填写）")."""
    groups = totals.by_department(rows, lambda row: str(row.get("主管部门") or ""))
    return [Totals.of(members, name or "（未填写）") for name, members in groups]


@dataclass(frozen=True, slots=True)
class Bar:
    """One category of a chart: its label, score and rate in percentage points."""

    label: str
    score: float | None
    rate_points: float | None


def short_label(text: str) -> str:
    """A bar's label: the name cut to LABEL_CHARS characters."""
    return text if len(text) <= LABEL_CHARS else f"{text[:LABEL_CHARS]}…"


def points(rate: Decimal | None) -> float | None:
    """A rate as percentage points for a chart (0.8562 → 85.62)."""
    return float(rate * 100) if rate is not None else None


def charted(bars: Sequence[Bar], what: str, score: str = "总得分") -> tuple[list[Bar], str]:
    """The bars a chart shows and its title: every one up to CHART_ALL, else the lowest-scoring."""
    if len(bars) <= CHART_ALL:
        return list(bars), f"各{what}{score}与预算执行率"
    lowest = totals.lowest_first(bars, lambda bar: bar.score, lambda bar: bar.rate_points)[:CHART_LOWEST]
    return lowest, f"{score}最低的{CHART_LOWEST}个{what}（共{len(bars)}个）"


def project_bars(rows: Sequence[Mapping[str, object]]) -> list[Bar]:
    """One bar per project, labelled by its name."""
    return [Bar(short_label(str(row.get("项目名称") or row.get("项目编号") or "")),
                float(s) if (s := decimal_or_none(row.get("总得分"))) is not None else None,
                points(decimal_or_none(row.get("预算执行率")))) for row in rows]


def department_bars(departments: Sequence[Totals]) -> list[Bar]:
    """One bar per 主管部门: its mean score and overall rate."""
    return [Bar(short_label(d.name), float(d.mean_score) if d.mean_score is not None else None, points(d.rate))
            for d in departments]


class StatsWriter:
    """Writes the 统计 sheet top to bottom (constant-memory mode: each row once, in order)."""

    def __init__(self, book: Workbook, sheet: Worksheet) -> None:
        self.book, self.sheet, self.row = book, sheet, 0
        base = {"border": 1, "font_size": 10, "valign": "vcenter"}
        self.heading = book.add_format({"bold": True, "font_size": 12})
        self.header = book.add_format({**base, "bold": True, "align": "center", "bg_color": "#D9D9D9"})
        self.text = book.add_format(base)
        self.count = book.add_format({**base, "num_format": "0"})
        self.money = book.add_format({**base, "num_format": "0.00"})
        self.rate = book.add_format({**base, "num_format": "0.00%"})
        self.bold_count = book.add_format({**base, "num_format": "0", "bold": True, "top": 6})
        self.bold_text = book.add_format({**base, "bold": True, "top": 6})
        self.bold_rate = book.add_format({**base, "num_format": "0.00%", "bold": True, "top": 6})

    def line(self, values: Sequence[object], formats: Sequence[Format]) -> int:
        """Write one row (None leaves a bordered blank) and return its index."""
        for col, (value, fmt) in enumerate(zip(values, formats, strict=True)):
            if value is None:
                self.sheet.write_blank(self.row, col, None, fmt)
            elif isinstance(value, str):
                self.sheet.write_string(self.row, col, value, fmt)
            else:
                self.sheet.write_number(self.row, col, float(value), fmt)  # type: ignore[arg-type]
        self.row += 1
        return self.row - 1

    def title(self, text: str) -> None:
        """A block's heading, after a blank row when not the first."""
        if self.row:
            self.row += 1
        self.sheet.write_string(self.row, 0, text, self.heading)
        self.row += 1

    def grades(self, totals: Totals) -> None:
        """评价等级分布: projects and share per grade, then the total."""
        self.title("评价等级分布")
        self.line(["评价等级", "项目数", "占比"], [self.header] * 3)
        for grade, count in totals.grades.items():
            share = Decimal(count) / totals.projects if totals.projects else None
            self.line([grade, count, share], [self.text, self.count, self.rate])
        self.line(["合计", totals.projects, Decimal(1) if totals.projects else None],
                  [self.bold_text, self.bold_count, self.bold_rate])

    def departments(self, departments: Sequence[Totals]) -> None:
        """按主管部门: projects, money, overall rate and mean score per department."""
        self.title("按主管部门")
        header = ["主管部门", "项目数", "全年预算数(万元)", "全年执行数(万元)", "预算执行率", "平均得分", "评价等级"]
        self.line(header, [self.header] * len(header))
        for d in departments:
            self.line([d.name, d.projects, d.adjusted, d.spent, d.rate, d.mean_score, grade_text(d.grades)],
                      [self.text, self.count, self.money, self.money, self.rate, self.money, self.text])

    def chart(self, bars: Sequence[Bar], title: str, what: str, anchor: int, score: str = "总得分") -> None:
        """The chart's data (rate in percentage points, beside the score) and a bar chart of it
        placed right of the tables at row `anchor`."""
        self.title(f"图表数据：{title}")
        self.line([what, score, "预算执行率(%)"], [self.header] * 3)
        first = self.row
        for bar in bars:
            self.line([bar.label, bar.score, bar.rate_points], [self.text, self.money, self.money])
        last = self.row - 1
        chart = self.book.add_chart({"type": "bar"})
        if chart is None:  # only for an unknown chart type
            return
        name = self.sheet.get_name()
        for col, color in ((1, "#8B1A1A"), (2, "#2F7D4F")):
            chart.add_series({
                "name": [name, first - 1, col],
                "categories": [name, first, 0, last, 0],
                "values": [name, first, col, last, col],
                "fill": {"color": color},
                "data_labels": {"value": True, "num_format": "0.00", "font": {"size": 8}},
                "gap": 60,
            })
        chart.set_title({"name": title, "name_font": {"size": 12}})
        highest = max((v for bar in bars for v in (bar.score, bar.rate_points) if v is not None), default=0.0)
        scale = {"min": 0, "max": 100} if highest <= 100 else {"min": 0}  # scores and rates are out of 100
        chart.set_x_axis({**scale, "num_format": "0", "major_gridlines": {"visible": True}})
        chart.set_y_axis({"reverse": True})  # the first project at the top
        chart.set_legend({"position": "top"})
        chart.set_size({"width": 760, "height": 90 + 34 * len(bars)})
        self.sheet.insert_chart(anchor, 8, chart)


def write_statistics(book: Workbook, sheet: Worksheet, rows: Sequence[Mapping[str, object]], totals: Totals) -> None:
    """Sheet 统计: grades, departments, and the charts with their data."""
    sheet.set_column(0, 0, 26)
    sheet.set_column(1, 6, 14)
    writer = StatsWriter(book, sheet)
    writer.grades(totals)
    departments = by_department(rows)
    writer.departments(departments)
    bars, title = charted(project_bars(rows), "项目")
    writer.chart(bars, title, "项目", 0)
    if len(departments) > 1:
        department_chart, department_title = charted(department_bars(departments), "主管部门", "平均得分")
        below = (90 + 34 * len(bars)) // 20 + 2  # rows of 20 px under the first chart
        writer.chart(department_chart, department_title, "主管部门", below, "平均得分")
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
