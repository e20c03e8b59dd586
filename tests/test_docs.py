"""The docs are tested: README, CLI help and the template contract must match the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from pipeline import cli, config
from pipeline.contract import schemas
from pipeline.core.context import CONTEXT_KEYS
from pipeline.docx.render import template_variables
from pipeline.write.folders import ARCHIVE_DIR, name_refusal

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEMPLATES_README = (ROOT / "templates" / "README.md").read_text(encoding="utf-8")
SHIPPED_TEMPLATE = ROOT / "templates" / "report.docx"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand of the `perfreport` parser, by name."""
    actions = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub for action in actions for name, sub in action.choices.items()}


SHEET_HEADERS = [
    (schemas.sheet_name(model), header)
    for model in schemas.SHEET_MODELS
    for header in schemas.sheet_layout(model).known
]


@pytest.mark.parametrize("command", ["make run", "make test"])
def test_readme_gives_the_two_make_commands(command: str) -> None:
    assert command in README


def test_parser_has_subcommands() -> None:
    assert subcommands(), "pipeline.cli.parser() defines no subcommands"


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_is_in_readme(name: str) -> None:
    assert f"perfreport {name}" in README


def test_top_level_help_has_an_example() -> None:
    assert "Example:" in cli.parser().format_help()


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_help_has_an_example(name: str) -> None:
    assert "Example:" in subcommands()[name].format_help()


def test_run_help_has_an_example() -> None:
    assert "Example:" in subcommands()["run"].format_help()


@pytest.mark.parametrize("sheet", [schemas.sheet_name(m) for m in schemas.SHEET_MODELS])
def test_every_sheet_is_in_readme(sheet: str) -> None:
    assert sheet in README


@pytest.mark.parametrize(
    ("sheet", "header"), SHEET_HEADERS, ids=[f"{sheet}-{header}" for sheet, header in SHEET_HEADERS]
)
def test_every_sheet_header_is_in_readme(sheet: str, header: str) -> None:
    assert header in README, f"README does not list column {header} of sheet {sheet}"


def test_shipped_template_uses_only_context_keys() -> None:
    unknown = template_variables(SHIPPED_TEMPLATE) - CONTEXT_KEYS
    assert not unknown, (
        f"templates/report.docx uses variables context.py does not provide: {unknown}"
    )


@pytest.mark.parametrize("key", sorted(CONTEXT_KEYS))
def test_every_context_key_is_documented_for_template_authors(key: str) -> None:
    # `key` or `key.field`, as templates/README.md writes them.
    assert re.search(rf"`{re.escape(key)}[`.]", TEMPLATES_README), (
        f"templates/README.md lacks `{key}`"
    )


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def makefile_targets() -> list[str]:
    """The Makefile's .PHONY targets."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split()  # type: ignore[union-attr]


@pytest.mark.parametrize("target", makefile_targets())
def test_every_make_target_is_in_readme(target: str) -> None:
    assert f"make {target}" in README


def ci_packages() -> list[str]:
    """The Debian packages .ci/run installs."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return re.search(r"^for pkg in (.*); do$", text, re.MULTILINE).group(1).split()  # type: ignore[union-attr]


@pytest.mark.parametrize("package", ci_packages())
def test_every_system_package_ci_installs_is_in_readme(package: str) -> None:
    assert f"`{package}`" in README


@pytest.mark.parametrize("variable", [cli.WEB_TOKEN_ENV, cli.DASK_ADDRESS_ENV, config.WEB_URL_ENV, "PREFECT_API_URL"])
def test_every_environment_variable_is_in_readme(variable: str) -> None:
    assert variable in README


def test_readme_example_of_a_changed_workbook_name_is_the_real_folder() -> None:
    from pipeline.write.names import output_folder_name

    folder = output_folder_name("a:b")
    assert f"`a:b.xlsx` 的输出在 `output/{folder}/`" in README and f"`a:b.xlsx` → `output/{folder}/`" in README
    assert f"`{ARCHIVE_DIR}.xlsx`" in README and name_refusal(f"{ARCHIVE_DIR}.xlsx")


PACKAGE = ROOT / "pipeline"


@pytest.mark.parametrize("module", sorted(
    p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
    if not (p.name == "__init__.py" and p.parent != PACKAGE)))
def test_every_module_is_in_the_readme_module_table(module: str) -> None:
    # A row names a module by its path, or by its file name in a row of one package's parts.
    rows = [line for line in README.splitlines() if line.startswith("| `pipeline/")]
    assert any(f"`{module}`" in row or f"`{Path(module).name}`" in row for row in rows), module


def test_the_readme_floor_diagram_is_the_one_the_imports_give() -> None:
    from tests.test_architecture import floors, layer_imports

    drawn = {}
    for line in README.splitlines():
        # "floor N   <layers, in the first 40 columns>   <what they hold>"
        if match := re.match(r"floor (\d+) (.{29})", line):
            for name in match.group(2).split():
                drawn[name.removesuffix("/").removesuffix(".py")] = int(match.group(1))
    computed = {layer: floor for layer, floor in floors(layer_imports()).items() if layer != "pipeline"}
    assert drawn == computed
