"""Assemble a template from the pieces and write it with fixed bytes."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement

from pipeline.write.files import atomic_write
from pipeline.write.zipfiles import ZipMember, zip_bytes
from templatekit.department import SUBJECT as DEPARTMENT_SUBJECT
from templatekit.department import add_department_body
from templatekit.form import annex_blocks
from templatekit.ooxml import (
    app_xml,
    element,
    font_table_xml,
    paragraph,
    set_compatibility,
    sort_properties,
)
from templatekit.outlines import ENDING, OUTLINES, Block
from templatekit.page import set_body_section, split_off_annex
from templatekit.styles import STYLE_IDS, define_styles, style_id

# The template's own dates are a fixed neutral instant (the zip format's epoch, as its members
# carry); each report's are stamped from its 成文日期 by the renderer.
TEMPLATE_DATE = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)
SUBJECT = "项目支出绩效评价报告"


def append_blocks(document: DocumentObject, blocks: list[Block]) -> BaseOxmlElement:
    """Append paragraphs before the final section properties; returns the last one."""
    sect_pr = document.element.body.sectPr
    last = None
    for block in blocks:
        keep = [element("w:keepNext")] if len(block) > 2 and block[2] else []
        last = paragraph(style_id(block[0]), block[1], keep)
        sect_pr.addprevious(last)
    assert last is not None
    return last


def set_properties(document: DocumentObject, subject: str = SUBJECT) -> None:
    """Core properties: docxtpl renders the string ones, so the title is each report's own."""
    props = document.core_properties
    props.title = "{{ title }}"
    props.subject = subject
    props.author = "{{ signature }}"
    props.last_modified_by = "perfreport"
    props.comments = ""
    props.keywords = ""
    props.category = ""
    props.revision = 1
    props.created = TEMPLATE_DATE.replace(tzinfo=None)
    props.modified = TEMPLATE_DATE.replace(tzinfo=None)


# Parts of python-docx's blank document that no report needs: Word 2010's second copy of the
# styles, web-page settings, a bibliography item and the numbering definitions (no list here).
UNNEEDED_PART_TYPES = ("http://schemas.microsoft.com/office/2007/relationships/stylesWithEffects",
                       RT.WEB_SETTINGS, RT.CUSTOM_XML, RT.NUMBERING)
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
    # Defaults, and the styles this script defines for clerks (二级标题 …) even where unused. (Not
    # every custom style: the blank document's "Heading 1 Char" and the like are custom too, and
    # would keep their Calibri, MS Mincho and Courier headings alive.)
    used.update(style_id for style_id, style in styles.items()
                if style.get(qn("w:default")) in ("1", "true") or style_id in STYLE_IDS.values())
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
    for rel_id, rel in list(document.part.rels.items()):
        if rel.reltype in UNNEEDED_PART_TYPES:
            document.part.drop_rel(rel_id)
    used = used_style_ids(document)  # after the numbering part went: its list styles go with it
    for style in document.styles.element.findall(qn("w:style")):
        if style.get(qn("w:styleId")) not in used:
            document.styles.element.remove(style)
    package_rels = document.part.package.rels
    for rel_id, rel in list(package_rels.items()):
        if rel.reltype == RT.THUMBNAIL:
            package_rels.pop(rel_id)


# The department report (部门汇总报告): one portrait section, its own body (templatekit.department).
DEPARTMENT = "department"
OUTLINE_NAMES = (*OUTLINES, DEPARTMENT)


def build_template(outline: str) -> DocumentObject:
    """A template (`outline`: "report", "full" or "department") as an in-memory python-docx Document."""
    document = Document()
    define_styles(document)
    set_compatibility(document.settings.element)
    set_body_section(document)
    if outline == DEPARTMENT:
        add_department_body(document)
        set_properties(document, DEPARTMENT_SUBJECT)
    else:
        append_blocks(document, OUTLINES[outline]())
        date = append_blocks(document, list(ENDING))
        split_off_annex(document, date)
        sect_pr = document.element.body.sectPr
        for block in annex_blocks():
            sect_pr.addprevious(block)
        set_properties(document)
    slim_package(document)
    sort_properties(document.styles.element)
    sort_properties(document.element)
    for section in document.sections[:1]:
        sort_properties(section.footer._element)
        sort_properties(section.even_page_footer._element)
    return document


# Package parts written here rather than by python-docx (see ooxml.py).
REPLACED_PARTS: Mapping[str, Callable[[], bytes]] = {
    "word/fontTable.xml": font_table_xml,
    "docProps/app.xml": app_xml,
}


def fixed_zip(data: bytes) -> bytes:
    """The same zip with REPLACED_PARTS rewritten, members in the same order, each dated the
    zip epoch (python-docx stamps the current time, so the same script would give new bytes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        members = [
            ZipMember.deflated(info.filename, [REPLACED_PARTS[info.filename]() if info.filename in REPLACED_PARTS
                                               else source.read(info)])
            for info in source.infolist()
        ]
    return zip_bytes(members)


def template_bytes(outline: str) -> bytes:
    """The finished template file's bytes."""
    buffer = io.BytesIO()
    build_template(outline).save(buffer)
    return fixed_zip(buffer.getvalue())


def write_template(path: Path, outline: str) -> None:
    """Build the template and write it atomically (temporary name, then os.replace)."""
    atomic_write(path, template_bytes(outline))
