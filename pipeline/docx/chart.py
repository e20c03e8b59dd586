"""The chart of 部门汇总报告: scores and execution rates as horizontal bar pairs, a PNG of fixed bytes.

Drawn with matplotlib's Agg canvas directly (no pyplot, so no global figure state and no display),
at a fixed size and resolution, with the PNG's Software text left out: the same panels always give
the same bytes on the same installation, so reruns of a workbook stay byte-identical. Labels are
Chinese, so a CJK font is looked up among the installed ones (Noto Sans CJK on Debian's
fonts-noto-cjk, Source Han, WenQuanYi, Windows' SimHei or Microsoft YaHei); without one the bars
are labelled by 项目编号 (or the 主管部门's number in the table) and the titles are left to the
document's caption, rather than drawing empty boxes.

matplotlib is imported when a chart is drawn, not when the module is: it takes half a second,
and most commands never draw one.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.core.department import ChartPanel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DPI = 200
EMU_PER_INCH = 914400
# Preferred CJK families, best first; any other family with "CJK" in its name comes after them.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "Noto Sans CJK JP")
SCORE_COLOUR = "#1f4e79"
RATE_COLOUR = "#e07b39"
LABEL_CHARS = 14  # a longer project name is cut with …
FONT_SIZE = 7.5


@functools.cache
def cjk_family() -> str | None:
    """The family of an installed font that has Chinese characters, or None."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family
    return next((name for name in sorted(installed) if "CJK" in name), None)


def load_canvas() -> None:
    """Import the parts of matplotlib `chart_png` draws with (half a second), ahead of need."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401


def short_label(label: str) -> str:
    """A bar label that fits beside the bars."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def axis_limit(panels: Sequence[ChartPanel]) -> float:
    """The x axis' end: 100 (a full score, a full budget), or above the largest value."""
    values = [float(v) for panel in panels for v in (*panel.scores, *panel.rates) if v is not None]
    return max([100.0, *values]) * 1.12


def draw_panel(axes: Axes, panel: ChartPanel, limit: float, *, chinese: bool) -> None:
    """One panel: per label a score bar over a rate bar, each with its value at its end."""
    count = len(panel.labels)
    positions = list(range(count))
    scores = [float(v) for v in panel.scores]
    rates = [float(v) if v is not None else 0.0 for v in panel.rates]
    height = 0.38
    axes.barh([p - height / 2 for p in positions], scores, height, color=SCORE_COLOUR,
              label="得分（分）" if chinese else "Score")
    axes.barh([p + height / 2 for p in positions], rates, height, color=RATE_COLOUR,
              label="预算执行率（%）" if chinese else "Execution rate (%)")
    for position, value in zip(positions, panel.scores, strict=True):
        axes.text(float(value) + 0.8, position - height / 2, f"{value}", va="center", fontsize=FONT_SIZE - 1.5)
    for position, rate in zip(positions, panel.rates, strict=True):
        shown = "—" if rate is None else f"{rate}%"
        axes.text((float(rate) if rate is not None else 0.0) + 0.8, position + height / 2, shown,
                  va="center", fontsize=FONT_SIZE - 1.5)
    axes.set_yticks(positions, [short_label(label) for label in (panel.labels if chinese else panel.ids)])
    axes.set_ylim(count - 0.5, -0.5)  # the first label on top, as the table reads
    axes.set_xlim(0, limit)
    axes.grid(axis="x", linestyle=":", linewidth=0.5, color="#999999")
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if chinese:
        axes.set_title(panel.title, fontsize=FONT_SIZE + 1.5, loc="left")
    axes.legend(loc="lower right", fontsize=FONT_SIZE - 0.5, frameon=False, ncols=2,
                bbox_to_anchor=(1.0, 1.0))


def chart_png(panels: Sequence[ChartPanel], width_emu: int, height_emu: int) -> bytes:
    """The chart of `panels`, stacked, as PNG bytes of the picture's size in the document."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    family = cjk_family()
    fonts = [family, "DejaVu Sans"] if family else ["DejaVu Sans"]
    with rc_context({"font.family": fonts, "font.size": FONT_SIZE, "axes.unicode_minus": False}):
        figure = Figure(figsize=(width_emu / EMU_PER_INCH, height_emu / EMU_PER_INCH), dpi=DPI,
                        layout="constrained")
        FigureCanvasAgg(figure)
        # Each panel as tall as its bars (at least three bars' worth, for the title and legend).
        ratios = [max(len(panel.labels), 3) + 2 for panel in panels]
        axes_list = figure.subplots(len(panels), 1, squeeze=False, height_ratios=ratios)[:, 0]
        limit = axis_limit(panels)
        for axes, panel in zip(axes_list, panels, strict=True):
            draw_panel(axes, panel, limit, chinese=family is not None)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buffer.getvalue()

