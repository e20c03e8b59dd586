"""部门汇总报告.docx: the department template rendered once per workbook, with its chart.

The text is rendered as every report is (`fastrender.CompiledTemplate`: the sandboxed, escaping,
strict environment, fixed zip dates, docProps/core.xml dated from `report_date_iso`, the run's
date), after the same static check as `perfreport check-template` against the department's own
field table. The chart is not a template variable: the template holds a placeholder picture
named `CHART_NAME` (Word shows it where the clerk put it, at the size they gave it), and the
rendered document gets the chart drawn at that picture's size in place of the placeholder's
bytes. A clerk who deletes the picture gets a report without a chart; one who moves or resizes it
gets the chart there, at that size.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from lxml import etree

from pipeline.core.department import (
    CHART_NAME,
    DEPARTMENT_TEMPLATE,
    chart_panels,
    department_context,
)
from pipeline.docx.chart import chart_png
from pipeline.docx.checkreport import invalid_message
from pipeline.docx.contextrules import DEPARTMENT_FIELDS
from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.render import template_bytes
from pipeline.docx.templatecheck import template_check
from pipeline.errors import TemplateInvalid
from pipeline.write.files import atomic_write
from pipeline.write.zipfiles import ZipMember, zip_bytes

DOCUMENT = "word/document.xml"
DOCUMENT_RELS = "word/_rels/document.xml.rels"
MEMBER_MODE = 0o600  # as the reports' members (fastrender)
NS = {
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
# Parsing rendered parts of our own output: no entities, no network, as everywhere else.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def department_template(templates_dir: Path) -> CompiledTemplate:
    """The department template compiled, or TemplateInvalid with what is wrong in it."""
    path = templates_dir / DEPARTMENT_TEMPLATE
    check = template_check(path.name, template_bytes(path), DEPARTMENT_FIELDS)
    if check.compiled is None or check.findings:
        raise TemplateInvalid(invalid_message(path.name, check.findings))
    return check.compiled


def chart_target(archive: zipfile.ZipFile) -> tuple[str, int, int] | None:
    """The zip member of the chart picture's image and the picture's size (EMU), or None when the
    document has no picture named CHART_NAME."""
    body = etree.fromstring(archive.read(DOCUMENT), PARSER)
    for doc_pr in body.iter(f"{{{NS['wp']}}}docPr"):
        if doc_pr.get("name") != CHART_NAME:
            continue
        drawing = doc_pr.getparent()  # wp:inline or wp:anchor
        extent = drawing.find("wp:extent", NS)
        blip = drawing.find(".//a:blip", NS)
        if extent is None or blip is None:
            continue
        rel_id = blip.get(f"{{{NS['r']}}}embed")
        rels = etree.fromstring(archive.read(DOCUMENT_RELS), PARSER)
        for rel in rels.iterfind("rel:Relationship", NS):
            if rel.get("Id") == rel_id and rel.get("TargetMode") != "External":
                member = posixpath.normpath(posixpath.join("word", rel.get("Target", "")))
                if not member.lower().endswith(".png"):
                    raise TemplateInvalid(f"模板 {DEPARTMENT_TEMPLATE} 有误：图片“{CHART_NAME}”须为 PNG 图片"
                                          "（生成报告时换成统计图）")
                return member.lstrip("/"), int(extent.get("cx", "0")), int(extent.get("cy", "0"))
    return None


def with_chart(document: bytes, rows: Sequence[Mapping[str, object]]) -> bytes:
    """The rendered document with the chart of `rows` in place of the placeholder picture's
    image; unchanged when the template has no such picture."""
    with zipfile.ZipFile(io.BytesIO(document)) as archive:
        target = chart_target(archive)
        if target is None:
            return document
        member, width, height = target
        png = chart_png(chart_panels(rows), width, height)
        members = [ZipMember.deflated(info.filename, [png if info.filename == member else archive.read(info)])
                   for info in archive.infolist()]
    return zip_bytes(members, mode=MEMBER_MODE)


def department_report_bytes(rows: Sequence[Mapping[str, object]], templates_dir: Path, run_date: date,
                            title_hint: str, *, year: str = "") -> bytes:
    """部门汇总报告.docx for a workbook's summary rows (workbook order), as bytes.

    `title_hint` names the report when the projects have several 主管部门 (the workbook's name);
    `year` ("2020", the projects' 年度) goes into the title when given; `run_date` is the 成文日期
    and the document's created/modified date. The same rows always give the same bytes.
    """
    context = department_context(rows, run_date=run_date, title_hint=title_hint, year=year)
    return with_chart(department_template(templates_dir).render(context), rows)


def write_department_report(path: Path, rows: Sequence[Mapping[str, object]], templates_dir: Path,
                            run_date: date, title_hint: str, *, year: str = "") -> Path:
    """Write `department_report_bytes` atomically to `path`."""
    atomic_write(path, department_report_bytes(rows, templates_dir, run_date, title_hint, year=year))
    return path
