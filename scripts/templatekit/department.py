"""department_report.docx: 部门汇总报告, one per workbook (variables: pipeline/core/department.py).

One portrait GB/T 9704 section, the same styles as the project reports: title, 一、总体情况 (the
figures in one paragraph), 二、项目绩效情况 (the table of every project with a 合计 row, or for a
large workbook one row per 主管部门 and the lowest-scoring projects), 三、 the projects that fell
short with their reasons, 四、 the chart, then 署名 and 成文日期. The chart is a placeholder
picture named 部门汇总图表: the renderer draws the chart at the picture's size and puts it in the
placeholder's place, so a clerk moves or resizes the chart in Word like any picture.
"""

from __future__ import annotations

import io
import struct
import zlib

from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Mm, Pt
from docx.text.paragraph import Paragraph

from pipeline.core.department import CHART_NAME
from templatekit.form import HEAD, LEFT, Row, cell, table_element, tag_row
from templatekit.metrics import BODY_PAGE, SIZE_SIHAO, Column, column_widths
from templatekit.ooxml import add_hint_to_runs, element, paragraph
from templatekit.outlines import H1, Block, N
from templatekit.styles import BODY_FONT, STYLE_IDS, add_paragraph_style, style_id

SUBJECT = "项目支出绩效自评汇总报告"
# The chart's place on the page: the type area's width, and a height that leaves room for the
# caption, 署名 and 成文日期 on the same page (225 mm type area).
CHART_WIDTH_MM = 156
CHART_HEIGHT_MM = 150
PLACEHOLDER_GREY = 0xEE

NUMBER = Column(("序号", "200"))
MONEY = Column(("全年预算数", "99999.99"))
RATE = Column(("执行率", "100.00%"))
SCORE = Column(("得分", "100.00"))
GRADE = Column(("等级",))
PROJECT_COLUMNS = (NUMBER, Column(("项目名称",), share=1), MONEY, MONEY, RATE, SCORE, GRADE)
LOWEST_COLUMNS = (NUMBER, Column(("项目名称",), share=3), Column(("主管部门",), share=2), MONEY, MONEY, RATE,
                  SCORE, GRADE)
DEPARTMENT_COLUMNS = (NUMBER, Column(("主管部门",), share=1), Column(("项目数", "100000")), MONEY, MONEY, RATE,
                      Column(("平均得分", "100.00")))


def define_department_styles(document: DocumentObject) -> None:
    """图片 (the chart's paragraph: centred, single-spaced so the picture is not clipped to one
    28.95 pt line) and 图题 (the caption below it)."""
    figure = add_paragraph_style(document, "图片", BODY_FONT, SIZE_SIHAO)
    figure.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    figure.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    figure.paragraph_format.keep_with_next = True
    caption = add_paragraph_style(document, "图题", BODY_FONT, SIZE_SIHAO)
    caption.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    caption.paragraph_format.space_before = Pt(6)
    caption.paragraph_format.keep_with_next = True


def header_row(*titles: str) -> Row:
    """A header row (黑体, repeated on every page)."""
    return Row(tuple(cell(title, HEAD) for title in titles), header=True)


def projects_table(items: str, columns: tuple[Column, ...], *, department: bool, total: bool) -> BaseOxmlElement:
    """One row per project of the list `items`, with the 合计 row when `total`."""
    heads = ["序号", "项目名称", *(["主管部门"] if department else []), "全年预算数", "全年执行数", "执行率",
             "得分", "等级"]
    row = [cell("{{ p.index }}"), cell("{{ p.name }}", LEFT), *([cell("{{ p.department }}", LEFT)] if department else []),
           cell("{{ p.adjusted }}"), cell("{{ p.spent }}"), cell("{{ p.rate }}"), cell("{{ p.score }}"),
           cell("{{ p.grade }}")]
    rows = [header_row(*heads), tag_row(f"{{%tr for p in {items} %}}", len(heads), cell()), Row(tuple(row)),
            tag_row("{%tr endfor %}", len(heads), cell())]
    if total:
        rows.append(Row((cell("合计", HEAD, span=2), cell("{{ totals.adjusted }}"), cell("{{ totals.spent }}"),
                         cell("{{ totals.rate }}"), cell("{{ totals.average_score }}"), cell("—"))))
    return table_element(column_widths(columns, BODY_PAGE.type_width_twips), rows)


def departments_table() -> BaseOxmlElement:
    """One row per 主管部门 and the 合计 row."""
    rows = [header_row("序号", "主管部门", "项目数", "全年预算数", "全年执行数", "执行率", "平均得分"),
            tag_row("{%tr for d in departments %}", 7, cell()),
            Row((cell("{{ d.index }}"), cell("{{ d.name }}", LEFT), cell("{{ d.projects }}"), cell("{{ d.adjusted }}"),
                 cell("{{ d.spent }}"), cell("{{ d.rate }}"), cell("{{ d.average_score }}"))),
            tag_row("{%tr endfor %}", 7, cell()),
            Row((cell("合计", HEAD, span=2), cell("{{ totals.projects }}"), cell("{{ totals.adjusted }}"),
                 cell("{{ totals.spent }}"), cell("{{ totals.rate }}"), cell("{{ totals.average_score }}")))]
    return table_element(column_widths(DEPARTMENT_COLUMNS, BODY_PAGE.type_width_twips), rows)


def blocks(items: list[Block]) -> list[BaseOxmlElement]:
    """Paragraphs of (style, text[, keep with next]) blocks."""
    return [paragraph(style_id(b[0]), b[1], [element("w:keepNext")] if len(b) > 2 and b[2] else []) for b in items]


def placeholder_png() -> bytes:
    """A 4 x 3 pixel light-grey PNG, written byte by byte (no library's version in its bytes):
    what Word shows in the template where the chart will be."""
    width, height = 4, 3

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = b"".join(b"\x00" + bytes([PLACEHOLDER_GREY] * 3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels, 9))
            + chunk(b"IEND", b""))


def chart_paragraph(document: DocumentObject) -> BaseOxmlElement:
    """The 图片 paragraph holding the placeholder picture named CHART_NAME."""
    holder = paragraph(STYLE_IDS["图片"])
    document.element.body.sectPr.addprevious(holder)
    shape = Paragraph(holder, document._body).add_run().add_picture(
        io.BytesIO(placeholder_png()), width=Mm(CHART_WIDTH_MM), height=Mm(CHART_HEIGHT_MM))
    doc_pr = shape._inline.docPr
    doc_pr.set("name", CHART_NAME)
    doc_pr.set("descr", "生成报告时换成各项目得分与预算执行率的统计图；可移动或改变大小，请勿改名")
    add_hint_to_runs(holder)
    holder.getparent().remove(holder)
    return holder


def department_body(document: DocumentObject) -> list[BaseOxmlElement]:
    """Every element of the body, in order (the ending included)."""
    body: list[BaseOxmlElement] = blocks([
        ("报告标题", "{{ title }}"),
        (H1, "一、总体情况"),
        (N, "{{ overview }}"),
        (N, "{%p if scoring_rule %}"),
        (N, "各项目均按「{{ scoring_rule }}」评分规则计分。"),
        (N, "{%p endif %}"),
        (H1, "二、项目绩效情况"),
        (N, "{{ table_note }}"),
        (N, "{%p if complete %}"),
    ])
    body.append(projects_table("projects", PROJECT_COLUMNS, department=False, total=True))
    body += blocks([(N, "{%p else %}")])
    body.append(departments_table())
    body += blocks([(N, "得分最低的{{ lowest|length }}个项目如下：")])
    body.append(projects_table("lowest", LOWEST_COLUMNS, department=True, total=False))
    body += blocks([
        (N, "{%p endif %}"),
        (H1, "三、预算未全部执行或评价等级在良以下的项目"),
        (N, "{{ shortfall_note }}"),
        (N, "{%p for p in shortfalls %}"),
        (N, "{{ p.index }}. {{ p.name }}（{{ p.project_id }}）：得分{{ p.score }}分，评价等级为{{ p.grade }}，"
            "预算执行率{{ p.rate }}。"),
        (N, "{%p for r in p.reasons %}"),
        (N, "{{ r }}"),
        (N, "{%p endfor %}"),
        (N, "{%p endfor %}"),
        (H1, "四、得分与预算执行率"),
    ])
    body.append(chart_paragraph(document))
    body += blocks([("图题", "{{ chart_caption }}", True), ("署名", "\t{{ signature }}"), ("成文日期", "{{ report_date }}")])
    return body


def add_department_body(document: DocumentObject) -> None:
    """Put the department report's body before the document's (only) section properties."""
    define_department_styles(document)
    sect_pr = document.element.body.sectPr
    for node in department_body(document):
        sect_pr.addprevious(node)
    # Tables need a paragraph after them before the section ends; the date paragraph is last.
    assert document.element.body[-2].tag == qn("w:p")
