"""Variables and fields a template reads that the pipeline does not provide.

The names and fields a template may use come from the template's field table,
`pipeline.core.context.CONTEXT_VARIABLES` for project reports (`REPORT_FIELDS`) and
`pipeline.core.department.DEPARTMENT_VARIABLES` for 部门汇总报告 (`DEPARTMENT_FIELDS`); loop variables, ``{% set %}`` names and the sandbox's
own globals (``range``, ``namespace``…) are not unknown. Each rule walks a Jinja syntax tree and
returns `Issue`s at their source lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jinja2 import meta, nodes

from pipeline.core.context import CONTEXT_KEYS, DICT_FIELDS, ITEM_FIELDS
from pipeline.core.department import (
    DEPARTMENT_DICT_FIELDS,
    DEPARTMENT_ITEM_FIELDS,
    DEPARTMENT_KEYS,
    DEPARTMENT_TEMPLATE,
)
from pipeline.docx.findings import FindingKind, Issue
from pipeline.docx.sandboxrules import unsafe_name

DICT_METHODS = frozenset({"items", "keys", "values", "get"})  # what Jinja reads off any dict
CONTEXT_LIST = "list"  # marks funding/indicators as the context's own lists in field_issues


@dataclass(frozen=True, slots=True)
class FieldTable:
    """What a kind of template may read: every variable, the fields of each dict, of each list's items."""

    keys: frozenset[str]
    dict_fields: Mapping[str, frozenset[str]]
    item_fields: Mapping[str, frozenset[str]]


REPORT_FIELDS = FieldTable(CONTEXT_KEYS, DICT_FIELDS, ITEM_FIELDS)
DEPARTMENT_FIELDS = FieldTable(DEPARTMENT_KEYS, DEPARTMENT_DICT_FIELDS, DEPARTMENT_ITEM_FIELDS)


def fields_for(name: str) -> FieldTable:
    """The field table of the template file `name`: the department template's own, else a report's."""
    return DEPARTMENT_FIELDS if name.casefold() == DEPARTMENT_TEMPLATE.casefold() else REPORT_FIELDS


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


def field_issues(tree: nodes.Template, table: FieldTable = REPORT_FIELDS) -> list[Issue]:
    """Each read of a field the context does not have: budget.adjustd, ind.scor in a loop over indicators."""
    issues: list[Issue] = []

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
            issues.append(Issue(FindingKind.UNKNOWN, name, f"变量 {node.node.name} 没有字段 {key}", node.lineno))

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
                inner[node.target.name] = table.item_fields[node.iter.name]
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

    top: dict[str, frozenset[str] | str | None] = {**table.dict_fields,
                                                        **dict.fromkeys(table.item_fields, CONTEXT_LIST)}
    walk(tree, top)
    return issues


def unknown_issues(tree: nodes.Template, unknown: frozenset[str]) -> list[Issue]:
    """Each read of a variable in `unknown`, at its line."""
    return [Issue(FindingKind.UNKNOWN, name, f"使用了未提供的变量 {name}", line)
            for name, line in free_names(tree) if name in unknown]


def unknown_variables(tree: nodes.Template, table: FieldTable = REPORT_FIELDS) -> frozenset[str]:
    """Variables the template reads that neither it nor the pipeline provides (folds `tree`)."""
    return frozenset(meta.find_undeclared_variables(tree) - table.keys)
