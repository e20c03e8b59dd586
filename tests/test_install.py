"""The install path an administrator takes: the Makefile's Python check and the hash-pinned locks.

The installing tests run the Makefile's own recipe in a copy of the project: a fresh venv, the
runtime lock with --require-hashes, the editable install without network, then the test lock on
top. They download from the package index (through pip's cache), as an administrator's install does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")
# What `make` needs to build the venv in a copy of the project.
PROJECT_FILES = (
    "Makefile",
    "pyproject.toml",
    "README.md",
    "requirements.lock",
    "requirements-test.lock",
)
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
    r"(?:\s*;\s*(?P<marker>[^\\]+?))?"
    r"(?P<hashes>(?:\s+--hash=sha256:[0-9a-f]{64})+)$"
)


def lock_entries(lock: Path) -> list[str]:
    """The requirement entries of a lock, each joined across its backslash continuations."""
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def locked_pins(lock: Path) -> dict[str, set[tuple[str, str]]]:
    """Each locked project's (version, marker) pairs, by normalised name; a universal lock may pin
    one project at two versions under exclusive markers."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for entry in lock_entries(lock):
        match = PIN.match(entry)
        assert match is not None, f"{lock.name}: not a hash-pinned `==` entry: {entry[:120]}"
        name = canonicalize_name(match["name"])
        pins.setdefault(name, set()).add((match["version"], (match["marker"] or "").strip()))
    return pins


def pins_for(pins: dict[str, set[tuple[str, str]]], python: str) -> dict[str, str]:
    """The version of each project that an install on CPython `python` (on Linux) takes."""
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    chosen: dict[str, str] = {}
    for name, entries in pins.items():
        versions = {
            v for v, marker in entries if not marker or Marker(marker).evaluate(environment)
        }
        assert len(versions) <= 1, f"{name} is pinned at {sorted(versions)} for Python {python}"
        if versions:
            chosen[name] = versions.pop()
    return chosen


def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command's completed process, its output captured as text."""
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def project_copy(into: Path) -> Path:
    """A copy of the files `make` builds the venv from, the package included."""
    into.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, into / name)
    shutil.copytree(
        ROOT / "pipeline", into / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project copy whose .venv the Makefile built with both locks (the one slow step here)."""
    project = project_copy(tmp_path_factory.mktemp("install") / "project")
    # pip's `compile = false` (no .pyc files at install) saves a third of the install's time here;
    # what is installed, and how it is checked against the hashes, is the same.
    env = {**os.environ, "PIP_COMPILE": "0"}
    result = run(["make", f"PYTHON={sys.executable}", ".venv/.installed-test"], project, env)
    assert result.returncode == 0, f"make failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    yield project
    shutil.rmtree(project / ".venv", ignore_errors=True)


def test_every_lock_entry_is_pinned_with_hashes() -> None:
    for lock in (RUNTIME_LOCK, TEST_LOCK):
        assert lock_entries(lock), f"{lock.name} is empty"
        locked_pins(lock)  # asserts the form of every entry


def test_each_lock_says_how_it_was_generated() -> None:
    for lock in (RUNTIME_LOCK, TEST_LOCK):
        header = lock.read_text(encoding="utf-8").split("\n", 8)[:8]
        assert any("make lock" in line for line in header), lock.name
        assert any("--require-hashes" in line for line in header), lock.name


def test_test_lock_moves_no_runtime_pin() -> None:
    runtime, test = locked_pins(RUNTIME_LOCK), locked_pins(TEST_LOCK)
    for name in runtime.keys() & test.keys():
        runtime_versions = {version for version, _ in runtime[name]}
        test_versions = {version for version, _ in test[name]}
        assert test_versions <= runtime_versions, (
            f"{name}: runtime {runtime_versions}, test {test_versions}"
        )


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_runtime_lock_satisfies_pyproject_on_each_supported_python(python: str) -> None:
    project = pyproject()["project"]
    chosen = pins_for(locked_pins(RUNTIME_LOCK), python)
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in chosen, f"{name} is in pyproject.toml but not locked for Python {python}"
        assert requirement.specifier.contains(chosen[name], prereleases=True), (
            f"{name}=={chosen[name]} does not satisfy {requirement} (run `make lock`)"
        )


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_test_lock_satisfies_the_test_extra_on_each_supported_python(python: str) -> None:
    project = pyproject()["project"]
    chosen = pins_for(locked_pins(TEST_LOCK), python)
    for line in project["optional-dependencies"]["test"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in chosen, f"{name} is in the test extra but not in requirements-test.lock"
        assert requirement.specifier.contains(chosen[name], prereleases=True), name


def test_runtime_lock_pins_the_build_backend() -> None:
    chosen = pins_for(locked_pins(RUNTIME_LOCK), "3.11")
    for line in pyproject()["build-system"]["requires"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in chosen and requirement.specifier.contains(chosen[name]), line


def test_fresh_venv_installs_both_locks_and_pip_check_passes(installed: Path) -> None:
    python = installed / ".venv" / "bin" / "python"
    check = run([str(python), "-m", "pip", "check"], installed)
    assert check.returncode == 0, check.stdout + check.stderr
    assert (installed / ".venv" / ".installed").exists()
    assert (installed / ".venv" / ".installed-test").exists()


def test_installed_venv_imports_the_flow_and_test_tools(installed: Path) -> None:
    python = installed / ".venv" / "bin" / "python"
    code = (
        "import pipeline, pipeline.run.flow, filelock, psutil, pytest, hypothesis, mypy, pypdf;"
        "print(pipeline.__file__)"
    )
    result = run([str(python), "-c", code], installed.parent)
    assert result.returncode == 0, result.stderr[-4000:]
    # The editable install points at the copy the Makefile installed, not at this checkout.
    assert Path(result.stdout.strip()).is_relative_to(installed)


def fake_python(directory: Path, version: str) -> Path:
    """An executable that answers the Makefile's version query as Python `version` would, and fails
    loudly on anything else (so that `make` making a venv with it shows in the output)."""
    script = directory / f"python{version}"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f"  *version_info*) echo {version} ;;\n"
        '  *) echo "fake python asked for: $*" >&2; exit 3 ;;\n'
        "esac\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def unsupported_pythons() -> list[str]:
    """Interpreters the Makefile must refuse: versions a stand-in reports (3.10 as on an older
    server, 3.14 beyond the locks, 2.7), and pyenv's real Python 3.10 where this machine has one."""
    real = sorted(str(p) for p in Path("/root/.pyenv/versions").glob("3.10.*/bin/python"))
    return ["fake:3.10.13", "fake:3.14.0", "fake:2.7.18", *real]


@pytest.fixture
def bare_project(tmp_path: Path) -> Path:
    """A copy of the Makefile and the files its venv depends on, with no venv."""
    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, project / name)
    return project


@pytest.mark.parametrize("target", ["run", "test"])
@pytest.mark.parametrize("interpreter", unsupported_pythons())
def test_make_refuses_an_unsupported_python_before_making_the_venv(
    bare_project: Path, interpreter: str, target: str
) -> None:
    if interpreter.startswith("fake:"):
        version = interpreter.removeprefix("fake:")
        python = str(fake_python(bare_project.parent, version))
    else:
        python = interpreter
        version = run(
            [python, "-c", "import platform; print(platform.python_version())"], bare_project
        ).stdout.strip()
    result = run(["make", target, f"PYTHON={python}"], bare_project)
    assert result.returncode != 0
    assert f"PYTHON={python} is Python {version}." in result.stderr
    assert "needs Python 3.11, 3.12 or 3.13" in result.stderr
    assert "make PYTHON=python3.12" in result.stderr
    assert "fake python asked for" not in result.stderr
    assert not (bare_project / ".venv").exists()


def test_make_names_a_python_that_does_not_run(bare_project: Path) -> None:
    result = run(["make", "PYTHON=/nonexistent/python3"], bare_project)
    assert result.returncode != 0
    assert "PYTHON=/nonexistent/python3 is not a Python that runs" in result.stderr
    assert not (bare_project / ".venv").exists()
