"""The named styles a clerk sees in Word's style gallery, and the document defaults.

Body text uses Word's built-in Normal style, which Chinese Word and WPS display as 「正文」: a
custom style named 正文 would sit beside it under the same name. Every other style builds on
Normal and says what it changes. Styles carry ASCII ids so every Word version and LibreOffice
round-trips them unchanged.
"""

from __future__ import annotations

from docx.document import Document as DocumentObject
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING, WD_TAB_ALIGNMENT
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Pt, Twips
from docx.styles.style import BaseStyle, ParagraphStyle

from templatekit.metrics import (
    BODY_PAGE,
    LINE_PITCH_TWIPS,
    SIZE_ERHAO,
    SIZE_SANHAO,
    SIZE_SIHAO,
    SIZE_WUHAO,
    SIZE_XIAOER,
    char_pitch_twips,
    char_spacing,
    prose_width_pt,
)
from templatekit.ooxml import element

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING1_FONT = "黑体"
HEADING2_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"
LATIN_FONT = "Times New Roman"

LINE_PITCH = Twips(LINE_PITCH_TWIPS)

# Style names (what a clerk sees) and ids (what the XML and the renderer use).
NORMAL = "Normal"
STYLE_IDS: dict[str, str] = {
    "报告标题": "ReportTitle",
    "一级标题": "ReportHeading1",
    "二级标题": "ReportHeading2",
    "附件说明": "ReportAnnexNote",
    "署名": "ReportSignature",
    "成文日期": "ReportDate",
    "附件标识": "ReportAnnexLabel",
    "附件标题": "ReportAnnexTitle",
    "附件副标题": "ReportAnnexSubtitle",
    "表格文字": "ReportTable",
    "表格文字（居左）": "ReportTableLeft",
    # pipeline/docx merges equal cells of this style vertically after rendering (一级/二级指标).
    "表格文字（相同合并）": "ReportTableMerge",
    "表格标题行": "ReportTableHead",
    "表间距": "ReportTableGap",
    "页码": "ReportPageNumber",
    # 部门汇总报告 only (scripts/templatekit/department.py): the chart's paragraph and caption.
    "图片": "ReportFigure",
    "图题": "ReportFigureCaption",
}

_THEME_FONT_ATTRS = ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme")


def style_id(name: str) -> str | None:
    """The id of a named style; None for Normal (Word writes Normal paragraphs without w:pStyle)."""
    return None if name == NORMAL else STYLE_IDS[name]


def set_rfonts(rfonts: BaseOxmlElement, east_asian: str, latin: str) -> None:
    """Write explicit fonts for every script (Latin, East-Asian, complex) on a w:rFonts."""
    # Theme attributes win over explicit names in Word, and python-docx's theme maps East-Asian
    # text to MS Mincho, so they must go.
    for attr in _THEME_FONT_ATTRS:
        rfonts.attrib.pop(qn(attr), None)
    rfonts.set(qn("w:ascii"), latin)
    rfonts.set(qn("w:hAnsi"), latin)
    rfonts.set(qn("w:eastAsia"), east_asian)
    rfonts.set(qn("w:cs"), latin)


def set_fonts(style: BaseStyle, east_asian: str, latin: str) -> None:
    """Explicit fonts for every script on a style."""
    set_rfonts(style.element.get_or_add_rPr().get_or_add_rFonts(), east_asian, latin)


def set_document_defaults(document: DocumentObject) -> None:
    """Chinese run defaults (fonts, 三号, language) instead of Calibri/MS Mincho."""
    defaults = document.styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    set_rfonts(rpr.find(qn("w:rFonts")), BODY_FONT, LATIN_FONT)
    # The character grid's pitch is counted from the default size: keep it the body's 三号.
    for tag in ("w:sz", "w:szCs"):
        node = rpr.find(qn(tag))
        if node is None:
            node = element(tag)
            rpr.insert(list(rpr).index(rpr.find(qn("w:lang"))), node)
        node.set(qn("w:val"), str(round(SIZE_SANHAO * 2)))
    # Word picks the font of ambiguous characters (quotes, dashes) by the East-Asian language.
    rpr.find(qn("w:lang")).set(qn("w:eastAsia"), "zh-CN")
    spacing = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr")).find(qn("w:spacing"))
    spacing.set(qn("w:after"), "0")


def set_chars_indent(style: ParagraphStyle, *, first_line: int = 0, right: int = 0) -> None:
    """Indents in whole characters (w:firstLineChars, w:rightChars), which Word keeps right when
    the size changes, with the twip values of the body grid for programs that ignore them."""
    pitch = char_pitch_twips(BODY_PAGE)
    style.paragraph_format.first_line_indent = Twips(round(first_line * pitch))
    style.paragraph_format.right_indent = Twips(round(right * pitch)) if right else None
    ind = style.element.get_or_add_pPr().get_or_add_ind()
    ind.set(qn("w:firstLineChars"), str(first_line * 100))
    if right:
        ind.set(qn("w:rightChars"), str(right * 100))


def set_ppr_flag(style: BaseStyle, tag: str, value: str | None = None) -> None:
    """Append a paragraph property (w:outlineLvl, w:snapToGrid …) to a style."""
    ppr = style.element.get_or_add_pPr()
    ppr.append(element(tag, {"val": value} if value is not None else None))


def add_paragraph_style(document: DocumentObject, name: str, east_asian: str, size_pt: float, *,
                        latin: str = LATIN_FONT, base: str = NORMAL) -> ParagraphStyle:
    """A named paragraph style with explicit fonts and size, exact body line pitch, no indent."""
    style = document.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    style.style_id = STYLE_IDS[name]
    style.base_style = document.styles[base]
    style.quick_style = True
    style.font.size = Pt(size_pt)
    set_fonts(style, east_asian, latin)
    fmt = style.paragraph_format
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = LINE_PITCH
    set_chars_indent(style)  # Normal indents the first line by two characters; these do not
    return style


def own_pitch(style: ParagraphStyle) -> None:
    """Text of another size than 三号 (title, tables, page number) keeps its natural pitch: no
    narrowing of its characters (Normal's -0.3 pt is for 28 characters of 三号)."""
    style.element.get_or_add_rPr().append(element("w:spacing", {"val": "0"}))


def define_normal(document: DocumentObject) -> None:
    """Normal (正文): 仿宋_GB2312 三号, justified, first line indented two characters, 28.95 pt lines."""
    set_document_defaults(document)
    normal = document.styles[NORMAL]
    normal.font.size = Pt(SIZE_SANHAO)
    set_fonts(normal, BODY_FONT, LATIN_FONT)
    fmt = normal.paragraph_format
    fmt.space_after = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = LINE_PITCH
    fmt.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    # Chinese typesetting does not keep widows and orphans; it would leave uneven page bottoms.
    fmt.widow_control = False
    set_chars_indent(normal, first_line=2)
    # 28 characters a line (GB/T 9704 5.2.2). The section's character grid says so to Word's
    # 页面设置 (28 字 x 22 行), but LibreOffice lays such a grid out differently from Word: a 三号
    # character wider than the 15.79 pt grid pitch takes two cells (measured: 16 characters a
    # line, spread across the page). So the text stays off the grid and narrows its own
    # characters to the same pitch, which Word and LibreOffice both honour, and its exact
    # 28.95 pt line spacing gives the grid's 22 lines.
    set_ppr_flag(normal, "w:snapToGrid", "0")
    normal.element.get_or_add_rPr().append(element("w:spacing", {"val": str(char_spacing(BODY_PAGE))}))


def define_body_styles(document: DocumentObject) -> None:
    """报告标题, 一级标题, 二级标题 and the ending's 附件说明, 署名, 成文日期."""
    title = add_paragraph_style(document, "报告标题", TITLE_FONT, SIZE_ERHAO, latin=TITLE_FONT)
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    # A 22pt title needs more than one body line; one empty body line separates it from the text.
    title.paragraph_format.line_spacing = Pt(36)
    title.paragraph_format.space_after = LINE_PITCH
    title.paragraph_format.keep_with_next = True
    own_pitch(title)
    set_ppr_flag(title, "w:outlineLvl", "0")

    for name, font, level in (("一级标题", HEADING1_FONT, "1"), ("二级标题", HEADING2_FONT, "2")):
        heading = add_paragraph_style(document, name, font, SIZE_SANHAO, latin=font)
        heading.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        set_chars_indent(heading, first_line=2)
        heading.paragraph_format.keep_with_next = True
        set_ppr_flag(heading, "w:outlineLvl", level)

    # GB/T 9704 7.3.4: 附件说明 one line below the text, two characters in.
    note = add_paragraph_style(document, "附件说明", BODY_FONT, SIZE_SANHAO)
    set_chars_indent(note, first_line=2)
    note.paragraph_format.space_before = LINE_PITCH
    note.paragraph_format.keep_with_next = True

    # GB/T 9704 7.3.5.1 (sealed documents): 成文日期 right-aligned four characters in; the
    # 署名 centred over it; the seal's top within a line of the text above, so two empty lines.
    pitch = char_pitch_twips(BODY_PAGE)
    date = add_paragraph_style(document, "成文日期", BODY_FONT, SIZE_SANHAO)
    date.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    set_chars_indent(date, right=4)
    signature = add_paragraph_style(document, "署名", BODY_FONT, SIZE_SANHAO)
    signature.paragraph_format.space_before = Twips(2 * LINE_PITCH_TWIPS)
    signature.paragraph_format.keep_with_next = True
    # The signature is centred on a tab stop at the middle of a typical date: its right edge
    # is four characters in, and "2021年3月15日" is 8 characters wide (6.5 for the characters,
    # digits being half, and a quarter at each of the six places where digits meet Chinese,
    # Word's automatic spacing), so the middle lies 4 + 4 characters left of the margin. Dates
    # one digit shorter or longer move the middle by a quarter character.
    type_width = BODY_PAGE.type_width_twips
    date_width = prose_width_pt("2021年3月15日", SIZE_SANHAO) / SIZE_SANHAO * pitch
    centre = round(type_width - 4 * pitch - date_width / 2)
    signature.paragraph_format.tab_stops.add_tab_stop(Twips(centre), WD_TAB_ALIGNMENT.CENTER)


def define_annex_styles(document: DocumentObject) -> None:
    """附件标识, 附件标题, 附件副标题 of the 附件 page (GB/T 9704 8: 附件 on line 1, title on line 3)."""
    label = add_paragraph_style(document, "附件标识", HEADING1_FONT, SIZE_SANHAO, latin=HEADING1_FONT)
    label.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.LEFT
    label.paragraph_format.space_after = LINE_PITCH
    label.paragraph_format.keep_with_next = True
    title = add_paragraph_style(document, "附件标题", TITLE_FONT, SIZE_XIAOER, latin=TITLE_FONT)
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title.paragraph_format.keep_with_next = True
    own_pitch(title)
    subtitle = add_paragraph_style(document, "附件副标题", HEADING2_FONT, SIZE_SANHAO, latin=HEADING2_FONT)
    subtitle.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    subtitle.paragraph_format.keep_with_next = True


def define_table_styles(document: DocumentObject) -> None:
    """表格文字 (centred: numbers, short labels), 表格文字（居左） (long text), 表格文字（相同合并）
    (一级/二级指标, merged vertically when equal), 表格标题行 (黑体 headers) and 表间距."""
    text = add_paragraph_style(document, "表格文字", BODY_FONT, SIZE_WUHAO)
    text.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    # Table text is single-spaced: a fixed 29pt pitch would make 五号 rows absurdly tall.
    text.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    own_pitch(text)
    left = add_paragraph_style(document, "表格文字（居左）", BODY_FONT, SIZE_WUHAO, base="表格文字")
    left.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.LEFT
    left.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    merge = add_paragraph_style(document, "表格文字（相同合并）", BODY_FONT, SIZE_WUHAO, base="表格文字")
    merge.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    merge.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    head = add_paragraph_style(document, "表格标题行", HEADING1_FONT, SIZE_WUHAO, latin=HEADING1_FONT, base="表格文字")
    head.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    head.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    # The paragraph Word needs between the form's two tables (else it joins them): 0.1 pt high,
    # so the tables' borders meet.
    gap = add_paragraph_style(document, "表间距", BODY_FONT, 1)
    gap.paragraph_format.line_spacing = Twips(2)
    gap.paragraph_format.keep_with_next = True
    own_pitch(gap)


def define_page_number_style(document: DocumentObject) -> None:
    """页码: 宋体 四号, single-spaced and off the grid so its line is exactly one em tall."""
    page_number = add_paragraph_style(document, "页码", PAGE_NUMBER_FONT, SIZE_SIHAO,
                                      latin=PAGE_NUMBER_FONT, base="Footer")
    page_number.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    own_pitch(page_number)
    set_ppr_flag(page_number, "w:snapToGrid", "0")  # a grid line would make the line 28.95 pt tall


def define_styles(document: DocumentObject) -> None:
    """Normal and every named style of the templates."""
    define_normal(document)
    define_body_styles(document)
    define_annex_styles(document)
    define_table_styles(document)
    define_page_number_style(document)
