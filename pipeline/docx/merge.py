"""Vertical merge of equal cells in a rendered report: the rule behind the style 表格文字（相同合并）.

docxtpl's ``{% vm %}`` merges the copies of one cell made by the innermost loop and cannot nest, so
an indicator table grouped by 一级 and 二级 cannot be merged with it. The product's rule is
decided by the template and applied after rendering, by both render paths (`render.Renderer`
and `fastrender.CompiledTemplate`), with the same result:

* a table cell whose first paragraph has the paragraph style named 表格文字（相同合并） is merged
  into the cell directly above it (same grid column, same grid span) when that cell has the style
  too, both hold the same text, the text is not empty, and every cell to its left in the same row
  that has the style is merged too (so a 二级 cell never merges across a 一级 boundary);
* merged means: the top cell gets ``<w:vMerge w:val="restart"/>``, each cell below it
  ``<w:vMerge/>`` and, instead of its text, one empty paragraph with the same paragraph
  properties (Word shows only the top cell's text);
* only a template whose body holds that style inside a table is touched; the style is looked
  up by its name in styles.xml, so a clerk may restyle it in Word (its id is ``ReportTableMerge``
  in the shipped templates).

Tables in headers and footers are left alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import docx
from docx.document import Document as DocumentObject
from lxml import etree

MERGE_STYLE_NAME = "表格文字（相同合并）"

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W = f"{{{W_NS}}}"
# The children of w:tcPr that come before w:vMerge in the schema (CT_TcPr's sequence).
_BEFORE_VMERGE = frozenset({f"{W}cnfStyle", f"{W}tcW", f"{W}gridSpan", f"{W}hMerge"})


def merge_style_id(styles: etree._Element) -> str | None:
    """The id of the paragraph style named 表格文字（相同合并） in a w:styles element, or None."""
    for style in styles.iterchildren(f"{W}style"):
        name = style.find(f"{W}name")
        if (name is not None and name.get(f"{W}val") == MERGE_STYLE_NAME
                and style.get(f"{W}type", "paragraph") == "paragraph"):
            return style.get(f"{W}styleId")
    return None


def table_merge_style(document: DocumentObject) -> str | None:
    """The merge style's id when the template's body uses it inside a table, else None."""
    style_id = merge_style_id(document.styles.element)
    if style_id is None:
        return None
    for style in document.element.body.iter(f"{W}pStyle"):
        if style.get(f"{W}val") == style_id and next(style.iterancestors(f"{W}tbl"), None) is not None:
            return style_id
    return None


def template_merge_style(data: bytes) -> str | None:
    """`table_merge_style` of the template held in `data`; None when it cannot be opened."""
    try:
        return table_merge_style(docx.Document(io.BytesIO(data)))
    except Exception:  # noqa: BLE001 - an unreadable template is refused where it is loaded
        return None


@dataclass(frozen=True, slots=True)
class _Cell:
    """A cell of a row as the rule sees it: where it sits on the grid and what it says."""

    element: etree._Element
    column: int
    span: int
    styled: bool
    text: str


_TCPR, _GRID_SPAN, _VMERGE = f"{W}tcPr", f"{W}gridSpan", f"{W}vMerge"
_P, _PPR, _PSTYLE, _T, _TC, _TR = f"{W}p", f"{W}pPr", f"{W}pStyle", f"{W}t", f"{W}tc", f"{W}tr"
_VAL = f"{W}val"


def _first_element(element: etree._Element) -> etree._Element | None:
    """The first child that is an element (not a comment)."""
    return next((child for child in element if isinstance(child.tag, str)), None)


def _properties(cell: etree._Element) -> etree._Element | None:
    """The cell's w:tcPr: its first element child, when it is one."""
    first = _first_element(cell)
    return first if first is not None and first.tag == _TCPR else None


def _number(element: etree._Element | None, default: int) -> int:
    """An element's w:val as a whole number; `default` when absent or unreadable (as Word reads it)."""
    if element is None:
        return default
    try:
        return int(element.get(_VAL, default))
    except ValueError:
        return default


def _grid_before(row: etree._Element) -> int:
    """Grid columns skipped before the row's first cell (w:trPr/w:gridBefore)."""
    properties = next(row.iterchildren(f"{W}trPr"), None)
    before = None if properties is None else next(properties.iterchildren(f"{W}gridBefore"), None)
    return max(_number(before, 0), 0)


def _style(paragraph: etree._Element) -> str | None:
    """The paragraph's style id (w:pPr, its first element child, then w:pStyle), or None."""
    properties = _first_element(paragraph)
    if properties is None or properties.tag != _PPR:
        return None
    style = next(properties.iterchildren(_PSTYLE), None)
    return None if style is None else style.get(_VAL)


def _text(cell: etree._Element) -> str:
    """The cell's text, paragraphs separated by line breaks."""
    return "\n".join("".join(t.text or "" for t in p.iter(_T)) for p in cell.iter(_P))


def _cells(row: etree._Element, style_id: str) -> Iterator[_Cell]:
    """The row's cells with their grid columns; a cell is styled when its first paragraph has the
    merge style and it is not merged vertically already."""
    column = _grid_before(row)
    for cell in row.iterchildren(_TC):
        properties = _properties(cell)
        span = 1 if properties is None else max(_number(next(properties.iterchildren(_GRID_SPAN), None), 1), 1)
        merged = properties is not None and next(properties.iterchildren(_VMERGE), None) is not None
        paragraph = next(cell.iterchildren(_P), None)
        styled = not merged and paragraph is not None and _style(paragraph) == style_id
        yield _Cell(cell, column, span, styled, _text(cell) if styled else "")
        column += span


def merged_pairs(table: etree._Element, style_id: str) -> list[tuple[_Cell, _Cell]]:
    """(cell above, cell) for every cell the rule merges into the cell above it, top to bottom."""
    pairs: list[tuple[_Cell, _Cell]] = []
    above: dict[int, _Cell] = {}
    for row in table.iterchildren(_TR):
        current: dict[int, _Cell] = {}
        left_unmerged = False  # a styled cell to the left stays unmerged: nothing right of it merges
        for cell in _cells(row, style_id):
            current[cell.column] = cell
            if not cell.styled:
                continue
            top = above.get(cell.column)
            if (not left_unmerged and top is not None and top.styled and top.span == cell.span
                    and cell.text.strip() and top.text == cell.text):
                pairs.append((top, cell))
            else:
                left_unmerged = True
        above = current
    return pairs


def _set_vmerge(cell: etree._Element, restart: bool) -> None:
    """Give the cell a w:vMerge in its w:tcPr, at its place in the schema's order."""
    properties = _properties(cell)
    if properties is None:
        properties = cell.makeelement(_TCPR, {})
        cell.insert(0, properties)
    merge = properties.makeelement(_VMERGE, {_VAL: "restart"} if restart else {})
    index = 0
    for position, child in enumerate(properties):
        if child.tag in _BEFORE_VMERGE:
            index = position + 1
    properties.insert(index, merge)


def _empty(cell: etree._Element) -> None:
    """Replace the cell's content by one empty paragraph with its first paragraph's properties."""
    first = next(cell.iterchildren(_P), None)
    first_child = None if first is None else _first_element(first)
    properties = _properties(cell)
    for child in list(cell):
        if child is not properties:
            cell.remove(child)
    paragraph = cell.makeelement(_P, {})
    if first_child is not None and first_child.tag == _PPR:
        first_child.tail = None
        paragraph.append(first_child)
    cell.append(paragraph)


def merge_table(table: etree._Element, style_id: str) -> bool:
    """Apply the rule to one w:tbl (its own rows, not those of tables nested in it); True if it merged."""
    pairs = merged_pairs(table, style_id)
    continued = {id(cell.element) for _, cell in pairs}
    for top, cell in pairs:
        if id(top.element) not in continued:
            _set_vmerge(top.element, restart=True)
        _set_vmerge(cell.element, restart=False)
        _empty(cell.element)
    return bool(pairs)


def merge_tables(root: etree._Element, style_id: str) -> bool:
    """Apply the rule to every table in `root` (itself included when it is one); True if any merged."""
    changed = False
    for table in list(root.iter(f"{W}tbl")):
        changed = merge_table(table, style_id) or changed
    return changed
