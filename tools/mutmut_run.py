"""The third-party mutation run: mutmut over the whole reference (``nox -s mutation``).

    python tools/mutmut_run.py                  # a fresh full run, 2 workers: tools/mutants/mutmut-results.json
    python tools/mutmut_run.py NAME...          # rerun the named mutants (e.g. after a new test), results updated
    python tools/mutmut_run.py --summary        # rewrite the results file from the last run's data, run nothing
    python tools/mutmut_run.py --check          # the committed results vs tools/mutants/third-party-survivors.md

mutmut (3.x, configured in pyproject.toml's ``[tool.mutmut]``) names a mutant by the module path
of its file *relative to the folder it runs in*, and puts only ``mutants/`` (and ``mutants/src``)
on ``sys.path``; this repository's reference lives in ``reference/loaderspec_reference`` but is
imported as ``loaderspec_reference``. So mutmut runs in a stage, ``build/mutmut/``, where
``loaderspec_reference``, ``tests`` and the plugin are links into this tree and
``pyproject.toml`` is this repository's: there the path and the import name agree, and the
mutated copy in ``build/mutmut/mutants/loaderspec_reference`` shadows the editable install
(whose finder comes after the path finder). The kit, the spec and the suites' helpers load from
the editable install as usual.

Each mutant runs, in a process forked from mutmut's, the tests that called its function in
mutmut's stats run (``-x``), under the Hypothesis profile ``ci`` (``--profile``); a mutant
passing them survives. mutmut mutates only the bodies of undecorated functions and methods (it
cannot put its trampoline around ``@contextmanager`` functions) and never module-level
constants: ``set_default_torch_dtype``, ``device_loading_context`` and ``MIXTRAL_HANDLES``
etc. are left to tools/mutate.py (tools/mutants/third-party-survivors.md says more).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "mutmut"
RESULTS = ROOT / "tools" / "mutants" / "mutmut-results.json"
SURVIVORS = ROOT / "tools" / "mutants" / "third-party-survivors.md"
LINKS = {
    "loaderspec_reference": ROOT / "reference" / "loaderspec_reference",
    "tests": ROOT / "tests",
    "mutmut_plugin.py": ROOT / "tools" / "mutmut_plugin.py",
    "pyproject.toml": ROOT / "pyproject.toml",
}

# mutmut's exit codes (mutmut/stats.py), folded into the counts reported here.
_STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 37: "killed"}
_STATUS.update(dict.fromkeys((36, -24, 24, 152, 255), "timeout"))
_STATUS.update(dict.fromkeys((-11, -9), "segfault"))
_MUTMUT = str(Path(sys.executable).with_name("mutmut"))  # the console script (``python -m mutmut`` re-imports itself)
NOT_KILLED = ("survived", "no tests", "timeout", "suspicious", "segfault", "not checked", "skipped")
"""Every mutant in one of these states must be triaged in the survivors file."""


def stage(fresh: bool) -> None:
    if fresh and STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True, exist_ok=True)
    for name, target in LINKS.items():
        link = STAGE / name
        if not link.is_symlink():
            link.symlink_to(target)


def status_of(code: int | None) -> str:
    return "not checked" if code is None else _STATUS.get(code, "suspicious")


def load_statuses() -> dict[str, str]:
    statuses = {}
    for meta in sorted((STAGE / "mutants" / "loaderspec_reference").glob("*.py.meta")):
        data = json.loads(meta.read_text(encoding="utf-8"))
        statuses.update({name: status_of(code) for name, code in data["exit_code_by_key"].items()})
    return statuses


def _function_of(name: str) -> tuple[str, str, str | None]:
    """(module file stem, function, class) of a mutant name such as
    ``loaderspec_reference.utils.xǁParamMappingǁget_sub_modules__mutmut_3``."""
    mangled = name.partition("__mutmut_")[0]
    module, _, function = mangled.rpartition(".")
    stem = module.rpartition(".")[2]
    if "ǁ" in function:
        _, cls, method = function.split("ǁ")
        return stem, method, cls
    return stem, function.removeprefix("x_"), None


def _def_node(tree: ast.Module, function: str, cls: str | None) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    body: list[ast.stmt] = tree.body
    if cls is not None:
        owner = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), None)
        body = owner.body if owner is not None else []
    return next(
        (n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function), None
    )


def describe(name: str) -> dict[str, object]:
    """Where a mutant sits (file, line in the unmutated source) and its change, from ``mutmut show``."""
    diff = subprocess.run([_MUTMUT, "show", name], cwd=STAGE, capture_output=True, text=True, check=False).stdout
    stem, function, cls = _function_of(name)
    path = ROOT / "reference" / "loaderspec_reference" / f"{stem}.py"
    lines = path.read_text(encoding="utf-8").splitlines()
    node = _def_node(ast.parse("\n".join(lines)), function, cls)
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    line_no = None
    if node is not None and removed:
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        span = range(first, (node.end_lineno or first) + 1)
        wanted = removed[0].strip()
        hunk = re.search(r"^@@ -(\d+)", diff, re.MULTILINE)
        guess = first + (int(hunk.group(1)) if hunk else 1) - 1
        matches = [n for n in span if lines[n - 1].strip() == wanted]
        line_no = min(matches, key=lambda n: abs(n - guess)) if matches else None
    return {
        "file": f"reference/loaderspec_reference/{stem}.py",
        "line": line_no,
        "before": [line.strip() for line in removed],
        "after": [line.strip() for line in added],
    }


def summarize(statuses: dict[str, str]) -> dict[str, int]:
    counts = Counter(statuses.values())
    return {"mutants": len(statuses), **{status: counts[status] for status in sorted(counts)}}


def write_results(statuses: dict[str, str], run: dict[str, object] | None) -> dict[str, Any]:
    old = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    known = old.get("not_killed", {}) if run is None else {}  # a rerun changes no mutant's text
    not_killed = {
        name: (known.get(name) or describe(name)) | {"status": s} for name, s in statuses.items() if s in NOT_KILLED
    }
    results = {
        "tool": f"mutmut {metadata.version('mutmut')}",
        "full_run": run if run is not None else old.get("full_run"),
        "reruns": old.get("reruns", []) if run is None else [],
        "now": summarize(statuses),
        "not_killed": not_killed,
        "statuses": statuses,
    }
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


def triaged(path: Path = SURVIVORS) -> dict[str, str]:
    """Mutant name -> classification (``equivalent`` or ``fixed``) as the survivors file gives it."""
    found = {}
    pattern = re.compile(r"^- `([^`]+)`.*?\*\*(equivalent|fixed|real gap)\*\*", re.MULTILINE)
    for match in pattern.finditer(path.read_text(encoding="utf-8")):
        found[match.group(1)] = match.group(2)
    return found


def check() -> list[str]:
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    notes = triaged()
    problems = []
    for name, info in results["not_killed"].items():
        verdict = notes.get(name)
        if verdict is None:
            problems.append(f"{name} ({info['status']}) is not triaged in {SURVIVORS.name}")
        elif verdict != "equivalent":
            problems.append(f"{name} is marked {verdict} but is not killed")
    for name, verdict in notes.items():
        if verdict == "fixed" and results["statuses"].get(name) != "killed":
            problems.append(f"{name} is marked fixed but its last result is {results['statuses'].get(name)}")
    return problems


def run_mutmut(names: list[str], workers: int, profile: str) -> float:
    env = {**os.environ, "HYPOTHESIS_PROFILE": profile}
    began = time.monotonic()
    subprocess.run([_MUTMUT, "run", "--max-children", str(workers), *names], cwd=STAGE, env=env, check=True)
    return time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutants to rerun (default: a fresh full run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", default="ci", help="Hypothesis profile of the suites (default ci)")
    parser.add_argument("--summary", action="store_true", help="rewrite the results from the last run, run nothing")
    parser.add_argument("--check", action="store_true", help="committed results vs the survivors file")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or f"every mutant mutmut left alive is triaged in {SURVIVORS.name}")
        return 1 if problems else 0
    if args.summary:
        results = write_results(load_statuses(), None)
    else:
        if args.names and not (STAGE / "mutants").is_dir():
            parser.error(f"no earlier run in {STAGE.relative_to(ROOT)} to rerun mutants of: run the full run first")
        stage(fresh=not args.names)
        seconds = run_mutmut(args.names, args.workers, args.profile)
        statuses = load_statuses()
        if args.names:
            results = write_results(statuses, None)
            results["reruns"].append({n: statuses.get(n) for n in args.names} | {"profile": args.profile})
            RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            run = {"seconds": round(seconds), "workers": args.workers, "profile": args.profile, **summarize(statuses)}
            results = write_results(statuses, run)
    print(json.dumps({"full_run": results["full_run"], "now": results["now"]}, indent=1))
    for name, info in results["not_killed"].items():
        print(f"{info['status']:>9}  {name}  {info['file']}:{info['line']}  {info['before']} -> {info['after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
