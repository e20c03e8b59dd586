"""The 附件: 项目支出绩效自评表 laid out as the national form (附件1 of 财预〔2020〕10号).

The form is two tables, one directly below the other:

1. the head of the form: 项目名称, 主管部门 / 实施单位, the 项目资金（万元） block (年度资金总额 and
   其中 财政拨款 / 上年结转 / 其他资金) and 年度总体目标 (预期目标 | 实际完成情况);
2. the 绩效指标 block, its header row repeated on every page, then 总分 and 自评等级.

Why two: Word repeats only a table's *first* rows on a new page (w:tblHeader further down is
ignored), and the rows worth repeating are the indicator header, not the whole head of the
form. A paragraph must separate two tables or Word joins them into one; it is 0.1 pt high
(style 表间距), so where the two tables meet their borders lie on one another and they read as
one form, and where the second starts a new page each table is still closed by its own border.

Every size here is computed (metrics.column_widths): a column is exactly as wide as its widest
sample at 五号 plus 1.5 mm padding on each side and 1 pt of slack; 偏差原因分析及改进措施 takes
what is left of the 225 mm type area (INDICATOR_COLUMNS shows the sums). Both tables use fixed
layout, so Word and LibreOffice give every column the same width.

Page breaks: every row is kept on one page (w:cantSplit; a row taller than a page still flows
on, as ECMA-376 specifies for it), and the indicator rows keep with the 总分 and 自评等级 rows
(w:keepNext, see indicator_rows). The 绩效指标 label is not merged into the header row: Word and
LibreOffice repeat the header row on each page, and a merged cell starting in it would be drawn
across the repeated header and the rows below it on a continuation page. The label is instead
printed in every indicator row in 表格文字（相同合并）, and the renderer merges the copies from the
first indicator row down, so the repeated header stands on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement

from templatekit.metrics import (
    ANNEX_PAGE,
    CELL_PADDING_TWIPS,
    Column,
    column_widths,
    mm_twips,
)
from templatekit.ooxml import element, paragraph
from templatekit.styles import HEADING1_FONT, STYLE_IDS

HEAD = "表格标题行"
TEXT = "表格文字"
LEFT = "表格文字（居左）"
MERGE = "表格文字（相同合并）"
HEAD_FONT = HEADING1_FONT  # 黑体, the font of 表格标题行

# Rows at least 6.5 mm high, the row height of the printed form; text centred vertically.
MIN_ROW_TWIPS = mm_twips(6.5)

# The head's label column (项目名称, 主管部门, 项目资金（万元）, 年度总体目标) is four characters
# wide: those labels stay on one line, as on the printed form.
LABEL = Column(("项目名称",))

# The 绩效指标 label stands one character a line, as side labels of Chinese forms do: plain
# paragraphs, not w:textDirection, so that Word and LibreOffice print it alike.
INDICATOR_LABEL_LINES = ("绩", "效", "指", "标")

# 绩效指标 block: what must fit on one line in each column at 五号 (10.5 pt = 210 twips a
# character; every column adds 2 x 85 twips of padding and 20 of slack, 190 in all):
#
#   column        widest sample                                   content   width (twips)
#   label         绩 / 效 / 指 / 标, one character a line              210       400
#   一级指标      满意度指标 (5 characters)                          1050      1240
#   二级指标      服务对象满意度指标 (9)                             1890      2080
#   三级指标      nine characters a line                             1890      2080
#   年度指标值    seven characters a line (≤90.00万元 is 5.25 em)    1470      1660
#   实际完成值    （4170/4170）: 2 + 8 x 0.5 + 0.278 = 6.28 em       1319      1509
#   分值          分值 (2)                                            420       610
#   得分          100.00: 5 x 0.5 + 0.25 = 2.75 em                    578       768
#   fitted columns together                                                   10347
#   偏差原因分析  the rest of the 225 mm type area: 12756 - 10347              2409
#
# 2409 twips leave 2219 for text, ten characters a line. The space came from the label (four
# characters wide before, 1030 twips; 630 saved): 367 went to 年度指标值, which held five
# characters a line (1293 twips) and now seven, so a 21-character 定性 target such as
# 推动信访积案、难案及需跨部门协调的案件化解 takes three lines, not five; the rest (263) to 偏差原因,
# nine characters a line before and ten now. 三级指标 keeps nine a line (names of up to 18
# characters in two lines). The other columns are as narrow as their longest token: every
# figure keeps its widest form on one line (≤90.00万元, ≥4000件, 100.00%, 1.08万元) and 二级
# keeps 服务对象满意度指标 on one line; column_widths() raises when the type area cannot hold them.
INDICATOR_COLUMNS: tuple[Column, ...] = (
    Column(INDICATOR_LABEL_LINES),
    Column(("一级指标", "满意度指标")),
    Column(("二级指标", "服务对象满意度指标", "可持续影响指标")),
    # 三级指标 names run to about 18 characters: nine a line takes them in two lines.
    Column(("三级指标名称九个字",)),
    # Figures fit whole (≤90.00万元 is 5.25 em, the widest); a 定性 target gets 7 characters a line.
    Column(("年度指标值", "≥4000件", "≥1,000件", "≤90.00万元", "100.00%", "定性目标七个字")),
    # A rate computed from 分子/分母 has its count on the line below: "96.7%" over "（59/61）".
    # (Side by side, LibreOffice may break the line between "96.7" and "%".)
    Column(("实际完成值", "（4170/4170）", "1.08万元", "100.00%")),
    Column(("分值", "100")),  # 总分 row: 100
    Column(("得分", "100.00")),  # 总分 row: 100.00
    Column(("偏差原因分析",), share=1),
)

# Head of the form: label, the 项目资金 row names, then six equal columns of amounts.
AMOUNT = Column(("年初预算数", "99999.99", "100.00%"), share=1)
HEAD_COLUMNS: tuple[Column, ...] = (LABEL, Column(("其中：财政拨款", "年度资金总额")), *([AMOUNT] * 6))


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: its paragraphs (one run each), paragraph style, grid columns spanned, vertical
    merge ("restart" starts a merged cell, "continue" extends the one above) and the font of its
    runs where it differs from the style's (the 绩效指标 label: a 表格标题行 look in the merge style)."""

    texts: tuple[str, ...]
    style: str = TEXT
    span: int = 1
    merge: str | None = None
    font: str | None = None


def cell(text: str = "", style: str = TEXT, span: int = 1, merge: str | None = None) -> Cell:
    """A cell of one paragraph."""
    return Cell((text,), style, span, merge)


def below(span: int = 1) -> Cell:
    """The continuation of the vertically merged cell above (the form's label column)."""
    return Cell(("",), TEXT, span, "continue")


@dataclass(frozen=True, slots=True)
class Row:
    """A row; `header` rows repeat at the top of every page. No row splits across pages."""

    cells: tuple[Cell, ...]
    header: bool = False
    keep_next: bool = False


def tag_row(tag: str, columns: int, label: Cell | None = None) -> Row:
    """A row holding only a docxtpl {%tr %} tag (the renderer removes it), right of `label`
    (default: the continuation of the merged label cell above)."""
    return Row((label or below(), cell(tag, LEFT, span=columns - 1)))


def table_properties(total: int) -> BaseOxmlElement:
    """Fixed layout over the full type width, single 0.5 pt borders, 1.5 mm cell padding."""
    edges = ("top", "left", "bottom", "right", "insideH", "insideV")
    borders = [element(f"w:{edge}", {"val": "single", "sz": "4", "space": "0", "color": "000000"})
               for edge in edges]
    margins = [element(f"w:{side}", {"w": str(width), "type": "dxa"})
               for side, width in (("top", 0), ("left", CELL_PADDING_TWIPS), ("bottom", 0),
                                   ("right", CELL_PADDING_TWIPS))]
    return element("w:tblPr", children=[
        element("w:tblW", {"w": str(total), "type": "dxa"}),
        element("w:jc", {"val": "center"}),
        element("w:tblBorders", children=borders),
        element("w:tblLayout", {"type": "fixed"}),
        element("w:tblCellMar", children=margins),
        element("w:tblLook", {"val": "0000", "firstRow": "0", "lastRow": "0", "firstColumn": "0",
                              "lastColumn": "0", "noHBand": "1", "noVBand": "1"}),
    ])


def cell_element(spec: Cell, width: int) -> BaseOxmlElement:
    """A w:tc of the given width with its paragraphs."""
    tc_pr = [element("w:tcW", {"w": str(width), "type": "dxa"})]
    if spec.span > 1:
        tc_pr.append(element("w:gridSpan", {"val": str(spec.span)}))
    if spec.merge == "restart":
        tc_pr.append(element("w:vMerge", {"val": "restart"}))
    elif spec.merge == "continue":
        tc_pr.append(element("w:vMerge"))
    tc_pr.append(element("w:vAlign", {"val": "center"}))
    paragraphs = [paragraph(STYLE_IDS[spec.style], text) for text in spec.texts]
    if spec.font is not None:
        for run_fonts in (node for p in paragraphs for node in p.iter(qn("w:rFonts"))):
            for script in ("ascii", "hAnsi", "eastAsia"):
                run_fonts.set(qn(f"w:{script}"), spec.font)
    return element("w:tc", children=[element("w:tcPr", children=tc_pr), *paragraphs])


def row_element(spec: Row, widths: Sequence[int]) -> BaseOxmlElement:
    """A w:tr: its cells over the grid, at least MIN_ROW_TWIPS high, never split across pages."""
    tr_pr = [element("w:cantSplit")]
    tr_pr.append(element("w:trHeight", {"val": str(MIN_ROW_TWIPS), "hRule": "atLeast"}))
    if spec.header:
        tr_pr.append(element("w:tblHeader"))
    cells, column = [], 0
    for spec_cell in spec.cells:
        cells.append(cell_element(spec_cell, sum(widths[column:column + spec_cell.span])))
        column += spec_cell.span
    if spec.keep_next:
        for ppr in (node for tc in cells for node in tc.iter(qn("w:pPr"))):
            ppr.append(element("w:keepNext"))
    if column != len(widths):
        raise ValueError(f"row spans {column} of {len(widths)} columns: {spec}")
    return element("w:tr", children=[element("w:trPr", children=tr_pr), *cells])


def table_element(widths: Sequence[int], rows: Sequence[Row]) -> BaseOxmlElement:
    """A w:tbl with its grid and rows."""
    grid = element("w:tblGrid", children=[element("w:gridCol", {"w": str(width)}) for width in widths])
    return element("w:tbl", children=[table_properties(sum(widths)), grid,
                                      *(row_element(row, widths) for row in rows)])


def head_rows() -> list[Row]:
    """项目名称, 主管部门/实施单位, 项目资金（万元） with the sources loop, 年度总体目标."""
    # The 实际完成情况 cell must keep one paragraph when there is no 完成情况: the {%p else %}
    # branch leaves an empty one (a cell without any paragraph is a damaged file for Word).
    performance = ("{%p for para in performance %}", "{{ para }}", "{%p else %}", "", "{%p endfor %}")
    return [
        Row((cell("项目名称", HEAD), cell("{{ project_name }}", LEFT, span=7))),
        Row((cell("主管部门", HEAD), cell("{{ department }}", LEFT, span=3), cell("实施单位", HEAD),
             cell("{{ implementing_unit }}", LEFT, span=3))),
        Row((cell("项目资金（万元）", HEAD, merge="restart"), cell("", HEAD), cell("年初预算数", HEAD),
             cell("全年预算数", HEAD), cell("全年执行数", HEAD), cell("分值", HEAD), cell("执行率", HEAD),
             cell("得分", HEAD))),
        Row((below(), cell("年度资金总额", LEFT), cell("{{ budget.initial }}"), cell("{{ budget.adjusted }}"),
             cell("{{ budget.spent }}"), cell("{{ budget.weight }}"), cell("{{ budget.rate }}"),
             cell("{{ budget.score }}"))),
        tag_row("{%tr for s in sources %}", 8),
        # "其中：" before the first source, three ideographic spaces before the others, so
        # the three names line up as on the printed form.
        Row((below(), cell("{% if loop.first %}其中：{% else %}\u3000\u3000\u3000{% endif %}{{ s.label }}", LEFT),
             cell("{{ s.initial }}"), cell("{{ s.adjusted }}"), cell("{{ s.spent }}"),
             cell("—"), cell("—"), cell("—"))),
        tag_row("{%tr endfor %}", 8),
        Row((cell("年度总体目标", HEAD, merge="restart"), cell("预期目标", HEAD, span=3),
             cell("实际完成情况", HEAD, span=4))),
        Row((below(), cell("{{ annual_goal }}", LEFT, span=3), Cell(performance, LEFT, span=4))),
    ]


def indicator_rows() -> list[Row]:
    """The 绩效指标 header (repeated per page), one row per indicator, 总分 and 自评等级."""
    headers = ("一级指标", "二级指标", "三级指标", "年度指标值", "实际完成值", "分值", "得分")
    actual = ("{{ ind.actual }}", "{%p if ind.fraction %}", "（{{ ind.fraction }}）", "{%p endif %}")
    # The last header breaks where the words do, not wherever the column ends ("…改进措/施").
    deviation = Cell(("偏差原因分析", "及改进措施"), HEAD)
    # The label, 一级 and 二级 in 表格文字（相同合并）: the renderer merges equal neighbours
    # vertically, so the label becomes one cell from the first indicator row to the last (and
    # 二级 never merges across a 一级 boundary). The header row's own first cell stays empty.
    label = Cell(INDICATOR_LABEL_LINES, MERGE, font=HEAD_FONT)
    # Every paragraph of the indicator rows and of 总分 keeps with the next: 总分 and 自评等级
    # never stand alone on a page, they move with the last indicator row. The block from the
    # first indicator row down therefore starts on a new page when it does not fit below the
    # head of the form (with its repeated header); a block longer than a page still breaks
    # between rows (Word and LibreOffice drop the keep where it cannot be met).
    return [
        Row((cell("", HEAD), *(cell(text, HEAD) for text in headers), deviation), header=True),
        tag_row("{%tr for ind in indicators %}", 9, cell()),
        Row((label, cell("{{ ind.level1 }}", MERGE), cell("{{ ind.level2 }}", MERGE),
             cell("{{ ind.name }}", LEFT), cell("{{ ind.target }}"), Cell(actual),
             cell("{{ ind.weight }}"), cell("{{ ind.score }}"), cell("{{ ind.deviation }}", LEFT)),
            keep_next=True),
        tag_row("{%tr endfor %}", 9, cell()),
        Row((cell("总分", HEAD, span=6), cell("{{ weight_total }}"), cell("{{ total_score }}"), cell()),
            keep_next=True),
        Row((cell("自评等级", HEAD, span=6), cell("{{ grade }}", span=2), cell())),
    ]


def annex_blocks() -> list[BaseOxmlElement]:
    """附件 label, title, year, and the form's two tables, in document order."""
    total = ANNEX_PAGE.type_width_twips
    return [
        paragraph(STYLE_IDS["附件标识"], "附件"),
        paragraph(STYLE_IDS["附件标题"], "项目支出绩效自评表"),
        paragraph(STYLE_IDS["附件副标题"], "（{{ year }}年度）"),
        table_element(column_widths(HEAD_COLUMNS, total), head_rows()),
        paragraph(STYLE_IDS["表间距"]),
        table_element(column_widths(INDICATOR_COLUMNS, total), indicator_rows()),
    ]
