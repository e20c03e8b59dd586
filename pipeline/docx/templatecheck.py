"""Check a .docx report template before any report is rendered: what `perfreport check-template` prints.

`template_check` compiles the template exactly as the pipeline renders it (`fastrender`) and walks
the Jinja syntax trees for what can be decided without rendering anything:

* syntax errors (an unclosed ``{%p if %}``, a misspelt tag);
* variables the pipeline does not provide (`pipeline.core.context.CONTEXT_KEYS`); loop variables,
  ``{% set %}`` names and the sandbox's own globals (``range``, ``namespace``…) are not unknown;
* unsafe access: attributes or items whose name starts with ``_`` (``''.__class__``,
  ``x['__globals__']``, ``x|attr('__class__')``, ``'{0.__class__}'.format(x)``), the other
  attributes the sandbox refuses (``mro``, ``gi_frame``…), methods that change data (``append``)
  and references to other templates (include/import/extends; the environment has no loader).

The sandbox would refuse all of these while rendering; finding them here stops a run before its
first report and tells the clerk where to look. Each finding names its place as a clerk sees the
document: a body paragraph (numbered, with a snippet of its text), a table's row and column, a
header, footer, footnote or document property. Places come from a skeleton of the document (each
paragraph's text on a line of its own, docxtpl's ``p``/``tr``/``tc``/``r`` tag prefixes removed);
decisions come from the compiled sources, so a tag the skeleton cannot see (a field code, say) is
still found, only placed less precisely.
"""

from __future__ import annotations

import html
import io
import operator
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import docx
import jinja2
from docxtpl import DocxTemplate
from jinja2 import meta, nodes
from jinja2.optimizer import optimize
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
)
from lxml import etree

from pipeline.core.context import CONTEXT_KEYS
from pipeline.docx.fastrender import CompiledTemplate
from pipeline.docx.render import _NOT_A_DOCX, MAX_REPETITION, jinja_environment, oversized
from pipeline.errors import TemplateInvalid

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
SNIPPET_CHARS = 40
SHOWN_IN_MESSAGE = 5  # findings quoted in a TemplateInvalid message; check-template lists all

# Attributes the sandbox refuses beyond the `_` prefix: type.mro, and the frame/code/traceback
# attributes that lead from a generator, coroutine or traceback back to Python's internals.
SANDBOX_REFUSED: frozenset[str] = frozenset({
    "mro", "tb_frame", "tb_next", "f_back", "f_builtins", "f_code", "f_globals", "f_locals",
    "func_code", "func_globals", *UNSAFE_GENERATOR_ATTRIBUTES, *UNSAFE_COROUTINE_ATTRIBUTES,
    *UNSAFE_ASYNC_GENERATOR_ATTRIBUTES, *UNSAFE_FUNCTION_ATTRIBUTES, *UNSAFE_METHOD_ATTRIBUTES,
})
# Methods of lists, dicts, sets and deques the immutable sandbox refuses (jinja2.sandbox's
# _mutable_spec): a template must not change the data one report shares with the next.
MUTATING_METHODS: frozenset[str] = frozenset({
    "add", "append", "appendleft", "clear", "difference_update", "discard", "extend", "extendleft",
    "insert", "pop", "popitem", "popleft", "remove", "reverse", "rotate", "setdefault", "sort",
    "symmetric_difference_update", "update",
})
# Filters and tests that read an attribute named by a string: (filter, positional index).
ATTRIBUTE_ARGUMENTS: dict[str, int | None] = {
    "attr": 0, "selectattr": 0, "rejectattr": 0, "groupby": 0, "sum": 0, "sort": 2,
    "map": None, "unique": None, "min": None, "max": None,
}
# A replacement field of str.format that reaches for an attribute or item starting with `_`.
UNSAFE_FORMAT_FIELD = re.compile(r"\{[^{}]*[.\[]_")

# `*` and `**` (the sandbox refuses results over render.MAX_REPETITION characters or items, or of
# over render.MAX_NUMBER_DIGITS digits): filters, globals and text methods whose result is text or
# a list, which `*` repeats; and the largest fixed exponent allowed on a number not known here
# (squares and roots are what a report needs).
SEQUENCE_FILTERS = frozenset({
    "capitalize", "center", "dictsort", "e", "escape", "filesizeformat", "forceescape", "format",
    "indent", "join", "list", "lower", "pprint", "replace", "safe", "sort", "string", "striptags",
    "title", "tojson", "trim", "truncate", "upper", "urlencode", "urlize", "wordwrap", "xmlattr",
})
SEQUENCE_GLOBALS = frozenset({"lipsum"})
SEQUENCE_METHODS = frozenset({
    "capitalize", "casefold", "center", "expandtabs", "format", "format_map", "join", "ljust",
    "lower", "lstrip", "replace", "rjust", "rsplit", "rstrip", "split", "splitlines", "strip",
    "swapcase", "title", "upper", "zfill",
})
MAX_EXPONENT = 100
ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "//": operator.floordiv, "%": operator.mod, "**": operator.pow}

# docxtpl's tag forms, rewritten to plain Jinja for the skeleton (DocxTemplate.patch_xml).
PREFIXED_TAG = re.compile(r"(\{%|\{\{)(?:tr|tc|p|r) |(\{#)(?:tr|tc|p) ")
MERGE_TAG = re.compile(r"\{%\s*(?:vm|hm)\s*%\}")
CELL_TAG = re.compile(r"\{%\s*(?:colspan|cellbg)\s+([^%]*)%\}")
INSIDE_TAG = re.compile(r"(?<=\{[{%])(.*?)(?=[}%]\})")
XML_TAG = re.compile(r"<[^>]*>")
BLOCK_TAG = re.compile(r"\{%-?\s*(\w+)")
BLOCKS = frozenset({"for", "if", "with", "macro", "call", "filter", "raw", "block", "autoescape"})

# The fields of the context's dict (budget) and of the items of its lists of dicts (funding,
# indicators), as context.report_context() builds them; tests/test_templatecheck.py holds them to it.
DICT_FIELDS: dict[str, frozenset[str]] = {
    "budget": frozenset({"initial", "adjusted", "spent", "rate", "weight", "score"}),
}
ITEM_FIELDS: dict[str, frozenset[str]] = {
    "funding": frozenset({"source", "initial", "adjusted", "spent"}),
    "indicators": frozenset({"level1", "level2", "name", "target", "actual", "unit", "weight", "score",
                             "deviation"}),
}
DICT_METHODS = frozenset({"items", "keys", "values", "get"})  # what Jinja reads off any dict
CONTEXT_LIST = "list"  # marks funding/indicators as the context's own lists in field_issues

PROPERTY_NAMES = {"author": "作者", "comments": "备注", "identifier": "标识", "language": "语言",
                  "subject": "主题", "title": "标题"}


class FindingKind(StrEnum):
    """What is wrong with a template."""

    UNREADABLE = "无法读取"
    SYNTAX = "标签语法错误"
    UNKNOWN = "未提供的变量"
    UNSAFE = "不允许的写法"


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
class Paragraph:
    """A paragraph of the template: where a clerk finds it, and its text."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class _Issue:
    """A finding before it is placed: the line of the Jinja source it was found on."""

    kind: FindingKind
    name: str
    message: str
    lineno: int


# --- where things are ------------------------------------------------------------------------


def snippet(text: str) -> str:
    """A paragraph's text shortened for a message."""
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else f"{text[:SNIPPET_CHARS]}…"


def paragraph_text(paragraph: etree._Element) -> str:
    """The text of a w:p, without the text of paragraphs nested in it (text boxes)."""
    return "".join(t.text or "" for t in paragraph.iter(f"{W}t")
                   if next(t.iterancestors(f"{W}p"), None) is paragraph)


def outermost(element: etree._Element, tag: str) -> etree._Element | None:
    """The outermost ancestor of `element` with `tag`, or None."""
    found = None
    for ancestor in element.iterancestors(tag):
        found = ancestor
    return found


def table_place(paragraph: etree._Element, table: etree._Element, tables: Sequence[etree._Element]) -> str:
    """表格T第R行第C列 of a paragraph inside a top-level table (nested tables count as their cell)."""
    rows = [tr for tr in table.iter(f"{W}tr") if outermost(tr, f"{W}tbl") is table]
    row = next((a for a in paragraph.iterancestors(f"{W}tr") if a in rows), None)
    if row is None:
        return f"表格{tables.index(table) + 1}"
    cells = [tc for tc in row.iter(f"{W}tc") if next(tc.iterancestors(f"{W}tr"), None) is row]
    cell = next((a for a in paragraph.iterancestors(f"{W}tc") if a in cells), None)
    column = f"第{cells.index(cell) + 1}列" if cell is not None else ""
    return f"表格{tables.index(table) + 1}第{rows.index(row) + 1}行{column}"


def located_paragraphs(root: etree._Element, label: str) -> list[Paragraph]:
    """Every paragraph of a part in document order, placed as 正文第N段 / 表格T第R行第C列 / 页眉第N段."""
    tables = [t for t in root.iter(f"{W}tbl") if outermost(t, f"{W}tbl") is None]
    found: list[Paragraph] = []
    number = 0
    for paragraph in root.iter(f"{W}p"):
        table = outermost(paragraph, f"{W}tbl")
        in_text_box = next(paragraph.iterancestors(f"{W}p"), None) is not None
        if table is not None:
            place = table_place(paragraph, table, tables)
            where = place if label == "正文" else f"{label}{place}"
        elif in_text_box:
            where = f"{label}第{number}段的文本框"
        else:
            number += 1
            where = f"{label}第{number}段"
        text = paragraph_text(paragraph)
        found.append(Paragraph(f"{where}「{snippet(text)}」" if text.strip() else where, text))
    return found


def part_label(part: str) -> str:
    """How a clerk calls a part of the package (word/header1.xml -> 页眉)."""
    if "#" in part:
        prop = part.split("#", 1)[1]
        return f"文档属性“{PROPERTY_NAMES.get(prop, prop)}”"
    for key, label in (("header", "页眉"), ("footer", "页脚"), ("footnote", "脚注")):
        if key in part.rsplit("/", 1)[-1]:
            return label
    return "正文"


def document_paragraphs(data: bytes) -> dict[str, list[Paragraph]]:
    """The placed paragraphs of every part the pipeline renders, by part name (as in .sources)."""
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.oxml.parser import parse_xml

    document = docx.Document(io.BytesIO(data))
    main = document.part
    parts = {str(main.partname).lstrip("/"): located_paragraphs(document.element.body, "正文")}
    for uri in (DocxTemplate.HEADER_URI, DocxTemplate.FOOTER_URI):
        for rel in main.rels.values():
            if rel.is_external or rel.reltype != uri or not rel.target_part.blob:
                continue
            name = str(rel.target_part.partname).lstrip("/")
            parts.setdefault(name, located_paragraphs(parse_xml(rel.target_part.blob), part_label(name)))
    for part in main.package.parts:
        name = str(part.partname).lstrip("/")
        if "footnotes" in name and name.endswith(".xml") and name not in parts:
            parts[name] = located_paragraphs(etree.fromstring(part.blob), "脚注")
    try:
        core = main.package.part_related_by(RT.CORE_PROPERTIES)
    except KeyError:
        return parts
    properties = document.core_properties
    for prop in PROPERTY_NAMES:
        name = f"{str(core.partname).lstrip('/')}#{prop}"
        value = getattr(properties, prop) or ""
        parts[name] = [Paragraph(f"{part_label(name)}「{snippet(value)}」", value)]
    return parts


def jinja_line(text: str) -> str:
    """A paragraph's text as plain Jinja on one line, as docxtpl would hand it to Jinja."""
    text = text.replace("\r", " ").replace("\n", " ")
    text = INSIDE_TAG.sub(lambda m: m.group(0).translate(str.maketrans("‘’“”", "''\"\"")), text)
    text = PREFIXED_TAG.sub(lambda m: f"{m.group(1) or m.group(2)} ", text)
    text = MERGE_TAG.sub("", text)
    return CELL_TAG.sub(lambda m: f"{{{{ {m.group(1)} }}}}", text)


def skeleton(paragraphs: Sequence[Paragraph]) -> str:
    """The Jinja source of a part with line N holding paragraph N."""
    return "\n".join(jinja_line(p.text) for p in paragraphs)


def line_place(paragraphs: Sequence[Paragraph], lineno: int) -> str:
    """The place of the paragraph on line `lineno` of the skeleton."""
    if not paragraphs:
        return ""
    return paragraphs[max(1, min(lineno, len(paragraphs))) - 1].where


def source_place(part: str, source: str, lineno: int) -> str:
    """A rougher place from the compiled source: the part and the text of the offending line."""
    lines = source.splitlines() or [""]
    line = lines[max(1, min(lineno, len(lines))) - 1]
    text = html.unescape(XML_TAG.sub("", line))
    return f"{part_label(part)}「{snippet(text)}」" if text.strip() else part_label(part)


# --- what is wrong ------------------------------------------------------------------------------


def unsafe_name(name: str) -> bool:
    """True for an attribute name the sandbox refuses to read."""
    return name.startswith("_") or name in SANDBOX_REFUSED


def unsafe_attribute_string(value: object) -> bool:
    """True for a string naming an attribute path (a.b) with an unsafe step."""
    return isinstance(value, str) and any(unsafe_name(step) for step in value.split("."))


def attribute_arguments(node: nodes.Filter | nodes.Test) -> list[nodes.Expr]:
    """The arguments of a filter or test that name an attribute to read."""
    if node.name not in ATTRIBUTE_ARGUMENTS:
        return []
    index = ATTRIBUTE_ARGUMENTS[node.name]
    named = [kw.value for kw in node.kwargs if kw.key == "attribute"]
    positional = [node.args[index]] if index is not None and len(node.args) > index else []
    return positional + named


def unsafe_issues(tree: nodes.Template) -> list[_Issue]:
    """Every access in the tree the sandbox would refuse, and every reference to another template."""
    issues: list[_Issue] = []

    def add(name: str, message: str, node: nodes.Node) -> None:
        issues.append(_Issue(FindingKind.UNSAFE, name, f"使用了不允许的写法（{message}）", node.lineno))

    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test, nodes.Call,
                               nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        if isinstance(node, nodes.Getattr):
            if unsafe_name(node.attr):
                add(node.attr, f"访问内部属性 {node.attr}", node)
            elif node.attr in MUTATING_METHODS:
                add(node.attr, f"调用会修改数据的方法 {node.attr}", node)
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) and unsafe_name(node.arg.value):
                add(node.arg.value, f"访问内部属性 {node.arg.value}", node)
        elif isinstance(node, nodes.Filter | nodes.Test):
            for argument in attribute_arguments(node):
                if isinstance(argument, nodes.Const) and unsafe_attribute_string(argument.value):
                    add(argument.value, f"访问内部属性 {argument.value}", node)
        elif isinstance(node, nodes.Call):
            method = node.node
            if (isinstance(method, nodes.Getattr) and method.attr in ("format", "format_map")
                    and isinstance(method.node, nodes.Const) and isinstance(method.node.value, str)
                    and UNSAFE_FORMAT_FIELD.search(method.node.value)):
                add(method.attr, "在格式字符串中访问内部属性", node)
        else:
            keyword = type(node).__name__.lower()
            add(keyword, f"引用其他模板（{keyword}），模板只能使用程序提供的变量", node)
    return issues


def constant_number(node: nodes.Node) -> int | float | None:
    """The value of an arithmetic expression of number literals (`20`, `10 ** 3`), else None.

    None too when the value is one the sandbox would refuse to compute, so it is never computed here.
    """
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, int | float) else None
    if isinstance(node, nodes.Neg | nodes.Pos):
        value = constant_number(node.node)
        return -value if value is not None and isinstance(node, nodes.Neg) else value
    if isinstance(node, nodes.BinExpr) and node.operator in ARITHMETIC:
        left, right = constant_number(node.left), constant_number(node.right)
        if left is None or right is None or oversized(node.operator, left, right):
            return None
        try:
            return ARITHMETIC[node.operator](left, right)
        except (ArithmeticError, ValueError):
            return None
    return None


def makes_sequence(node: nodes.Node) -> bool:
    """True when the expression surely gives text or a list (what `*` repeats), as far as cheaply known."""
    if isinstance(node, nodes.Const):
        return isinstance(node.value, str | bytes | list | tuple)
    if isinstance(node, nodes.List | nodes.Tuple | nodes.Concat):
        return True
    if isinstance(node, nodes.Add | nodes.Mul):
        return makes_sequence(node.left) or makes_sequence(node.right)
    if isinstance(node, nodes.CondExpr):
        return makes_sequence(node.expr1) or (node.expr2 is not None and makes_sequence(node.expr2))
    if isinstance(node, nodes.Filter):
        return node.name in SEQUENCE_FILTERS
    if isinstance(node, nodes.Getitem):
        return isinstance(node.arg, nodes.Slice) and makes_sequence(node.node)
    if isinstance(node, nodes.Call):
        method = node.node
        return ((isinstance(method, nodes.Name) and method.name in SEQUENCE_GLOBALS)
                or (isinstance(method, nodes.Getattr) and method.attr in SEQUENCE_METHODS
                    and makes_sequence(method.node)))
    return False


def sequence_length(node: nodes.Node) -> int:
    """The length of a text or list literal; 1 (the least a repetition can give) when not known."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str | bytes | list | tuple):
        return max(len(node.value), 1)
    if isinstance(node, nodes.List | nodes.Tuple):  # counting the characters of text inside
        return max(sum(sequence_length(item) if makes_sequence(item) else 1 for item in node.items), 1)
    if isinstance(node, nodes.Mul):  # ('—' * 20000) * 10
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            times = constant_number(count)
            if makes_sequence(sequence) and isinstance(times, int) and times > 0:
                return sequence_length(sequence) * times
    return 1


def expression_text(node: nodes.Node) -> str:
    """A short rendering of an expression for a message (`'甲' * n`, `budget.spent`), `…` for the rest."""
    if isinstance(node, nodes.Const):
        text = repr(node.value)
        return text if len(text) <= 12 else f"{text[:10]}…"
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{expression_text(node.node)}.{node.attr}"
    if isinstance(node, nodes.Filter) and node.node is not None:
        return f"{expression_text(node.node)}|{node.name}"
    if isinstance(node, nodes.List):
        return f"[{', '.join(expression_text(item) for item in node.items)}]"
    if isinstance(node, nodes.Neg):
        return f"-{expression_text(node.node)}"
    if isinstance(node, nodes.BinExpr):
        return f"({expression_text(node.left)} {node.operator} {expression_text(node.right)})"
    return "…"


def size_issues(tree: nodes.Template) -> list[_Issue]:
    """Each `*` or `**` whose result may be too large for the sandbox: refused before rendering.

    `*` repeating text or a list (`'—' * 20`) must repeat it a fixed number of times that keeps
    the result within render.MAX_REPETITION; `**` must have a fixed exponent (at most
    MAX_EXPONENT when the base is not fixed either); fixed numbers must stay within the sandbox's
    bound. Everything else is left to the sandbox, which refuses huge results while rendering.
    """
    issues: list[_Issue] = []
    for node in tree.find_all((nodes.Mul, nodes.Pow)):
        left, right = constant_number(node.left), constant_number(node.right)
        name = expression_text(node).removeprefix("(").removesuffix(")")
        reason = None
        if left is not None and right is not None:
            reason = oversized(node.operator, left, right)
        elif isinstance(node, nodes.Mul):
            for sequence, count_node, count in ((node.left, node.right, right), (node.right, node.left, left)):
                if not makes_sequence(sequence) or makes_sequence(count_node):
                    continue
                if count is None:
                    reason = (f"用 * 重复文字或列表，次数 {expression_text(count_node)} 不是固定的数字，结果可能极长"
                              f"；次数须固定，结果最多 {MAX_REPETITION:,} 个字符或项")
                elif isinstance(count, int) and sequence_length(sequence) * count > MAX_REPETITION:
                    reason = (f"用 * 把文字或列表重复成 {sequence_length(sequence) * count:,} 个字符或项，"
                              f"超过上限 {MAX_REPETITION:,}")
                break
        elif right is None:
            reason = f"乘方 ** 的指数 {expression_text(node.right)} 不是固定的数字，结果可能极大"
        elif abs(right) > MAX_EXPONENT:
            reason = f"乘方 ** 的指数 {right:,} 过大，结果可能极大；指数最多 {MAX_EXPONENT}"
        if reason is not None:
            issues.append(_Issue(FindingKind.UNSAFE, name, f"使用了不允许的写法（{reason}）", node.lineno))
    return issues


def free_names(tree: nodes.Template) -> list[tuple[str, int]]:
    """(name, line) of each variable read where no loop, set, with or macro of the template binds it."""
    found: list[tuple[str, int]] = []

    def walk_all(children: Sequence[nodes.Node], bound: set[str]) -> None:
        for child in children:
            walk(child, bound)

    def walk(node: nodes.Node, bound: set[str]) -> None:
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in bound:
                found.append((node.name, node.lineno))
            elif node.ctx in ("store", "param"):
                bound.add(node.name)
        elif isinstance(node, nodes.For):
            walk(node.iter, bound)
            inner = {*bound, "loop"}  # a for loop is a scope of its own
            walk(node.target, inner)
            if node.test is not None:
                walk(node.test, inner)
            walk_all(node.body, inner)
            walk_all(node.else_, set(bound))
        elif isinstance(node, nodes.Assign):
            walk(node.node, bound)
            walk(node.target, bound)  # {% set %} binds for what follows in the same scope
        elif isinstance(node, nodes.AssignBlock):
            walk_all(node.body, set(bound))
            if node.filter is not None:
                walk(node.filter, bound)
            walk(node.target, bound)
        elif isinstance(node, nodes.With):
            walk_all(node.values, bound)
            inner = set(bound)
            walk_all(node.targets, inner)
            walk_all(node.body, inner)
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            if isinstance(node, nodes.Macro):
                bound.add(node.name)
            else:
                walk(node.call, bound)
            walk_all(node.defaults, bound)
            inner = {*bound, "caller", "varargs", "kwargs"}
            walk_all(node.args, inner)
            walk_all(node.body, inner)
        else:
            walk_all(list(node.iter_child_nodes()), bound)

    walk(tree, set())
    return found


def field_issues(tree: nodes.Template) -> list[_Issue]:
    """Each read of a field the context does not have: budget.adjustd, ind.scor in a loop over indicators."""
    issues: list[_Issue] = []

    def check(node: nodes.Getattr | nodes.Getitem, fields: dict[str, frozenset[str] | str | None]) -> None:
        if not isinstance(node.node, nodes.Name) or node.node.ctx != "load":
            return
        known = fields.get(node.node.name)
        if not isinstance(known, frozenset):
            return
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key = node.arg.value
        else:
            return
        if key not in known and key not in DICT_METHODS and not unsafe_name(key):
            name = f"{node.node.name}.{key}"
            issues.append(_Issue(FindingKind.UNKNOWN, name, f"变量 {node.node.name} 没有字段 {key}", node.lineno))

    def rebind(node: nodes.Node, fields: dict[str, frozenset[str] | str | None]) -> None:
        for name in [node, *node.find_all(nodes.Name)]:  # find_all skips the node itself
            if isinstance(name, nodes.Name) and name.ctx in ("store", "param"):
                fields[name.name] = None  # a name the template binds itself: its fields are unknown

    def walk(node: nodes.Node, fields: dict[str, frozenset[str] | str | None]) -> None:
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            check(node, fields)
        if isinstance(node, nodes.For):
            walk(node.iter, fields)
            inner = dict(fields)
            rebind(node.target, inner)
            # Only the context's own list (not one the template rebound) has items of known fields.
            if (isinstance(node.iter, nodes.Name) and isinstance(node.target, nodes.Name)
                    and fields.get(node.iter.name) == CONTEXT_LIST):
                inner[node.target.name] = ITEM_FIELDS[node.iter.name]
            for child in [*([node.test] if node.test else []), *node.body]:
                walk(child, inner)
            for child in node.else_:
                walk(child, dict(fields))
        elif isinstance(node, nodes.Assign | nodes.AssignBlock):
            for child in node.iter_child_nodes():
                if child is not node.target:
                    walk(child, fields)
            rebind(node.target, fields)
        elif isinstance(node, nodes.With | nodes.Macro | nodes.CallBlock):
            inner = dict(fields)
            rebind(node, inner)  # conservative: every name bound anywhere inside loses its fields
            for child in node.iter_child_nodes():
                walk(child, inner)
        else:
            for child in node.iter_child_nodes():
                walk(child, fields)

    top: dict[str, frozenset[str] | str | None] = {**DICT_FIELDS, **dict.fromkeys(ITEM_FIELDS, CONTEXT_LIST)}
    walk(tree, top)
    return issues


def unknown_issues(tree: nodes.Template, unknown: frozenset[str]) -> list[_Issue]:
    """Each read of a variable in `unknown`, at its line."""
    return [_Issue(FindingKind.UNKNOWN, name, f"使用了未提供的变量 {name}", line)
            for name, line in free_names(tree) if name in unknown]


def unknown_variables(tree: nodes.Template) -> frozenset[str]:
    """Variables the template reads that neither it nor the pipeline provides (folds `tree`)."""
    return frozenset(meta.find_undeclared_variables(tree) - CONTEXT_KEYS)


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


def source_issues(source: str, unknown: frozenset[str], env: jinja2.Environment) -> list[_Issue]:
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
    return written + folded + size_issues(env.parse(source)) + unknown_issues(env.parse(source), unknown) + field_issues(env.parse(source))


def part_findings(part: str, source: str, paragraphs: Sequence[Paragraph],
                  env: jinja2.Environment) -> list[Finding]:
    """What is wrong in one compiled part, each placed at its paragraph where the skeleton tells."""
    unknown = unknown_variables(env.parse(source))
    decided = source_issues(source, unknown, env)
    # Every unknown variable is reported, even when the walk cannot tell where it is read.
    decided += [_Issue(FindingKind.UNKNOWN, name, f"使用了未提供的变量 {name}", 0)
                for name in sorted(unknown - {i.name for i in decided})]
    placed: dict[tuple[FindingKind, str], list[tuple[int, str]]] = {}
    try:
        outline = source_issues(skeleton(paragraphs), unknown, env)
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


def template_check(name: str, data: bytes) -> TemplateCheck:
    """Compile the template held in `data` and find everything wrong with it, without rendering."""
    env = jinja_environment()
    try:
        parts = document_paragraphs(data)
    except _NOT_A_DOCX as exc:
        # .doc, .dotx renamed, damaged or empty files: python-docx cannot open them at all.
        reason = f"不是可读取的 Word 文档（.docx；{type(exc).__name__}），请在 Word 中另存为“Word 文档(*.docx)”"
        return TemplateCheck(name, None, (Finding(FindingKind.UNREADABLE, "", reason),))
    try:
        compiled = CompiledTemplate.from_bytes(name, data)
    except TemplateInvalid as exc:
        cause = exc.__cause__
        if isinstance(cause, jinja2.TemplateSyntaxError):
            return TemplateCheck(name, None, (syntax_finding(cause, parts, env),))
        reason = str(exc).removeprefix(f"模板 {name} ")
        return TemplateCheck(name, None, (Finding(FindingKind.UNREADABLE, "", reason),))
    findings = [finding for part, source in compiled.sources
                for finding in part_findings(part, source, parts.get(part, []), env)]
    return TemplateCheck(name, compiled, tuple(findings))


def check_template_file(path: Path) -> TemplateCheck:
    """`template_check` of the file at `path`; a missing, unreadable or misnamed file is a finding."""
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
    check = template_check(path.name, data)
    if path.suffix.lower() != ".docx":
        # templates/ is searched for *.docx only: a .dotx or .doc would never be found by a run.
        misnamed = Finding(FindingKind.UNREADABLE, "", "模板文件名须以 .docx 结尾（请在 Word 中另存为“Word 文档(*.docx)”）")
        return TemplateCheck(check.name, check.compiled, (misnamed, *check.findings))
    return check


def invalid_message(name: str, findings: Sequence[Finding]) -> str:
    """The TemplateInvalid message of a refused template: its name and the first findings."""
    shown = "；".join(f.text for f in findings[:SHOWN_IN_MESSAGE])
    more = f"；另有 {len(findings) - SHOWN_IN_MESSAGE} 处问题" if len(findings) > SHOWN_IN_MESSAGE else ""
    return f"模板 {name} 有误：{shown}{more}（可用 perfreport check-template 查看全部）"


def report_lines(check: TemplateCheck) -> Iterator[str]:
    """The lines check-template prints for one template."""
    if check.ok:
        yield f"✔ 模板 {check.name} 没有发现问题。"
        return
    yield f"✘ 模板 {check.name} 发现 {len(check.findings)} 处问题："
    for finding in check.findings:
        yield f"  - {finding.text}"
