"""Render a template context into a Word report with docxtpl, safely.

Safety comes from the Jinja environment, not from the template: it is sandboxed (a template
cannot reach Python internals), it escapes every value (``<`` and ``&`` in the workbook cannot
corrupt the XML) and it is strict (a misspelt variable stops the run instead of leaving a blank).
The same environment is used for the body, headers, footers, footnotes and document properties.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from docx.opc.exceptions import PackageNotFoundError
from docxtpl import DocxTemplate
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment, SecurityError
from lxml import etree
from markupsafe import Markup

from pipeline.errors import TemplateInvalid

# Characters XML 1.0 forbids. docxtpl would also turn \a into a new paragraph and \f into a page
# break, so a stray control character in a cell must not reach it.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_UNDEFINED_NAME = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_MISSING_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'")
_UNSAFE_ATTRIBUTE = re.compile(r"access to attribute '(?P<name>[^']+)'")

# Errors python-docx raises when the bytes are not a Word package it can open.
_NOT_A_DOCX = (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError)


def _xml_text(value: object) -> object:
    """Drop characters that cannot exist in XML from every printed value (Jinja finalize hook)."""
    if not isinstance(value, str):
        return value
    cleaned = _XML_ILLEGAL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    # Keep values a template marked safe as safe, so autoescape does not escape them twice.
    return Markup(cleaned) if isinstance(value, Markup) else cleaned


def jinja_environment() -> SandboxedEnvironment:
    """The sandboxed, autoescaping, strict Jinja environment every template is rendered with."""
    # Immutable: a template can neither call methods that change the context (list.append)
    # nor so leak state from one report into the next.
    return ImmutableSandboxedEnvironment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_xml_text,
    )


def _problem(name: str, exc: Exception) -> str:
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
    except _NOT_A_DOCX as exc:
        raise TemplateInvalid(f"模板 {name} 不是可读取的 Word 文档（.docx）：{exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateInvalid(_problem(name, exc)) from exc
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
            raise TemplateInvalid(_problem(self.name, exc)) from exc
        except Exception as exc:  # noqa: BLE001 - raised by an expression in the template
            # ({{ title + 1 }}, {{ 1/0 }}, {{ '{0}'.format() }}): the template's fault, not ours.
            raise TemplateInvalid(_problem(self.name, exc)) from exc
        buffer = io.BytesIO()
        template.save(buffer)
        return buffer.getvalue()


def template_variables(path: Path) -> set[str]:
    """Undeclared variables of the template at path, as docxtpl sees them with our environment."""
    return set(Renderer.from_path(path).variables)
