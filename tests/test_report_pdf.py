"""The example's reports as LibreOffice prints them, read back from the PDF with positions.

What an office clerk would otherwise fix by hand: a figure or an indicator name broken across
two lines of a table cell, a table running past the margins, the attachment printed before the
signature or on a portrait page. The whole module shares ONE run of the pipeline on the shipped
example and ONE LibreOffice batch (starting soffice costs seconds); a small document made here
goes through the same batch to prove that each check fails when the layout is wrong.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm

from tests.inprocess import reports_of
from tests.pdftext import (
    Box,
    Line,
    Page,
    Section,
    Word,
    bbox_layout_pages,
    compact,
    convert_to_pdf,
    docx_paragraph_texts,
    docx_sections,
    is_page_number,
    pdf_pages,
    section_of,
    split_occurrences,
    whole_count,
    words_outside,
)

ROOT = Path(__file__).resolve().parent.parent
# Tokens the issue saw broken in the old 绩效自评表 ("100.00 / %", "满意度指 / 标").
TOKENS = ("100.00%", "85.62%", "1.08万元", "≥4000件", "服务对象满意度指标")
# GB/T 9704 body page: A4 portrait, margins top 37, left 28, right 26, bottom 35 mm.
A4_MM = (210.0, 297.0)
BODY_MARGINS_MM = (37.0, 28.0, 26.0, 35.0)
# Points a glyph box may reach past the type area: full-width punctuation at a line's end
# measures a few tenths of a point past the right margin in LibreOffice's output.
TOLERANCE = 1.5
EM = 16.0  # one character of the body text, 三号 = 16 pt
ATTACHMENT_HEADING = re.compile(r"^附件\d*$")
# The indicator table's header row (the official form's labels) and how far below a page's top
# line its cells may reach (a two-line cell such as 偏差原因分析及改进措施 is centred vertically).
HEADER_LABELS = ("一级指标", "二级指标", "三级指标", "分值", "得分")
HEADER_BAND = 30.0
DATE = re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$")
EPOCH = "1700000000"  # 2023-11-15 in Asia/Shanghai: the run's date where a project gives none


@dataclass(frozen=True, slots=True)
class Printed:
    """One .docx and the PDF LibreOffice printed from it."""

    name: str
    pages: tuple[Page, ...]
    sections: tuple[Section, ...]
    paragraphs: tuple[str, ...]  # the .docx's paragraph texts, whitespace removed
    context: dict[str, object]  # the report's template context ({} for the probe)


@dataclass(frozen=True, slots=True)
class Rendered:
    """The example's reports, and the probe document that shows the checks can fail."""

    reports: tuple[Printed, ...]
    probe: Printed


def probe_document(path: Path) -> Path:
    """A document laid out wrongly on purpose, in the reports' page geometry.

    Page 1 (A4 portrait, GB/T 9704 margins): a paragraph holding two tokens whole; a table whose
    12 mm column breaks the same tokens; a table 210 mm wide whose right cell lies beyond the
    type area. Page 2: a signature and date alone, set flush right, not four characters in.
    Page 3 (A4 landscape): "附件".
    """
    document = docx.Document()
    body = document.sections[0]
    body.page_width, body.page_height = Mm(A4_MM[0]), Mm(A4_MM[1])
    body.top_margin, body.left_margin, body.right_margin, body.bottom_margin = map(Mm, BODY_MARGINS_MM)
    document.add_paragraph(f"整段文字中的{TOKENS[0]}和{TOKENS[4]}印在一行之内。")
    for widths, texts in (((12, 60), ((TOKENS[0], "窄列"), (TOKENS[4], "窄列"))),
                          ((150, 60), (("版心之内", "超出版心"),))):
        table = document.add_table(rows=len(texts), cols=2)
        table.style, table.autofit = "Table Grid", False
        for column, width in zip(table.columns, widths, strict=True):
            column.width = Mm(width)
        for row, row_texts in zip(table.rows, texts, strict=True):
            for cell, width, text in zip(row.cells, widths, row_texts, strict=True):
                cell.width, cell.text = Mm(width), text
        document.add_paragraph("")
    document.add_page_break()
    for text in ("如皋市信访局", "2021年3月15日"):
        document.add_paragraph(text).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    attachment = document.add_section(WD_SECTION.NEW_PAGE)
    attachment.orientation = WD_ORIENT.LANDSCAPE
    attachment.page_width, attachment.page_height = Mm(A4_MM[1]), Mm(A4_MM[0])
    document.add_paragraph("附件")
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def printed(document: Path, pdf: Path, context: dict[str, object]) -> Printed:
    """What the checks read of one document: its PDF's pages, its sections, its paragraph texts."""
    return Printed(document.name, tuple(pdf_pages(pdf)), tuple(docx_sections(document)),
                   tuple(docx_paragraph_texts(document)), context)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The shipped example run through the pipeline, its reports and the probe printed in one batch."""
    for tool, package in (("soffice", "LibreOffice"), ("pdftotext", "poppler-utils")):
        if shutil.which(tool) is None:
            pytest.skip(f"{package} ({tool}) is not installed")
    root = tmp_path_factory.mktemp("report-pdf")
    [example] = sorted((ROOT / "input").glob("*.xlsx"))
    workbook = root / "input" / example.name
    workbook.parent.mkdir()
    shutil.copyfile(example, workbook)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", EPOCH)
        reports_dir, contexts = reports_of(workbook, root / "output")
    reports = sorted(reports_dir.glob("*.docx"))
    assert len(reports) == len(contexts) > 0
    probe = probe_document(root / "probe" / "版式探针.docx")
    pdfs = convert_to_pdf([*reports, probe], root / "pdf", root / "lo-profile")
    return Rendered(tuple(printed(d, p, contexts[d.name]) for d, p in zip(reports, pdfs[:-1], strict=True)),
                    printed(probe, pdfs[-1], {}))


def joined(page: Page) -> str:
    """The page's text with line breaks removed, to find sentences that wrap."""
    return "".join(line.text for line in page.lines)


def printed_lines(page: Page, section: Section) -> list[Line]:
    """The page's lines without its page number, top to bottom (not in pdftotext's reading order,
    which may take a right-aligned line out of its place)."""
    lines = [line for line in page.lines if not is_page_number(line, section.type_area)]
    return sorted(lines, key=lambda line: (round(line.box.top), line.box.left))


def first_text(report: Printed, page: Page) -> str:
    """The text of the page's top line."""
    lines = printed_lines(page, section_of(page, report.sections))
    return lines[0].text if lines else ""


def attachment_start(report: Printed) -> int:
    """The index of the first page headed 附件 (GB/T 9704: the word alone on the attachment's first line).

    Not any page starting with 附件: the body's 附件说明 ("附件：项目支出绩效自评表") above the
    signature may begin a page too.
    """
    starts = [i for i, page in enumerate(report.pages) if ATTACHMENT_HEADING.match(first_text(report, page))]
    assert starts, f"{report.name}: no page is headed 附件"
    return starts[0]


def context_text(report: Printed, key: str) -> str:
    value = report.context.get(key)
    assert isinstance(value, str) and value, f"{report.name}: the report context has no {key}"
    return compact(value)


def signature_and_date(report: Printed) -> tuple[Line, Line, Section]:
    """The last two printed lines of the last body page (the page before 附件), and its section."""
    last = report.pages[attachment_start(report) - 1]
    section = section_of(last, report.sections)
    lines = printed_lines(last, section)
    assert len(lines) >= 2, f"{report.name} p.{last.number}: {lines}"
    return lines[-2], lines[-1], section


# --- the example's reports ------------------------------------------------------------------


@pytest.mark.parametrize("token", TOKENS)
def test_no_figure_or_indicator_name_is_broken_across_lines(rendered: Rendered, token: str) -> None:
    typed = sum(text.count(token) for report in rendered.reports for text in report.paragraphs)
    assert typed > 0, f"{token} occurs in none of the example's reports: this check would prove nothing"
    broken = [f"{report.name} p.{number}: {' / '.join(pieces)}"
              for report in rendered.reports for number, pieces in split_occurrences(report.pages, token)]
    assert not broken, f"{token} is broken across lines:\n" + "\n".join(broken)
    # Reading order aside: every occurrence in the .docx is printed whole somewhere.
    for report in rendered.reports:
        in_docx = sum(text.count(token) for text in report.paragraphs)
        assert whole_count(report.pages, token) >= in_docx, f"{report.name}: {token} not printed whole {in_docx}×"


def figures(context: dict[str, object]) -> set[str]:
    """The figures a report's form prints, from its own context: amounts, rates, targets, scores.

    Only values holding a digit plus a decimal point, unit or operator: a run of digits crossing
    a line break is a broken figure whatever it is, and such values cannot match by chance
    across two unrelated lines the way a bare "10" could.
    """
    budget = context.get("budget")
    values: list[object] = [context.get("total_score")]
    values += list(budget.values()) if isinstance(budget, dict) else []
    for key, fields in (("sources", ("initial", "adjusted", "spent")),
                        ("indicators", ("target", "actual", "score", "fraction"))):
        items = context.get(key)
        values += [item.get(f) for item in items if isinstance(item, dict) for f in fields] if isinstance(items, list) else []
    texts = {compact(v) for v in values if isinstance(v, str)}
    return {t for t in texts if len(t) >= 3 and any(c.isdigit() for c in t) and not t.isdigit()}


def inside_another(pieces: tuple[str, ...], others: set[tuple[str, ...]]) -> bool:
    """Whether this break is part of a longer figure's break at the same line ends ("0.0 / 0" of "100.0 / 0")."""
    return any(o != pieces and len(o) == len(pieces) and o[0].endswith(pieces[0]) and o[1:-1] == pieces[1:-1]
               and o[-1].startswith(pieces[-1]) for o in others)


def test_no_figure_of_a_reports_form_is_broken_across_lines(rendered: Rendered) -> None:
    broken = []
    for report in rendered.reports:
        shown = figures(report.context)
        assert shown, f"{report.name}: no figures in the report context"
        for page in report.pages:
            found = {pieces for figure in shown for _, pieces in split_occurrences([page], figure)}
            broken += [f"{report.name} p.{page.number}: {' / '.join(pieces)}"
                       for pieces in sorted(found) if not inside_another(pieces, found)]
    assert not broken, "figures broken across lines:\n" + "\n".join(broken)


def test_every_word_lies_inside_its_pages_type_area(rendered: Rendered) -> None:
    outside = []
    for report in rendered.reports:
        for page in report.pages:
            section = section_of(page, report.sections)
            outside.extend(f"{report.name} p.{page.number}: {word.text!r} at {word.box}"
                           for word in words_outside(page, section.type_area, TOLERANCE))
    assert not outside, "words outside the type area (版心):\n" + "\n".join(outside)


def test_the_body_pages_are_a4_portrait_with_gbt9704_margins(rendered: Rendered) -> None:
    for report in rendered.reports:
        body = report.sections[0]
        assert (round(body.width / 72 * 25.4), round(body.height / 72 * 25.4)) == A4_MM, report.name
        assert body.margins_mm() == BODY_MARGINS_MM, report.name
        assert not report.pages[0].landscape and body.fits(report.pages[0]), report.name


def test_the_attachment_page_follows_the_signed_and_dated_body(rendered: Rendered) -> None:
    for report in rendered.reports:
        first = attachment_start(report)
        conclusion = context_text(report, "conclusion")
        held = [page.number for page in report.pages[:first] if conclusion in joined(page)]
        assert held, f"{report.name}: the conclusion {conclusion} is on no page before 附件"
        signature, date, _ = signature_and_date(report)
        assert DATE.match(date.text), f"{report.name}: the last body page ends with {date.text!r}, not a date"
        assert date.text == context_text(report, "report_date"), report.name
        assert signature.text == context_text(report, "signature"), report.name
        attachment = report.pages[first]
        assert attachment.landscape, f"{report.name}: the 附件 page is {attachment.width}×{attachment.height} pt"
        assert report.sections[-1].fits(attachment) and report.sections[-1].width > report.sections[-1].height
        assert "项目支出绩效自评表" in joined(attachment), report.name


def signature_alone(report: Printed) -> str | None:
    """The page, when the signature and date stand on it without body text above them.

    GB/T 9704 7.3.5: when they do not fit under the text, line and character spacing are
    adjusted; they never start a page of their own. The 附件说明 line is not body text.
    """
    page = report.pages[attachment_start(report) - 1]
    signature, _, section = signature_and_date(report)
    above = [line.text for line in printed_lines(page, section)
             if line.box.bottom <= signature.box.top and not line.text.startswith("附件：")]
    return None if above else f"{report.name} p.{page.number}: {page.text!r}"


def test_the_signature_and_date_share_their_page_with_body_text(rendered: Rendered) -> None:
    alone = [m for m in map(signature_alone, rendered.reports) if m]
    assert not alone, "signature and date alone on a page:\n" + "\n".join(alone)


def test_a_form_running_over_a_page_repeats_its_header_row(rendered: Rendered) -> None:
    continued = [(report, page) for report in rendered.reports
                 for page in report.pages[attachment_start(report) + 1:]]
    if not continued:
        pytest.skip("every form of the example fits on one page: no repeated header row to see")
    missing = []
    for report, page in continued:
        lines = printed_lines(page, section_of(page, report.sections))
        band = "".join(line.text for line in lines if line.box.top < lines[0].box.top + HEADER_BAND)
        absent = [label for label in HEADER_LABELS if label not in band]
        if absent:
            missing.append(f"{report.name} p.{page.number}: {absent} not in its top row {band!r}")
    assert not missing, "\n".join(missing)


def date_misplacement(report: Printed) -> str | None:
    """What is wrong with where the date and signature stand, by GB/T 9704 7.3.5.1
    (成文日期右空四字；发文机关署名以成文日期为准居中编排), or None."""
    signature, date, section = signature_and_date(report)
    gap = section.type_area.right - date.box.right
    if abs(gap - 4 * EM) > EM / 2:
        return f"{report.name}: the date ends {gap / EM:.2f} characters from the right margin, not 4"
    offset = (signature.box.left + signature.box.right - date.box.left - date.box.right) / 2
    if abs(offset) > EM / 2:
        return f"{report.name}: the signature's centre is {offset / EM:+.2f} characters off the date's"
    return None


def test_the_date_stands_four_characters_from_the_right_margin_under_a_centred_signature(
        rendered: Rendered) -> None:
    misplaced = [m for m in map(date_misplacement, rendered.reports) if m]
    assert not misplaced, "\n".join(misplaced)


# --- the checks themselves, on the probe made to fail them ---------------------------------


def test_the_split_detector_flags_tokens_wrapped_in_a_narrow_cell_and_not_whole_ones(rendered: Rendered) -> None:
    pages = rendered.probe.pages
    for token in (TOKENS[0], TOKENS[4]):
        broken = split_occurrences(pages, token)
        assert len(broken) == 1 and broken[0][0] == 1 and "".join(broken[0][1]) == token, (token, broken)
        assert whole_count(pages, token) == 1  # the paragraph's
        assert sum(text.count(token) for text in rendered.probe.paragraphs) == 2


def test_the_ending_checks_flag_a_lone_signature_and_a_date_set_flush_right(rendered: Rendered) -> None:
    assert attachment_start(rendered.probe) == 2
    assert signature_alone(rendered.probe) == "版式探针.docx p.2: '如皋市信访局\\n2021年3月15日'"
    assert "characters from the right margin, not 4" in (date_misplacement(rendered.probe) or "")


def test_the_type_area_check_flags_a_table_wider_than_the_type_area(rendered: Rendered) -> None:
    first = rendered.probe.pages[0]
    outside = words_outside(first, section_of(first, rendered.probe.sections).type_area, TOLERANCE)
    assert [word.text for word in outside] == ["超出版心"]


def test_sections_are_read_from_the_docx_and_pages_matched_to_them_by_size(rendered: Rendered) -> None:
    body, attachment = rendered.probe.sections
    assert body.margins_mm() == BODY_MARGINS_MM and body.width < body.height
    assert attachment.width > attachment.height
    pages = rendered.probe.pages
    assert [section_of(page, rendered.probe.sections) for page in pages] == [body, body, attachment]
    assert pages[2].landscape and pages[2].lines[0].text == "附件"


def test_bbox_layout_xhtml_is_read_into_pages_lines_and_words() -> None:
    xhtml = """<html xmlns="http://www.w3.org/1999/xhtml"><body><doc>
      <page width="595.3" height="841.9"><flow><block xMin="79.5" yMin="100" xMax="140" yMax="120">
        <line xMin="79.5" yMin="100" xMax="140" yMax="120">
          <word xMin="79.5" yMin="100" xMax="120" yMax="120">1.08</word>
          <word xMin="122" yMin="100" xMax="140" yMax="120">万</word></line>
        <line xMin="79.5" yMin="121" xMax="90" yMax="141"><word xMin="79.5" yMin="121" xMax="90" yMax="141">元</word></line>
      </block></flow></page>
      <page width="841.9" height="595.3"><flow><block xMin="1" yMin="2" xMax="3" yMax="4">
        <line xMin="1" yMin="2" xMax="3" yMax="4"><word xMin="1" yMin="2" xMax="3" yMax="4">附件</word></line>
      </block></flow></page></doc></body></html>"""
    first, second = bbox_layout_pages(xhtml)
    assert (first.number, first.width, first.landscape, second.landscape) == (1, 595.3, False, True)
    assert [line.text for line in first.lines] == ["1.08万", "元"]
    assert first.lines[0].words[1].box.left == 122
    assert split_occurrences([first, second], "1.08万元") == [(1, ("1.08万", "元"))]
    assert whole_count([first, second], "附件") == 1


def test_only_hanging_punctuation_and_page_numbers_may_leave_the_type_area() -> None:
    area = Box(79.4, 104.9, 521.6, 742.7)

    def line(text: str, left: float, right: float, top: float = 400) -> Line:
        box = Box(left, top, right, top + 20)
        return Line((Word(text, box),), box)

    page = Page(1, 595.3, 841.9, (line("个片，", 489.3, 537.7), line("个片片", 489.3, 537.7),
                                  line("—2—", 93.5, 139.2, top=746), line("脚注", 93.5, 125.5, top=746)))
    assert [word.text for word in words_outside(page, area, TOLERANCE)] == ["个片片", "脚注"]
