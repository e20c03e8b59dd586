"""Render a template context into a Word report with docxtpl, safely.

Safety comes from the Jinja environment, not from the template: it is sandboxed (a template
cannot reach Python internals), it escapes every value (``<`` and ``&`` in the workbook cannot
corrupt the XML) and it is strict (a misspelt variable stops the run instead of leaving a blank).
The same environment is used for the body, headers, footers, footnotes and document properties.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from docx.opc.exceptions import PackageNotFoundError
from docxtpl import DocxTemplate
from jinja2.runtime import Context
from jinja2.sandbox import (
    MAX_RANGE,
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SecurityError,
)
from lxml import etree
from markupsafe import Markup

from pipeline.errors import TemplateInvalid

# Characters XML 1.0 forbids. docxtpl would also turn \a into a new paragraph and \f into a page
# break, so a stray control character in a cell must not reach it.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_UNDEFINED_NAME = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_MISSING_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'")
_UNSAFE_ATTRIBUTE = re.compile(r"access to attribute '(?P<name>[^']+)'")

# The largest results a template may compute with * and **: repeated text or lists as long as the
# longest range() the sandbox allows (jinja2.sandbox.MAX_RANGE, 100,000 characters or items), and
# whole numbers of up to 1,000 digits (a report's amounts have a few dozen). Beyond them
# `{{ 'x' * 300000000 }}` or `{{ 10 ** (10 ** 10) }}` would take gigabytes or hours before failing.
MAX_REPETITION = MAX_RANGE
MAX_NUMBER_DIGITS = 1000
_REPEATABLE = (str, bytes, bytearray, list, tuple, deque)  # what `*` repeats (Markup is a str)

# Errors python-docx raises when the bytes are not a Word package it can open.
NOT_A_DOCX = (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError)


def _xml_text(value: object) -> object:
    """Drop characters that cannot exist in XML from every printed value (Jinja finalize hook)."""
    if not isinstance(value, str):
        return value
    cleaned = _XML_ILLEGAL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    # Keep values a template marked safe as safe, so autoescape does not escape them twice.
    return Markup(cleaned) if isinstance(value, Markup) else cleaned


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


def template_error_message(name: str, exc: Exception) -> str:
    """A Chinese message for a clerk, naming the template and what is wrong in it."""
    if isinstance(exc, SecurityError):
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


@dataclass(frozen=True, slots=True)
class Renderer:
    """A template loaded once (bytes kept in memory) that renders contexts to .docx bytes."""

    name: str
    data: bytes
    variables: frozenset[str]

    @classmethod
    def from_path(cls, path: Path) -> Renderer:
        """Read and check a template; raises TemplateInvalid naming the file if it is unusable."""
        data = template_bytes(path)
        return cls(name=path.name, data=data, variables=_undeclared_variables(path.name, data))

    def render(self, context: Mapping[str, object]) -> bytes:
        """The report for one context as .docx bytes; raises TemplateInvalid on template errors."""
        # docxtpl renders an object only once (a second render reuses the first context), so each
        # report gets a fresh DocxTemplate over the kept bytes.
        template = DocxTemplate(io.BytesIO(self.data))
        try:
            template.render(dict(context), jinja_env=jinja_environment(), autoescape=True)
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
