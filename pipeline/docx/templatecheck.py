"""Check a .docx report template before any report is rendered: the entry of `perfreport check-template`.

`template_check` compiles the template exactly as the pipeline renders it (`fastrender`) and walks
the Jinja syntax trees for what can be decided without rendering anything:

* syntax errors (an unclosed ``{%p if %}``, a misspelt tag), found here;
* variables and fields the pipeline does not provide (`contextrules`, from the template's field
  table in `pipeline.core.context`);
* unsafe access and results that may be huge (`sandboxrules`);
* filters and tests the renderer does not have (a custom filter of another program), named.

The sandbox would refuse all of these while rendering; finding them here stops a run before its
first report and tells the clerk where to look. Each finding names its place as a clerk sees the
document (`placement`); decisions come from the compiled sources, so a tag the skeleton cannot see
(a field code, say) is still found, only placed less precisely. `checkreport` words the result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import jinja2
from jinja2.optimizer import optimize

from pipeline.docx.contextrules import (
    REPORT_FIELDS,
    FieldTable,
    field_issues,
    fields_for,
    unknown_issues,
    unknown_variables,
)
from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.findings import Finding, FindingKind, Issue, TemplateCheck
from pipeline.docx.placement import (
    Paragraph,
    document_paragraphs,
    line_place,
    part_label,
    skeleton,
    source_place,
)
from pipeline.docx.render import NOT_A_DOCX, jinja_environment, unknown_filter_message
from pipeline.docx.sandboxrules import filter_issues, size_issues, unsafe_issues
from pipeline.errors import TemplateInvalid

# Block tags that need an end tag: the last one left open is where an unclosed block starts.
BLOCK_TAG = re.compile(r"\{%-?\s*(\w+)")
BLOCKS = frozenset({"for", "if", "with", "macro", "call", "filter", "raw", "block", "autoescape"})


def syntax_message(exc: jinja2.TemplateSyntaxError) -> str:
    """A Chinese sentence for a Jinja syntax error, with Jinja's own words for the engineer."""
    message = exc.message or ""
    unknown_tag = re.search(r"unknown tag '(\w+)'", message)
    if unknown_tag:
        return f"标签语法错误：不认识的标签 {unknown_tag.group(1)}；请检查标签名是否拼错"
    unclosed = re.search(r"innermost block that needs to be closed is '(\w+)'", message)
    if unclosed and message.startswith("Unexpected end of template"):
        block = unclosed.group(1)
        return (f"标签语法错误：{{% {block} %}} 没有对应的 {{% end{block} %}}；"
                "请检查 {%p %}、{%tr %} 标签是否成对")
    return (f"标签语法错误（{exc.message}）；请检查 {{{{ }}}}、{{%p %}}、{{%tr %}} 标签是否完整、"
            "是否成对")


def unclosed_block_line(source: str) -> int | None:
    """The line of the last block tag ({% for %}, {% if %}…) that is never closed, or None."""
    stack: list[tuple[str, int]] = []
    for lineno, line in enumerate(source.split("\n"), start=1):
        for match in BLOCK_TAG.finditer(line):
            word = match.group(1)
            if word in BLOCKS:
                stack.append((word, lineno))
            elif word.startswith("end") and stack and stack[-1][0] == word[3:]:
                stack.pop()
    return stack[-1][1] if stack else None


def unknown_filter_findings(exc: jinja2.TemplateSyntaxError,
                            parts: dict[str, list[Paragraph]], env: jinja2.Environment) -> list[Finding]:
    """Every use of a filter or test the renderer does not have, placed; [] when `exc` is not that."""
    message = unknown_filter_message(exc.message or "")
    if message is None:
        return []
    findings: list[Finding] = []
    for paragraphs in parts.values():
        try:
            tree = env.parse(skeleton(paragraphs))
        except jinja2.TemplateSyntaxError:
            continue
        findings += [Finding(issue.kind, issue.name, issue.message, line_place(paragraphs, issue.lineno))
                     for issue in filter_issues(tree, env)]
    return findings or [Finding(FindingKind.UNSUPPORTED, "", message)]


def syntax_finding(exc: jinja2.TemplateSyntaxError,
                   parts: dict[str, list[Paragraph]], env: jinja2.Environment) -> Finding:
    """The syntax error, placed at the paragraph the skeleton of some part fails on."""
    for paragraphs in parts.values():
        source = skeleton(paragraphs)
        try:
            env.parse(source)
        except jinja2.TemplateSyntaxError as located:
            lineno = located.lineno
            if (located.message or "").startswith("Unexpected end of template"):
                lineno = unclosed_block_line(source) or lineno
            return Finding(FindingKind.SYNTAX, "", syntax_message(located), line_place(paragraphs, lineno))
    return Finding(FindingKind.SYNTAX, "", syntax_message(exc))


def source_issues(source: str, unknown: frozenset[str], env: jinja2.Environment,
                  table: FieldTable = REPORT_FIELDS) -> list[Issue]:
    """Unsafe access and reads of `unknown` variables in a Jinja source; raises on syntax errors.

    The tree is walked as written and again after Jinja's constant folding (which compiling
    applies too), so `attr('__cla' ~ 'ss__')` is caught as well as `attr('__class__')`. Each
    walk gets its own parse: folding changes the tree in place, and may fold `''.__class__`
    away into a constant.
    """
    written = unsafe_issues(env.parse(source))
    seen = {(i.name, i.lineno) for i in written}
    folded = [i for i in unsafe_issues(optimize(env.parse(source), env)) if (i.name, i.lineno) not in seen]
    # `*` and `**` are never folded (the sandbox intercepts them), so the tree as written suffices.
    return (written + folded + size_issues(env.parse(source)) + unknown_issues(env.parse(source), unknown)
            + field_issues(env.parse(source), table) + filter_issues(env.parse(source), env))


def part_findings(part: str, source: str, paragraphs: Sequence[Paragraph],
                  env: jinja2.Environment, table: FieldTable = REPORT_FIELDS) -> list[Finding]:
    """What is wrong in one compiled part, each placed at its paragraph where the skeleton tells."""
    unknown = unknown_variables(env.parse(source), table)
    decided = source_issues(source, unknown, env, table)
    # Every unknown variable is reported, even when the walk cannot tell where it is read.
    decided += [Issue(FindingKind.UNKNOWN, name, f"使用了未提供的变量 {name}", 0)
                for name in sorted(unknown - {i.name for i in decided})]
    placed: dict[tuple[FindingKind, str], list[tuple[int, str]]] = {}
    try:
        outline = source_issues(skeleton(paragraphs), unknown, env, table)
    except jinja2.TemplateSyntaxError:
        outline = []  # a tag the skeleton splits differently: fall back to the source's lines
    for issue in outline:
        placed.setdefault((issue.kind, issue.name), []).append((issue.lineno, line_place(paragraphs, issue.lineno)))
    unplaced = len(paragraphs) + 1  # after every placed finding of the part
    findings: dict[tuple[FindingKind, str, str], tuple[int, Finding]] = {}
    for issue in decided:
        wheres = placed.get((issue.kind, issue.name)) or [
            (unplaced, source_place(part, source, issue.lineno) if issue.lineno else part_label(part))]
        for line, where in wheres:
            findings.setdefault((issue.kind, issue.name, where),
                                (line, Finding(issue.kind, issue.name, issue.message, where)))
    # In document order, as a clerk reads the template.
    return [finding for _, finding in sorted(findings.values(), key=lambda item: item[0])]


def template_check(name: str, data: bytes, table: FieldTable = REPORT_FIELDS) -> TemplateCheck:
    """Compile the template held in `data` and find everything wrong with it, without rendering;
    `table` says what the context provides (a project report's, or 部门汇总报告's)."""
    env = jinja_environment()
    try:
        parts = document_paragraphs(data)
    except NOT_A_DOCX as exc:
        # .doc, .dotx renamed, damaged or empty files: python-docx cannot open them at all.
        reason = f"不是可读取的 Word 文档（.docx；{type(exc).__name__}），请在 Word 中另存为“Word 文档(*.docx)”"
        return TemplateCheck(name, None, (Finding(FindingKind.UNREADABLE, "", reason),))
    try:
        compiled = CompiledTemplate.from_bytes(name, data)
    except TemplateInvalid as exc:
        cause = exc.__cause__
        if isinstance(cause, jinja2.TemplateSyntaxError):
            unknown_filters = unknown_filter_findings(cause, parts, env)
            return TemplateCheck(name, None, tuple(unknown_filters) or (syntax_finding(cause, parts, env),))
        reason = str(exc).removeprefix(f"模板 {name} ")
        return TemplateCheck(name, None, (Finding(FindingKind.UNREADABLE, "", reason),))
    findings = [finding for part, source in compiled.sources
                for finding in part_findings(part, source, parts.get(part, []), env, table)]
    return TemplateCheck(name, compiled, tuple(findings))


def check_template_file(path: Path) -> TemplateCheck:
    """`template_check` of the file at `path`; a missing, unreadable or misnamed file is a finding.
    The department template (department_report.docx) is held to its own field table."""
    def refused(reason: str) -> TemplateCheck:
        return TemplateCheck(path.name, None, (Finding(FindingKind.UNREADABLE, "", reason),))

    if path.is_dir():
        return refused("这是一个文件夹，不是 .docx 模板")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return refused("文件不存在")
    except OSError as exc:
        return refused(f"无法读取（{exc.strerror or exc}）")
    check = template_check(path.name, data, fields_for(path.name))
    if path.suffix.lower() != ".docx":
        # templates/ is searched for *.docx only: a .dotx or .doc would never be found by a run.
        misnamed = Finding(FindingKind.UNREADABLE, "", "模板文件名须以 .docx 结尾（请在 Word 中另存为“Word 文档(*.docx)”）")
        return TemplateCheck(check.name, check.compiled, (misnamed, *check.findings))
    return check
