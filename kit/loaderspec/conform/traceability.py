"""Requirement IDs as the thread: which tests check which requirement, and the
branch table of ``spec/index.md`` (seed branch -> requirement IDs -> tests).

``python -m loaderspec.conform.traceability --write`` regenerates the table's test
column from the tests' ``@pytest.mark.req`` markers; without ``--write`` it only checks, and
exits 1 when the column is stale.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from loaderspec.conform.requirements import ID, spec_dir

SUITES_PACKAGE = "loaderspec_suites"
TABLE_BEGIN = "<!-- branch-table:begin -->"
TABLE_END = "<!-- branch-table:end -->"


def test_modules(package: str = SUITES_PACKAGE) -> list[str]:
    """The names of the suites' test modules (``test_*.py``)."""
    folder = Path(str(resources.files(package)))
    return sorted(path.stem for path in folder.glob("test_*.py"))


def _marked_ids(obj: object) -> list[str]:
    ids: list[str] = []
    for mark in getattr(obj, "pytestmark", []):
        if mark.name == "req":
            ids.extend(mark.args)
    return ids


def requirement_marks(package: str = SUITES_PACKAGE) -> dict[str, list[str]]:
    """``module.py::test_name`` -> the requirement IDs it cites, for every test function."""
    marks: dict[str, list[str]] = {}
    for module_name in test_modules(package):
        module = importlib.import_module(f"{package}.{module_name}")
        for name, obj in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(obj) and obj.__module__ == module.__name__:
                marks[f"{module_name}.py::{name}"] = _marked_ids(obj)
    return marks


def tests_by_requirement(marks: dict[str, list[str]]) -> dict[str, list[str]]:
    by_req: dict[str, list[str]] = {}
    for test, ids in marks.items():
        for req_id in ids:
            by_req.setdefault(req_id, []).append(test)
    return by_req


def _table_rows(text: str) -> tuple[int, int, list[str]]:
    start, end = text.index(TABLE_BEGIN), text.index(TABLE_END)
    return start, end, text[start + len(TABLE_BEGIN) : end].strip("\n").splitlines()


def branch_table_requirements(index_text: str) -> list[tuple[str, list[str]]]:
    """(branch, requirement IDs) for each row of the branch table."""
    _, _, rows = _table_rows(index_text)
    result = []
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        result.append((f"{cells[0]} {cells[1]}", re.findall(r"[A-Z]{2}-\d+", cells[2])))
    return result


def render_branch_table(index_text: str, by_req: dict[str, list[str]]) -> str:
    """``index_text`` with the tests column of the branch table regenerated."""
    start, end, rows = _table_rows(index_text)
    out = rows[:2]
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        ids = re.findall(r"[A-Z]{2}-\d+", cells[2])
        tests = sorted({test.split("::")[1] for req_id in ids for test in by_req.get(req_id, [])})
        cells = [*cells[:3], "<br>".join(f"`{t}`" for t in tests) or "**none**"]
        out.append("| " + " | ".join(cells) + " |")
    return index_text[: start + len(TABLE_BEGIN)] + "\n" + "\n".join(out) + "\n" + index_text[end:]


def unknown_ids(ids: Iterable[str], known: Iterable[str]) -> list[str]:
    known = set(known)
    return sorted({i for i in ids if i not in known or not ID.match(i)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite spec/index.md's branch table")
    args = parser.parse_args(argv)
    index = spec_dir() / "index.md"
    text = index.read_text(encoding="utf-8")
    rendered = render_branch_table(text, tests_by_requirement(requirement_marks()))
    if args.write:
        index.write_text(rendered, encoding="utf-8")
        print(f"wrote {index}")
        return 0
    if rendered != text:
        print(f"{index}: the branch table's tests column is stale; run {__name__} --write", file=sys.stderr)
        return 1
    print(f"{index}: branch table is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
