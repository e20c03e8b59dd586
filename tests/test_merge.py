"""Vertical merge of cells styled 表格文字（相同合并） (contract §4), in both render paths, and the
text reading of tables the compiled path uses instead of parsing (same results as the parsed way)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docxtpl import DocxTemplate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.merge import MERGE_STYLE_NAME, merge_tables
from pipeline.docx.mergetext import merged
from pipeline.docx.render import Renderer
from pipeline.docx.tablefix import fixed_tables, tables_can_change
from pipeline.docx.tabletext import Unreadable, fixed, fixed_body, forms, read_tables
from tests.test_renderer_identity import assert_same_parts, saved

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W = f"{{{W_NS}}}"
STYLE_ID = "ReportTableMerge"
# CT_TcPr's children in schema order, as far as they occur here.
TCPR_ORDER = ["cnfStyle", "tcW", "gridSpan", "hMerge", "vMerge", "tcBorders", "shd", "noWrap", "tcMar",
              "textDirection", "tcFitText", "vAlign", "hideMark"]


def indicator_template(*, style_in_table: bool = True, style_id: str = STYLE_ID) -> bytes:
    """A header row, then one row per indicator: 一级 and 二级 in the merge style, then the name."""
    document = docx.Document()
    style = document.styles.add_style(MERGE_STYLE_NAME, WD_STYLE_TYPE.PARAGRAPH)
    style.style_id = style_id
    document.add_paragraph("{{ title }}", style=style if not style_in_table else None)
    table = document.add_table(rows=4, cols=3)
    for column, text in enumerate(("一级指标", "二级指标", "三级指标")):
        table.cell(0, column).text = text
    table.cell(1, 0).text = "{%tr for ind in indicators %}"
    for column, text in enumerate(("{{ ind.level1 }}", "{{ ind.level2 }}", "{{ ind.name }}")):
        paragraph = table.cell(2, column).paragraphs[0]
        paragraph.text = text
        if column < 2 and style_in_table:
            paragraph.style = style
    table.cell(3, 0).text = "{%tr endfor %}"
    return saved(document)


def indicators(*rows: tuple[str, str, str]) -> dict[str, object]:
    return {"title": "指标表", "indicators": [{"level1": a, "level2": b, "name": c} for a, b, c in rows]}


HIERARCHY = indicators(
    ("产出指标", "数量指标", "接待批次"),
    ("产出指标", "数量指标", "化解件数"),
    ("产出指标", "质量指标", "化解率"),
    ("效益指标", "质量指标", "群众满意"),  # 二级 equal to the row above, 一级 not: no merge
    ("效益指标", "质量指标", "办结率"),
    ("满意度指标", "", "满意度"),
    ("满意度指标", "", "回访率"),  # empty 二级: never merged
)


def body_rows(data: bytes) -> list[list[etree._Element]]:
    """The cells of each row of the (only) table of a report."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        root = etree.fromstring(archive.read("word/document.xml"))
    [table] = root.iter(f"{W}tbl")
    return [list(row.iterchildren(f"{W}tc")) for row in table.iterchildren(f"{W}tr")]


def vmerge(cell: etree._Element) -> str | None:
    """"restart", "continue" or None."""
    merge = cell.find(f"{W}tcPr/{W}vMerge")
    return None if merge is None else merge.get(f"{W}val", "continue")


def cell_text(cell: etree._Element) -> str:
    return "".join(t.text or "" for t in cell.iter(f"{W}t"))


def both_paths(data: bytes, context: dict[str, object]) -> tuple[bytes, bytes]:
    return (Renderer(name="t.docx", data=data, variables=frozenset()).render(context),
            CompiledTemplate.from_bytes("t.docx", data).render(context))


def test_level2_merges_within_its_level1_only_and_empty_text_never_merges() -> None:
    reference, compiled = both_paths(indicator_template(), HIERARCHY)
    rows = body_rows(compiled)[1:]
    assert [(vmerge(r[0]), cell_text(r[0])) for r in rows] == [
        ("restart", "产出指标"), ("continue", ""), ("continue", ""),
        ("restart", "效益指标"), ("continue", ""),
        ("restart", "满意度指标"), ("continue", ""),
    ]
    assert [(vmerge(r[1]), cell_text(r[1])) for r in rows] == [
        ("restart", "数量指标"), ("continue", ""),
        (None, "质量指标"),  # under 数量指标: different text
        ("restart", "质量指标"),  # same text as the row above, but its 一级 starts anew
        ("continue", ""),
        (None, ""), (None, ""),  # empty text never merges
    ]
    assert [cell_text(r[2]) for r in rows] == [i["name"] for i in HIERARCHY["indicators"]]  # type: ignore[attr-defined]
    assert all(vmerge(r[2]) is None for r in rows)
    assert_same_parts(compiled, reference)


def test_both_paths_give_the_same_parts() -> None:
    for context in (HIERARCHY, indicators(), indicators(("产出指标", "数量指标", "甲"))):
        reference, compiled = both_paths(indicator_template(), context)
        assert_same_parts(compiled, reference)


def test_a_merged_cell_keeps_one_empty_paragraph_with_its_style() -> None:
    _, compiled = both_paths(indicator_template(), HIERARCHY)
    continued = body_rows(compiled)[2][0]
    [paragraph] = continued.findall(f"{W}p")
    assert paragraph.find(f"{W}r") is None
    assert paragraph.find(f"{W}pPr/{W}pStyle").get(f"{W}val") == STYLE_ID


def test_vmerge_sits_in_tcpr_in_schema_order() -> None:
    _, compiled = both_paths(indicator_template(), HIERARCHY)
    for row in body_rows(compiled):
        for cell in row:
            properties = cell.find(f"{W}tcPr")
            assert cell[0] is properties  # w:tcPr first in w:tc
            names = [etree.QName(child).localname for child in properties]
            assert names == sorted(names, key=TCPR_ORDER.index), names


def test_the_style_is_found_by_its_name_whatever_its_id() -> None:
    reference, compiled = both_paths(indicator_template(style_id="MyOwnId"), HIERARCHY)
    assert vmerge(body_rows(compiled)[1][0]) == "restart"
    assert_same_parts(compiled, reference)


def test_a_template_without_the_style_in_a_table_is_left_alone() -> None:
    reference, compiled = both_paths(indicator_template(style_in_table=False), HIERARCHY)
    assert all(vmerge(cell) is None for row in body_rows(compiled) for cell in row)
    assert_same_parts(compiled, reference)


def test_docxtpl_itself_does_not_merge() -> None:
    template = DocxTemplate(io.BytesIO(indicator_template()))
    template.render(HIERARCHY)
    buffer = io.BytesIO()
    template.save(buffer)
    assert all(vmerge(cell) is None for row in body_rows(buffer.getvalue()) for cell in row)


# --- the text reading against the parsed way, on generated tables ------------------------------------

HEAD = f'<w:body xmlns:w="{W_NS}">'
TEXTS = ["甲", "甲", "甲", "乙", "", " ", "a&amp;b", "&lt;x&gt;"]


@st.composite
def cells(draw: st.DrawFn) -> str:
    properties = ""
    if draw(st.booleans()):
        span = draw(st.sampled_from([None, 1, 2]))
        inner = '<w:tcW w:w="1200" w:type="dxa"/>' if draw(st.booleans()) else ""
        inner += f'<w:gridSpan w:val="{span}"/>' if span else ""
        inner += "<w:vMerge/>" if draw(st.integers(0, 9)) == 0 else ""
        inner += '<w:vAlign w:val="center"/>' if draw(st.booleans()) else ""
        properties = f"<w:tcPr>{inner}</w:tcPr>" if inner or draw(st.booleans()) else "<w:tcPr/>"
    paragraphs = []
    for index in range(draw(st.sampled_from([1, 1, 1, 2]))):
        if index == 0 and draw(st.integers(0, 7)) == 0:
            paragraphs.append("<w:p/>")
            continue
        style = draw(st.sampled_from([STYLE_ID, STYLE_ID, STYLE_ID, "Other", None]))
        paragraph_properties = (f'<w:pPr><w:pStyle w:val="{style}"/><w:jc w:val="left"/></w:pPr>'
                                if style else draw(st.sampled_from(["", '<w:pPr><w:jc w:val="center"/></w:pPr>'])))
        count = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
        texts = draw(st.lists(st.sampled_from(TEXTS), min_size=count, max_size=count))
        runs = "".join(f"<w:r><w:t>{text}</w:t></w:r>" for text in texts)
        paragraphs.append(f"<w:p>{paragraph_properties}{runs}</w:p>")
    bookmark = '<w:bookmarkStart w:id="0" w:name="b"/>' if draw(st.integers(0, 7)) == 0 else ""
    return f"<w:tc>{properties}{bookmark}{''.join(paragraphs)}</w:tc>"


@st.composite
def bodies(draw: st.DrawFn) -> str:
    tables = []
    for _ in range(draw(st.integers(1, 2))):
        columns = draw(st.integers(0, 4))
        grid = "".join('<w:gridCol w:w="1000"/>' for _ in range(columns))
        rows = []
        width = draw(st.integers(1, 3))  # most rows have as many cells: merges happen
        for _ in range(draw(st.integers(0, 6))):
            before = '<w:trPr><w:gridBefore w:val="1"/></w:trPr>' if draw(st.integers(0, 7)) == 0 else ""
            count = width if draw(st.integers(0, 3)) else draw(st.integers(1, 4))
            rows.append(f"<w:tr>{before}{''.join(draw(st.lists(cells(), min_size=count, max_size=count)))}</w:tr>")
        tables.append(f"<w:tbl><w:tblPr/><w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl>")
    return HEAD + "<w:p/>".join(tables) + "</w:body>"


def canonical(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_merging_as_text_gives_the_parsed_result(xml: str) -> None:
    parsed = etree.fromstring(xml)
    merge_tables(parsed, STYLE_ID)
    try:
        as_text = merged(xml, STYLE_ID, forms(xml))
    except Unreadable:
        return  # the compiled path parses such a body
    assert canonical(etree.fromstring(as_text)) == canonical(parsed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_fix_tables_on_elements_and_as_text_is_docxtpls(xml: str) -> None:
    from pipeline.docx.fastrender import _DOCXTPL

    want = _DOCXTPL.fix_tables(xml)
    got = etree.fromstring(xml)
    changed = fixed_tables(got)
    assert canonical(got) == canonical(want)
    assert changed == (canonical(got) != canonical(etree.fromstring(xml)))
    as_text = fixed(xml, read_tables(xml))
    assert canonical(etree.fromstring(as_text)) == canonical(want)
    assert (as_text is not xml) == changed
    assert canonical(etree.fromstring(fixed_body(xml, forms(xml)))) == canonical(want)


def patched_table(rows: Sequence[str], columns: int = 2) -> str:
    grid = "".join('<w:gridCol w:w="1000"/>' for _ in range(columns))
    return f"{HEAD}<w:tbl><w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl></w:body>"


def plain_row(*texts: str, span: str | None = None) -> str:
    first = f'<w:tc><w:tcPr><w:gridSpan w:val="{span}"/></w:tcPr><w:p/></w:tc>' if span else ""
    return "<w:tr>" + first + "".join(f"<w:tc><w:p><w:r><w:t>{t}</w:t></w:r></w:p></w:tc>" for t in texts) + "</w:tr>"


@pytest.mark.parametrize(("xml", "can_change"), [
    (patched_table([plain_row("a", "b"), "{% for r in rows %}", plain_row("{{ r.a }}", "{{ r.b }}"), "{% endfor %}"]), False),
    (patched_table(["{% for r in rows %}", plain_row("{{ r.a }}", "{{ r.b }}"), "{% endfor %}"]), True),
    (patched_table(["{% if x %}", plain_row("a", "b"), "{% endif %}"]), True),
    (patched_table([plain_row(span="{{n}}")]), True),
    (patched_table([plain_row("a", "b"), plain_row(span="{{n}}")]), False),
    (patched_table([plain_row("a", "b", "c")]), True),  # more cells than the grid: always repaired
    (patched_table([plain_row("a")]), True),  # fewer: always repaired
    (patched_table(["<w:tr>{% for c in cols %}<w:tc><w:p/></w:tc>{% endfor %}</w:tr>"]), True),
    (patched_table([plain_row("a", "b"), "<w:tr><w:tc><w:p><w:r><w:t>{% if x %}</w:t></w:r></w:p></w:tc>"
                    "<w:tc><w:p><w:r><w:t>{% endif %}</w:t></w:r></w:p></w:tc></w:tr>"]), True),
])
def test_which_tables_fix_tables_may_change_is_told_from_the_template(xml: str, can_change: bool) -> None:
    assert tables_can_change(xml) is can_change
