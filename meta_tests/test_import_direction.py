"""Meta test: the packages depend one way (CONTRIBUTING.md, "The map").

kit (``loaderspec.conform``, ``loaderspec.cli``) -> suites (``loaderspec_suites``) -> adapter layer
(``loaderspec.adapter``, ``loaderspec.adapters``, ``loaderspec.support``) -> implementation
(``loaderspec_reference``); bench (``loaderspec_bench``) -> adapter layer; ``loaderspec.cli`` ->
``loaderspec_bench.cli`` (the ``loaderspec bench`` command). Checked twice: by reading every import
(in function bodies too, relative ones resolved, ``import_module`` with a constant name), and by
importing the reference package in a fresh interpreter.
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
    "kit/loaderspec/__init__.py": ("loaderspec", set()),
    "kit/loaderspec/adapter.py": ("loaderspec.adapter", {"loaderspec.adapters"}),
    "kit/loaderspec/adapters": (
        "loaderspec.adapters",
        {"loaderspec_reference", "loaderspec.adapter"},
    ),
    "kit/loaderspec/support": ("loaderspec.support", set()),
    "tests": ("loaderspec_suites", {"loaderspec.adapter", "loaderspec.support"}),
    "kit/loaderspec/conform": (
        "loaderspec.conform",
        {
            "loaderspec.SPEC_VERSION",
            "loaderspec.__version__",
            "loaderspec.adapter",
            "loaderspec.adapters",
            "loaderspec.support",
            "loaderspec_suites",
        },
    ),
    "kit/loaderspec/history": (
        "loaderspec.history",
        {"loaderspec.conform", "loaderspec.adapters"},
    ),
    "kit/loaderspec/cli.py": (
        "loaderspec.cli",
        {"loaderspec.conform", "loaderspec.history", "loaderspec_bench.cli"},
    ),
    "bench": ("loaderspec_bench", {"loaderspec.adapter", "loaderspec.support"}),
}
"""Folder -> (its import name, the project modules it may import besides its own: the names or
their sub-modules). ``loaderspec.adapter`` loads the shipped adapters by name (``--impl vllm``),
hence its one edge into ``loaderspec.adapters``; ``loaderspec.cli`` dispatches to the runner,
the matrix, the history (``loaderspec history``: built on the runner's reports and the vLLM
adapter) and ``loaderspec bench``."""

TEST_FOLDERS = {"tests": "loaderspec_suites", "meta_tests": "meta_tests", "bench": "loaderspec_bench"}
"""Folders holding test modules, with their import names."""

PROJECT = ("loaderspec_reference", "loaderspec", "loaderspec_suites", "loaderspec_bench", "loaderspec_spec")


def _python_files(folder: str) -> list[Path]:
    path = REPO / folder
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _module_name(path: Path, folder: str, package: str) -> str:
    """The import name of ``path``, a file of ``folder`` whose import name is ``package``."""
    base = REPO / folder
    if base.is_file():
        return package
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join((package, *parts[:-1], *([] if parts[-1] == "__init__" else parts[-1:])))


def _imported(path: Path, module_name: str) -> list[tuple[int, str]]:
    """Every name ``path`` imports, absolute, with its line: ``import a.b`` gives ``a.b``,
    ``from a import b`` gives ``a.b`` (relative imports resolved against ``module_name``), and
    ``importlib.import_module("a.b")`` / ``__import__("a.b")`` with a constant give ``a.b``.
    Imports in function bodies count as well."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own_package = module_name.split(".") if path.name == "__init__.py" else module_name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = own_package[: len(own_package) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found += [(node.lineno, base if alias.name == "*" else f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("import_module", "__import__")


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
        for line, module in _imported(path, _module_name(path, folder, package))
        if not _allowed(module, allowed)
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
        for folder, package in TEST_FOLDERS.items()
        for path in _python_files(folder)
        for line, module in _imported(path, _module_name(path, folder, package))
        if any(part.startswith("test_") for part in module.split(".")[1:])
    ]
    assert not wrong, "a test module imports another test module:\n" + "\n".join(wrong)


def test_the_check_sees_relative_aliased_and_dynamic_imports(tmp_path: Path) -> None:
    """The reader resolves what a plain scan of import statements would miss."""
    source = (
        "from . import test_param_mapping\n"
        "from ..conform import runner\n"
        "def later():\n"
        "    import importlib\n"
        "    importlib.import_module('loaderspec.conform.report')\n"
        "    __import__('loaderspec_bench')\n"
    )
    path = tmp_path / "adapter_like.py"
    path.write_text(source, encoding="utf-8")
    assert [name for _, name in _imported(path, "loaderspec.adapters.adapter_like")] == [
        "loaderspec.adapters.test_param_mapping",
        "loaderspec.conform.runner",
        "importlib",
        "loaderspec.conform.report",
        "loaderspec_bench",
    ]


def test_importing_the_reference_loads_nothing_else_of_the_project() -> None:
    code = "import json, sys; import loaderspec_reference.utils; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    others = [m for m in loaded if m.split(".")[0] in PROJECT and m.split(".")[0] != "loaderspec_reference"]
    assert not others, f"importing loaderspec_reference.utils also imported {others}"
