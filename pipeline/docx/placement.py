"""Where a tag sits in a .docx template, as a clerk sees the document.

A finding of `perfreport check-template` names its place: a body paragraph (numbered, with a
snippet of its text), a table's row and column, a header, footer, footnote or document property.
Places come from a skeleton of the document: each paragraph's text on a line of its own, with
docxtpl's ``p``/``tr``/``tc``/``r`` tag prefixes removed, so line N of the skeleton's Jinja source
is paragraph N. A tag the skeleton cannot see (a field code, say) is placed from the compiled
source instead: the part and the text of its line, less precisely.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import docx
from docxtpl import DocxTemplate
from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
SNIPPET_CHARS = 40

# docxtpl's tag forms, rewritten to plain Jinja for the skeleton (DocxTemplate.patch_xml).
PREFIXED_TAG = re.compile(r"(\{%|\{\{)(?:tr|tc|p|r) |(\{#)(?:tr|tc|p) ")
MERGE_TAG = re.compile(r"\{%\s*(?:vm|hm)\s*%\}")
CELL_TAG = re.compile(r"\{%\s*(?:colspan|cellbg)\s+([^%]*)%\}")
INSIDE_TAG = re.compile(r"(?<=\{[{%])(.*?)(?=[}%]\})")
XML_TAG = re.compile(r"<[^>]*>")

PROPERTY_NAMES = {"author": "作者", "comments": "备注", "identifier": "标识", "language": "语言",
                  "subject": "主题", "title": "标题"}


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of the template: where a clerk finds it, and its text."""

    where: str
    text: str


def snippet(text: str) -> str:
    """A paragraph's text shortened for a message."""
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else f"{text[:SNIPPET_CHARS]}…"


def paragraph_text(paragraph: etree._Element) -> str:
    """The text of a w:p, without the text of paragraphs nested in it (text boxes)."""
    return "".join(t.text or "" for t in paragraph.iter(f"{W}t")
                   if next(t.iterancestors(f"{W}p"), None) is paragraph)


def outermost(element: etree._Element, tag: str) -> etree._Element | None:
    """The outermost ancestor of `element` with `tag`, or None."""
    found = None
    for ancestor in element.iterancestors(tag):
        found = ancestor
    return found


def table_place(paragraph: etree._Element, table: etree._Element, tables: Sequence[etree._Element]) -> str:
    """表格T第R行第C列 of a paragraph inside a top-level table (nested tables count as their cell)."""
    rows = [tr for tr in table.iter(f"{W}tr") if outermost(tr, f"{W}tbl") is table]
    row = next((a for a in paragraph.iterancestors(f"{W}tr") if a in rows), None)
    if row is None:
        return f"表格{tables.index(table) + 1}"
    cells = [tc for tc in row.iter(f"{W}tc") if next(tc.iterancestors(f"{W}tr"), None) is row]
    cell = next((a for a in paragraph.iterancestors(f"{W}tc") if a in cells), None)
    column = f"第{cells.index(cell) + 1}列" if cell is not None else ""
    return f"表格{tables.index(table) + 1}第{rows.index(row) + 1}行{column}"


def located_paragraphs(root: etree._Element, label: str) -> list[Paragraph]:
    """Every paragraph of a part in document order, placed as 正文第N段 / 表格T第R行第C列 / 页眉第N段."""
    tables = [t for t in root.iter(f"{W}tbl") if outermost(t, f"{W}tbl") is None]
    found: list[Paragraph] = []
    number = 0
    for paragraph in root.iter(f"{W}p"):
        table = outermost(paragraph, f"{W}tbl")
        in_text_box = next(paragraph.iterancestors(f"{W}p"), None) is not None
        if table is not None:
            place = table_place(paragraph, table, tables)
            where = place if label == "正文" else f"{label}{place}"
        elif in_text_box:
            where = f"{label}第{number}段的文本框"
        else:
            number += 1
            where = f"{label}第{number}段"
        text = paragraph_text(paragraph)
        found.append(Paragraph(f"{where}「{snippet(text)}」" if text.strip() else where, text))
    return found


def part_label(part: str) -> str:
    """How a clerk calls a part of the package (word/header1.xml -> 页眉)."""
    if "#" in part:
        prop = part.split("#", 1)[1]
        return f"文档属性“{PROPERTY_NAMES.get(prop, prop)}”"
    for key, label in (("header", "页眉"), ("footer", "页脚"), ("footnote", "脚注")):
        if key in part.rsplit("/", 1)[-1]:
            return label
    return "正文"


def document_paragraphs(data: bytes) -> dict[str, list[Paragraph]]:
    """The placed paragraphs of every part the pipeline renders, by part name (as in .sources)."""
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.oxml.parser import parse_xml

    document = docx.Document(io.BytesIO(data))
    main = document.part
    parts = {str(main.partname).lstrip("/"): located_paragraphs(document.element.body, "正文")}
    for uri in (DocxTemplate.HEADER_URI, DocxTemplate.FOOTER_URI):
        for rel in main.rels.values():
            if rel.is_external or rel.reltype != uri or not rel.target_part.blob:
                continue
            name = str(rel.target_part.partname).lstrip("/")
            parts.setdefault(name, located_paragraphs(parse_xml(rel.target_part.blob), part_label(name)))
    for part in main.package.parts:
        name = str(part.partname).lstrip("/")
        if "footnotes" in name and name.endswith(".xml") and name not in parts:
            parts[name] = located_paragraphs(etree.fromstring(part.blob), "脚注")
    try:
        core = main.package.part_related_by(RT.CORE_PROPERTIES)
    except KeyError:
        return parts
    properties = document.core_properties
    for prop in PROPERTY_NAMES:
        name = f"{str(core.partname).lstrip('/')}#{prop}"
        value = getattr(properties, prop) or ""
        parts[name] = [Paragraph(f"{part_label(name)}「{snippet(value)}」", value)]
    return parts


def jinja_line(text: str) -> str:
    """A paragraph's text as plain Jinja on one line, as docxtpl would hand it to Jinja."""
    text = text.replace("\r", " ").replace("\n", " ")
    text = INSIDE_TAG.sub(lambda m: m.group(0).translate(str.maketrans("‘’“”", "''\"\"")), text)
    text = PREFIXED_TAG.sub(lambda m: f"{m.group(1) or m.group(2)} ", text)
    text = MERGE_TAG.sub("", text)
    return CELL_TAG.sub(lambda m: f"{{{{ {m.group(1)} }}}}", text)


def skeleton(paragraphs: Sequence[Paragraph]) -> str:
    """The Jinja source of a part with line N holding paragraph N."""
    return "\n".join(jinja_line(p.text) for p in paragraphs)


def line_place(paragraphs: Sequence[Paragraph], lineno: int) -> str:
    """The place of the paragraph on line `lineno` of the skeleton."""
    if not paragraphs:
        return ""
    return paragraphs[max(1, min(lineno, len(paragraphs))) - 1].where


def source_place(part: str, source: str, lineno: int) -> str:
    """A rougher place from the compiled source: the part and the text of the offending line."""
    lines = source.splitlines() or [""]
    line = lines[max(1, min(lineno, len(lines))) - 1]
    text = html.unescape(XML_TAG.sub("", line))
    return f"{part_label(part)}「{snippet(text)}」" if text.strip() else part_label(part)
