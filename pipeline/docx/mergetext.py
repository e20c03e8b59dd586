"""The vertical merge of `merge.py` applied to a rendered body as text edits, without parsing it.

`merge.merge_tables` is the rule on a parsed body (the reference path, `render.Renderer`, and the
compiled path when a body has to be parsed). Here the same rule reads the same things from the
text of a well-formed plain body (`tabletext`): only the cells that mention the merge style are
looked at closely, a cell's grid column is counted from the cells before it, and each merge is an
edit of the cells concerned. Tests compare every result with the parsed way.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from dataclasses import dataclass

from pipeline.docx.tabletext import (
    ANY_FORMS,
    Cell,
    Forms,
    Unreadable,
    after_tag,
    attribute_value,
    cell_properties,
    edited,
    first_element,
    next_of,
    positions,
)

_CELL_START = re.compile(r"<w:tc(?=[\s/>])")
# A paragraph's start, or a w:t element with its text (text holds no "<": it is escaped).
_PARAGRAPH_OR_TEXT = re.compile(r"<w:p(?=[\s/>])|<w:t(?:\s[^>]*)?>([^<]*)</w:t>")
# The children of w:tcPr that come before w:vMerge in the schema (CT_TcPr's sequence).
_BEFORE_VMERGE = ("<w:cnfStyle", "<w:tcW", "<w:gridSpan", "<w:hMerge")


@dataclass(frozen=True, slots=True)
class _MergeCell:
    """A styled cell as the merge rule sees it (merge._Cell, read from the text), with where its
    w:tcPr and its first paragraph's w:pPr are."""

    cell: Cell
    column: int
    span: int
    text: str
    properties: tuple[int, int] | None
    paragraph_properties: tuple[int, int] | None


def _first_paragraph(xml: str, cell: Cell, after: int) -> tuple[int, int] | None:
    """The cell's first w:p child: empty elements before it (a bookmark) are passed over."""
    position = after
    while True:
        start = xml.find("<", position, cell.end)
        if start < 0 or xml.startswith("</", start):
            return None
        if xml.startswith("<w:p", start) and xml[start + 4] in " >/":
            return first_element(xml, start, cell.end, "p")
        tag_end, empty = after_tag(xml, start + 1)
        if not empty:
            raise Unreadable  # another element first: merge.py finds the paragraph after it
        position = tag_end


def _paragraph_properties(xml: str, paragraph: tuple[int, int]) -> tuple[int, int] | None:
    """The paragraph's w:pPr (its first element child), or None."""
    tag_end, empty = after_tag(xml, paragraph[0] + 4)
    return None if empty else first_element(xml, tag_end, paragraph[1], "pPr")


def _cell_text(xml: str, cell: Cell) -> str:
    """The cell's text, paragraphs separated by line breaks (merge._text)."""
    paragraphs: list[str] = []
    for match in _PARAGRAPH_OR_TEXT.finditer(xml, cell.open_end, cell.end):
        if match.group(1) is None:
            paragraphs.append("")
        elif paragraphs:
            text = match.group(1)
            paragraphs[-1] += html.unescape(text) if "&" in text else text
    return "\n".join(paragraphs)


def _number(xml: str, start: int, default: int) -> int:
    """The w:val of the element at `start` as a whole number (merge._number)."""
    try:
        return int(attribute_value(xml, start) or default)
    except ValueError:
        return default


def _cell_at(xml: str, start: int) -> Cell:
    """The cell whose start tag is at `start` (tables nested in it are not followed)."""
    open_end, empty = after_tag(xml, start + len("<w:tc"))
    if empty:
        return Cell(start, open_end, open_end, True)
    return Cell(start, open_end, xml.index("</w:tc>", open_end) + len("</w:tc>"))


# A cell's start as Word writes it, in one match: its start tag, its w:tcPr, empty elements
# (bookmarks), its first paragraph's start tag and that paragraph's w:pPr. Where it does not
# match (text between elements, another element first), `_head` reads the cell step by step.
_START = r"(?:\s[^>]*)?(?<!/)>"
_EMPTY = r"(?:\s[^>]*)?/>"
_CELL_HEAD = re.compile(
    rf"<w:tc{_START}(?P<tcpr><w:tcPr{_START}[^<]*(?:<(?!/w:tcPr>)[^<]*)*</w:tcPr>|<w:tcPr{_EMPTY})?"
    rf"(?:<w:(?!p[\s/>])\w+{_EMPTY})*<w:p{_START}(?=<)"
    rf"(?P<ppr><w:pPr{_START}[^<]*(?:<(?!/w:pPr>)[^<]*)*</w:pPr>|<w:pPr{_EMPTY})?")


def _head(xml: str, cell: Cell) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(the cell's w:tcPr, its first paragraph's w:pPr); either None when absent."""
    match = _CELL_HEAD.match(xml, cell.start)
    if match is not None:
        properties = match.span("tcpr") if match.group("tcpr") else None
        return properties, match.span("ppr") if match.group("ppr") else None
    properties = cell_properties(xml, cell)
    if cell.empty:
        return properties, None
    paragraph = _first_paragraph(xml, cell, properties[1] if properties else cell.open_end)
    return properties, None if paragraph is None else _paragraph_properties(xml, paragraph)


def _styled_cell(xml: str, cell: Cell, column: int, style_id: str) -> _MergeCell | None:
    """The cell as the merge rule sees it when styled (its first paragraph has the merge style and
    it is not merged vertically already), else None."""
    properties, paragraph_properties = _head(xml, cell)
    span = 1
    if properties is not None:
        found = xml.find("<w:gridSpan", *properties)
        span = max(_number(xml, found, 1), 1) if found >= 0 else 1
        if xml.find("<w:vMerge", *properties) >= 0:
            return None
    if paragraph_properties is None:
        return None
    style = xml.find("<w:pStyle", *paragraph_properties)
    if style < 0 or attribute_value(xml, style) != style_id:
        return None
    return _MergeCell(cell, column, span, _cell_text(xml, cell), properties, paragraph_properties)


def _top_tables(xml: str, forms: Forms, first: int) -> list[tuple[int, int, bool]]:
    """(start, end, has a nested table) of each outermost table of a well-formed plain body that
    ends after `first` (where the first mention of the merge style is)."""
    tables: list[tuple[int, int, bool]] = []
    if not forms.nested:  # tables one after another: each ends at the next </w:tbl>
        position = max((xml.rfind(needle, 0, first) for needle in forms.tables), default=-1)
        position = max(position, 0)
        while (start := next_of(xml, forms.tables, position)) >= 0:
            position = xml.index("</w:tbl>", start) + len("</w:tbl>")
            tables.append((start, position, False))
        return tables
    tags = [(position, 1) for position in positions(xml, forms.tables, 0, len(xml))]
    tags += [(position, -1) for position in positions(xml, ("</w:tbl>",), 0, len(xml))]
    depth, start, nested = 0, 0, False
    for position, step in sorted(tags):
        if step > 0:
            if depth == 0:
                start, nested = position, False
            else:
                nested = True
        depth += step
        if depth == 0:
            tables.append((start, position + len("</w:tbl>"), nested))
    return tables


def _styled_cells(xml: str, start: int, end: int, style_id: str, forms: Forms) -> list[list[_MergeCell]]:
    """The styled cells of each row of the table at xml[start:end] (no table nested in it),
    with their grid columns. Only cells that mention the style are looked at closely: the
    column of one is its row's w:gridBefore plus the cells before it and their extra spans."""
    rows = positions(xml, forms.rows, start, end)
    spans = positions(xml, ("<w:gridSpan",), start, end)
    found: list[list[_MergeCell]] = [[] for _ in rows]
    seen: set[int] = set()
    for position in positions(xml, (f'w:val="{style_id}"',), start, end):
        row = bisect_right(rows, position) - 1
        if row < 0:
            continue
        row_start = rows[row]
        cell_start = max(xml.rfind(needle, row_start, position) for needle in forms.cells)
        if cell_start < 0 or cell_start in seen:
            continue
        seen.add(cell_start)
        first_cell = _CELL_START.search(xml, row_start, cell_start)
        before = xml.find("<w:gridBefore", row_start, first_cell.start() if first_cell else cell_start)
        column = max(_number(xml, before, 0), 0) if before >= 0 else 0
        column += len(_CELL_START.findall(xml, row_start, cell_start))
        column += sum(max(_number(xml, at, 1), 1) - 1
                      for at in spans[bisect_right(spans, row_start):bisect_right(spans, cell_start)])
        styled = _styled_cell(xml, _cell_at(xml, cell_start), column, style_id)
        if styled is not None:
            found[row].append(styled)
    return found


def _pairs(xml: str, start: int, end: int, style_id: str, forms: Forms) -> list[tuple[_MergeCell, _MergeCell]]:
    """merge.merged_pairs of one table, read from the text."""
    pairs: list[tuple[_MergeCell, _MergeCell]] = []
    above: dict[int, _MergeCell] = {}
    for row in _styled_cells(xml, start, end, style_id, forms):
        left_unmerged = False
        for cell in sorted(row, key=lambda c: c.column):
            top = above.get(cell.column)
            if (not left_unmerged and top is not None and top.span == cell.span
                    and cell.text.strip() and top.text == cell.text):
                pairs.append((top, cell))
            else:
                left_unmerged = True
        above = {cell.column: cell for cell in row}
    return pairs


def _with_vmerge(xml: str, cell: Cell, properties: tuple[int, int] | None,
                 restart: bool) -> tuple[str, int, int]:
    """(the cell's w:tcPr with a w:vMerge at its place, where the old one starts and ends in `xml`);
    a cell without properties gets a new w:tcPr as its first child (an empty span there)."""
    merge = '<w:vMerge w:val="restart"/>' if restart else "<w:vMerge/>"
    if properties is None:
        first_child = xml.find("<", cell.open_end, cell.end)
        return f"<w:tcPr>{merge}</w:tcPr>", first_child, first_child
    start, end = properties
    tag_end, empty = after_tag(xml, start + len("<w:tcPr"))
    if empty:
        return f"{xml[start:tag_end - 2]}>{merge}</w:tcPr>", start, end
    position = tag_end
    for name in _BEFORE_VMERGE:
        found = xml.find(name, tag_end, end)
        if found >= 0 and xml[found + len(name)] in " >/":
            child = first_element(xml, found, end, name[3:])
            position = max(position, child[1] if child else position)
    return xml[start:position] + merge + xml[position:end], start, end


def _emptied(xml: str, merged_cell: _MergeCell) -> str:
    """The continued cell from just after its start tag: its properties with <w:vMerge/>, and one
    empty paragraph with its first paragraph's properties (merge._empty)."""
    cell = merged_cell.cell
    properties, start, end = _with_vmerge(xml, cell, merged_cell.properties, restart=False)
    tail = xml[end:xml.find("<", end, cell.end)] if end > start else ""  # text after w:tcPr stays
    paragraph_properties = merged_cell.paragraph_properties
    new_paragraph = (f"<w:p>{xml[paragraph_properties[0]:paragraph_properties[1]]}</w:p>"
                     if paragraph_properties else "<w:p/>")
    return f"{xml[cell.open_end:start]}{properties}{tail}{new_paragraph}</w:tc>"


def _edits(xml: str, pairs: list[tuple[_MergeCell, _MergeCell]]) -> list[tuple[int, int, str]]:
    """(start, end, new text) of each cell the merge changes (merge.merge_table's edits)."""
    continued = {id(cell.cell) for _, cell in pairs}
    edits: list[tuple[int, int, str]] = []
    for top, merged_cell in pairs:
        if id(top.cell) not in continued:
            properties, start, end = _with_vmerge(xml, top.cell, top.properties, restart=True)
            edits.append((start, end, properties))
        edits.append((merged_cell.cell.open_end, merged_cell.cell.end, _emptied(xml, merged_cell)))
    return edits


def merged(xml: str, style_id: str, forms: Forms = ANY_FORMS) -> str:
    """The body with `merge.merge_tables`' rule applied to its tables; raises Unreadable where the
    text does not tell (a merged table with a table nested in it, say)."""
    marker = f'w:val="{style_id}"'
    first = xml.find(marker)
    if first < 0:
        return xml
    edits: list[tuple[int, int, str]] = []
    for start, end, nested in _top_tables(xml, forms, first):
        if end <= first or xml.find(marker, start, end) < 0:
            continue
        if nested:
            raise Unreadable
        edits += _edits(xml, _pairs(xml, start, end, style_id, forms))
    return edited(xml, edits)
