"""docxtpl's table repair, decided from the template and applied one table at a time.

After rendering, docxtpl 0.20.2 re-parses the whole body and runs `DocxTemplate.fix_tables`: for
every table, it adds grid columns when a row has more cells than the grid (``{%tc for %}``
loops), and removes grid columns beyond the widest row's span (a loop that rendered no row at
all leaves an empty ``<w:tblGrid/>``; ``{% colspan n %}`` with a smaller n leaves fewer
columns). Whether it changes anything depends on the data, so the compiled path may not learn it
from one report and reuse it for the next. Instead:

* `table_can_change` reads the patched template (docxtpl's XML with the Jinja tags as text) and
  tells, for each table, whether any data at all could make fix_tables change it: a table with
  a row that is always rendered and fills the grid, and no row that can have more cells than the
  grid, never changes;
* `fixed_tables` is fix_tables itself, on a parsed body, for templates with tables that can
  change, when the body is parsed (`tabletext.fixed` does the same as text edits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W = f"{{{W_NS}}}"

# A Jinja comment, or a statement tag with its keyword: {% for ... %}, {%- endif -%}.
_JINJA = re.compile(r"\{#.*?#\}|\{%-?\s*(\w+)(.*?)-?%\}", re.DOTALL)
# Jinja's block statements (each closed by end<name>); `set` is one only without "=".
_BLOCKS = frozenset({"for", "if", "with", "macro", "call", "filter", "raw", "block", "autoescape", "trans"})
# What may stand between rows or cells: docxtpl's {%tr %} and {%tc %} tags become for and if.
_ROW_LEVEL = frozenset({"for", "if", "elif", "else", "endfor", "endif"})


def _statements(text: str | None) -> Iterator[tuple[str, str]]:
    """(keyword, rest) of each Jinja statement tag in `text`, comments skipped."""
    if text and "{" in text:
        for match in _JINJA.finditer(text):
            if match.group(1):
                yield match.group(1), match.group(2)


def _depth_change(keyword: str, rest: str) -> int:
    """+1 for a tag opening a block, -1 for one closing it, 0 for the others."""
    if keyword in _BLOCKS or (keyword == "set" and "=" not in rest):
        return 1
    if keyword.startswith("end") and (keyword[3:] in _BLOCKS or keyword == "endset"):
        return -1
    return 0


def _texts(element: etree._Element) -> Iterator[str | None]:
    """The attribute values and text of `element`'s subtree in document order (without its tail)."""
    yield from element.attrib.values()
    yield element.text
    for child in element:
        if isinstance(child.tag, str):  # not a comment or processing instruction
            yield from _texts(child)
        yield child.tail


def _balanced(element: etree._Element) -> bool:
    """True when every block opened inside `element` (text and attributes) closes inside it."""
    depth = 0
    for text in _texts(element):
        for keyword, rest in _statements(text):
            depth += _depth_change(keyword, rest)
            if depth < 0:
                return False
    return depth == 0


class _Dynamic(Exception):
    """The table's structure depends on the data in a way the analysis does not follow."""


def _level_depth(depth: int, text: str | None, *, loops_allowed: bool) -> int:
    """The block depth after the tags written between rows (or between cells) in `text`."""
    for keyword, rest in _statements(text):
        if keyword not in _ROW_LEVEL and _depth_change(keyword, rest) != 0:
            raise _Dynamic  # a macro, call, filter... between rows or cells
        if keyword == "for" and not loops_allowed:
            raise _Dynamic  # {%tc for %}: a row with as many cells as the data has
        depth += _depth_change(keyword, rest)
        if depth < 0:
            raise _Dynamic
    return depth


def _static_span(cell: etree._Element) -> int | None:
    """The cell's w:gridSpan as fix_tables reads it, None when the template computes it
    ({% colspan %}, {% hm %}); raises _Dynamic where fix_tables itself would fail."""
    properties = cell.find(f"{W}tcPr")
    span = None if properties is None else properties.find(f"{W}gridSpan")
    if span is None:
        return 1
    value = span.get(f"{W}val")
    if value is None:
        raise _Dynamic  # docxtpl fails on it at every render: so must we
    if "{" in value:
        return None
    try:
        return int(value)
    except ValueError:
        raise _Dynamic from None


def _row_shape(row: etree._Element) -> tuple[int, int | None]:
    """(most cells the row can have, span of the cells it always has; None when one is computed)."""
    depth = _level_depth(0, row.text, loops_allowed=False)
    cells, span = 0, 0
    known = True
    for child in row:
        if child.tag == f"{W}tc":
            if not _balanced(child):
                raise _Dynamic  # a tag that opens in one cell and closes in another
            cells += 1
            width = _static_span(child)
            if depth == 0:
                if width is None:
                    known = False
                else:
                    span += width
        elif child.tag in (f"{W}trPr", f"{W}tblPrEx"):
            if not _balanced(child):
                raise _Dynamic
        elif isinstance(child.tag, str) and (child.find(f".//{W}tc") is not None or not _balanced(child)):
            raise _Dynamic  # cells inside a content control or custom XML
        depth = _level_depth(depth, child.tail, loops_allowed=False)
    if depth != 0:
        raise _Dynamic
    return cells, span if known else None


def _table_is_fixed(table: etree._Element) -> bool:
    """True when fix_tables leaves `table` as it is whatever the data (raises _Dynamic when unknown)."""
    grid = table.find(f"{W}tblGrid")
    if grid is None:
        raise _Dynamic  # fix_tables fails on it at every render
    width = len(grid.findall(f"{W}gridCol"))
    filled = width == 0  # some row always spans the whole grid: no column is ever removed
    depth = _level_depth(0, table.text, loops_allowed=True)
    for child in table:
        if child.tag == f"{W}tr":
            cells, span = _row_shape(child)
            if cells > width:
                return False
            if depth == 0 and span is not None and span >= width:
                filled = True
        elif (isinstance(child.tag, str) and child.tag not in (f"{W}tblPr", f"{W}tblGrid")
              and (child.find(f".//{W}tr") is not None or not _balanced(child))):
            raise _Dynamic  # rows inside a content control or custom XML
        depth = _level_depth(depth, child.tail, loops_allowed=True)
    if depth != 0:
        raise _Dynamic
    # fix_tables counts the rows of nested tables too (Element.iter): none may outgrow the grid.
    for row in table.iter(f"{W}tr"):
        if row.getparent() is not table and _row_shape(row)[0] > width:
            return False
    return filled


def table_can_change(table: etree._Element) -> bool:
    """True when docxtpl's fix_tables may change this table of a patched template for some data."""
    try:
        return not _table_is_fixed(table)
    except _Dynamic:
        return True


def tables_can_change(patched_body: str) -> bool:
    """True when fix_tables may change any table of the patched body (docxtpl's XML with the Jinja
    tags as text) for some data; also when the body cannot be read as XML to tell."""
    if "<w:tbl" not in patched_body:
        return False
    try:
        body = etree.fromstring(patched_body)
    except etree.XMLSyntaxError:
        return True
    return any(table_can_change(table) for table in body.iter(f"{W}tbl"))


def _fixed_table(table: etree._Element, ns: str) -> bool:
    """docxtpl 0.20.2's fix_tables on one table, statement for statement; True when it changed."""
    grid = table.find(ns + "tblGrid")
    columns = grid.findall(ns + "gridCol")  # fails on a table without a grid, as docxtpl does
    changed = False
    to_add = 0
    for row in table.iter(ns + "tr"):
        cells = row.findall(ns + "tc")
        if (len(columns) + to_add) < len(cells):
            to_add = len(cells) - len(columns)
    if to_add > 0:
        width = 0.0
        for column in columns:
            if column.get(ns + "w") is not None:
                width += float(column.get(ns + "w"))
        if width > 0:
            old_average = width / len(columns)
            new_average = width / (len(columns) + to_add)
            for column in columns:
                column.set(ns + "w", str(int(float(column.get(ns + "w")) * new_average / old_average)))
            for _ in range(to_add):
                etree.SubElement(grid, ns + "gridCol", {ns + "w": str(int(new_average))})
            changed = True
    columns = grid.findall(ns + "gridCol")
    widest = 0
    for row in table.iter(ns + "tr"):
        span = 0
        for cell in row.findall(ns + "tc"):
            properties = cell.find(ns + "tcPr")
            grid_span = None if properties is None else properties.find(ns + "gridSpan")
            span += int(grid_span.get(ns + "val")) if grid_span is not None else 1
        widest = max(widest, span)
    to_remove = len(columns) - widest
    if to_remove > 0:
        removed_width = 0.0
        for column in columns[-to_remove:]:
            removed_width += float(column.get(ns + "w"))
            grid.remove(column)
        left = grid.findall(ns + "gridCol")
        extra_space = int(removed_width / len(left)) if left else 0
        for column in left:
            column.set(ns + "w", str(int(float(column.get(ns + "w")) + extra_space)))
        changed = True
    return changed


def fixed_tables(root: etree._Element) -> bool:
    """docxtpl's fix_tables applied to every table in `root` (itself included), in place;
    True when any changed. `root` is a parsed body, or a table parsed on its own."""
    ns = "{" + root.nsmap["w"] + "}"  # docxtpl reads the namespace the same way
    changed = False
    for table in root.iter(ns + "tbl"):
        changed = _fixed_table(table, ns) or changed
    return changed
