"""The house in layers, checked: imports point down only, no cycle, at most eight floors, no module
over 500 lines, and a core that loads none of the heavy libraries.

The layers (README, "Architecture"), lowest first; a module may import its own layer's package
and the layers its row names, never a layer above:

    errors, inputs       the problem records and statuses; which files are workbooks
    core                 pure: records, profile, indicators, formatting, context
    config               Settings (it holds the scoring profile, so it stands on core)
    xlsx | write         reading an .xlsx | every byte written (neither imports the other)
    contract | docx      the workbook contract | templates to reports (neither imports the other)
    run                  one workbook, batch: steps, flow, runtime
    serve                long-running: hot folder, watcher, deployment, runs view, web
    console, cli, __main__  the only printing (console: its marks and progress)

Imports are read from the source (every `import`, at any depth, `TYPE_CHECKING` ones included),
so a lazy import inside a function cannot slip a layer unnoticed.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
MAX_LINES = 500
MAX_FLOORS = 8
HEAVY = ("pandas", "pandera", "prefect", "openpyxl", "docxtpl", "docx", "python_calamine", "numpy",
         "jinja2", "lxml", "fastapi", "starlette", "dask")

# Which layers each layer may import (besides itself). A layer's own modules may import each other.
BASE = {"pipeline"}
ALLOWED: dict[str, set[str]] = {
    "pipeline": set(),
    "errors": BASE,
    "inputs": BASE | {"errors"},
    "core": BASE | {"errors"},
    "config": BASE | {"errors", "core"},
    "xlsx": BASE | {"errors", "inputs", "core", "config"},
    "write": BASE | {"errors", "inputs", "core", "config"},
    "contract": BASE | {"errors", "inputs", "core", "config", "xlsx", "write"},
    "docx": BASE | {"errors", "inputs", "core", "config", "xlsx", "write"},
    "run": BASE | {"errors", "inputs", "core", "config", "xlsx", "write", "contract", "docx"},
    "serve": BASE | {"errors", "inputs", "core", "config", "xlsx", "write", "contract", "docx", "run"},
    # The console's marks and progress: the command line's own floor, beside it and below nothing.
    "console": BASE,
    "cli": BASE | {"errors", "inputs", "core", "config", "xlsx", "write", "contract", "docx", "run",
                   "serve", "console"},
    "__main__": BASE | {"cli"},
}


def module_name(path: Path) -> str:
    """`pipeline/run/steps.py` → `pipeline.run.steps`; a package's `__init__` is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    """The layer a module belongs to: its first name below `pipeline`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pipeline"


def imported_modules(module: str) -> set[str]:
    """The package's own modules that `module` imports, resolved to the deepest existing module."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                parent = ".".join([*base, node.module] if node.module else base)
            else:
                parent = node.module or ""
            targets = [f"{parent}.{alias.name}" for alias in node.names]
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module and target.startswith("pipeline"):
                found.add(target)
    return found


IMPORTS = {module: imported_modules(module) for module in MODULES}


def layer_imports() -> dict[str, set[str]]:
    """Which layers import which (a layer's imports of itself left out)."""
    graph: dict[str, set[str]] = {layer(m): set() for m in MODULES}
    for module, targets in IMPORTS.items():
        graph[layer(module)] |= {layer(t) for t in targets} - {layer(module)}
    return graph


def cycle_from(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each node's floor: 1 for a node importing nothing, else one above its highest import."""

    @functools.cache
    def floor(node: str) -> int:
        return 1 + max((floor(n) for n in graph.get(node, ())), default=0)

    return {node: floor(node) for node in graph}


def test_every_module_belongs_to_a_known_layer() -> None:
    assert {layer(m) for m in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_only(module: str) -> None:
    own = layer(module)
    upward = sorted(t for t in IMPORTS[module] if layer(t) != own and layer(t) not in ALLOWED[own])
    assert not upward, f"{module} ({own}) imports a layer it stands below: {upward}"


def test_no_import_cycle_between_modules() -> None:
    assert cycle_from(IMPORTS) is None, f"import cycle: {' → '.join(cycle_from(IMPORTS) or [])}"


def test_no_import_cycle_between_layers() -> None:
    graph = layer_imports()
    assert cycle_from(graph) is None, f"layer cycle: {' → '.join(cycle_from(graph) or [])}"


def test_the_house_has_at_most_eight_floors() -> None:
    assert cycle_from(layer_imports()) is None, "floors are counted on a graph without cycles"
    stacked = floors(layer_imports())
    assert max(stacked.values()) <= MAX_FLOORS, sorted(stacked.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines"


CORE = sorted(m for m in MODULES if layer(m) == "core")


@pytest.mark.parametrize("module", CORE)
def test_core_loads_no_heavy_library(module: str) -> None:
    """In a fresh interpreter, so nothing an earlier test imported can hide a heavy import."""
    probe = (f"import sys, {module}\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"{module} loads {done.stdout.strip()}"


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    """The rules above are not vacuous: an invented upward import and cycle are caught."""
    assert "run" not in ALLOWED["core"]
    assert cycle_from({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert floors({"a": {"b"}, "b": {"c"}, "c": set()}) == {"a": 3, "b": 2, "c": 1}
