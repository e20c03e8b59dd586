"""The compiled renderer gives docxtpl's output for any template a clerk may write, whatever it rendered before.

Every template here is built with python-docx in the test. Each is rendered by docxtpl 0.20.2 as
documented (a new DocxTemplate per report, `render`, `save`) and by `CompiledTemplate`, and every
XML part of the two packages is compared in canonical form (C14N: the same for documents that
differ only in how they are written). What the compiled path cannot render is refused with a
Chinese message naming it.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import docx
import pytest
from docx.enum.section import WD_SECTION
from docx.shared import Cm
from docxtpl import DocxTemplate, InlineImage, Listing, RichText, RichTextParagraph
from lxml import etree

from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.render import Renderer, jinja_environment
from pipeline.docx.templatecheck import template_check
from pipeline.errors import TemplateInvalid

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
SPECIAL = '<b> & "引号" {{ x }} {% if %} 😀 𠀀'

# A 1x1 PNG (a red dot), for the pictures docxtpl would insert.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000"
    "000301010018dd8db00000000049454e44ae426082"
)


def saved(document: docx.document.Document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docxtpl_render(data: bytes, context: Mapping[str, object] | Callable[[DocxTemplate], Mapping[str, object]]) -> bytes:
    """docxtpl 0.20.2 as documented, in the product's environment (sandboxed, escaping, strict).
    `context` may be made from the DocxTemplate (docxtpl's Subdoc and InlineImage need it)."""
    template = DocxTemplate(io.BytesIO(data))
    values = context(template) if callable(context) else context
    template.render(dict(values), jinja_env=jinja_environment(), autoescape=True)
    buffer = io.BytesIO()
    template.save(buffer)
    return buffer.getvalue()


def canonical(name: str, xml: bytes) -> bytes:
    """A part in canonical form (C14N). The entries of [Content_Types].xml and of relationship
    parts are a set: python-docx writes them sorted when it saves, the compiled path copies the
    template's own order."""
    root = etree.fromstring(xml)
    if name == "[Content_Types].xml" or name.endswith(".rels"):
        root[:] = sorted(root, key=lambda child: etree.tostring(child, method="c14n"))
    return etree.tostring(root, method="c14n")


def xml_parts(data: bytes) -> dict[str, bytes]:
    """Every XML part of a package, canonicalized."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: canonical(name, archive.read(name))
                for name in archive.namelist() if name.endswith((".xml", ".rels"))}


def assert_same_parts(actual: bytes, expected: bytes) -> None:
    got, want = xml_parts(actual), xml_parts(expected)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name


def document_xml(data: bytes) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return etree.fromstring(archive.read("word/document.xml"))


def grid_columns(data: bytes) -> list[int]:
    """How many w:gridCol each table of the body has."""
    return [len(grid.findall(f"{W}gridCol")) for grid in document_xml(data).iter(f"{W}tblGrid")]


# --- templates -------------------------------------------------------------------------------------

def loop_without_header() -> bytes:
    """The issue's first shape: a 2-column table that is only a {%tr for %} loop."""
    document = docx.Document()
    document.add_paragraph("{{ title }}")
    table = document.add_table(rows=3, cols=2)
    table.cell(0, 0).text = "{%tr for r in rows %}"
    table.cell(1, 0).text, table.cell(1, 1).text = "{{ r.a }}", "{{ r.b }}"
    table.cell(2, 0).text = "{%tr endfor %}"
    return saved(document)


def merged_colspan() -> bytes:
    """The issue's second shape: a merged cell whose span is {% colspan n %}."""
    document = docx.Document()
    table = document.add_table(rows=1, cols=3)
    cell = table.cell(0, 0).merge(table.cell(0, 2))
    cell.text = "{% colspan n %}合计 {{ n }}"
    return saved(document)


def column_loop() -> bytes:
    """{%tc for %} column loops, as in docxtpl's dynamic table example."""
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text, table.cell(0, 1).text, table.cell(0, 2).text = (
        "{%tc for c in cols %}", "{{ c }}", "{%tc endfor %}")
    table.cell(1, 0).text, table.cell(1, 1).text, table.cell(1, 2).text = (
        "{%tc for v in values %}", "{{ v }}", "{%tc endfor %}")
    return saved(document)


def paragraphs_and_runs() -> bytes:
    """{%p %} blocks, {%r %} runs, {{r }} and {{p }} values."""
    document = docx.Document()
    document.add_paragraph("{%p for item in items %}")
    document.add_paragraph("· {{ item }}")
    document.add_paragraph("{%p endfor %}")
    document.add_paragraph("{%p if flag %}")
    document.add_paragraph("条件成立：{{ note }}")
    document.add_paragraph("{%p else %}")
    document.add_paragraph("条件不成立")
    document.add_paragraph("{%p endif %}")
    paragraph = document.add_paragraph("前")
    paragraph.add_run("{%r if flag %}")
    paragraph.add_run("加粗").bold = True
    paragraph.add_run("{%r endif %}")
    paragraph.add_run("后 {{r rich }}")
    document.add_paragraph("{{p rich_paragraph }}")
    document.add_paragraph("清单：{{ listing }}")
    document.add_paragraph("{{p sub }}")
    return saved(document)


def merges() -> bytes:
    """docxtpl's {% vm %} (vertical) and {% hm %} (horizontal) merges inside loops."""
    document = docx.Document()
    table = document.add_table(rows=4, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "组", "名称"
    table.cell(1, 0).text = "{%tr for item in items %}"
    table.cell(2, 0).text, table.cell(2, 1).text = "{% vm %}{{ group }}", "{{ item }}"
    table.cell(3, 0).text = "{%tr endfor %}"
    wide = document.add_table(rows=2, cols=3)
    wide.cell(0, 0).text, wide.cell(0, 1).text, wide.cell(0, 2).text = (
        "{%tc for c in cols %}", "{% hm %}标题", "{%tc endfor %}")
    wide.cell(1, 0).text, wide.cell(1, 1).text, wide.cell(1, 2).text = (
        "{%tc for c in cols %}", "{{ c }}", "{%tc endfor %}")
    return saved(document)


def headers_and_footers() -> bytes:
    """Two sections, each with its own header and footer, a first-page header, a footer without tags."""
    document = docx.Document()
    document.add_paragraph("正文 {{ title }}")
    first = document.sections[0]
    first.different_first_page_header_footer = True
    first.header.paragraphs[0].text = "页眉 {{ title }}"
    first.first_page_header.paragraphs[0].text = "首页页眉 {{ department }}"
    first.footer.paragraphs[0].text = "— 第 1 页 —"
    second = document.add_section(WD_SECTION.NEW_PAGE)
    second.header.is_linked_to_previous = False
    second.header.paragraphs[0].text = "附件页眉 {{ department }}"
    second.footer.is_linked_to_previous = False
    second.footer.paragraphs[0].text = "附件 {{ title }}"
    document.add_paragraph("附件正文")
    return saved(document)


FOOTNOTES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<w:footnotes xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
    '<w:footnote w:id="1"><w:p><w:r><w:t xml:space="preserve">注：{{ note }}</w:t></w:r></w:p></w:footnote>'
    "</w:footnotes>"
)


def with_footnotes(sections: int) -> bytes:
    """A document of `sections` sections whose footnotes part holds a tag, as Word lays it out."""
    document = docx.Document()
    paragraph = document.add_paragraph("正文 {{ title }}")
    reference = paragraph.add_run()._r
    reference.append(etree.fromstring(f'<w:footnoteReference xmlns:w="{W[1:-1]}" w:id="1"/>'))
    for _ in range(sections - 1):
        document.add_section(WD_SECTION.NEW_PAGE)
        document.add_paragraph("下一节")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved(document))) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", b'<Override PartName="/word/footnotes.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"/></Types>')
            elif info.filename == "word/_rels/document.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/'
                                    b'officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/></Relationships>')
            target.writestr(info, data)
        target.writestr("word/footnotes.xml", FOOTNOTES)
    return out.getvalue()


# --- no decision learnt from one render reused for another -----------------------------------------

SHAPES = {
    "loop-without-header": (loop_without_header, [
        {"title": "两行", "rows": [{"a": "甲", "b": "1"}, {"a": "乙", "b": "2"}]},
        {"title": "一行", "rows": [{"a": "甲", "b": "1"}]},
        {"title": "无", "rows": []},
    ]),
    "colspan": (merged_colspan, [{"n": 3}, {"n": 2}, {"n": 1}, {"n": 4}]),
    "column-loop": (column_loop, [
        {"cols": ["甲", "乙"], "values": ["1", "2"]},
        {"cols": ["甲", "乙", "丙", "丁"], "values": ["1", "2", "3", "4"]},
        {"cols": [], "values": []},
    ]),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_same_context_gives_the_same_bytes_whatever_was_rendered_before(shape: str) -> None:
    build, contexts = SHAPES[shape]
    data = build()
    alone = [CompiledTemplate.from_bytes("t.docx", data).render(context) for context in contexts]
    for order in itertools.permutations(range(len(contexts))):
        compiled = CompiledTemplate.from_bytes("t.docx", data)  # one compiled template, many reports
        for index in order:
            assert compiled.render(contexts[index]) == alone[index], (order, index)
    for context, report in zip(contexts, alone, strict=True):
        assert_same_parts(report, docxtpl_render(data, context))


def test_a_loop_that_renders_no_row_empties_the_grid_as_docxtpl_does() -> None:
    data = loop_without_header()
    compiled = CompiledTemplate.from_bytes("t.docx", data)
    assert grid_columns(compiled.render(SHAPES["loop-without-header"][1][1])) == [2]
    assert grid_columns(compiled.render(SHAPES["loop-without-header"][1][2])) == [0]
    assert grid_columns(docxtpl_render(data, SHAPES["loop-without-header"][1][2])) == [0]


def test_a_smaller_colspan_after_a_larger_one_narrows_the_grid_as_docxtpl_does() -> None:
    data = merged_colspan()
    compiled = CompiledTemplate.from_bytes("t.docx", data)
    assert grid_columns(compiled.render({"n": 3})) == [3]
    assert grid_columns(compiled.render({"n": 2})) == [2] == grid_columns(docxtpl_render(data, {"n": 2}))


def test_column_loops_add_and_remove_grid_columns_as_docxtpl_does() -> None:
    data = column_loop()
    compiled = CompiledTemplate.from_bytes("t.docx", data)
    assert grid_columns(compiled.render(SHAPES["column-loop"][1][1])) == [4]
    assert grid_columns(compiled.render(SHAPES["column-loop"][1][0])) == [2]


# --- docxtpl's features, each compared with docxtpl --------------------------------------------------

def rich_values(template: DocxTemplate) -> dict[str, object]:
    """RichText, RichTextParagraph, Listing and a Subdoc of text, made as docxtpl documents them."""
    rich = RichText("红色粗体", color="#FF0000", bold=True)
    rich.add(f" 和 {SPECIAL}", font="eastAsia:仿宋_GB2312", underline=True)
    paragraph = RichTextParagraph()
    paragraph.add(RichText("整段", italic=True))
    sub = template.new_subdoc()
    sub.add_paragraph("子文档第一段")
    sub.add_paragraph(f"子文档第二段 {SPECIAL}")
    table = sub.add_table(rows=1, cols=3)  # a table only the data brings: repaired as docxtpl does
    table.cell(0, 0).text = "子表格"
    return {"items": ["一", f"二 {SPECIAL}"], "flag": True, "note": "说明 & 备注", "rich": rich,
            "rich_paragraph": paragraph, "listing": Listing("第一行\n第二行\t制表\a新段落\f新页"), "sub": sub}


@pytest.mark.parametrize("flag", [True, False])
def test_paragraph_and_run_tags_richtext_listing_and_subdoc_match_docxtpl(flag: bool) -> None:
    data = paragraphs_and_runs()
    compiled = CompiledTemplate.from_bytes("t.docx", data)

    def context(template: DocxTemplate) -> dict[str, object]:
        return {**rich_values(template), "flag": flag}

    expected = docxtpl_render(data, context)
    actual = compiled.render(context(DocxTemplate(io.BytesIO(data))))
    assert_same_parts(actual, expected)
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(actual)).paragraphs)
    assert "红色粗体" in text and "子文档第二段" in text and "第二行" in text
    assert ("加粗" in text) is flag


@pytest.mark.parametrize("count", [0, 1, 3])
def test_vm_and_hm_merges_match_docxtpl(count: int) -> None:
    data = merges()
    context = {"group": "同组", "items": [f"项{i}" for i in range(count)], "cols": [f"列{i}" for i in range(count)]}
    assert_same_parts(CompiledTemplate.from_bytes("t.docx", data).render(context), docxtpl_render(data, context))


def test_headers_and_footers_of_two_sections_match_docxtpl() -> None:
    data = headers_and_footers()
    context = {"title": f"标题 {SPECIAL}", "department": "如皋市信访局"}
    actual = CompiledTemplate.from_bytes("t.docx", data).render(context)
    assert_same_parts(actual, docxtpl_render(data, context))
    sections = docx.Document(io.BytesIO(actual)).sections
    assert sections[0].header.paragraphs[0].text == f"页眉 标题 {SPECIAL}"
    assert sections[1].footer.paragraphs[0].text == f"附件 标题 {SPECIAL}"


@pytest.mark.parametrize("sections", [1, 2])
def test_footnotes_match_docxtpl_in_one_and_two_section_documents(sections: int) -> None:
    data = with_footnotes(sections)
    context = {"title": "标题", "note": "资金来源为财政拨款 & 上年结转"}
    actual = CompiledTemplate.from_bytes("t.docx", data).render(context)
    assert_same_parts(actual, docxtpl_render(data, context))
    assert "资金来源为财政拨款 &amp; 上年结转".encode() in zipfile.ZipFile(io.BytesIO(actual)).read("word/footnotes.xml")


def test_workbook_text_in_a_footnote_is_never_run_as_a_template() -> None:
    # docxtpl renders the footnotes part once per section: in a two-section document it runs the
    # first pass's output, the clerk's text included, as a template again. Both product paths
    # render it once, so "{{ title }}" typed in the workbook stays as typed.
    data = with_footnotes(2)
    context = {"title": "标题", "note": "{{ title }}"}
    assert b"\xe6\xb3\xa8\xef\xbc\x9a\xe6\xa0\x87\xe9\xa2\x98<" in zipfile.ZipFile(  # 注：标题
        io.BytesIO(docxtpl_render(data, context))).read("word/footnotes.xml")
    compiled = CompiledTemplate.from_bytes("t.docx", data).render(context)
    reference = Renderer(name="t.docx", data=data, variables=frozenset()).render(context)
    for report in (compiled, reference):
        assert "注：{{ title }}".encode() in zipfile.ZipFile(io.BytesIO(report)).read("word/footnotes.xml")
    assert_same_parts(compiled, reference)


def test_the_reference_renderer_matches_docxtpl_elsewhere() -> None:
    data = paragraphs_and_runs()
    reference = Renderer(name="t.docx", data=data, variables=frozenset())

    def context(template: DocxTemplate) -> dict[str, object]:
        return {**rich_values(template), "flag": True}

    assert_same_parts(reference.render(context(DocxTemplate(io.BytesIO(data)))), docxtpl_render(data, context))


# --- refused, with a Chinese message naming the feature ----------------------------------------------

def one_value_template() -> bytes:
    document = docx.Document()
    document.add_paragraph("值：{{ value }}")
    document.add_paragraph("{{p block }}")
    return saved(document)


def refusal(values: Callable[[DocxTemplate], dict[str, object]]) -> str:
    """The message CompiledTemplate refuses a context with; `values` made with a DocxTemplate."""
    data = one_value_template()
    context = {"value": "", "block": "", **values(DocxTemplate(io.BytesIO(data)))}
    compiled = CompiledTemplate.from_bytes("附件模板.docx", data)
    with pytest.raises(TemplateInvalid) as refused:
        compiled.render(context)
    return str(refused.value)


def picture_file(tmp_path: Path) -> Path:
    path = tmp_path / "dot.png"
    path.write_bytes(PNG)
    return path


def test_an_inline_image_is_refused_naming_it(tmp_path: Path) -> None:
    image = picture_file(tmp_path)
    message = refusal(lambda t: {"value": InlineImage(t, str(image), width=Cm(1))})
    assert message.startswith("模板 附件模板.docx 无法渲染：") and "插图（docxtpl 的 InlineImage）" in message


def test_a_richtext_hyperlink_is_refused_naming_it() -> None:
    message = refusal(lambda t: {"value": RichText("链接", url_id=t.build_url_id("https://example.org/"))})
    assert "带超链接的 RichText" in message


def test_a_subdoc_with_a_picture_is_refused_naming_it(tmp_path: Path) -> None:
    image = picture_file(tmp_path)

    def with_picture(template: DocxTemplate) -> dict[str, object]:
        sub = template.new_subdoc()
        sub.add_paragraph("有图片的子文档")
        sub.add_picture(str(image), width=Cm(1))
        return {"block": sub}

    assert "含图片、图表、脚注或超链接的子文档（docxtpl 的 Subdoc）" in refusal(with_picture)


def test_a_subdoc_made_from_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "片段.docx"
    source.write_bytes(one_value_template())
    assert "由 Word 文件生成的子文档（docxtpl 的 Subdoc）" in refusal(lambda t: {"block": t.new_subdoc(str(source))})


@pytest.mark.parametrize("method", ["replace_pic", "replace_media", "replace_embedded", "replace_zipname"])
def test_docxtpl_replacements_are_refused_naming_them(method: str) -> None:
    compiled = CompiledTemplate.from_bytes("附件模板.docx", one_value_template())
    with pytest.raises(TemplateInvalid, match=f"模板 附件模板.docx 无法渲染：不支持 docxtpl 的 {method}（替换模板"):
        getattr(compiled, method)("dummy.png", "new.png")


def custom_filter_template(guarded: bool) -> bytes:
    document = docx.Document()
    document.add_paragraph("{{ title }}")
    text = "金额 {{ title|money }}"
    document.add_paragraph(f"{{% if title %}}{text}{{% endif %}}" if guarded else text)
    return saved(document)


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "inside-if"])
def test_a_custom_filter_is_named_by_check_template_and_refused(guarded: bool) -> None:
    data = custom_filter_template(guarded)
    check = template_check("过滤器.docx", data)
    [finding] = check.findings
    assert finding.name == "money"
    assert finding.where.startswith("正文第2段「")
    assert finding.message == "使用了程序不提供的过滤器 money（自定义过滤器不受支持，请改用 Jinja 自带的写法或程序提供的变量）"
    if guarded:  # Jinja defers a filter inside {% if %} to rendering: refused there too, named
        with pytest.raises(TemplateInvalid, match="使用了程序不提供的过滤器 money"):
            CompiledTemplate.from_bytes("过滤器.docx", data).render({"title": "标题"})
    else:
        with pytest.raises(TemplateInvalid, match="使用了程序不提供的过滤器 money"):
            CompiledTemplate.from_bytes("过滤器.docx", data)
