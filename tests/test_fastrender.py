"""Tests of pipeline/docx/fastrender.py: CompiledTemplate gives the same reports as Renderer (docxtpl)."""

from __future__ import annotations

import datetime
import io
import pickle
import zipfile
from pathlib import Path

import docx
import pytest
from docx.document import Document as DocumentObject
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from markupsafe import Markup

from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.render import Renderer
from pipeline.errors import TemplateInvalid
from tests.test_render import SAMPLE_CONTEXT, SPECIAL, sample_context

ROOT = Path(__file__).resolve().parents[1]
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DEFAULT_TEMPLATE = ROOT / "templates" / "report.docx"


def reopen(data: bytes) -> DocumentObject:
    return docx.Document(io.BytesIO(data))


def summary(data: bytes) -> dict[str, object]:
    """What a reader sees: texts, styles, tables, sections, headers/footers, properties."""
    document = reopen(data)
    sections = [
        (
            s.page_width, s.page_height, s.orientation, s.start_type,
            s.top_margin, s.bottom_margin, s.left_margin, s.right_margin,
            s.header_distance, s.footer_distance, s.gutter,
            [p.text for p in s.header.paragraphs], [p.text for p in s.footer.paragraphs],
        )
        for s in document.sections
    ]
    return {
        "paragraphs": [p.text for p in document.paragraphs],
        "styles": [p.style.name if p.style is not None else None for p in document.paragraphs],
        "tables": [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables],
        "sections": sections,
        "title": document.core_properties.title,
        "subject": document.core_properties.subject,
    }


def member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def canonical(xml: bytes) -> bytes:
    """The XML in canonical form (C14N): the same for documents that differ only in how they are
    written (redundant namespace declarations, `"` escaped or not), different for any change
    of elements, attributes or text."""
    return etree.tostring(etree.fromstring(xml), method="c14n")


def canonical_member(data: bytes, name: str) -> bytes:
    return canonical(member(data, name))


def test_canonical_form_tells_documents_apart() -> None:
    plain = b'<a xmlns:w="urn:w"><w:b x="1">t&quot;</w:b></a>'
    assert canonical(plain) == canonical(b'<a xmlns:w="urn:w"><w:b xmlns:w="urn:w" x="1">t"</w:b></a>')
    assert canonical(plain) != canonical(b'<a xmlns:w="urn:w"><w:b x="1">t</w:b></a>')
    assert canonical(plain) != canonical(b'<a xmlns:w="urn:w"><w:b x="2">t&quot;</w:b></a>')


@pytest.fixture(scope="module")
def compiled() -> CompiledTemplate:
    return CompiledTemplate.from_path(DEFAULT_TEMPLATE)


@pytest.fixture(scope="module")
def both(compiled: CompiledTemplate) -> tuple[bytes, bytes]:
    """The sample report rendered by docxtpl (Renderer) and by CompiledTemplate."""
    return Renderer.from_path(DEFAULT_TEMPLATE).render(SAMPLE_CONTEXT), compiled.render(SAMPLE_CONTEXT)


def test_default_template_reads_the_same_as_docxtpl(both: tuple[bytes, bytes]) -> None:
    expected, actual = both
    assert summary(actual) == summary(expected)
    assert SPECIAL in "\n".join(summary(actual)["paragraphs"])  # type: ignore[arg-type]


def test_default_template_parts_are_the_same_xml_as_docxtpl(both: tuple[bytes, bytes]) -> None:
    expected, actual = both
    with zipfile.ZipFile(io.BytesIO(expected)) as want, zipfile.ZipFile(io.BytesIO(actual)) as got:
        assert sorted(got.namelist()) == sorted(want.namelist())
        # The body is spliced into the document as rendered, so its XML is the same, not its bytes.
        assert canonical(got.read("word/document.xml")) == canonical(want.read("word/document.xml"))
        for name in ("docProps/core.xml", "word/footer1.xml", "word/footer2.xml"):
            assert got.read(name) == want.read(name), name


def test_same_variables_as_renderer(compiled: CompiledTemplate) -> None:
    assert compiled.variables == Renderer.from_path(DEFAULT_TEMPLATE).variables


def test_same_context_gives_identical_bytes_with_fixed_dates(compiled: CompiledTemplate) -> None:
    first = compiled.render(SAMPLE_CONTEXT)
    assert compiled.render(sample_context()) == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.testzip() is None
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        with zipfile.ZipFile(DEFAULT_TEMPLATE) as template:
            assert archive.namelist() == template.namelist()


def test_no_data_leaks_between_renders(compiled: CompiledTemplate) -> None:
    other = sample_context(title="另一个项目绩效评价报告", indicators=[], principles=["唯一原则。"])
    compiled.render(SAMPLE_CONTEXT)
    after_first = compiled.render(other)
    assert after_first == CompiledTemplate.from_path(DEFAULT_TEMPLATE).render(other)
    text = "\n".join(summary(after_first)["paragraphs"])  # type: ignore[arg-type]
    assert "另一个项目绩效评价报告" in text
    assert "领导接访费用绩效评价报告" not in text
    assert "信访积案化解率" not in str(summary(after_first)["tables"])


def test_survives_pickling_for_worker_processes(compiled: CompiledTemplate) -> None:
    copy = pickle.loads(pickle.dumps(compiled))
    assert copy.render(SAMPLE_CONTEXT) == compiled.render(SAMPLE_CONTEXT)


def make_loop_template(path: Path) -> Path:
    """A small template with {%p for %}, {%tr for %}, {%p if %}, a header and a templated title."""
    document = docx.Document()
    document.core_properties.title = "{{ title }}"
    document.sections[0].header.paragraphs[0].add_run("页眉 {{ title }}")
    document.add_paragraph("{{ title }}", style="Title")
    document.add_paragraph("{%p for item in items %}")
    document.add_paragraph("· {{ item }}", style="List Bullet")
    document.add_paragraph("{%p endfor %}")
    document.add_paragraph("{%p if flag %}")
    document.add_paragraph("条件成立：{{ note }}")
    document.add_paragraph("{%p endif %}")
    table = document.add_table(rows=4, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "名称", "值"
    table.cell(1, 0).text = "{%tr for row in rows %}"
    table.cell(2, 0).text, table.cell(2, 1).text = "{{ row.name }}", "{{ row.value }}"
    table.cell(3, 0).text = "{%tr endfor %}"
    document.add_paragraph("结尾 {{ note }}")
    document.save(path)
    return path


LOOP_CONTEXTS = [
    {
        "title": f"标题 {SPECIAL}",
        "items": ["a < b", "c & d", "{{ x }} {% raw %}", "😀 emoji", "two\nlines\tand tab"],
        "flag": True,
        "note": "<w:p>not xml</w:p> & 😀",
        "rows": [{"name": "<甲>", "value": "1 & 2"}, {"name": "{{ y }}", "value": "😀"}],
    },
    {"title": "空", "items": [], "flag": False, "note": "", "rows": []},
]


@pytest.mark.parametrize("context", LOOP_CONTEXTS, ids=["full", "empty"])
def test_loops_conditionals_and_special_characters_match_docxtpl(
    tmp_path: Path, context: dict[str, object]
) -> None:
    path = make_loop_template(tmp_path / "loops.docx")
    expected = Renderer.from_path(path).render(context)
    actual = CompiledTemplate.from_path(path).render(context)
    assert summary(actual) == summary(expected)
    assert canonical_member(actual, "word/document.xml") == canonical_member(expected, "word/document.xml")
    if context["flag"]:
        texts = summary(actual)["paragraphs"]
        assert "· {{ x }} {% raw %}" in texts  # type: ignore[operator]
        # docxtpl autoescapes core properties and python-docx escapes them again when saving, so
        # the title reads "&lt;b&gt;"; CompiledTemplate reproduces that (a Renderer quirk).
        assert reopen(actual).core_properties.title == reopen(expected).core_properties.title
        assert reopen(actual).core_properties.title.startswith("标题 &lt;b&gt; &amp;")


def write_template(path: Path, text: str) -> Path:
    document = docx.Document()
    document.add_paragraph(text)
    document.save(path)
    return path


def test_sandbox_escape_raises_template_invalid(tmp_path: Path) -> None:
    compiled = CompiledTemplate.from_path(write_template(tmp_path / "evil.docx", "{{ ''.__class__.__mro__ }}"))
    with pytest.raises(TemplateInvalid, match="evil.docx"):
        compiled.render({})


def test_unknown_variable_raises_template_invalid(tmp_path: Path) -> None:
    compiled = CompiledTemplate.from_path(write_template(tmp_path / "t.docx", "{{ nope }}"))
    with pytest.raises(TemplateInvalid, match="nope"):
        compiled.render({})


def test_syntax_error_and_non_docx_are_refused_when_compiling(tmp_path: Path) -> None:
    with pytest.raises(TemplateInvalid, match="bad.docx"):
        CompiledTemplate.from_path(write_template(tmp_path / "bad.docx", "{% if x %}"))
    with pytest.raises(TemplateInvalid, match="junk.docx"):
        CompiledTemplate.from_bytes("junk.docx", b"not a zip")
    with pytest.raises(TemplateInvalid, match="missing.docx"):
        CompiledTemplate.from_path(tmp_path / "missing.docx")


def test_a_second_report_matches_docxtpl_whatever_the_first_was() -> None:
    compiled = CompiledTemplate.from_path(DEFAULT_TEMPLATE)
    compiled.render(SAMPLE_CONTEXT)
    other = sample_context(title="第二份报告", principles=["唯一原则。"], indicators=[])
    expected = Renderer.from_path(DEFAULT_TEMPLATE).render(other)
    actual = compiled.render(other)
    assert canonical_member(actual, "word/document.xml") == canonical_member(expected, "word/document.xml")
    assert actual == CompiledTemplate.from_path(DEFAULT_TEMPLATE).render(other)


def test_the_shipped_template_is_spliced_without_parsing_each_report() -> None:
    # What keeps rendering 20 times faster than docxtpl: decided from the template, once.
    [body] = [part for part in CompiledTemplate.from_path(DEFAULT_TEMPLATE)._parts if part.name == "word/document.xml"]
    assert body.direct and body.plain and body.well_formed and not body.fix_tables  # type: ignore[union-attr]
    assert body.merge_style == "ReportTableMerge"  # type: ignore[union-attr]


# --- docProps/core.xml carries the report's date --------------------------------------------------

def dated_template() -> bytes:
    """A template whose core properties Word filled in (dates, last author, revision, a title tag)."""
    document = docx.Document()
    document.add_paragraph("{{ title }}")
    properties = document.core_properties
    properties.title = "{{ title }}"
    properties.author = "财政局"
    properties.last_modified_by = "模板制作人"
    properties.revision = 7
    properties.created = datetime.datetime(2013, 5, 6, 7, 8, 9)
    properties.modified = datetime.datetime(2014, 1, 2, 3, 4, 5)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("title", ["绩效评价报告", SPECIAL, "{{ title }}", "标题" * 200], ids=["plain", "special", "tag-like", "long"])
def test_the_report_date_becomes_created_and_modified_in_both_paths(title: str) -> None:
    data = dated_template()
    context = {"title": title, "report_date_iso": "2021-03-15"}
    if len(title) > 255:  # python-docx refuses longer properties: both paths refuse alike
        with pytest.raises(TemplateInvalid):
            CompiledTemplate.from_bytes("t.docx", data).render(context)
        with pytest.raises(TemplateInvalid):
            Renderer(name="t.docx", data=data, variables=frozenset()).render(context)
        return
    compiled = CompiledTemplate.from_bytes("t.docx", data).render(context)
    reference = Renderer(name="t.docx", data=data, variables=frozenset()).render(context)
    assert member(compiled, "docProps/core.xml") == member(reference, "docProps/core.xml")
    properties = reopen(compiled).core_properties
    midnight = datetime.datetime(2021, 3, 15, tzinfo=datetime.UTC)
    assert (properties.created, properties.modified) == (midnight, midnight)
    assert (properties.last_modified_by, properties.revision, properties.author) == ("模板制作人", 7, "财政局")
    assert b"<dcterms:created xsi:type=\"dcterms:W3CDTF\">2021-03-15T00:00:00Z</dcterms:created>" in member(
        compiled, "docProps/core.xml")


def test_without_a_report_date_the_templates_dates_stay() -> None:
    data = dated_template()
    for context in ({"title": "标题"}, {"title": "标题", "report_date_iso": ""}):
        compiled = CompiledTemplate.from_bytes("t.docx", data).render(context)
        assert member(compiled, "docProps/core.xml") == member(
            Renderer(name="t.docx", data=data, variables=frozenset()).render(context), "docProps/core.xml")
        properties = reopen(compiled).core_properties
        assert properties.created == datetime.datetime(2013, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
        assert properties.modified == datetime.datetime(2014, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_reports_with_the_same_date_are_byte_identical_from_run_to_run() -> None:
    context = sample_context(report_date_iso="2021-03-15")
    first = CompiledTemplate.from_path(DEFAULT_TEMPLATE).render(context)
    assert CompiledTemplate.from_path(DEFAULT_TEMPLATE).render(context) == first
    assert reopen(first).core_properties.modified == datetime.datetime(2021, 3, 15, tzinfo=datetime.UTC)
    later = CompiledTemplate.from_path(DEFAULT_TEMPLATE).render(sample_context(report_date_iso="2021-03-16"))
    assert later != first and reopen(later).core_properties.created == datetime.datetime(2021, 3, 16, tzinfo=datetime.UTC)


@pytest.mark.parametrize("value", ["2021-3-15", "15/03/2021", "2021-02-30", 20210315])
def test_a_malformed_report_date_is_refused(value: object) -> None:
    with pytest.raises(TemplateInvalid, match="report_date_iso"):
        CompiledTemplate.from_bytes("t.docx", dated_template()).render({"title": "t", "report_date_iso": value})


# --- what is decided from the template, checked against doing it every time -------------------------

PARAGRAPH_TEXTS = st.lists(st.sampled_from(["甲", "\t", "\n", "a\tb\nc", "", " "]), min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), PARAGRAPH_TEXTS), min_size=1, max_size=5))
def test_tabs_and_line_breaks_are_resolved_where_docxtpl_resolves_them(paragraphs: list[tuple[bool, list[str]]]) -> None:
    from pipeline.docx.fastrender import _DOCXTPL
    from pipeline.docx.listing import resolve_listing

    body = "".join(
        ("\n" if between else "")
        + '<w:p w:rsidR="1"><w:pPr><w:jc w:val="left"/></w:pPr>'
        + "".join(f'<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{text}</w:t></w:r>' for text in texts)
        + "</w:p>"
        for between, texts in paragraphs)
    xml = f'<w:body xmlns:w="{W_NS}">{body}<w:sectPr/></w:body>'
    expected = _DOCXTPL.resolve_listing(xml)
    assert resolve_listing(xml) == expected
    assert resolve_listing(xml, flat=True) == expected


def crossing_block_template() -> bytes:
    """A block that opens inside a paragraph's text and closes between paragraphs: its output is
    well-formed only for some data (docxtpl's recovering parser repairs the rest)."""
    document = docx.Document()
    document.add_paragraph("开始 {% if flag %}甲")
    document.add_paragraph("{%p endif %}")
    document.add_paragraph("结束")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_template_whose_output_may_be_malformed_is_checked_per_report() -> None:
    from pipeline.docx.fastrender import _DOCXTPL
    from pipeline.docx.wellformed import always_well_formed

    data = crossing_block_template()
    body_xml = _DOCXTPL.patch_xml(_DOCXTPL.xml_to_string(docx.Document(io.BytesIO(data)).element.body))
    assert not always_well_formed(body_xml)
    compiled = CompiledTemplate.from_bytes("t.docx", data)
    for flag in (True, False):
        expected = Renderer(name="t.docx", data=data, variables=frozenset()).render({"flag": flag})
        actual = compiled.render({"flag": flag})
        assert canonical_member(actual, "word/document.xml") == canonical_member(expected, "word/document.xml")


@pytest.mark.parametrize("value", [Markup("<w:r><w:t>raw</w:t></w:r>"), Markup("a &amp; b"), ["列表", "<x>"], 7, None])
def test_markup_printed_by_the_data_sends_the_body_to_the_parser_and_matches_docxtpl(value: object) -> None:
    data = write_template_bytes("值：{{ value }}")
    expected = Renderer(name="t.docx", data=data, variables=frozenset()).render({"value": value})
    actual = CompiledTemplate.from_bytes("t.docx", data).render({"value": value})
    assert canonical_member(actual, "word/document.xml") == canonical_member(expected, "word/document.xml")


def write_template_bytes(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("value", ["a < b & c", "</w:t></w:r><w:r><w:t>拆开", "普通文字"])
def test_text_printed_with_autoescape_off_matches_docxtpl(value: str) -> None:
    data = write_template_bytes("前{% autoescape false %}{{ value }}{% endautoescape %}后")
    expected = Renderer(name="t.docx", data=data, variables=frozenset()).render({"value": value})
    actual = CompiledTemplate.from_bytes("t.docx", data).render({"value": value})
    assert canonical_member(actual, "word/document.xml") == canonical_member(expected, "word/document.xml")
