"""A report's layout as a reader sees it: PDF text with positions, and the page geometry of a .docx.

LibreOffice converts .docx files to PDF (one batch, one private profile); poppler's
`pdftotext -bbox-layout` gives each page's lines and words with their boxes in points, read
here with the standard library. The page geometry a report asks for (page size and margins
of each section) is read from its `word/document.xml`, so a test can tell whether every word
lies inside the type area (版心) the template declares.
"""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

XHTML = "{http://www.w3.org/1999/xhtml}"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
TWIPS_PER_POINT = 20
POINTS_PER_MM = 72 / 25.4
# "— 3 —" (GB/T 9704 page numbers), with or without the spaces pdftotext keeps between words.
PAGE_NUMBER = re.compile(r"^[—–-]\s*\d+\s*[—–-]$")
HANGING_PUNCTUATION = frozenset("，。、；：！？）》」』”’")


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in PDF points, origin at the page's top left (as pdftotext gives it)."""

    left: float
    top: float
    right: float
    bottom: float

    def within(self, outer: Box, tolerance: float) -> bool:
        """Whether this box lies inside `outer`, allowing `tolerance` points on every side."""
        return (self.left >= outer.left - tolerance and self.right <= outer.right + tolerance
                and self.top >= outer.top - tolerance and self.bottom <= outer.bottom + tolerance)


@dataclass(frozen=True, slots=True)
class Word:
    """One word as pdftotext cuts them: CJK text runs on until a gap, a font change or a script change."""

    text: str
    box: Box


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line: its words left to right."""

    words: tuple[Word, ...]
    box: Box

    @property
    def text(self) -> str:
        """The line's words joined without spaces (Chinese text has none; tokens are compared so)."""
        return "".join(word.text for word in self.words)


@dataclass(frozen=True, slots=True)
class Page:
    """One PDF page: its size in points (the page box) and its lines in pdftotext's reading order."""

    number: int  # 1-based
    width: float
    height: float
    lines: tuple[Line, ...]

    @property
    def landscape(self) -> bool:
        """Whether the page is wider than tall."""
        return self.width > self.height

    @property
    def text(self) -> str:
        """The page's lines, one per line of text."""
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True, slots=True)
class Section:
    """One .docx section's page size and margins, in points (w:pgSz and w:pgMar)."""

    width: float
    height: float
    top: float
    right: float
    bottom: float
    left: float

    @property
    def type_area(self) -> Box:
        """The rectangle the body text and tables must stay in (版心)."""
        return Box(self.left, self.top, self.width - self.right, self.height - self.bottom)

    def margins_mm(self) -> tuple[float, float, float, float]:
        """Top, left, right and bottom margins in millimetres, rounded to 0.1 mm."""
        top, left, right, bottom = (round(v / POINTS_PER_MM, 1) for v in (self.top, self.left, self.right, self.bottom))
        return top, left, right, bottom

    def fits(self, page: Page, tolerance: float = 1.0) -> bool:
        """Whether `page` has this section's page size."""
        return abs(page.width - self.width) <= tolerance and abs(page.height - self.height) <= tolerance


def convert_to_pdf(documents: Sequence[Path], outdir: Path, profile: Path, timeout: float = 600) -> list[Path]:
    """Convert `documents` to PDF in ONE LibreOffice run (starting soffice costs seconds).

    A private profile directory keeps this run from waiting on, or clashing with, any other
    LibreOffice on the machine. Returns the PDFs in the order of `documents`.
    """
    stems = [d.stem for d in documents]
    if len(set(stems)) != len(stems):
        raise ValueError(f"two documents would write the same PDF: {stems}")
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation={profile.resolve().as_uri()}",
         "--convert-to", "pdf", "--outdir", str(outdir), *map(str, documents)],
        check=True, capture_output=True, timeout=timeout,
    )
    pdfs = [outdir / f"{stem}.pdf" for stem in stems]
    missing = [p.name for p in pdfs if not p.exists()]
    if missing:
        raise RuntimeError(f"LibreOffice wrote no PDF for {missing}")
    return pdfs


def pdf_pages(pdf: Path) -> list[Page]:
    """The pages of `pdf` with their lines and words (poppler's pdftotext -bbox-layout)."""
    xhtml = subprocess.run(["pdftotext", "-bbox-layout", "-enc", "UTF-8", str(pdf), "-"],
                           check=True, capture_output=True, timeout=120).stdout
    return bbox_layout_pages(xhtml.decode("utf-8"))


def box_of(element: ElementTree.Element) -> Box:
    """The xMin/yMin/xMax/yMax attributes of a pdftotext element."""
    return Box(*(float(element.attrib[k]) for k in ("xMin", "yMin", "xMax", "yMax")))


def bbox_layout_pages(xhtml: str) -> list[Page]:
    """Pages → lines → words from pdftotext's -bbox-layout XHTML (doc/page/flow/block/line/word)."""
    root = ElementTree.fromstring(xhtml)
    pages = []
    for number, page in enumerate(root.iter(f"{XHTML}page"), start=1):
        lines = tuple(
            Line(tuple(Word(word.text or "", box_of(word)) for word in line.iter(f"{XHTML}word")), box_of(line))
            for line in page.iter(f"{XHTML}line")
        )
        pages.append(Page(number, float(page.attrib["width"]), float(page.attrib["height"]), lines))
    return pages


def docx_part(docx: Path, name: str = "word/document.xml") -> ElementTree.Element:
    """One XML part of a .docx, parsed."""
    with zipfile.ZipFile(docx) as archive:
        return ElementTree.fromstring(archive.read(name))


def twips(element: ElementTree.Element | None, attribute: str) -> float:
    """A w: attribute in twips, as points (0 when absent)."""
    if element is None:
        return 0.0
    return float(element.attrib.get(f"{W}{attribute}", "0")) / TWIPS_PER_POINT


def docx_sections(docx: Path) -> list[Section]:
    """Each section's page size and margins, in document order.

    A section ends at a paragraph carrying w:sectPr in its w:pPr; the last one is the body's own
    w:sectPr. Both are exactly the w:sectPr elements of the document part.
    """
    sections = []
    for sect in docx_part(docx).iter(f"{W}sectPr"):
        size, margins = sect.find(f"{W}pgSz"), sect.find(f"{W}pgMar")
        sections.append(Section(twips(size, "w"), twips(size, "h"), twips(margins, "top"),
                                twips(margins, "right"), twips(margins, "bottom"), twips(margins, "left")))
    return sections


def paragraph_texts(element: ElementTree.Element) -> list[str]:
    """The text of every paragraph under `element` (table cells included), each paragraph once.

    A paragraph nested in another one (a text box) is its own paragraph, not part of its host;
    mc:Fallback copies of drawings are skipped so that nothing is counted twice. Order is not
    kept: the texts are only counted.
    """
    texts: list[str] = []

    def walk(node: ElementTree.Element, parts: list[str] | None) -> None:
        for child in node:
            if child.tag == MC_FALLBACK:
                continue
            if child.tag == f"{W}p":
                own: list[str] = []
                walk(child, own)
                texts.append("".join(own))
            elif child.tag == f"{W}t" and parts is not None:
                parts.append(child.text or "")
            else:
                walk(child, parts)

    walk(element, None)
    return texts


def docx_paragraph_texts(docx: Path) -> list[str]:
    """The text of every paragraph of the document body (tables included), whitespace removed."""
    return [compact(text) for text in paragraph_texts(docx_part(docx))]


def compact(text: str) -> str:
    """`text` without whitespace, as pdftotext's words are joined."""
    return "".join(text.split())


def token_occurrences(page: Page, token: str) -> list[tuple[str, ...]]:
    """Each occurrence of `token` in the page's lines read in order, as the pieces each line holds.

    ("100.00%",) is an occurrence printed whole; ("100.00", "%") one broken across two lines.
    Lines are joined in pdftotext's reading order, which keeps a table cell's lines together.
    """
    texts = [line.text for line in page.lines]
    joined = "".join(texts)
    starts = []  # where each line's text begins in `joined`
    position = 0
    for text in texts:
        starts.append(position)
        position += len(text)
    found = []
    for match in re.finditer(re.escape(token), joined):
        pieces = []
        for start, text in zip(starts, texts, strict=True):
            end = start + len(text)
            low, high = max(start, match.start()), min(end, match.end())
            if low < high:
                pieces.append(joined[low:high])
        found.append(tuple(pieces))
    return found


def split_occurrences(pages: Iterable[Page], token: str) -> list[tuple[int, tuple[str, ...]]]:
    """(page number, pieces) of every occurrence of `token` broken across lines."""
    return [(page.number, pieces) for page in pages
            for pieces in token_occurrences(page, token) if len(pieces) > 1]


def whole_count(pages: Iterable[Page], token: str) -> int:
    """How many times `token` is printed within one line."""
    return sum(line.text.count(token) for page in pages for line in page.lines)


def is_page_number(line: Line, area: Box) -> bool:
    """Whether `line` is a "— n —" page number printed outside the type area (in a footer or header)."""
    outside = line.box.top >= area.bottom or line.box.bottom <= area.top
    return outside and PAGE_NUMBER.match(line.text) is not None


def section_of(page: Page, sections: Sequence[Section]) -> Section:
    """The section whose page size `page` has.

    A PDF does not say which section a page comes from; the page size tells the portrait body
    from the landscape attachment. Sections of one size must then agree on their margins.
    """
    matching = {s for s in sections if s.fits(page)}
    if len({(s.top, s.right, s.bottom, s.left) for s in matching}) != 1:
        raise LookupError(f"page {page.number} ({page.width:.1f}×{page.height:.1f} pt) matches the sections {matching}")
    return next(iter(matching))


def inked_box(word: Word) -> Box:
    """The word's box without a closing punctuation mark hanging at its end.

    LibreOffice, like Word (允许标点溢出边界, on by default in Chinese Word), lets a full-width
    comma or full stop at a line's end hang into the right margin instead of pushing a character
    to the next line; readers expect that, so the mark is not counted as leaving the type area.
    """
    if not word.text or word.text[-1] not in HANGING_PUNCTUATION:
        return word.box
    advance = (word.box.right - word.box.left) / len(word.text)
    return Box(word.box.left, word.box.top, word.box.right - advance, word.box.bottom)


def words_outside(page: Page, area: Box, tolerance: float) -> list[Word]:
    """The words of `page` outside `area` (beyond `tolerance` points), page numbers excepted."""
    return [word for line in page.lines if not is_page_number(line, area)
            for word in line.words if not inked_box(word).within(area, tolerance)]
