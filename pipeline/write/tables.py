"""A one-sheet .xlsx table written directly as SpreadsheetML: 汇总表 and 校验报告.

openpyxl's write-only mode spends about 50 µs per cell (a Cell object, a style lookup and an
lxml element each), which for a province's 汇总表 of 100,000 projects is most of a minute. The
tables written here need one font, one number format and one alignment, so the XML is written
as text, at about 1 µs per cell; `tests/test_outputs.py` reads the files back with openpyxl and
LibreOffice Calc.

By construction no cell is a formula: text is always an inline string (`t="inlineStr"`), and
only a `<f>` element could make a formula. Both tables are stamped with one fixed time, so the
same rows always give the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline.core.columns import column_name
from pipeline.errors import PROBLEM_COLUMNS, Problem, Severity
from pipeline.write.files import atomic_write
from pipeline.write.zipfiles import ZipMember, zip_bytes

# Control characters are not allowed in XML 1.0 (a workbook's text can hold them: calamine
# decodes Excel's _x0001_ escapes).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_CELL_TEXT = 32_767  # Excel's limit per cell
WRAP_FROM = 31  # text longer than this wraps, top-aligned, instead of running across columns
DEFAULT_WIDTH = 14
# The tables' creation time (docProps/core.xml): fixed, so equal tables give equal bytes. Their zip
# members are dated the one zip EPOCH of `pipeline.write.zipfiles`, as every zip we write.
TABLE_TIME = datetime(2020, 1, 1)

# Cell styles (indexes into cellXfs below).
PLAIN, HEADER, TWO_DECIMALS, WRAPPED = 0, 1, 2, 3

STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">\
<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>\
<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>\
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>\
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>\
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>\
<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>\
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>\
<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">\
<alignment vertical="top" wrapText="1"/></xf></cellXfs>\
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"""

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>\
<Default Extension="xml" ContentType="application/xml"/>\
<Override PartName="/xl/workbook.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>\
<Override PartName="/xl/worksheets/sheet1.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>\
<Override PartName="/xl/styles.xml" \
ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>\
<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>\
<Override PartName="/docProps/app.xml" \
ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/></Types>"""

ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
<Relationship Id="rId1" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>\
<Relationship Id="rId2" \
Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" \
Target="docProps/core.xml"/>\
<Relationship Id="rId3" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" \
Target="docProps/app.xml"/></Relationships>"""

WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
<Relationship Id="rId1" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>\
<Relationship Id="rId2" \
Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>\
</Relationships>"""

APP = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">\
<Application>perfreport</Application></Properties>"""


def cell_xml(ref: str, value: object, style: int = PLAIN) -> str:
    """One `<c>` element: a number, or an inline string (never a formula); "" for an empty cell."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        value = "是" if value else "否"
    if isinstance(value, int | float | Decimal) and math.isfinite(value):
        if isinstance(value, float) and style == PLAIN:
            style = TWO_DECIMALS
        number = format(value, "f") if isinstance(value, Decimal) else repr(value)
        styled = f' s="{style}"' if style else ""
        return f'<c r="{ref}"{styled}><v>{number}</v></c>'
    text = XML_ILLEGAL.sub("", str(value))[:MAX_CELL_TEXT]
    if style == PLAIN and len(text) >= WRAP_FROM:
        style = WRAPPED
    space = ' xml:space="preserve"' if text != text.strip() else ""
    styled = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{styled} t="inlineStr"><is><t{space}>{escape(text)}</t></is></c>'


def sheet_xml(columns: Sequence[str], rows: Iterable[Mapping[str, object]],
              widths: Mapping[str, int]) -> Iterable[str]:
    """The worksheet XML in pieces: widths, a frozen bold header row, then one row per mapping."""
    letters = [column_name(i) for i in range(len(columns))]
    yield ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           '<sheetViews><sheetView workbookViewId="0">'
           '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
           '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
           '<sheetFormatPr defaultRowHeight="15"/><cols>')
    for number, name in enumerate(columns, start=1):
        yield f'<col min="{number}" max="{number}" width="{widths.get(name, DEFAULT_WIDTH)}" customWidth="1"/>'
    yield '</cols><sheetData><row r="1">'
    yield "".join(cell_xml(f"{letter}1", name, HEADER) for letter, name in zip(letters, columns, strict=True))
    yield "</row>"
    for number, row in enumerate(rows, start=2):
        cells = "".join(cell_xml(f"{letter}{number}", row.get(name))
                        for letter, name in zip(letters, columns, strict=True))
        yield f'<row r="{number}">{cells}</row>'
    yield '</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>'


def workbook_xml(sheet_title: str) -> str:
    """xl/workbook.xml naming the one sheet."""
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{escape(sheet_title)}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def core_xml(created: datetime) -> str:
    """docProps/core.xml with a fixed author and time, so equal tables give equal bytes."""
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>perfreport</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>')


def table_xlsx(sheet_title: str, columns: Sequence[str], rows: Iterable[Mapping[str, object]],
               widths: Mapping[str, int] | None = None) -> bytes:
    """A one-sheet workbook `sheet_title` with a bold, frozen header row `columns` and one row per
    mapping; text is never a formula. The sheet is deflated as it is generated."""
    parts: list[tuple[str, Iterable[str]]] = [
        ("[Content_Types].xml", [CONTENT_TYPES]),
        ("_rels/.rels", [ROOT_RELS]),
        ("docProps/app.xml", [APP]),
        ("docProps/core.xml", [core_xml(TABLE_TIME)]),
        ("xl/workbook.xml", [workbook_xml(sheet_title)]),
        ("xl/_rels/workbook.xml.rels", [WORKBOOK_RELS]),
        ("xl/styles.xml", [STYLES]),
        ("xl/worksheets/sheet1.xml", sheet_xml(columns, rows, widths or {})),
    ]
    members = (ZipMember.deflated(name, (piece.encode("utf-8") for piece in pieces)) for name, pieces in parts)
    return zip_bytes(members)


def write_problems(path: Path, problems: Sequence[Problem]) -> Path:
    """校验报告.xlsx: one row per problem, errors first, in workbook order."""
    ordered = sorted(problems, key=lambda p: (p.severity is not Severity.ERROR, p.sheet, p.excel_row or 0))
    widths = {"工作表": 10, "行": 6, "列": 22, "值": 24, "级别": 6, "说明": 80}
    return atomic_write(path, table_xlsx("校验报告", PROBLEM_COLUMNS, (p.as_row() for p in ordered), widths))


def write_summary(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """汇总表.xlsx: one row per project."""
    columns = list(rows[0]) if rows else ["项目编号"]
    widths = {"项目名称": 30, "报告文件": 40}
    return atomic_write(path, table_xlsx("汇总表", columns, rows, widths))
