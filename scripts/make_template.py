"""Build the default report template (GB/T 9704-2012 layout) with python-docx.

Run as ``python scripts/make_template.py templates/report.docx``. The variables it uses are the
contract produced by ``pipeline/core/context.py``; ``templates/README.md`` lists them for clerks.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.styles.style import BaseStyle, ParagraphStyle
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from pipeline.write.files import atomic_write
from pipeline.write.zipfiles import ZipMember, zip_bytes

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING1_FONT = "黑体"
HEADING2_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"
LATIN_FONT = "Times New Roman"

# 三号 = 16pt, 二号 = 22pt, 四号 = 14pt, 五号 = 10.5pt (Chinese point-size names).
SIZE_TITLE = Pt(22)
SIZE_BODY = Pt(16)
SIZE_PAGE_NUMBER = Pt(14)
SIZE_TABLE = Pt(10.5)

# GB/T 9704 asks for 22 lines in a 225 mm text block: 637.8pt / 22 = 28.99pt. 28.95pt (579 twips)
# is the value Chinese office templates use, because 29pt would push the 22nd line off the page.
LINE_PITCH = Pt(28.95)

# Columns of 项目支出绩效自评表; widths add up to the 156 mm text width (210 - 28 - 26).
TABLE_COLUMNS: tuple[tuple[str, float], ...] = (
    ("一级指标", 19),
    ("二级指标", 19),
    ("三级指标", 28),
    ("指标值", 17),
    ("完成值", 17),
    ("分值", 12),
    ("得分", 14),
    ("偏差原因分析及改进措施", 30),
)

BUDGET_ROW: tuple[str, ...] = (
    "预算执行",
    "预算执行率",
    "全年预算{{ budget.adjusted }}万元，执行{{ budget.spent }}万元",
    "100%",
    "{{ budget.rate }}",
    "{{ budget.weight }}",
    "{{ budget.score }}",
    "",
)

INDICATOR_ROW: tuple[str, ...] = (
    "{{ ind.level1 }}",
    "{{ ind.level2 }}",
    "{{ ind.name }}",
    "{{ ind.target }}",
    "{{ ind.actual }}",
    "{{ ind.weight }}",
    "{{ ind.score }}",
    "{{ ind.deviation }}",
)

# Style names a clerk sees in Word's style gallery, with ASCII ids so every Word version and
# LibreOffice round-trips them unchanged.
STYLE_TITLE = "报告标题"
STYLE_HEADING1 = "一级标题"
STYLE_HEADING2 = "二级标题"
STYLE_BODY = "正文"
STYLE_TABLE = "表格文字"
STYLE_TABLE_HEAD = "表格标题行"
STYLE_NOTE = "表注"
STYLE_PAGE_NUMBER = "页码"
STYLE_IDS: dict[str, str] = {
    STYLE_TITLE: "ReportTitle",
    STYLE_HEADING1: "ReportHeading1",
    STYLE_HEADING2: "ReportHeading2",
    STYLE_BODY: "ReportBody",
    STYLE_TABLE: "ReportTable",
    STYLE_TABLE_HEAD: "ReportTableHead",
    STYLE_NOTE: "ReportNote",
    STYLE_PAGE_NUMBER: "ReportPageNumber",
}

_THEME_FONT_ATTRS = ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme")


def set_fonts(style: BaseStyle, east_asian: str, latin: str) -> None:
    """Write explicit fonts for every script (Latin, East-Asian, complex) on a style."""
    rfonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    # Theme attributes win over explicit names in Word, and python-docx's theme maps East-Asian
    # text to MS Mincho, so they must go.
    for attr in _THEME_FONT_ATTRS:
        rfonts.attrib.pop(qn(attr), None)
    rfonts.set(qn("w:ascii"), latin)
    rfonts.set(qn("w:hAnsi"), latin)
    rfonts.set(qn("w:eastAsia"), east_asian)
    rfonts.set(qn("w:cs"), latin)


def set_document_defaults(document: DocumentObject) -> None:
    """Make the document-wide run defaults Chinese (fonts and language) instead of Calibri/Mincho."""
    styles = document.styles.element
    rpr_default = styles.find(qn("w:docDefaults")).find(qn("w:rPrDefault"))
    rpr = rpr_default.find(qn("w:rPr"))
    rfonts = rpr.find(qn("w:rFonts"))
    for attr in _THEME_FONT_ATTRS:
        rfonts.attrib.pop(qn(attr), None)
    rfonts.set(qn("w:ascii"), LATIN_FONT)
    rfonts.set(qn("w:hAnsi"), LATIN_FONT)
    rfonts.set(qn("w:eastAsia"), BODY_FONT)
    rfonts.set(qn("w:cs"), LATIN_FONT)
    lang = rpr.find(qn("w:lang"))
    # Word picks the font of ambiguous characters (quotes, dashes) by the East-Asian language.
    lang.set(qn("w:eastAsia"), "zh-CN")
    ppr = styles.find(qn("w:docDefaults")).find(qn("w:pPrDefault")).find(qn("w:pPr"))
    spacing = ppr.find(qn("w:spacing"))
    spacing.set(qn("w:after"), "0")


def set_first_line_chars(style: ParagraphStyle, chars: int, size: Pt) -> None:
    """Indent the first line by whole characters, which Word keeps right when the size changes."""
    style.paragraph_format.first_line_indent = Pt(size.pt * chars)
    ind = style.element.get_or_add_pPr().get_or_add_ind()
    ind.set(qn("w:firstLineChars"), str(chars * 100))


def set_outline_level(style: ParagraphStyle, level: int) -> None:
    """Give a custom heading style an outline level so Word's navigation pane lists it."""
    ppr = style.element.get_or_add_pPr()
    outline = OxmlElement("w:outlineLvl")
    outline.set(qn("w:val"), str(level))
    ppr.append(outline)


def add_paragraph_style(
    document: DocumentObject,
    name: str,
    east_asian: str,
    size: Pt,
    *,
    latin: str = LATIN_FONT,
    base: str = "Normal",
) -> ParagraphStyle:
    """Add a named paragraph style with explicit East-Asian and Latin fonts."""
    style = document.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    style.style_id = STYLE_IDS[name]
    style.base_style = document.styles[base]
    style.quick_style = True
    style.font.size = size
    set_fonts(style, east_asian, latin)
    fmt = style.paragraph_format
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = LINE_PITCH
    return style


def define_styles(document: DocumentObject) -> None:
    """Define Normal and the report's named styles (报告标题, 一级标题, 二级标题, 正文, 表格文字 …)."""
    set_document_defaults(document)
    normal = document.styles["Normal"]
    normal.font.size = SIZE_BODY
    set_fonts(normal, BODY_FONT, LATIN_FONT)
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    normal.paragraph_format.line_spacing = LINE_PITCH
    # Chinese typesetting does not keep widows and orphans; it would leave uneven page bottoms.
    normal.paragraph_format.widow_control = False

    title = add_paragraph_style(document, STYLE_TITLE, TITLE_FONT, SIZE_TITLE, latin=TITLE_FONT)
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    # A 22pt title needs more than one body line; one empty body line separates it from the text.
    title.paragraph_format.line_spacing = Pt(36)
    title.paragraph_format.space_after = LINE_PITCH
    title.paragraph_format.keep_with_next = True
    set_outline_level(title, 0)

    heading1 = add_paragraph_style(
        document, STYLE_HEADING1, HEADING1_FONT, SIZE_BODY, latin=HEADING1_FONT
    )
    set_first_line_chars(heading1, 2, SIZE_BODY)
    heading1.paragraph_format.keep_with_next = True
    set_outline_level(heading1, 1)

    heading2 = add_paragraph_style(
        document, STYLE_HEADING2, HEADING2_FONT, SIZE_BODY, latin=HEADING2_FONT
    )
    set_first_line_chars(heading2, 2, SIZE_BODY)
    heading2.paragraph_format.keep_with_next = True
    set_outline_level(heading2, 2)

    body = add_paragraph_style(document, STYLE_BODY, BODY_FONT, SIZE_BODY)
    body.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    set_first_line_chars(body, 2, SIZE_BODY)

    for name, east_asian in ((STYLE_TABLE, BODY_FONT), (STYLE_TABLE_HEAD, HEADING1_FONT)):
        table_style = add_paragraph_style(document, name, east_asian, SIZE_TABLE)
        table_style.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
        # Table text is single-spaced: a fixed 29pt pitch would make 五号 rows absurdly tall.
        table_style.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE

    note = add_paragraph_style(document, STYLE_NOTE, BODY_FONT, Pt(14))
    note.paragraph_format.space_before = Pt(6)

    page_number = add_paragraph_style(
        document,
        STYLE_PAGE_NUMBER,
        PAGE_NUMBER_FONT,
        SIZE_PAGE_NUMBER,
        latin=PAGE_NUMBER_FONT,
        base="Footer",
    )
    page_number.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE


def set_compatibility(document: DocumentObject) -> None:
    """Settings that keep Chinese text laid out the same in Word and LibreOffice."""
    settings = document.settings.element
    # Theme fonts resolve by this language; python-docx ships ja-JP, which means MS Mincho.
    theme_lang = settings.find(qn("w:themeFontLang"))
    if theme_lang is not None:
        theme_lang.set(qn("w:eastAsia"), "zh-CN")
    compat = settings.find(qn("w:compat"))
    if compat is not None and compat.find(qn("w:doNotExpandShiftReturn")) is None:
        # A line break inside a workbook cell becomes a manual break; without this, justified
        # text spreads the characters of the line before it across the whole width.
        compat.insert(0, OxmlElement("w:doNotExpandShiftReturn"))


def set_page_setup(document: DocumentObject) -> None:
    """A4 portrait with the GB/T 9704 margins (top 37, bottom 35, left 28, right 26 mm)."""
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width = Mm(210)
    section.page_height = Mm(297)
    section.top_margin = Mm(37)
    section.bottom_margin = Mm(35)
    section.left_margin = Mm(28)
    section.right_margin = Mm(26)
    # The page number sits 7 mm below the text block, as GB/T 9704 7.5 asks.
    section.footer_distance = Mm(28)
    section.header_distance = Mm(15)


def add_page_field(paragraph: Paragraph) -> None:
    """Append a PAGE field wrapped in em dashes ("— 1 —")."""
    paragraph.add_run("— ")
    begin = paragraph.add_run()
    fld_begin = OxmlElement("w:fldChar")
    fld_begin.set(qn("w:fldCharType"), "begin")
    begin._r.append(fld_begin)
    instr_run = paragraph.add_run()
    instr = OxmlElement("w:instrText")
    instr.set(qn("xml:space"), "preserve")
    instr.text = " PAGE \\* MERGEFORMAT "
    instr_run._r.append(instr)
    separate = paragraph.add_run()
    fld_separate = OxmlElement("w:fldChar")
    fld_separate.set(qn("w:fldCharType"), "separate")
    separate._r.append(fld_separate)
    paragraph.add_run("1")
    end = paragraph.add_run()
    fld_end = OxmlElement("w:fldChar")
    fld_end.set(qn("w:fldCharType"), "end")
    end._r.append(fld_end)
    paragraph.add_run(" —")


def set_page_numbers(document: DocumentObject) -> None:
    """Odd pages number at the right, even pages at the left, each one character in (GB/T 9704)."""
    document.settings.odd_and_even_pages_header_footer = True
    section = document.sections[0]
    for footer, alignment in (
        (section.footer, WD_ALIGN_PARAGRAPH.RIGHT),
        (section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT),
    ):
        footer.is_linked_to_previous = False
        paragraph = footer.paragraphs[0]
        paragraph.style = document.styles[STYLE_PAGE_NUMBER]
        paragraph.alignment = alignment
        if alignment == WD_ALIGN_PARAGRAPH.RIGHT:
            paragraph.paragraph_format.right_indent = SIZE_PAGE_NUMBER
        else:
            paragraph.paragraph_format.left_indent = SIZE_PAGE_NUMBER
        add_page_field(paragraph)


def add_text(document: DocumentObject, text: str, style: str) -> Paragraph:
    """Add a paragraph whose whole text is one run, so docxtpl sees each tag unbroken."""
    paragraph = document.add_paragraph(style=style)
    paragraph.add_run(text)
    return paragraph


def fill_cell(cell: _Cell, text: str, style: str = STYLE_TABLE) -> None:
    """Put text into a cell as a single run in the given table style."""
    paragraph = cell.paragraphs[0]
    paragraph.style = style
    if text:
        paragraph.add_run(text)
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER


def set_row_flags(table: Table, row_index: int, *, header: bool) -> None:
    """Keep a row on one page; mark the header row to repeat after each page break."""
    tr_pr = table.rows[row_index]._tr.get_or_add_trPr()
    tr_pr.append(OxmlElement("w:cantSplit"))
    if header:
        tr_pr.append(OxmlElement("w:tblHeader"))


def set_borders(table: Table) -> None:
    """Draw single 0.5pt borders on every edge, independent of the "Table Grid" style."""
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "single")
        element.set(qn("w:sz"), "4")
        element.set(qn("w:space"), "0")
        element.set(qn("w:color"), "000000")
        borders.append(element)
    tbl_pr.append(borders)


def add_score_table(document: DocumentObject) -> Table:
    """Add 项目支出绩效自评表 with the docxtpl row loop over indicators."""
    rows = (
        [column for column, _ in TABLE_COLUMNS],
        list(BUDGET_ROW),
        ["{%tr for ind in indicators %}"] + [""] * (len(TABLE_COLUMNS) - 1),
        list(INDICATOR_ROW),
        ["{%tr endfor %}"] + [""] * (len(TABLE_COLUMNS) - 1),
    )
    table = document.add_table(rows=len(rows) + 1, cols=len(TABLE_COLUMNS))
    table.style = document.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    set_borders(table)
    for index, (_, width_mm) in enumerate(TABLE_COLUMNS):
        table.columns[index].width = Mm(width_mm)
        for cell in table.columns[index].cells:
            cell.width = Mm(width_mm)
    for row_index, texts in enumerate(rows):
        style = STYLE_TABLE_HEAD if row_index == 0 else STYLE_TABLE
        for cell, text in zip(table.rows[row_index].cells, texts, strict=True):
            fill_cell(cell, text, style)
        set_row_flags(table, row_index, header=row_index == 0)

    total = table.rows[len(rows)]
    label = total.cells[0].merge(total.cells[4])
    fill_cell(label, "总分", STYLE_TABLE_HEAD)
    fill_cell(total.cells[5], "{{ weight_total }}")
    fill_cell(total.cells[6], "{{ total_score }}")
    fill_cell(total.cells[7], "评价等级：{{ grade }}")
    set_row_flags(table, len(rows), header=False)
    return table


def add_content(document: DocumentObject) -> None:
    """Write the report's paragraphs and table with their Jinja tags."""
    add_text(document, "{{ title }}", STYLE_TITLE)

    add_text(document, "一、项目情况", STYLE_HEADING1)
    add_text(document, "{%p for para in overview %}", STYLE_BODY)
    add_text(document, "{{ para }}", STYLE_BODY)
    add_text(document, "{%p endfor %}", STYLE_BODY)
    add_text(document, "{{ money_sentence }}", STYLE_BODY)
    add_text(document, "{%p if annual_goal %}", STYLE_BODY)
    add_text(document, "年度总体目标：{{ annual_goal }}", STYLE_BODY)
    add_text(document, "{%p endif %}", STYLE_BODY)

    # One principle reads as prose in the source reports; several are a numbered list.
    add_text(document, "二、使用原则", STYLE_HEADING1)
    add_text(document, "{%p if principles|length == 1 %}", STYLE_BODY)
    add_text(document, "{{ principles[0] }}", STYLE_BODY)
    add_text(document, "{%p elif principles %}", STYLE_BODY)
    add_text(document, "{%p for p in principles %}", STYLE_BODY)
    add_text(document, "{{ loop.index }}. {{ p }}", STYLE_BODY)
    add_text(document, "{%p endfor %}", STYLE_BODY)
    add_text(document, "{%p else %}", STYLE_BODY)
    add_text(document, "无。", STYLE_BODY)
    add_text(document, "{%p endif %}", STYLE_BODY)

    add_text(document, "三、项目绩效", STYLE_HEADING1)
    add_text(document, "{%p for para in performance %}", STYLE_BODY)
    add_text(document, "{{ para }}", STYLE_BODY)
    add_text(document, "{%p else %}", STYLE_BODY)
    add_text(document, "无。", STYLE_BODY)
    add_text(document, "{%p endfor %}", STYLE_BODY)

    add_text(document, "四、绩效自评表", STYLE_HEADING1)
    add_score_table(document)
    add_text(
        document,
        "实施单位：{{ implementing_unit }}　　主管部门：{{ department }}",
        STYLE_NOTE,
    )


def set_properties(document: DocumentObject) -> None:
    """Plain document properties; docxtpl renders them too, so they must hold no tags."""
    props = document.core_properties
    props.title = "绩效评价报告模板"
    props.subject = "项目支出绩效评价报告"
    props.author = "perfreport"
    props.last_modified_by = "perfreport"
    props.comments = "由 scripts/make_template.py 生成；变量说明见 templates/README.md。"
    props.revision = 1


# Parts of python-docx's blank document that no report needs: Word 2010's second copy of the
# styles, web-page settings and a bibliography item.
UNNEEDED_PART_TYPES = ("http://schemas.microsoft.com/office/2007/relationships/stylesWithEffects",
                       RT.WEB_SETTINGS, RT.CUSTOM_XML)
STYLE_REFERENCES = ("w:pStyle", "w:rStyle", "w:tblStyle", "w:numStyleLink", "w:styleLink")
STYLE_LINKS = ("w:basedOn", "w:next", "w:link")


def used_style_ids(document: DocumentObject) -> set[str]:
    """Ids of the styles the template defines or uses, with the styles they build on."""
    parts = [document.part, *(rel.target_part for rel in document.part.rels.values() if not rel.is_external)]
    used: set[str] = set()
    for part in parts:
        element = getattr(part, "element", None)
        if element is None:
            continue
        for tag in STYLE_REFERENCES:
            used.update(node.get(qn("w:val")) for node in element.iter(qn(tag)))
    styles = {style.get(qn("w:styleId")): style for style in document.styles.element.findall(qn("w:style"))}
    # Defaults, and the styles this script defines for clerks (二级标题 …) even where unused.
    used.update(style_id for style_id, style in styles.items()
                if style.get(qn("w:default")) in ("1", "true") or style.get(qn("w:customStyle")) in ("1", "true"))
    pending = list(used)
    while pending:  # a used style needs the styles it is based on, followed by or linked to
        style = styles.get(pending.pop())
        for tag in STYLE_LINKS:
            node = style.find(qn(tag)) if style is not None else None
            if node is not None and node.get(qn("w:val")) not in used:
                used.add(node.get(qn("w:val")))
                pending.append(node.get(qn("w:val")))
    return used


def slim_package(document: DocumentObject) -> None:
    """Drop what python-docx's blank document carries and no report uses.

    About 160 unused style definitions, the parts in UNNEEDED_PART_TYPES and a thumbnail make
    up three quarters of every report's bytes, which a province downloads 100,000 times.
    Word still offers its built-in styles (from the latent style list, which stays).
    """
    used = used_style_ids(document)
    for style in document.styles.element.findall(qn("w:style")):
        if style.get(qn("w:styleId")) not in used:
            document.styles.element.remove(style)
    for rel_id, rel in list(document.part.rels.items()):
        if rel.reltype in UNNEEDED_PART_TYPES:
            document.part.drop_rel(rel_id)
    package_rels = document.part.package.rels
    for rel_id, rel in list(package_rels.items()):
        if rel.reltype == RT.THUMBNAIL:
            package_rels.pop(rel_id)


def build_template() -> DocumentObject:
    """The default report template as an in-memory python-docx Document."""
    document = Document()
    define_styles(document)
    set_compatibility(document)
    set_page_setup(document)
    set_page_numbers(document)
    # python-docx's blank document starts with no paragraphs; the content begins at the top.
    add_content(document)
    set_properties(document)
    slim_package(document)
    return document


def fixed_time_zip(data: bytes) -> bytes:
    """The same zip, members in the same order, each dated the zip epoch (1980-01-01 00:00)."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        return zip_bytes([ZipMember.deflated(info.filename, [source.read(info)]) for info in source.infolist()])


def write_template(path: Path) -> None:
    """Build the template and write it atomically (temporary name, then os.replace), readable by everyone."""
    buffer = io.BytesIO()
    build_template().save(buffer)
    # python-docx stamps each zip member with the current time: fixed times make the same
    # script give the same bytes.
    atomic_write(path, fixed_time_zip(buffer.getvalue()))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: write the template to the given path."""
    parser = argparse.ArgumentParser(description="生成默认的绩效评价报告模板 (report.docx)。")
    parser.add_argument("output", type=Path, nargs="?", default=Path("templates/report.docx"))
    args = parser.parse_args(argv)
    write_template(args.output)
    print(f"已生成模板：{args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
