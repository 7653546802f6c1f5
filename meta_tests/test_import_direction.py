"""Meta test: the packages depend one way (CONTRIBUTING.md, "The map").

kit (``loaderspec.conform``, ``loaderspec.cli``) -> suites (``loaderspec_suites``) -> adapter layer
(``loaderspec.adapter``, ``loaderspec.adapters``, ``loaderspec.support``) -> implementation
(``loaderspec_reference``); bench (``loaderspec_bench``) -> adapter layer. Checked twice: by reading
every import statement (lazy ones in function bodies included), and by importing the reference
package in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

LAYERS = {
    "reference/loaderspec_reference": ("loaderspec_reference", set()),
    "kit/loaderspec/adapter.py": ("loaderspec.adapter", {"loaderspec_reference"}),
    "kit/loaderspec/adapters": (
        "loaderspec.adapters",
        {"loaderspec_reference", "loaderspec.adapter", "loaderspec.adapters"},
    ),
    "kit/loaderspec/support": ("loaderspec.support", {"loaderspec.support"}),
    "tests": ("loaderspec_suites", {"loaderspec_suites", "loaderspec.adapter", "loaderspec.support"}),
    "kit/loaderspec/conform": (
        "loaderspec.conform",
        {
            "loaderspec",
            "loaderspec.conform",
            "loaderspec.adapter",
            "loaderspec.adapters",
            "loaderspec.support",
            "loaderspec_suites",
        },
    ),
    "bench": ("loaderspec_bench", {"loaderspec_bench", "loaderspec.adapter", "loaderspec.support"}),
}
"""Folder -> (its import name, the project packages it may import: the names or their sub-modules)."""

PROJECT = ("loaderspec_reference", "loaderspec", "loaderspec_suites", "loaderspec_bench", "loaderspec_spec")


def _python_files(folder: str) -> list[Path]:
    path = REPO / folder
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _imported(path: Path) -> list[tuple[int, str, bool]]:
    """Every module ``path`` imports, with its line and whether the import is relative.

    A relative import stays inside its own package by construction; its module name is kept
    only for the test-module check."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or "", node.level > 0))
    return found


def _allowed(module: str, allowed: set[str]) -> bool:
    if module.split(".")[0] not in PROJECT:
        return True
    return any(module == name or module.startswith(name + ".") for name in allowed)


@pytest.mark.parametrize("folder", list(LAYERS))
def test_imports_run_one_way(folder: str) -> None:
    package, allowed = LAYERS[folder]
    allowed = allowed | {package}
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in _python_files(folder)
        for line, module, relative in _imported(path)
        if not relative and not _allowed(module, allowed)
    ]
    assert not wrong, f"{package} may import only {sorted(allowed)} of the project; found:\n" + "\n".join(wrong)


def test_cli_reaches_bench_only_lazily() -> None:
    """``loaderspec bench`` is dispatched by the CLI; nothing else of the kit imports bench."""
    path = REPO / "kit/loaderspec/cli.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not any(str(m).startswith(("loaderspec_bench", "loaderspec.conform")) for m in top_level), top_level


def test_no_test_module_imports_another() -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for folder in ("tests", "meta_tests", "bench")
        for path in _python_files(folder)
        for line, module, _ in _imported(path)
        if module.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert not wrong, "a test module imports another test module:\n" + "\n".join(wrong)


def test_importing_the_reference_loads_nothing_else_of_the_project() -> None:
    code = "import json, sys; import loaderspec_reference.utils; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    others = [m for m in loaded if m.split(".")[0] in PROJECT and m.split(".")[0] != "loaderspec_reference"]
    assert not others, f"importing loaderspec_reference.utils also imported {others}"
