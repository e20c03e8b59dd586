"""What a template check finds: the kinds of problem, a finding with its place, the whole result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pipeline.docx.fastrender import CompiledTemplate


class FindingKind(StrEnum):
    """What is wrong with a template."""

    UNREADABLE = "无法读取"
    SYNTAX = "标签语法错误"
    UNKNOWN = "未提供的变量"
    UNSAFE = "不允许的写法"
    UNSUPPORTED = "不支持的功能"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem of a template, with where it stands in the document ("" when unknown)."""

    kind: FindingKind
    name: str  # the variable or attribute concerned; "" for syntax errors and unreadable files
    message: str  # a Chinese sentence without the place
    where: str = ""

    @property
    def text(self) -> str:
        """The finding as one line for a clerk: place, then what is wrong."""
        return f"{self.where}：{self.message}" if self.where else self.message


@dataclass(frozen=True, slots=True)
class TemplateCheck:
    """The compiled template (None when it cannot be compiled) and everything found wrong with it."""

    name: str
    compiled: CompiledTemplate | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when the pipeline may render reports with this template."""
        return self.compiled is not None and not self.findings


@dataclass(frozen=True, slots=True)
class Issue:
    """A finding before it is placed: the line of the Jinja source it was found on."""

    kind: FindingKind
    name: str
    message: str
    lineno: int
