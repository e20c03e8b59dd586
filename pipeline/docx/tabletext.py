"""The tables of a rendered body read as text: docxtpl's table repair checked, and the vertical
merge of `merge.py` applied, without parsing the body into a tree.

Parsing a report's body and serializing it again costs more than rendering it. The compiled path
splices a well-formed body into its document as rendered (`fastrender`); when the template's
tables may need docxtpl's repair or the merge, they are read here from the text instead:

* `read_tables` finds every table, row and cell by its tags;
* `fixed` repairs the grids as `tablefix.fixed_tables` (docxtpl's fix_tables) does, as text
  edits of the w:tblGrid concerned;
* `mergetext.merged` applies the rule of `merge.merge_tables` with the same readings.

This holds for bodies whose markup can only be what the template wrote (values are escaped; a
value that brings its own XML sends the body to the parser), so what may be met is decided once,
from the template (`plain_body`): WordprocessingML elements written with the prefix w:, no
comments, CDATA or processing instructions, no tracked changes of properties, no content
controls, custom XML or text boxes. Within that, tests compare every result with the parsed way.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from lxml import etree

from pipeline.docx.merge import W_NS

# What a plain body never holds (see the module's docstring).
_NOT_PLAIN = re.compile(r"<!--|<!\[CDATA\[|<\?|PrChange\b|GridChange\b|<w:sdt[\s>/]|<w:customXml|txbxContent")
_W_PREFIXES = re.compile(r'xmlns:(\w+)="' + re.escape(W_NS) + '"')
_STRUCTURE = re.compile(r"<(/?)w:(tbl|tr|tc)(?=[\s/>])")
_GRID_COLUMN = re.compile(r"<w:gridCol(?=[\s/>])[^>]*/>")
_WIDTH = re.compile(r'\sw:w="([^"]*)"')
_VALUE = re.compile(r'\sw:val="([^"]*)"')


def plain_body(patched_body: str) -> bool:
    """True when a template's body (its XML as docxtpl patches it) can be read as text here."""
    return _W_PREFIXES.findall(patched_body) == ["w"] and not _NOT_PLAIN.search(patched_body)


class Unreadable(Exception):
    """Something the text reading does not follow: the body is parsed instead."""


@dataclass(slots=True)
class Cell:
    """A w:tc: where it is in the text."""

    start: int
    open_end: int  # just after its start tag
    end: int = -1  # just after its end tag
    empty: bool = False  # written <w:tc/>


@dataclass(slots=True)
class Row:
    """A w:tr and its own cells."""

    start: int
    cells: list[Cell] = field(default_factory=list)


@dataclass(slots=True)
class Table:
    """A w:tbl: its own rows, the rows of its whole subtree (as fix_tables counts them), and
    whether a table is nested in it."""

    start: int
    open_end: int
    end: int = -1
    rows: list[Row] = field(default_factory=list)
    all_rows: list[Row] = field(default_factory=list)
    nested: bool = False


def after_tag(xml: str, position: int) -> tuple[int, bool]:
    """Just after the tag whose name ends at `position`, and whether it is an empty element."""
    end = xml.index(">", position) + 1
    return end, xml[end - 2] == "/"


def read_tables(xml: str, start: int = 0, end: int | None = None) -> list[Table]:
    """Every table of a well-formed plain body (or of xml[start:end], whole tables), outer tables
    before the tables nested in them."""
    tables: list[Table] = []
    open_tables: list[Table] = []
    open_rows: list[Row] = []
    open_cells: list[Cell] = []
    for match in _STRUCTURE.finditer(xml, start, len(xml) if end is None else end):
        closing, name = match.group(1), match.group(2)
        if closing:
            after = match.end() + 1  # just after the end tag's ">"
            if name == "tbl":
                open_tables.pop().end = after
            elif name == "tr":
                open_rows.pop()
            else:
                open_cells.pop().end = after
            continue
        open_end, empty = after_tag(xml, match.end())
        if name == "tbl":
            for outer in open_tables:
                outer.nested = True
            table = Table(match.start(), open_end, open_end if empty else -1)
            tables.append(table)
            if not empty:
                open_tables.append(table)
        elif name == "tr":
            if not open_tables:
                raise Unreadable
            row = Row(match.start())
            open_tables[-1].rows.append(row)
            for table in open_tables:
                table.all_rows.append(row)
            if not empty:
                open_rows.append(row)
        else:
            if not open_rows:
                raise Unreadable
            cell = Cell(match.start(), open_end, open_end if empty else -1, empty)
            open_rows[-1].cells.append(cell)
            if not empty:
                open_cells.append(cell)
    return tables


def first_element(xml: str, position: int, end: int, name: str) -> tuple[int, int] | None:
    """(start, end) of the first element after `position` (before `end`) when it is w:<name>."""
    start = xml.find("<", position, end)
    if start < 0 or not xml.startswith(f"<w:{name}", start) or xml[start + len(name) + 3] not in " >/":
        return None
    tag_end, empty = after_tag(xml, start + len(name) + 3)
    if empty:
        return start, tag_end
    close = f"</w:{name}>"
    return start, xml.index(close, tag_end) + len(close)


def attribute_value(xml: str, start: int) -> str | None:
    """The w:val attribute of the start tag at `start`, unescaped; None without one."""
    tag_end = xml.index(">", start)
    found = _VALUE.search(xml, start, tag_end)
    return html.unescape(found.group(1)) if found else None


def cell_properties(xml: str, cell: Cell) -> tuple[int, int] | None:
    """The cell's w:tcPr (its first element child), or None."""
    return None if cell.empty else first_element(xml, cell.open_end, cell.end, "tcPr")


def _span(xml: str, cell: Cell) -> int:
    """The cell's grid span as fix_tables reads it; raises Unreadable where fix_tables would fail."""
    properties = cell_properties(xml, cell)
    if properties is None:
        return 1
    found = xml.find("<w:gridSpan", *properties)
    if found < 0:
        return 1
    value = attribute_value(xml, found)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Unreadable from None


@dataclass(frozen=True, slots=True)
class _Grid:
    """A table's own w:tblGrid: where it is, its start tag, and each w:gridCol with its w:w."""

    start: int
    end: int
    open_tag: str
    columns: tuple[tuple[str, str | None], ...]  # (the element's text, its w:w)


def _grid(xml: str, table: Table) -> _Grid:
    """The table's w:tblGrid; raises Unreadable without one (fix_tables fails on it: the parsed
    way fails the same way)."""
    first_row = table.rows[0].start if table.rows else table.end
    start = xml.find("<w:tblGrid", table.open_end, first_row)
    if start < 0:
        raise Unreadable
    tag_end, empty = after_tag(xml, start + len("<w:tblGrid"))
    if empty:
        return _Grid(start, tag_end, xml[start:tag_end - 2] + ">", ())
    close = xml.index("</w:tblGrid>", tag_end)
    columns = []
    for match in _GRID_COLUMN.finditer(xml, tag_end, close):
        width = _WIDTH.search(match.group(0))
        columns.append((match.group(0), html.unescape(width.group(1)) if width else None))
    if len(columns) != xml.count("<w:gridCol", tag_end, close):
        raise Unreadable  # a w:gridCol with content
    return _Grid(start, close + len("</w:tblGrid>"), xml[start:tag_end], tuple(columns))


def _float(width: str | None) -> float:
    """float() of a w:w as fix_tables takes it; raises Unreadable where fix_tables would fail."""
    try:
        return float(width)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Unreadable from None


def _with_width(column: str, width: str) -> str:
    return _WIDTH.sub(f' w:w="{width}"', column, count=1)


def _fixed_grid(xml: str, table: Table) -> str | None:
    """The table's w:tblGrid as docxtpl's fix_tables leaves it (`tablefix._fixed_table`, the same
    arithmetic), or None when it leaves it as it is."""
    grid = _grid(xml, table)
    columns = list(grid.columns)
    changed = False
    to_add = max((len(row.cells) for row in table.all_rows), default=0) - len(columns)
    if to_add > 0:
        width = sum(_float(w) for _, w in columns if w is not None)
        if width > 0:
            old_average = width / len(columns)
            new_average = width / (len(columns) + to_add)
            scaled = [str(int(_float(w) * new_average / old_average)) for _, w in columns]
            columns = [(_with_width(text, w), w) for (text, _), w in zip(columns, scaled, strict=True)]
            added = str(int(new_average))
            columns += [(f'<w:gridCol w:w="{added}"/>', added)] * to_add
            changed = True
    widest = max((sum(_span(xml, cell) for cell in row.cells) for row in table.all_rows), default=0)
    to_remove = len(columns) - widest
    if to_remove > 0:
        removed_width = sum(_float(w) for _, w in columns[-to_remove:])
        columns = columns[:-to_remove]
        extra_space = int(removed_width / len(columns)) if columns else 0
        widened = [str(int(_float(w) + extra_space)) for _, w in columns]
        columns = [(_with_width(text, w), w) for (text, _), w in zip(columns, widened, strict=True)]
        changed = True
    if not changed:
        return None
    return grid.open_tag + "".join(text for text, _ in columns) + "</w:tblGrid>"


def _grid_fits(xml: str, start: int, end: int, forms: Forms) -> bool:
    """True when fix_tables leaves the table at xml[start:end] (no table nested in it) as it is:
    no row has more cells than the grid, and some row spans the whole grid. Plain counts over
    the text, so that a template with {%tc %} loops pays for a grid only when one needs repairing."""
    first_row = next_of(xml, forms.rows, start, end)
    grid = xml.find("<w:tblGrid", start, first_row if first_row >= 0 else end)
    if grid < 0:
        return False
    grid_end = xml.find("</w:tblGrid>", grid, first_row if first_row >= 0 else end)
    columns = xml.count("<w:gridCol", grid, grid_end) if grid_end >= 0 else 0
    widest = 0
    row = first_row
    while row >= 0:
        tag_end, empty = after_tag(xml, row + len("<w:tr"))
        row_end = tag_end if empty else xml.index("</w:tr>", tag_end)
        cells = sum(xml.count(needle, row, row_end) for needle in forms.cells)
        if cells > columns:
            return False
        span = cells
        at = xml.find("<w:gridSpan", row, row_end)
        while at >= 0:
            value = attribute_value(xml, at)
            if value is None or not value.strip().lstrip("+-").isdigit():
                return False  # let the exact reading decide (and fail where fix_tables fails)
            span += int(value) - 1
            at = xml.find("<w:gridSpan", at + 1, row_end)
        widest = max(widest, span)
        row = next_of(xml, forms.rows, row_end, end)
    return widest >= columns


def fixed_body(xml: str, forms: Forms) -> str:
    """`fixed` for a whole body, with plain counts first when its tables do not nest."""
    if not forms.nested:
        tables = []
        position = 0
        while (start := next_of(xml, forms.tables, position)) >= 0:
            position = xml.index("</w:tbl>", start) + len("</w:tbl>")
            tables.append((start, position))
        misfits = [(start, end) for start, end in tables if not _grid_fits(xml, start, end, forms)]
        return fixed(xml, [table for start, end in misfits for table in read_tables(xml, start, end)])
    return fixed(xml, read_tables(xml))


def fixed(xml: str, tables: list[Table]) -> str:
    """The body as docxtpl's fix_tables leaves it (the same object when it changes nothing);
    raises Unreadable where the text does not tell."""
    edits = []
    for table in tables:
        new_grid = _fixed_grid(xml, table)
        if new_grid is not None:
            grid = _grid(xml, table)
            edits.append((grid.start, grid.end, new_grid))
    return edited(xml, edits)


def positions(xml: str, needles: tuple[str, ...], start: int, end: int) -> list[int]:
    """Sorted positions of every occurrence of any of `needles` in xml[start:end]."""
    found: list[int] = []
    for needle in needles:
        position = xml.find(needle, start, end)
        while position >= 0:
            found.append(position)
            position = xml.find(needle, position + 1, end)
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Forms:
    """How the template writes table, row and cell start tags, and whether it nests tables: a
    rendered body has only the template's elements, so only these are searched for."""

    tables: tuple[str, ...] = ("<w:tbl>", "<w:tbl ")
    rows: tuple[str, ...] = ("<w:tr>", "<w:tr ", "<w:tr/>")
    cells: tuple[str, ...] = ("<w:tc>", "<w:tc ", "<w:tc/>")
    nested: bool = True


ANY_FORMS = Forms()  # every form: for bodies whose template is not known


def forms(patched_body: str) -> Forms:
    """The `Forms` of a template's patched body."""
    def written(*needles: str) -> tuple[str, ...]:
        return tuple(needle for needle in needles if needle in patched_body)

    try:
        nested = bool(etree.fromstring(patched_body).xpath("//w:tbl//w:tbl", namespaces={"w": W_NS}))
    except etree.XMLSyntaxError:
        nested = True
    return Forms(written("<w:tbl>", "<w:tbl "), written("<w:tr>", "<w:tr ", "<w:tr/>"),
                 written("<w:tc>", "<w:tc ", "<w:tc/>"), nested)


def next_of(xml: str, needles: tuple[str, ...], start: int, end: int = -1) -> int:
    """Where the first of `needles` is in xml[start:end], -1 when none is."""
    end = len(xml) if end < 0 else end
    found = [at for at in (xml.find(needle, start, end) for needle in needles) if at >= 0]
    return min(found) if found else -1


def edited(xml: str, edits: list[tuple[int, int, str]]) -> str:
    """`xml` with each (start, end, text) replacing xml[start:end] (the spans do not overlap);
    the same object when there is none."""
    if not edits:
        return xml
    pieces: list[str] = []
    done = 0
    for start, end, text in sorted(edits):
        pieces += [xml[done:start], text]
        done = end
    return "".join(pieces) + xml[done:]
