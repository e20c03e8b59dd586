"""Compile a .docx template once, render many reports from it (same output as docxtpl).

`pipeline.docx.render.Renderer` uses docxtpl as documented: every report opens the template with
python-docx, patches the XML, compiles it with Jinja, renders and saves the whole package again.
`CompiledTemplate` does the template-only work once:

* the XML parts docxtpl renders (the document body, the headers and footers the main document
  refers to, the footnotes part and the string core properties) are patched with docxtpl's own
  `DocxTemplate.patch_xml` and compiled with our sandboxed environment
  (`pipeline.docx.render.jinja_environment`);
* every other member of the zip is kept as its already-compressed bytes and copied raw;
* what docxtpl's repairs will need is decided from the template alone: which tables its
  `fix_tables` may change for some data (`tablefix.tables_can_change`), whether the template
  uses the merge style of `merge.py` in a table, whether the body has drawings.

A render then runs the compiled templates with the post-processing docxtpl 0.20.2 applies after
Jinja (`render_xml_part`: the ``{_{`` replacements and `resolve_listing`; for the body also
`fix_tables` and the wp:docPr renumbering of `fix_docpr_ids`), adds the product's own (the
vertical merge, the report's date in docProps/core.xml), serializes the parts as python-docx
would, and writes a zip with a fixed timestamp and the template's member order. Nothing learnt
while rendering one report is kept for the next: the same context always gives the same bytes,
whatever was rendered before. Shortcuts that keep the XML the same: a well-formed body without
drawings is spliced into the serialized document as rendered (the canonical XML docxtpl's
re-serialization would give), its tables repaired and merged as text edits (`tabletext`,
`mergetext`), tabs and line breaks resolved only in the paragraphs that hold them (`listing`);
whether each body must be checked to be well-formed is decided from the template
(`wellformed`); core.xml is cut once around its rendered values (`coreprops`); a header or
footer without any Jinja tag is rendered once.

Values that carry their own XML (RichText, Listing, a Subdoc of text) render as with docxtpl;
when one is printed in the body, the whole body is repaired as docxtpl repairs it. What needs a
live python-docx package while rendering is refused with a Chinese message naming it
(`render.UnsupportedFeature`: InlineImage, RichText hyperlinks, Subdocs with pictures or made
from a file), and so are docxtpl's media and zip-member replacements (`replace_pic` and the like).
"""

from __future__ import annotations

import copy
import io
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from xml.parsers import expat

import docx
import jinja2
from docx.opc.oxml import serialize_part_xml
from docx.oxml.ns import nsmap as DOCX_NSMAP
from docx.oxml.parser import parse_xml as oxml_parse_xml
from docxtpl import DocxTemplate
from jinja2 import meta
from lxml import etree

from pipeline.docx.coreprops import CorePart, core_part
from pipeline.docx.listing import resolve_listing
from pipeline.docx.merge import W_NS, merge_tables, table_merge_style
from pipeline.docx.mergetext import merged
from pipeline.docx.render import (
    NOT_A_DOCX,
    RAW_OUTPUT,
    jinja_environment,
    template_bytes,
    template_error_message,
)
from pipeline.docx.tablefix import fixed_tables, tables_can_change
from pipeline.docx.tabletext import ANY_FORMS, Forms, Unreadable, fixed_body, forms, plain_body
from pipeline.docx.wellformed import always_well_formed
from pipeline.errors import TemplateInvalid
from pipeline.write.zipfiles import ZipMember, zip_bytes

_FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"

# zlib level for the parts rendered per report: level 1 takes a third of the time of the
# default 6 for a document.xml a quarter larger (about 3 KB instead of 2.5 KB compressed).
_RENDERED_LEVEL = 1
# The mode a report's zip members carry (rw-------), as python-docx's own zips have it.
_MEMBER_MODE = 0o600

_PARAGRAPH_OPEN = re.compile(r"<w:p([ >])")

# DocxTemplate methods that do not depend on a loaded document (patch_xml, xml_to_string,
# get_part_xml) are called on this instance; it never opens a file.
_DOCXTPL = DocxTemplate(io.BytesIO(b""))


def _compressed(name: str, raw: bytes) -> ZipMember:
    """A part rendered for a report, deflated at the fast level."""
    return ZipMember.deflated(name, [raw], _RENDERED_LEVEL)


def _raw_member(archive: zipfile.ZipFile, raw_zip: bytes, info: zipfile.ZipInfo) -> ZipMember:
    """The member as stored in the template (no recompression), checked by a full read."""
    content = archive.read(info)  # verifies the CRC and that the member can be read at all
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
        return _compressed(info.filename, content)
    name_len, extra_len = struct.unpack("<HH", raw_zip[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data = raw_zip[start : start + info.compress_size]
    return ZipMember(info.filename, info.compress_type, info.CRC, info.file_size, data)


def _jinja_text(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """docxtpl's render_xml_part up to resolve_listing: Jinja, then the {_{ replacements."""
    # docxtpl's re.sub(r"\n<w:p([ >])", r"<w:p\1") as two plain replaces: same result, a tenth
    # of the time (the regex expands its template once per paragraph).
    dst = template.render(context).replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
    return dst.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%").replace("%_}", "%}")


def _render_part(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """docxtpl's render_xml_part after Jinja: {_{ replacements and resolve_listing."""
    return resolve_listing(_jinja_text(template, context))


def _well_formed(xml: bytes) -> bool:
    """True when `xml` parses as XML (expat: twice as fast as building an lxml tree)."""
    try:
        expat.ParserCreate().Parse(xml, True)
    except expat.ExpatError:
        return False
    return True


def _around_body(root: etree._Element, body_index: int) -> tuple[bytes, bytes] | tuple[()]:
    """The document serialized as python-docx saves it, cut where its body goes; () when it cannot
    be cut there unambiguously (then each report's body is parsed and serialized with the document)."""
    document = copy.deepcopy(root)
    document.insert(body_index, etree.Element(f"{{{DOCX_NSMAP['w']}}}body"))
    before, body, after = serialize_part_xml(document).partition(b"<w:body/>")
    if not body or b"<w:body/>" in after:
        return ()
    return before, after


def _jinja_source(patched: str) -> str:
    """docxtpl's render_xml_part before Jinja: every paragraph on a line of its own."""
    return _PARAGRAPH_OPEN.sub(r"\n<w:p\1", patched)


@dataclass(frozen=True, slots=True)
class _Body:
    """The main document part: the patched body template and the document without its body.

    Everything it decides before rendering comes from the template alone; nothing learnt while
    rendering one report is kept for the next."""

    name: str
    template: jinja2.Template
    root: etree._Element  # the w:document element with the body removed (copied per render)
    body_index: int
    # fix_tables may change a table for some data ({%tr %} loops that can render no row,
    # {%tc %} loops, {% colspan %}, a grid that does not fit the rows): repair per render.
    fix_tables: bool
    # The id of the style 表格文字（相同合并） when the template uses it in a table (merge.py).
    merge_style: str | None = None
    # The body's markup can be read as text (`tabletext.plain_body`): tables checked and merged,
    # tabs and line breaks resolved, without parsing.
    plain: bool = False
    # Every rendering of the body is well-formed XML unless the data prints markup
    # (`wellformed.always_well_formed`): no need to check each report with expat.
    well_formed: bool = False
    forms: Forms = ANY_FORMS  # how the template writes its table tags (`tabletext.forms`)
    # The serialized document before and after its body, when the body can be spliced in as
    # rendered: no drawings (whose wp:docPr ids docxtpl renumbers) and the usual w: prefix.
    direct: tuple[bytes, bytes] | tuple[()] = ()

    def render(self, context: Mapping[str, Any]) -> bytes:
        raw: list[str] = []
        listening = RAW_OUTPUT.set(raw)
        try:
            xml = _jinja_text(self.template, context)
        finally:
            RAW_OUTPUT.reset(listening)
        xml = resolve_listing(xml, flat=self.plain and not raw)
        # Markup printed by the data (RichText, Subdoc, |safe) may bring tables or drawings the
        # template does not show, or break the nesting: then the body is parsed, repaired and
        # renumbered as docxtpl does.
        sound = not raw
        if sound:
            rendered = xml.encode("utf-8")
            sound = self.well_formed or _well_formed(rendered)
            if sound and self.direct:
                before, after = self.direct
                spliced = self.spliced(xml, rendered)
                if spliced is not None:
                    # What the parse and re-serialization below would give, but for the redundant
                    # namespace declarations the body keeps (same canonical XML, pinned by a test).
                    return before + spliced + after
        tree = etree.fromstring(xml, parser=etree.XMLParser(recover=True))  # as docxtpl parses it
        if self.fix_tables or not sound:  # a repaired body may hold tables the template does not
            fixed_tables(tree)
        if self.merge_style:
            merge_tables(tree, self.merge_style)
        ids = 1000
        for element in tree.xpath("//wp:docPr", namespaces=DOCX_NSMAP):
            ids += 1
            element.attrib["id"] = str(ids)
        root = copy.deepcopy(self.root)
        root.insert(self.body_index, tree)
        return serialize_part_xml(root)

    def spliced(self, xml: str, rendered: bytes) -> bytes | None:
        """The well-formed rendered body (`rendered` is its UTF-8) as it goes into the document,
        its tables repaired and merged as text (`tabletext`); None when it has to be parsed."""
        if not self.fix_tables and not self.merge_style:
            return rendered
        if not self.plain:
            return None
        try:
            done = fixed_body(xml, self.forms) if self.fix_tables else xml
            done = merged(done, self.merge_style, self.forms) if self.merge_style else done
        except Unreadable:
            return None
        return rendered if done is xml else done.encode("utf-8")


@dataclass(frozen=True, slots=True)
class _HeaderFooter:
    """A header or footer part: re-parsed and serialized the way python-docx saves it."""

    name: str
    template: jinja2.Template
    encoding: str

    def render(self, context: Mapping[str, Any]) -> bytes:
        xml = _render_part(self.template, context)
        return serialize_part_xml(oxml_parse_xml(xml.encode(self.encoding)))


@dataclass(frozen=True, slots=True)
class _Footnotes:
    """The footnotes part: docxtpl stores the rendered text as is."""

    name: str
    template: jinja2.Template

    def render(self, context: Mapping[str, Any]) -> bytes:
        return _render_part(self.template, context).encode("utf-8")


_Rendered = _Body | _HeaderFooter | _Footnotes


class CompiledTemplate:
    """A .docx template compiled once; `render(context)` gives the report as .docx bytes."""

    __slots__ = ("name", "data", "variables", "sources", "_members", "_parts", "_core")

    def __init__(
        self,
        name: str,
        data: bytes,
        variables: frozenset[str],
        members: list[ZipMember | str],
        parts: list[_Rendered],
        core: CorePart | None,
        sources: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.name = name
        self.data = data
        self.variables = variables
        # (part, Jinja source) of every compiled template, for static checks (templatecheck.py).
        self.sources = sources
        self._members = members  # a ZipMember to copy, or the name of a part rendered per report
        self._parts = parts  # in docxtpl's rendering order: body, headers, footers, footnotes
        self._core = core

    def replace_pic(self, *_: object, **__: object) -> NoReturn:
        """docxtpl's replace_pic: refused (the pictures of a compiled template are copied as they are)."""
        raise TemplateInvalid(_replacement_refused(self.name, "replace_pic", "替换模板中的图片"))

    def replace_media(self, *_: object, **__: object) -> NoReturn:
        """docxtpl's replace_media: refused."""
        raise TemplateInvalid(_replacement_refused(self.name, "replace_media", "替换模板中的媒体文件"))

    def replace_embedded(self, *_: object, **__: object) -> NoReturn:
        """docxtpl's replace_embedded: refused."""
        raise TemplateInvalid(_replacement_refused(self.name, "replace_embedded", "替换模板中嵌入的文档"))

    def replace_zipname(self, *_: object, **__: object) -> NoReturn:
        """docxtpl's replace_zipname: refused."""
        raise TemplateInvalid(_replacement_refused(self.name, "replace_zipname", "替换模板压缩包中的文件"))

    def __reduce__(self) -> tuple[object, tuple[str, bytes]]:
        # Compiled Jinja templates do not pickle: a worker process recompiles from the bytes.
        return (CompiledTemplate.from_bytes, (self.name, self.data))

    @classmethod
    def from_path(cls, path: Path) -> CompiledTemplate:
        """Read and compile a template; raises TemplateInvalid naming the file if unusable."""
        return cls.from_bytes(path.name, template_bytes(path))

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> CompiledTemplate:
        """Compile the template held in data; name is used in error messages."""
        try:
            return cls._compile(name, data)
        except NOT_A_DOCX as exc:
            raise TemplateInvalid(f"模板 {name} 不是可读取的 Word 文档（.docx）：{exc}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateInvalid(template_error_message(name, exc)) from exc

    @classmethod
    def _compile(cls, name: str, data: bytes) -> CompiledTemplate:
        env = jinja_environment()
        document = docx.Document(io.BytesIO(data))
        main = document.part

        # The body, exactly as DocxTemplate.build_xml sees it.
        body_xml = _DOCXTPL.xml_to_string(document.element.body)
        body_patched = _DOCXTPL.patch_xml(body_xml)
        root = copy.deepcopy(document.element)
        body = root.body
        body_index = root.index(body)
        root.remove(body)
        body_source = _jinja_source(body_patched)
        splice = ("docPr" not in body_xml and body_xml.startswith("<w:body")
                  and document.element.body.nsmap.get("w") == W_NS)
        parts: list[_Rendered] = [
            _Body(_zip_name(main), env.from_string(body_source), root, body_index,
                  fix_tables=tables_can_change(body_patched), merge_style=table_merge_style(document),
                  plain=plain_body(body_patched), well_formed=always_well_formed(body_patched), forms=forms(body_patched),
                  direct=_around_body(root, body_index) if splice else ())
        ]
        sources = [body_patched]
        compiled_sources = [(_zip_name(main), body_source)]

        # Headers then footers, as DocxTemplate.build_headers_footers_xml finds them.
        seen = {parts[0].name}
        for uri in (DocxTemplate.HEADER_URI, DocxTemplate.FOOTER_URI):
            for rel in main.rels.values():
                if rel.is_external or rel.reltype != uri or not rel.target_part.blob:
                    continue
                part = rel.target_part
                xml = _DOCXTPL.get_part_xml(part)
                encoding = _DOCXTPL.get_headers_footers_encoding(xml)
                patched = _DOCXTPL.patch_xml(xml)
                sources.append(patched)
                if _zip_name(part) not in seen:
                    seen.add(_zip_name(part))
                    compiled_sources.append((_zip_name(part), _jinja_source(patched)))
                    template = env.from_string(compiled_sources[-1][1])
                    parts.append(_HeaderFooter(_zip_name(part), template, encoding))

        # Footnotes (DocxTemplate.render_footnotes; it only runs when the document has sections).
        if len(document.sections) > 0:
            for part in main.package.parts:
                if part.content_type == _FOOTNOTES_TYPE and _zip_name(part) not in seen:
                    seen.add(_zip_name(part))
                    blob = part.blob.decode("utf-8") if isinstance(part.blob, bytes) else part.blob
                    compiled_sources.append((_zip_name(part), _jinja_source(_DOCXTPL.patch_xml(blob))))
                    template = env.from_string(compiled_sources[-1][1])
                    parts.append(_Footnotes(_zip_name(part), template))

        core = core_part(document, env, _zip_name, _compressed)
        if core is not None:
            seen.add(core.name)
            compiled_sources.extend((f"{core.name}#{prop}", initial) for prop, initial, _ in core.templates)

        variables = frozenset(meta.find_undeclared_variables(env.parse("".join(sources))))

        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members: list[ZipMember | str] = [
                info.filename if info.filename in seen else _raw_member(archive, data, info)
                for info in archive.infolist()
                if not info.is_dir()
            ]
        missing = seen - {m for m in members if isinstance(m, str)}
        if missing:
            raise KeyError(f"zip members not found: {sorted(missing)}")
        # A header, footer or footnotes part without any Jinja tag renders the same for every
        # report (a footer holding only the page number): render and compress it once, here.
        constant = {part.name: part for part in parts[1:]
                    if "{" not in dict(compiled_sources).get(part.name, "{")}
        members = [_compressed(m, constant[m].render({})) if isinstance(m, str) and m in constant else m
                   for m in members]
        parts = [part for part in parts if part.name not in constant]
        return cls(name, data, variables, members, parts, core, tuple(compiled_sources))

    def render(self, context: Mapping[str, object]) -> bytes:
        """The report for one context as .docx bytes; raises TemplateInvalid on template errors."""
        context = dict(context)
        try:
            rendered = {part.name: part.render(context) for part in self._parts}
            core = self._core.member(context, _compressed) if self._core is not None else None
        except (jinja2.TemplateError, etree.XMLSyntaxError) as exc:
            raise TemplateInvalid(template_error_message(self.name, exc)) from exc
        except Exception as exc:  # noqa: BLE001 - raised by an expression in the template
            # ({{ title + 1 }}, {{ 1/0 }}, {{ '{0}'.format() }}): the template's fault, not ours.
            raise TemplateInvalid(template_error_message(self.name, exc)) from exc
        members: list[ZipMember] = []
        for member in self._members:
            if isinstance(member, ZipMember):
                members.append(member)
            elif core is not None and member == core.name:
                members.append(core)
            else:
                members.append(_compressed(member, rendered[member]))
        return zip_bytes(members, mode=_MEMBER_MODE)


def _replacement_refused(name: str, method: str, what: str) -> str:
    """The message refusing one of docxtpl's replacement methods."""
    return (f"模板 {name} 无法渲染：不支持 docxtpl 的 {method}（{what}）；"
            "报告渲染把模板的其他部件原样复制，请直接在模板中替换后再使用")


def _zip_name(part: Any) -> str:
    """The zip member name of a python-docx part (its partname without the leading slash)."""
    return str(part.partname).lstrip("/")
