"""Mutation run over the reference: does every plausible one-token bug in
``reference/loaderspec_reference/utils.py`` fail a requirement test?

    python tools/mutate.py                      # every mutant, 2 workers, results in tools/mutants/results.json
    python tools/mutate.py --list               # the mutants, without running them
    python tools/mutate.py --only device_loading_context --workers 1
    python tools/mutate.py --check              # the committed results vs tools/mutants/survivors.md

Operators (issue 9): each statement dropped (``finally`` and ``except`` bodies included),
comparison and boolean swaps, constants (strings emptied, numbers shifted, ``True``/``False``
swapped, f-string messages emptied), keyword arguments dropped, ``continue``/``break``
swapped, ``sorted`` removed, ``pin_memory`` flipped, devices changed (a device argument
replaced by the CPU, the ``"cpu"`` literal by ``"meta"``).

Each mutant runs the test modules of the function it lives in (``SCOPE_TESTS``), in a process
of its own: a worker process imports torch, transformers and pytest once, then forks one child
per mutant; the child installs the mutated source as ``loaderspec_reference.utils`` (before
anything imports the reference adapter, which then binds the mutant) and runs pytest with
``-x``. A first pass uses a small Hypothesis profile; a mutant that survives it is run again
under the full ``ci`` profile, and only a mutant that passes that is counted as surviving.
A mutant is killed by the first failing test; the result records the requirement ID its
failure message starts with. Every surviving mutant must be explained in
``tools/mutants/survivors.md`` (``--check``).

Beside it, ``nox -s mutation`` runs a maintained third-party tool, mutmut, over the whole
reference package (tools/mutmut_run.py; its survivors: ``tools/mutants/third-party-survivors.md``).
This tool stays for what mutmut cannot do: mutants of the decorated functions
(``set_default_torch_dtype``, ``device_loading_context``: mutmut skips every decorated function)
and of module-level definitions, the statement drops and domain operators above, mutants run
without a trampoline frame, the requirement ID of each kill, and the planted mutants of
``meta_tests/test_mutants.py`` (``--jobs``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "reference" / "loaderspec_reference" / "utils.py"
RESULTS = ROOT / "tools" / "mutants" / "results.json"
SURVIVORS = ROOT / "tools" / "mutants" / "survivors.md"

_DTYPE = ["tests/test_default_dtype.py"]
_PM = ["tests/test_param_mapping.py"]
_QC = ["tests/test_quant_config.py", "tests/test_model_init.py"]
_DL = ["tests/test_device_loading.py", "tests/test_post_loading.py"]
_PW = ["tests/test_post_loading.py"]
_AR = ["tests/test_architecture.py"]
_MI = ["tests/test_model_init.py"]
SCOPE_TESTS: dict[str, list[str]] = {
    "set_default_torch_dtype": _DTYPE,
    "_validate_packed_mapping": _PM,
    "ParamMapping": _PM,
    "configure_quant_config": _QC,
    "device_loading_context": _DL,
    "_restorable_stride": _DL,
    "process_weights_after_loading": _PW,
    "MIXTRAL_HANDLES": _AR,
    "TRANSFORMERS_BACKEND_ARCH": _AR,
    "_architectures_of": _AR,
    "resolve_transformers_arch": _AR,
    "get_model_architecture": _AR,
    "get_model_cls": _AR,
    "get_architecture_class_name": _AR,
    "OLD_STYLE_ARGUMENTS": _MI,
    "_required_init_params": _MI,
    "initialize_model": _MI,
}
"""The test modules that cover each top-level definition of utils.py, the chapter's own first.
Every definition must be here or in ``NOT_MUTATED`` (:func:`unmapped_definitions`): a renamed
definition would otherwise drop out of the run without a word."""

NOT_MUTATED = {"__all__": "the export list", "logger": "the module's logger"}

FAST_EXAMPLES = 10
"""Examples per property in the first pass (the full ``ci`` profile has 100)."""


# --------------------------------------------------------------------------- generating


@dataclass
class Mutant:
    id: str
    scope: str
    line: int
    operator: str
    description: str
    source: str = field(repr=False)

    @property
    def chapter(self) -> str:
        return Path(SCOPE_TESTS[self.scope][0]).stem.removeprefix("test_")


_COMPARE_SWAPS = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
}


def _is_docstring(node: ast.AST, parent_body: list[ast.stmt] | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and parent_body is not None
    )


def _edits(tree: ast.Module):
    """Yield (scope, line, operator, description, edit) for every mutation point; ``edit``
    takes a deep copy's node (found by the same walk position) and mutates it in place."""
    for top in tree.body:
        scope = _scope_name(top)
        if scope not in SCOPE_TESTS:
            continue
        nodes = list(ast.walk(top))
        quiet = _docstrings_and_fstring_parts(nodes)
        for position, node in enumerate(nodes):
            if id(node) not in quiet:
                yield from _node_edits(scope, position, node)


def _docstrings_and_fstring_parts(nodes: list[ast.AST]) -> set[int]:
    """Constants not worth mutating one by one: docstrings, and the pieces of an f-string
    (the f-string is emptied as a whole)."""
    quiet = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.body and _is_docstring(node.body[0], node.body):
            quiet.add(id(node.body[0].value))
        if isinstance(node, ast.JoinedStr):
            quiet.update(id(part) for part in ast.walk(node) if part is not node and isinstance(part, ast.Constant))
    return quiet


def _scope_name(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return node.target.id
    return None


def unmapped_definitions(source: str | None = None) -> list[str]:
    """Top-level definitions of utils.py that ``SCOPE_TESTS`` misses, and its stale keys."""
    tree = ast.parse(source if source is not None else UTILS.read_text(encoding="utf-8"))
    defined = {name for top in tree.body if (name := _scope_name(top)) is not None}
    problems = [
        f"{name} is defined in utils.py but not in SCOPE_TESTS"
        for name in sorted(defined - set(SCOPE_TESTS) - set(NOT_MUTATED))
    ]
    return problems + [
        f"SCOPE_TESTS names {name}, which utils.py does not define" for name in sorted(set(SCOPE_TESTS) - defined)
    ]


def _src(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."


def _node_edits(scope: str, position: int, node: ast.AST):
    """Every edit of one node, kind by kind (the order fixes the mutants' IDs: keep it)."""
    line = getattr(node, "lineno", 0)
    yield from _statement_drops(scope, position, node)
    if isinstance(node, ast.Compare):
        yield from _comparison_swaps(scope, line, position, node)
    yield from _boolean_swaps(scope, line, position, node)
    if isinstance(node, ast.Constant) and not isinstance(node.value, bytes):
        yield from _constant_edits(scope, line, position, node)
    if isinstance(node, ast.JoinedStr):

        def empty(n):
            n.values = []

        yield scope, line, "constant", f"f-string emptied: {_src(node)}", position, empty
    if isinstance(node, ast.Call):
        yield from _call_edits(scope, line, position, node)
    if isinstance(node, (ast.Continue, ast.Break)):
        yield scope, line, "continue-break", f"{type(node).__name__.lower()} swapped", position, None


def _statement_drops(scope: str, position: int, node: ast.AST):
    """Every statement of every body dropped, finally/except/else bodies included."""
    for attr in ("body", "orelse", "finalbody"):
        body = getattr(node, attr, None)
        if not isinstance(body, list) or isinstance(node, ast.Module):
            continue
        for index, stmt in enumerate(body):
            if isinstance(stmt, (ast.Pass, ast.FunctionDef, ast.ClassDef)):
                continue
            if index == 0 and isinstance(node, (ast.FunctionDef, ast.ClassDef)) and _is_docstring(stmt, body):
                continue
            if isinstance(node, ast.ClassDef) and isinstance(stmt, ast.AnnAssign):
                continue  # a dataclass field: dropping it changes the constructor, not behaviour

            def drop(n, attr=attr, index=index):
                getattr(n, attr)[index] = ast.Pass()

            where = {"body": "", "orelse": " (else)", "finalbody": " (finally)"}[attr]
            if isinstance(node, ast.ExceptHandler):
                where = " (except)"
            yield scope, stmt.lineno, "statement-dropped", f"drop{where}: {_src(stmt)}", position, drop


def _comparison_swaps(scope: str, line: int, position: int, node: ast.Compare):
    for index, op in enumerate(node.ops):
        swapped = _COMPARE_SWAPS.get(type(op))
        if swapped is None:
            continue

        def swap(n, index=index, swapped=swapped):
            n.ops[index] = swapped()

        description = f"{_src(node)}: {type(op).__name__} -> {swapped.__name__}"
        yield scope, line, "comparison-swap", description, position, swap


def _boolean_swaps(scope: str, line: int, position: int, node: ast.AST):
    if isinstance(node, ast.BoolOp):

        def flip(n):
            n.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()

        yield scope, line, "boolean-swap", f"{_src(node)}: and <-> or", position, flip
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield scope, line, "boolean-swap", f"{_src(node)}: not removed", position, _unwrap_not
    if isinstance(node, ast.If) and not isinstance(node.test, (ast.Compare, ast.UnaryOp)):
        # a comparison's swap or a `not` removed already negates the condition

        def negate(n):
            n.test = ast.UnaryOp(op=ast.Not(), operand=n.test)

        yield scope, line, "boolean-swap", f"if {_src(node.test)}: condition negated", position, negate


def _call_edits(scope: str, line: int, position: int, node: ast.Call):
    """Keywords dropped, pin_memory negated, sorted() unsorted, device arguments sent to the CPU."""
    for index, keyword in enumerate(node.keywords):
        label = keyword.arg or "**"

        def drop_keyword(n, index=index):
            del n.keywords[index]

        yield scope, line, "keyword-dropped", f"{_src(node)}: {label}= dropped", position, drop_keyword
        if keyword.arg == "pin_memory":

            def flip_pin(n, index=index):
                n.keywords[index].value = ast.UnaryOp(op=ast.Not(), operand=n.keywords[index].value)

            yield scope, line, "pin-memory-flipped", f"{_src(node)}: pin_memory negated", position, flip_pin
    if isinstance(node.func, ast.Name) and node.func.id == "sorted":

        def unsort(n):
            n.func = ast.Name(id="list", ctx=ast.Load())
            n.keywords = []

        yield scope, line, "sorted-removed", f"{_src(node)}: sorted -> list", position, unsort
    arguments = [*((i, a) for i, a in enumerate(node.args)), *((k, kw.value) for k, kw in enumerate(node.keywords))]
    for slot, (index, value) in enumerate(arguments):
        if isinstance(value, ast.Name) and value.id.endswith("device"):
            in_keywords = slot >= len(node.args)

            def to_cpu(n, index=index, in_keywords=in_keywords):
                cpu = ast.parse('torch.device("cpu")', mode="eval").body
                if in_keywords:
                    n.keywords[index].value = cpu
                else:
                    n.args[index] = cpu

            yield scope, line, "device-changed", f"{_src(node)}: {value.id} -> cpu", position, to_cpu


def _unwrap_not(n):
    raise NotImplementedError  # replaced by the parent edit in _apply


def _constant_edits(scope, line, position, node):
    value = node.value
    if isinstance(value, bool):

        def negate(n):
            n.value = not n.value

        yield scope, line, "constant", f"{value} -> {not value}", position, negate
    elif isinstance(value, (int, float)):

        def shift(n):
            n.value = n.value + 1

        yield scope, line, "constant", f"{value} -> {value + 1}", position, shift
    elif isinstance(value, str):
        if value == "cpu":

            def meta(n):
                n.value = "meta"

            yield scope, line, "device-changed", '"cpu" -> "meta"', position, meta
        else:
            replacement = "" if value else "loaderspec-mutant"

            def change(n, replacement=replacement):
                n.value = replacement

            yield scope, line, "constant", f"{value!r} -> {replacement!r}", position, change


class _Replace(ast.NodeTransformer):
    """Replace one node (by identity) in a tree: continue/break and `not x` need their parent."""

    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def generic_visit(self, node):
        if node is self.target:
            return self.replacement
        return super().generic_visit(node)

    def visit(self, node):
        if node is self.target:
            return self.replacement
        return super().visit(node)


def generate(source: str | None = None) -> list[Mutant]:
    """Every mutant of utils.py, with a stable ID ``scope:Lline:operator[#k]``."""
    if problems := unmapped_definitions():
        raise SystemExit("tools/mutate.py: " + "; ".join(problems))
    source = source if source is not None else UTILS.read_text(encoding="utf-8")
    tree = ast.parse(source)
    mutants: list[Mutant] = []
    seen: Counter[str] = Counter()
    sources: set[str] = {ast.unparse(tree)}
    for scope, line, operator, description, position, edit in _edits(tree):
        mutated = copy.deepcopy(tree)
        top = next(t for t in mutated.body if _scope_name(t) == scope)
        node = list(ast.walk(top))[position]
        if operator == "continue-break":
            other = ast.Break() if isinstance(node, ast.Continue) else ast.Continue()
            mutated = _Replace(node, ast.copy_location(other, node)).visit(mutated)
        elif edit is _unwrap_not:
            mutated = _Replace(node, node.operand).visit(mutated)
        else:
            edit(node)
        ast.fix_missing_locations(mutated)
        text = ast.unparse(mutated)
        if text in sources:
            continue  # the same program as the original or an earlier mutant
        sources.add(text)
        key = f"{scope}:L{line}:{operator}"
        seen[key] += 1
        mutant_id = key if seen[key] == 1 else f"{key}#{seen[key]}"
        mutants.append(Mutant(mutant_id, scope, line, operator, description, text))
    return mutants


# --------------------------------------------------------------------------- running


REQ_AT_START = re.compile(r"^(?:[\w.]+: )?([A-Z]{2}-\d+)\b")
REQ_ANYWHERE = re.compile(r"\b([A-Z]{2}-\d+)\b")
REQ_IN_ERROR_LINE = re.compile(r"(?:^E|\s|\|)(?:[\w.]+: )?([A-Z]{2}-\d+): ")
"""An ``E`` line of a traceback (sub-exceptions of a group are indented behind ``|``)."""


def requirement_of(message: str) -> str | None:
    """The requirement a failure message names: the ID it starts with, else the first it cites."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    match = REQ_AT_START.search(first) or REQ_ANYWHERE.search(message)
    return match.group(1) if match else None


def _preload() -> None:
    """Import the expensive things once per worker; children inherit them by fork. The
    reference's utils and its adapter are NOT imported: each child imports its mutant."""
    import hypothesis  # noqa: F401
    import loaderspec.adapter
    import loaderspec.support.model_folders  # noqa: F401
    import loaderspec_reference.adapters
    import loaderspec_reference.config
    import loaderspec_reference.layers
    import loaderspec_reference.registry  # noqa: F401
    import pytest  # noqa: F401
    import torch  # noqa: F401
    import transformers
    import transformers.dynamic_module_utils  # noqa: F401

    assert "loaderspec_reference.utils" not in sys.modules, "preloading must not import the reference's utils"


def _install(source: str, folder: Path) -> None:
    import importlib.util

    import loaderspec_reference

    path = folder / "utils.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("loaderspec_reference.utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["loaderspec_reference.utils"] = module
    spec.loader.exec_module(module)
    loaderspec_reference.utils = module  # type: ignore[attr-defined]


class _Recorder:
    """A pytest plugin recording the first failure (test, message) and loading the profile."""

    def __init__(self, max_examples: int | None) -> None:
        self.max_examples = max_examples
        self.failure: dict[str, str] | None = None
        self.passed = 0
        self.marked: dict[str, list[str]] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            self.marked[item.nodeid] = [r for mark in item.iter_markers("req") for r in mark.args]

    def pytest_sessionstart(self, session) -> None:
        if self.max_examples is not None:
            from hypothesis import settings

            settings.register_profile("mutants-fast", parent=settings.get_profile("ci"), max_examples=self.max_examples)
            settings.load_profile("mutants-fast")

    def pytest_runtest_logreport(self, report) -> None:
        if report.passed and report.when == "call":
            self.passed += 1
        if report.failed and self.failure is None:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            req = requirement_of(message)
            if req is None:  # e.g. Hypothesis' "found 2 distinct failures": the first E line naming one
                for line in str(report.longrepr).splitlines():
                    match = REQ_IN_ERROR_LINE.search(line)
                    if match and (line.startswith("E") or line.lstrip().startswith("|")):
                        req = match.group(1)
                        break
                if req is None:
                    error_lines = [line for line in str(report.longrepr).splitlines() if line.startswith("E")]
                    message = "\n".join([message, *error_lines[:20]])
            self.failure = {
                "test": report.nodeid,
                "when": report.when,
                "message": message[:2000],
                "req": req,
                "marked": self.marked.get(report.nodeid, []),
            }


def _child(job: dict, folder: Path) -> dict:
    import pytest
    import torch

    torch.set_num_threads(1)
    log = os.open(folder / "pytest.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        _install(job["source"], folder)
    except BaseException as error:
        return {"status": "killed", "test": "<import>", "message": f"{type(error).__name__}: {error}", "req": None}
    recorder = _Recorder(job.get("max_examples"))
    args = [
        *job["tests"],
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        f"--basetemp={folder / 'tmp'}",
        "--impl=reference",
    ]
    code = pytest.main(args, plugins=[recorder])
    if recorder.failure:
        failure = recorder.failure
        return {"status": "killed", **failure}
    if code not in (0, 5) or recorder.passed == 0:
        return {"status": "error", "test": "", "message": f"pytest exit code {code}", "req": None}
    return {"status": "survived", "test": "", "message": "", "req": None, "passed": recorder.passed}


def _run_one(job: dict, timeout: float, scratch: Path) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="mutant-", dir=scratch))
    result_path = folder / "result.json"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: one mutant, then exit without running the parent's cleanup
        try:
            result = _child(job, folder)
        except BaseException as error:
            result = {"status": "error", "test": "", "message": f"{type(error).__name__}: {error}", "req": None}
        result_path.write_text(json.dumps(result))
        os._exit(0)
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            shutil.rmtree(folder, ignore_errors=True)
            return {"status": "killed", "test": "<timeout>", "message": f"ran over {timeout:.0f} s", "req": None}
        time.sleep(0.1)
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError):
        tail = (folder / "pytest.log").read_text(errors="replace")[-500:] if (folder / "pytest.log").exists() else ""
        result = {"status": "error", "test": "", "message": f"the child died: {tail}", "req": None}
    result["seconds"] = round(time.monotonic() - started, 1)
    shutil.rmtree(folder, ignore_errors=True)
    return result


def worker(queue: Path, slot: int, timeout: float) -> None:
    """Claim jobs from ``queue`` (one JSON file each) until none is left; write ``<job>.result``."""
    scratch = Path(tempfile.mkdtemp(prefix=f"mutate-worker{slot}-"))
    os.environ["HF_MODULES_CACHE"] = str(scratch / "hf-modules")  # before transformers is imported
    os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")
    os.chdir(ROOT)
    _preload()
    try:
        parent = os.getppid()
        for path in sorted(queue.glob("*.job")):
            if os.getppid() != parent:
                break  # the run was stopped
            claimed = path.with_suffix(f".claimed{slot}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # the other worker took it
            job = json.loads(claimed.read_text())
            result = _run_one(job, timeout, scratch)
            if result["status"] == "survived" and job.get("max_examples") is not None:
                result = _run_one({**job, "max_examples": None}, timeout, scratch)  # the full ci profile
            result["id"] = job["id"]
            claimed.with_suffix(".result").write_text(json.dumps(result))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_jobs(jobs: list[dict], workers: int = 2, timeout: float = 600, progress: bool = True) -> dict[str, dict]:
    """Run ``jobs`` (dicts with id, source, tests, max_examples) in ``workers`` worker processes."""
    import subprocess

    queue = Path(tempfile.mkdtemp(prefix="mutate-queue-"))
    try:
        for index, job in enumerate(jobs):
            (queue / f"{index:05d}.job").write_text(json.dumps(job))
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    str(queue),
                    "--slot",
                    str(slot),
                    "--timeout",
                    str(timeout),
                ],
                cwd=ROOT,
            )
            for slot in range(max(1, workers))
        ]
        reported: set[Path] = set()
        while any(p.poll() is None for p in procs):
            time.sleep(1)
            if progress:
                for result_path in sorted(set(queue.glob("*.result")) - reported):
                    reported.add(result_path)
                    r = json.loads(result_path.read_text())
                    print(
                        f"[{len(reported)}/{len(jobs)}] {r['status']:8} {r['id']}  {r.get('req') or ''} "
                        f"({r.get('seconds', '?')} s)",
                        flush=True,
                    )
        if any(p.returncode for p in procs):
            raise RuntimeError(f"a mutation worker failed: exit codes {[p.returncode for p in procs]}")
        results = {}
        for result_path in queue.glob("*.result"):
            r = json.loads(result_path.read_text())
            results[r["id"]] = r
        return results
    finally:
        shutil.rmtree(queue, ignore_errors=True)


# --------------------------------------------------------------------------- reporting


def explained_survivors(path: Path = SURVIVORS) -> dict[str, str]:
    """The survivors.md entries: ``- `ID`: **equivalent** ...`` or ``**real gap**``, by ID."""
    entries = {}
    for match in re.finditer(r"^- `([^`]+)`: \*\*(equivalent|real gap)\*\*", path.read_text(encoding="utf-8"), re.M):
        entries[match.group(1)] = match.group(2)
    return entries


def summarize(mutants: list[Mutant], results: dict[str, dict]) -> str:
    explained = explained_survivors() if SURVIVORS.exists() else {}
    by_chapter: dict[str, Counter[str]] = defaultdict(Counter)
    lines = []
    for m in mutants:
        r = results.get(m.id)
        if r is None:
            continue
        status = r["status"]
        if status == "survived":
            status = "equivalent" if explained.get(m.id) == "equivalent" else "survived"
        by_chapter[m.chapter][status] += 1
    lines.append("chapter           killed / not equivalent  (equivalent, errors)")
    total = Counter()
    for chapter, counts in by_chapter.items():
        total.update(counts)
        non_equivalent = counts["killed"] + counts["survived"] + counts["error"]
        lines.append(
            f"{chapter:18}{counts['killed']:4} / {non_equivalent:<4}  ({counts['equivalent']}, {counts['error']})"
        )
    non_equivalent = total["killed"] + total["survived"] + total["error"]
    lines.append(f"{'total':18}{total['killed']:4} / {non_equivalent:<4}  ({total['equivalent']}, {total['error']})")
    return "\n".join(lines)


def check(mutants: list[Mutant], results: dict[str, dict]) -> list[str]:
    """Problems: a survivor not explained in survivors.md, an explained ID that is no survivor."""
    explained = explained_survivors()
    survivors = {m.id for m in mutants if results.get(m.id, {}).get("status") == "survived"}
    problems = [f"survivor {i} is not explained in {SURVIVORS.name}" for i in sorted(survivors - set(explained))]
    problems += [f"{SURVIVORS.name} explains {i}, which is no survivor" for i in sorted(set(explained) - survivors)]
    problems += [f"{i} is marked a real gap" for i in sorted(survivors) if explained.get(i) == "real gap"]
    problems += [
        f"{m.id}: {results[m.id]['message']}" for m in mutants if results.get(m.id, {}).get("status") == "error"
    ]
    return problems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", default="", help="run only mutants whose ID contains this text")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant before it counts as killed")
    parser.add_argument(
        "--fast-examples",
        type=int,
        default=FAST_EXAMPLES,
        help="examples per property in the first pass (0: run the full ci profile only)",
    )
    parser.add_argument("--rerun-survivors", action="store_true", help="run again only the stored survivors")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    parser.add_argument("--check", action="store_true", help="check the results file against survivors.md")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=Path, help="run these jobs (JSON list of {id, source, tests}) instead")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        worker(args.worker, args.slot, args.timeout)
        return 0
    if args.jobs:
        jobs = json.loads(args.jobs.read_text())
        results = run_jobs(jobs, args.workers, args.timeout, progress=False)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True))
        return 0
    mutants = generate()
    if args.check:
        return _check_stored_results(mutants, args.out)
    selected = [m for m in mutants if args.only in m.id]
    if args.rerun_survivors:
        stored = json.loads(args.out.read_text())["results"]
        selected = [m for m in selected if stored.get(m.id, {}).get("status") != "killed"]
    if args.list:
        for m in selected:
            print(f"{m.id:60} {m.description}")
        print(f"{len(selected)} mutants", file=sys.stderr)
        return 0
    _run_and_store(args, mutants, selected)
    return 0


def _check_stored_results(mutants: list[Mutant], out: Path) -> int:
    """``--check``: 1 when a survivor is unexplained or real, a result is missing or errored."""
    record = json.loads(out.read_text())
    stored = record["results"]
    print(summarize(mutants, stored))
    if record.get("utils_sha") != _sha(UTILS.read_text(encoding="utf-8")):
        print(f"note: {out.name} was made from another utils.py; run tools/mutate.py again")
    problems = check(mutants, stored)
    missing = [m.id for m in mutants if m.id not in stored]
    problems += [f"{len(missing)} mutants have no result (run tools/mutate.py)"] if missing else []
    print("\n".join(problems) or "every survivor is explained and equivalent")
    return 1 if problems else 0


def _run_and_store(args: argparse.Namespace, mutants: list[Mutant], selected: list[Mutant]) -> None:
    """Run the selected mutants; merge into the stored results when only some were run."""
    started = time.monotonic()
    jobs = [
        {"id": m.id, "source": m.source, "tests": SCOPE_TESTS[m.scope], "max_examples": args.fast_examples or None}
        for m in selected
    ]
    results = run_jobs(jobs, args.workers, args.timeout)
    elapsed = time.monotonic() - started
    partial = args.only or args.rerun_survivors
    stored = json.loads(args.out.read_text())["results"] if args.out.exists() and partial else {}
    stored.update(results)
    record = {
        "utils_sha": _sha(UTILS.read_text(encoding="utf-8")),
        "seconds": round(elapsed),
        "workers": args.workers,
        "mutants": {m.id: {k: v for k, v in asdict(m).items() if k != "source"} for m in mutants},
        "results": {k: stored[k] for k in sorted(stored)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(summarize(mutants, results))
    print(f"{len(selected)} mutants in {elapsed:.0f} s with {args.workers} workers")
    for m in selected:
        if results[m.id]["status"] == "survived":
            print(f"SURVIVED {m.id}: {m.description}")


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


if __name__ == "__main__":
    sys.exit(main())
