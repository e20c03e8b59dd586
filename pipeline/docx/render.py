"""Render a template context into a Word report with docxtpl, safely.

Safety comes from the Jinja environment, not from the template: it is sandboxed (a template
cannot reach Python internals), it escapes every value (``<`` and ``&`` in the workbook cannot
corrupt the XML) and it is strict (a misspelt variable stops the run instead of leaving a blank).
The same environment is used for the body, headers, footers, footnotes and document properties.

`Renderer` is docxtpl as documented, plus what the product adds after rendering, the same as the
compiled path (`fastrender`) does: the vertical merge of `merge.py`, the report's date in
docProps/core.xml, and footnotes rendered once (docxtpl renders the footnotes part once per
section, so in a two-section document a clerk's "{{ x }}" typed in the workbook would be run as a
template the second time).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import docxtpl
import jinja2
from docx.opc.exceptions import PackageNotFoundError
from docxtpl import DocxTemplate, InlineImage, RichText, RichTextParagraph
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import (
    MAX_RANGE,
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SecurityError,
)
from lxml import etree
from markupsafe import Markup

from pipeline.docx.merge import merge_tables, template_merge_style
from pipeline.errors import TemplateInvalid

# Characters XML 1.0 forbids. docxtpl would also turn \a into a new paragraph and \f into a page
# break, so a stray control character in a cell must not reach it.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_UNDEFINED_NAME = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_MISSING_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'")
_UNSAFE_ATTRIBUTE = re.compile(r"access to attribute '(?P<name>[^']+)'")
_UNKNOWN_FILTER = re.compile(r"^No (?P<kind>filter|test) named '(?P<name>[^']+)'")

# The largest results a template may compute with * and **: repeated text or lists as long as the
# longest range() the sandbox allows (jinja2.sandbox.MAX_RANGE, 100,000 characters or items), and
# whole numbers of up to 1,000 digits (a report's amounts have a few dozen). Beyond them
# `{{ 'x' * 300000000 }}` or `{{ 10 ** (10 ** 10) }}` would take gigabytes or hours before failing.
MAX_REPETITION = MAX_RANGE
MAX_NUMBER_DIGITS = 1000
_REPEATABLE = (str, bytes, bytearray, list, tuple, deque)  # what `*` repeats (Markup is a str)

# Errors python-docx raises when the bytes are not a Word package it can open.
NOT_A_DOCX = (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError)


# docxtpl's Subdoc needs docxcompose; without it docxtpl has no Subdoc class at all.
_SUBDOC: Any = getattr(docxtpl, "Subdoc", None)
# What ties XML to other parts of the package: a relationship id (picture, chart, hyperlink,
# embedded object) or a footnote, endnote or comment. A value printed raw that holds one points
# at a part only the DocxTemplate it was made with has.
_PACKAGE_REFERENCE = re.compile(r"\sr:\w+=|<w:(?:footnote|endnote|comment)Reference\b")

# What the data printed while a part renders that may be markup, when someone listens
# (`RAW_OUTPUT`): values that carry their own XML (RichText, Subdoc, `|safe`, text printed with
# autoescape off) or that are not plain data. The compiled path then parses, repairs and
# renumbers the body as docxtpl does, instead of trusting the template's structure
# (`wellformed.py`). A per-render list, never shared between renders.
RAW_OUTPUT: ContextVar[list[str] | None] = ContextVar("raw_output", default=None)
# Printed values that are plain data: their text is escaped and holds no markup.
_PLAIN_VALUES = (int, float, Decimal, type(None))
# In XML a value may bring: elements, entities; and what resolve_listing turns into paragraphs.
_MARKUP = re.compile("[<&\a\f]")


class UnsupportedFeature(Exception):
    """A docxtpl feature the report renderer does not support; the message names it in Chinese."""


def _refused_object(value: object) -> str | None:
    """Why the docxtpl object `value` cannot render right whatever it holds, or None (its XML is
    not asked for: an InlineImage would insert its picture into another document)."""
    if isinstance(value, InlineImage):
        return "插图（docxtpl 的 InlineImage）：图片须加入文档的关系与媒体部件，报告渲染不支持，请在模板中直接放置图片"
    if _SUBDOC is not None and isinstance(value, _SUBDOC) and value.subdocx.part is not value.docx.part:
        return ("由 Word 文件生成的子文档（docxtpl 的 Subdoc）：它的样式、编号和图片要并入模板的部件，"
                "报告渲染不支持；只含文字的子文档请用 new_subdoc() 生成")
    return None


def _refused_feature(value: object, xml: str) -> str | None:
    """Why the docxtpl object `value`, printed as `xml`, cannot render right, or None."""
    subdoc = _SUBDOC is not None and isinstance(value, _SUBDOC)
    if _PACKAGE_REFERENCE.search(xml):
        if subdoc:
            return "含图片、图表、脚注或超链接的子文档（docxtpl 的 Subdoc），报告渲染不支持"
        if isinstance(value, RichText | RichTextParagraph):
            return "带超链接的 RichText（build_url_id），报告渲染不支持"
    return None


def _note_raw(xml: str) -> None:
    """Tell the listening render (if any) that raw XML was printed."""
    listener = RAW_OUTPUT.get()
    if listener is not None:
        listener.append(xml)


def _newlines(text: str) -> str:
    """Windows and old Mac line ends as \\n (docxtpl turns \\n into a line break)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pass_eval_context
def _xml_text(eval_ctx: EvalContext, value: object) -> object:
    """Every printed value (Jinja finalize hook): characters that cannot exist in XML dropped,
    docxtpl objects the renderer cannot render refused, possible markup reported to `RAW_OUTPUT`."""
    if type(value) is str:  # the common case: escaped, unless autoescape is off
        cleaned = _XML_ILLEGAL.sub("", _newlines(value) if "\r" in value else value)
        if not eval_ctx.autoescape and _MARKUP.search(cleaned):
            _note_raw(cleaned)
        return cleaned
    if isinstance(value, Markup):
        cleaned = _XML_ILLEGAL.sub("", _newlines(value))
        if _MARKUP.search(cleaned):
            _note_raw(cleaned)
        # Keep values a template marked safe as safe, so autoescape does not escape them twice.
        return Markup(cleaned)
    html = getattr(value, "__html__", None)
    if html is None:
        if not isinstance(value, _PLAIN_VALUES):
            _note_raw(type(value).__name__)  # a list or an object: its text is not known here
        return _XML_ILLEGAL.sub("", _newlines(value)) if isinstance(value, str) else value
    refused = _refused_object(value)
    if refused is not None:
        raise UnsupportedFeature(refused)
    xml = str(html())
    refused = _refused_feature(value, xml)
    if refused is not None:
        raise UnsupportedFeature(refused)
    if _MARKUP.search(xml):
        _note_raw(xml)
    return Markup(xml)  # computed once (a Subdoc builds its XML anew on every call)


def _digits(bits: float) -> int:
    """Decimal digits of a whole number of `bits` binary digits (rounded up)."""
    return math.ceil(bits * math.log10(2))


def _size(value: object, limit: int) -> int:
    """What repeating `value` once costs: its characters, or its items counting the characters
    of text and lists inside (else `['x' * 100000] * 100000` would print 10 GB); stops past `limit`."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if not isinstance(value, list | tuple | deque):
        return 1
    total = 0
    for item in value:
        total += _size(item, limit - total)
        if total > limit:
            break
    return total


def oversized(operator: str, left: object, right: object) -> str | None:
    """Why `left <operator> right` would be too large to compute (a Chinese phrase), or None.

    Decided from the operands' sizes alone, before anything is allocated: the length of a
    repetition (`'—' * 20`, `[0] * n`, either way round), the digits of a product or power of
    whole numbers. Floats, Decimals and the like cannot grow (they overflow or round instead).
    """
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _REPEATABLE) and isinstance(count, int):
                length = _size(sequence, MAX_REPETITION) * max(count, 0)
                if length > MAX_REPETITION:
                    return f"用 * 把文字或列表重复成 {length:,} 个字符或项，超过上限 {MAX_REPETITION:,}"
                return None
        if isinstance(left, int) and isinstance(right, int):
            digits = _digits(left.bit_length() + right.bit_length())
            if digits > MAX_NUMBER_DIGITS:
                return f"用 * 算出约 {digits:,} 位的数字，超过上限 {MAX_NUMBER_DIGITS:,} 位"
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        # |left| ** right has about right * log2|left| bits; an exponent of over 64 bits is too
        # big for any base of 2 or more (and for a float conversion).
        bits = right * math.log2(abs(left)) if right.bit_length() <= 64 else math.inf
        if bits > MAX_NUMBER_DIGITS / math.log10(2):
            shown = f"约 {_digits(bits):,} 位" if math.isfinite(bits) else "位数极多"
            return f"用 ** 算出{shown}的数字，超过上限 {MAX_NUMBER_DIGITS:,} 位"
    return None


class ReportEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` refused where their result would be huge.

    Jinja's sandbox bounds range() but not `'x' * 300000000`. Intercepting the two operators
    makes every compiled template call `call_binop` for them, and stops Jinja folding them into
    constants while compiling (which would compute the huge value before any render).
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: object, right: object) -> object:
        reason = oversized(operator, left, right)
        if reason is not None:
            raise SecurityError(reason)
        return super().call_binop(context, operator, left, right)


def jinja_environment() -> SandboxedEnvironment:
    """The sandboxed, autoescaping, strict Jinja environment every template is rendered with."""
    # Immutable: a template can neither call methods that change the context (list.append)
    # nor so leak state from one report into the next.
    # ReportEnvironment: `*` and `**` cannot build results of gigabytes.
    return ReportEnvironment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_xml_text,
    )


def unknown_filter_message(message: str) -> str | None:
    """Chinese words for Jinja's "No filter named 'x'" (a custom filter of another program), or None."""
    unknown = _UNKNOWN_FILTER.match(message)
    if unknown is None:
        return None
    kind = "过滤器" if unknown.group("kind") == "filter" else "测试"
    return (f"使用了程序不提供的{kind} {unknown.group('name')}（自定义{kind}不受支持，"
            "请改用 Jinja 自带的写法或程序提供的变量）")


def template_error_message(name: str, exc: Exception) -> str:
    """A Chinese message for a clerk, naming the template and what is wrong in it."""
    if isinstance(exc, UnsupportedFeature):
        return f"模板 {name} 无法渲染：数据中使用了{exc}"
    unknown_filter = unknown_filter_message(str(exc.message or "")) if isinstance(exc, jinja2.TemplateError) else None
    if unknown_filter is not None:
        detail = unknown_filter
    elif isinstance(exc, SecurityError):
        unsafe = _UNSAFE_ATTRIBUTE.search(str(exc))
        what = f"访问内部属性 {unsafe.group('name')}" if unsafe else str(exc)
        detail = f"使用了不允许的写法（{what}），已拒绝渲染"
    elif isinstance(exc, jinja2.UndefinedError):
        message = str(exc.message or exc)
        undefined = _UNDEFINED_NAME.match(message)
        missing = _MISSING_ATTRIBUTE.search(message)
        if undefined:
            detail = f"未定义的变量 {undefined.group('name')}"
        elif missing:
            detail = f"变量没有字段 {missing.group('name')}"
        else:
            detail = f"未定义的变量（{message}）"
    elif isinstance(exc, jinja2.TemplateSyntaxError):
        detail = (
            f"标签语法错误（{exc.message}）；请检查 {{{{ }}}}、{{%p %}}、{{%tr %}} 标签是否完整、"
            "是否成对"
        )
    elif isinstance(exc, etree.XMLSyntaxError):
        detail = f"渲染后的文档结构无效（{exc}）；标签可能拆开了表格或段落"
    else:
        detail = f"渲染出错（{type(exc).__name__}: {exc}）"
    return f"模板 {name} 有误：{detail}"


def _undeclared_variables(name: str, data: bytes) -> frozenset[str]:
    """Variables the template reads from the context; refuses unreadable or malformed templates."""
    template = DocxTemplate(io.BytesIO(data))
    try:
        variables = template.get_undeclared_template_variables(jinja_env=jinja_environment())
    except NOT_A_DOCX as exc:
        raise TemplateInvalid(f"模板 {name} 不是可读取的 Word 文档（.docx）：{exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateInvalid(template_error_message(name, exc)) from exc
    return frozenset(variables)


def template_bytes(path: Path) -> bytes:
    """A template file's bytes; raises TemplateInvalid naming the file when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TemplateInvalid(f"模板 {path.name} 无法读取：{exc.strerror or exc}") from exc


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def report_datetime(context: Mapping[str, object]) -> dt.datetime | None:
    """The report's date as docProps/core.xml's created and modified (midnight UTC), from the
    context's `report_date_iso` ("2021-03-15"); None without one (the template's dates stay)."""
    value = context.get("report_date_iso")
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"report_date_iso 应为 YYYY-MM-DD 形式的日期，得到 {value!r}") from None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def dated(properties: Any, when: dt.datetime | None) -> None:
    """Set created and modified of python-docx CoreProperties to `when` (nothing when None);
    lastModifiedBy and revision stay as the template has them."""
    if when is not None:
        properties.created = when
        properties.modified = when


FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"


class _ReportTemplate(DocxTemplate):
    """docxtpl with its footnotes part rendered once, however many sections the document has."""

    def render_footnotes(self, context: dict[str, Any], jinja_env: jinja2.Environment | None = None) -> None:
        # docxtpl 0.20.2 renders the footnotes part once per section, so in a document of two
        # sections the first pass's output, workbook text included, is run as a template again.
        if len(self.docx.sections) == 0:  # docxtpl renders none without sections
            return
        jinja_env = jinja_env or jinja2.Environment()  # noqa: S701 - docxtpl's default; Renderer passes the sandbox
        for part in self.docx.part.package.parts:
            if part.content_type == FOOTNOTES_TYPE:
                blob = part.blob.decode("utf-8") if isinstance(part.blob, bytes) else part.blob
                xml = self.render_xml_part(self.patch_xml(blob), part, context, jinja_env)
                part._blob = xml.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Renderer:
    """A template loaded once (bytes kept in memory) that renders contexts to .docx bytes."""

    name: str
    data: bytes
    variables: frozenset[str]
    # The id of the style 表格文字（相同合并） when the template uses it in a table (merge.py).
    merge_style: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "merge_style", template_merge_style(self.data))

    @classmethod
    def from_path(cls, path: Path) -> Renderer:
        """Read and check a template; raises TemplateInvalid naming the file if it is unusable."""
        data = template_bytes(path)
        return cls(name=path.name, data=data, variables=_undeclared_variables(path.name, data))

    def render(self, context: Mapping[str, object]) -> bytes:
        """The report for one context as .docx bytes; raises TemplateInvalid on template errors."""
        # docxtpl renders an object only once (a second render reuses the first context), so each
        # report gets a fresh DocxTemplate over the kept bytes.
        template = _ReportTemplate(io.BytesIO(self.data))
        try:
            template.render(dict(context), jinja_env=jinja_environment(), autoescape=True)
            if self.merge_style is not None:
                merge_tables(template.docx.element.body, self.merge_style)
            dated(template.docx.core_properties, report_datetime(context))
        except (jinja2.TemplateError, etree.XMLSyntaxError) as exc:
            raise TemplateInvalid(template_error_message(self.name, exc)) from exc
        except Exception as exc:  # noqa: BLE001 - raised by an expression in the template
            # ({{ title + 1 }}, {{ 1/0 }}, {{ '{0}'.format() }}): the template's fault, not ours.
            raise TemplateInvalid(template_error_message(self.name, exc)) from exc
        buffer = io.BytesIO()
        template.save(buffer)
        return buffer.getvalue()


def template_variables(path: Path) -> set[str]:
    """Undeclared variables of the template at path, as docxtpl sees them with our environment."""
    return set(Renderer.from_path(path).variables)
