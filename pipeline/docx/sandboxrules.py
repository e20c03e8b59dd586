"""Template code the sandbox would refuse, found without rendering: unsafe access and huge results.

Attributes or items whose name starts with ``_`` (``''.__class__``, ``x['__globals__']``,
``x|attr('__class__')``, ``'{0.__class__}'.format(x)``), the other attributes the sandbox refuses
(``mro``, ``gi_frame``…), methods that change data (``append``), references to other templates
(include/import/extends; the environment has no loader), and ``*`` / ``**`` whose result may be
too large. Each rule walks a Jinja syntax tree and returns `Issue`s at their source lines.
"""

from __future__ import annotations

import operator
import re

from jinja2 import Environment, nodes
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
)

from pipeline.docx.findings import FindingKind, Issue
from pipeline.docx.render import MAX_REPETITION, oversized, unknown_filter_message

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


def unsafe_issues(tree: nodes.Node) -> list[Issue]:
    """Every access in the tree the sandbox would refuse, and every reference to another template.

    `tree` is a parsed template, or one after Jinja's constant folding (which returns a plain Node).
    """
    issues: list[Issue] = []

    def add(name: str, message: str, node: nodes.Node) -> None:
        issues.append(Issue(FindingKind.UNSAFE, name, f"使用了不允许的写法（{message}）", node.lineno))

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


def size_issues(tree: nodes.Template) -> list[Issue]:
    """Each `*` or `**` whose result may be too large for the sandbox: refused before rendering.

    `*` repeating text or a list (`'—' * 20`) must repeat it a fixed number of times that keeps
    the result within render.MAX_REPETITION; `**` must have a fixed exponent (at most
    MAX_EXPONENT when the base is not fixed either); fixed numbers must stay within the sandbox's
    bound. Everything else is left to the sandbox, which refuses huge results while rendering.
    """
    issues: list[Issue] = []
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
            issues.append(Issue(FindingKind.UNSAFE, name, f"使用了不允许的写法（{reason}）", node.lineno))
    return issues


def filter_issues(tree: nodes.Template, env: Environment) -> list[Issue]:
    """Each filter or test the environment does not have: a custom one of another program
    (docxtpl lets its caller add filters; the report renderer has only Jinja's own)."""
    issues: list[Issue] = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        kind, known = ("filter", env.filters) if isinstance(node, nodes.Filter) else ("test", env.tests)
        if node.name not in known:
            message = unknown_filter_message(f"No {kind} named '{node.name}'") or node.name
            issues.append(Issue(FindingKind.UNSUPPORTED, node.name, message, node.lineno))
    return issues
