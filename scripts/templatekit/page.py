"""The two sections: the portrait body on the GB/T 9704 grid, then the landscape 附件.

A report is one portrait section (the text, ending with 署名 and 成文日期) followed by a
landscape section starting on a new page (the 附件 form). The first section's properties live
in the 成文日期 paragraph itself, so no empty paragraph after the date can spill onto a page of
its own; the 附件 section shares the body's footers and continues its page numbers.
"""

from __future__ import annotations

import copy

from docx.document import Document as DocumentObject
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Pt
from docx.text.paragraph import Paragraph

from templatekit.metrics import (
    ANNEX_PAGE,
    BODY_PAGE,
    LINE_PITCH_TWIPS,
    SIZE_SIHAO,
    PageGeometry,
    char_space,
    footer_distance_twips,
    mm_twips,
)
from templatekit.ooxml import add_hint_to_runs, element

HEADER_DISTANCE_MM = 15


def set_geometry(sect_pr: BaseOxmlElement, geometry: PageGeometry, *, chars_grid: bool) -> None:
    """Sheet size, margins, footer distance and document grid of one section."""
    pg_sz = sect_pr.find(qn("w:pgSz"))
    pg_sz.attrib.clear()
    pg_sz.set(qn("w:w"), str(mm_twips(geometry.width_mm)))
    pg_sz.set(qn("w:h"), str(mm_twips(geometry.height_mm)))
    if geometry.landscape:
        pg_sz.set(qn("w:orient"), "landscape")
    pg_mar = sect_pr.find(qn("w:pgMar"))
    pg_mar.attrib.clear()
    for name, value in (("top", geometry.top_mm), ("right", geometry.right_mm),
                        ("bottom", geometry.bottom_mm), ("left", geometry.left_mm),
                        ("header", HEADER_DISTANCE_MM)):
        pg_mar.set(qn(f"w:{name}"), str(mm_twips(value)))
    pg_mar.set(qn("w:footer"), str(footer_distance_twips(geometry)))
    pg_mar.set(qn("w:gutter"), "0")
    grid = sect_pr.find(qn("w:docGrid"))
    grid.attrib.clear()
    if chars_grid:
        # 22 lines of 28 characters (GB/T 9704 5.2.2); see metrics.char_space for the -842.
        grid.set(qn("w:type"), "linesAndChars")
        grid.set(qn("w:linePitch"), str(LINE_PITCH_TWIPS))
        grid.set(qn("w:charSpace"), str(char_space(geometry)))
    else:
        # The form's 五号 text keeps its own pitch; only the line grid of the body remains.
        grid.set(qn("w:type"), "lines")
        grid.set(qn("w:linePitch"), str(LINE_PITCH_TWIPS))
    for attr in ("w:rsidR", "w:rsidRPr", "w:rsidSect"):
        sect_pr.attrib.pop(qn(attr), None)


def add_page_field(paragraph: Paragraph) -> None:
    """Append a PAGE field between 一字线: "— 1 —"."""
    paragraph.add_run("— ")
    for kind, text in (("begin", None), ("instr", " PAGE \\* MERGEFORMAT "), ("separate", None)):
        run = paragraph.add_run()
        if kind == "instr":
            instr = element("w:instrText", {"xml:space": "preserve"})
            instr.text = text
            run._r.append(instr)
        else:
            run._r.append(element("w:fldChar", {"fldCharType": kind}))
    paragraph.add_run("1")
    paragraph.add_run()._r.append(element("w:fldChar", {"fldCharType": "end"}))
    paragraph.add_run(" —")


def set_page_numbers(document: DocumentObject) -> None:
    """Odd pages number at the right, even pages at the left, one character in (GB/T 9704 7.5)."""
    document.settings.odd_and_even_pages_header_footer = True
    section = document.sections[0]
    for footer, alignment in (
        (section.footer, WD_ALIGN_PARAGRAPH.RIGHT),
        (section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT),
    ):
        footer.is_linked_to_previous = False
        paragraph = footer.paragraphs[0]
        paragraph.style = document.styles["页码"]
        paragraph.alignment = alignment
        if alignment == WD_ALIGN_PARAGRAPH.RIGHT:
            paragraph.paragraph_format.right_indent = Pt(SIZE_SIHAO)
        else:
            paragraph.paragraph_format.left_indent = Pt(SIZE_SIHAO)
        add_page_field(paragraph)
        add_hint_to_runs(footer._element)


def set_body_section(document: DocumentObject) -> None:
    """The whole document as one portrait GB/T 9704 section with page numbers (before the split)."""
    set_geometry(document.sections[0]._sectPr, BODY_PAGE, chars_grid=True)
    set_page_numbers(document)


def split_off_annex(document: DocumentObject, last_body_paragraph: BaseOxmlElement) -> None:
    """End the body section at `last_body_paragraph` and make the rest a landscape section.

    The body's section properties (portrait, footers) move into that paragraph; the document's
    final section properties become the 附件's: landscape, starting on a new page, with no
    footer references of its own, so Word and LibreOffice use the body's footers.
    """
    final = document.element.body.sectPr
    body_sect = copy.deepcopy(final)
    ppr = last_body_paragraph.find(qn("w:pPr"))
    if ppr is None:
        ppr = element("w:pPr")
        last_body_paragraph.insert(0, ppr)
    ppr.append(body_sect)
    for reference in final.findall(qn("w:footerReference")) + final.findall(qn("w:headerReference")):
        final.remove(reference)
    set_geometry(final, ANNEX_PAGE, chars_grid=False)
    kind = element("w:type", {"val": "nextPage"})
    final.insert(0, kind)

