"""Tests of pipeline/docx/fastrender.py: CompiledTemplate gives the same reports as Renderer (docxtpl)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import docx
import pytest
from docx.document import Document as DocumentObject
from lxml import etree

from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.render import Renderer
from pipeline.errors import TemplateInvalid
from tests.test_render import SAMPLE_CONTEXT, SPECIAL, sample_context

ROOT = Path(__file__).resolve().parents[1]
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


def test_later_renders_that_skip_the_table_fix_still_match_docxtpl() -> None:
    compiled = CompiledTemplate.from_path(DEFAULT_TEMPLATE)
    compiled.render(SAMPLE_CONTEXT)  # the first render learns whether fix_tables matters
    other = sample_context(title="第二份报告", principles=["唯一原则。"])
    expected = Renderer.from_path(DEFAULT_TEMPLATE).render(other)
    actual = compiled.render(other)
    assert canonical_member(actual, "word/document.xml") == canonical_member(expected, "word/document.xml")
