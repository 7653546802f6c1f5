"""``loaderspec bench``: two implementations side by side, each figure next to its floor.

For every case both implementations (X = ``--impl``, Y = ``--vs``) and the floor run in
one process, round after round, the order rotating each round (:func:`measure.interleaved`),
so the machine's drift falls on all three alike. The table gives medians with their
spread (IQR / median; ``noisy`` above 10%), the ratio X/Y and each one's ratio to the floor.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from loaderspec.adapter import Adapter, AdapterError, NotProvided, load_adapter

from . import cases as bench_cases
from . import floors, targets
from .measure import Series, format_seconds, interleaved, steady_allocator


@dataclass
class Options:
    """What ``loaderspec bench`` was asked for."""

    impl: str = "reference"
    vs: str | None = None
    rounds: int | None = None
    quick: bool = False
    json_path: Path | None = None
    targets: str = "auto"
    dense_scale: int | None = None
    only: list[str] = field(default_factory=list)
    host_memory: bool = True
    threads: int | None = None
    """``torch.set_num_threads`` for the run (None: torch's default)."""
    malloc_default: bool = False
    """Keep glibc's adaptive malloc thresholds (default: :func:`measure.steady_allocator`)."""

    @property
    def effective_rounds(self) -> int:
        return self.rounds or (5 if self.quick else 9)


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


def probe_adapter(spec: str) -> Adapter:
    """Load adapter ``spec`` and make it import its implementation now (a lazy adapter, such
    as vLLM's, would otherwise fail at the first benchmark). Raises ``AdapterError``."""
    adapter = load_adapter(spec)
    try:
        adapter.lookup("process_weights_after_loading")
    except NotProvided:
        pass  # reported per case
    except AdapterError:
        raise
    except Exception as error:
        raise AdapterError(f"{type(error).__name__}: {error}") from error
    return adapter


def _load(spec: str) -> tuple[Adapter | None, str]:
    try:
        return probe_adapter(spec), ""
    except AdapterError as error:
        hint = (
            " The vLLM adapter works only in a Python environment where vLLM is installed "
            "(e.g. a venv made by .ci/install-vllm.sh; see docs/upstream.md)."
            if spec == "vllm"
            else ""
        )
        return None, f"implementation {spec!r} is unavailable here: {str(error).rstrip('.')}.{hint}"


def _label(adapter: Adapter) -> str:
    try:
        return f"{adapter.name} {adapter.version()}"
    except Exception:  # a version hook is optional for a report header
        return adapter.name


def _spread(series: Series | None) -> str:
    if series is None or not series.times:
        return ""
    return f"±{series.spread:.0%}" + (" noisy" if series.noisy else "")


def _cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None or math.isnan(value) else fmt.format(value)


class Table:
    """Fixed-width rows printed as they are measured."""

    COLUMNS = (
        ("workload", 46),
        ("X median", 10),
        ("spread", 11),
        ("Y median", 10),
        ("spread", 11),
        ("X/Y", 6),
        ("floor", 10),
        ("spread", 11),
        ("X/floor", 8),
        ("Y/floor", 8),
    )

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def header(self) -> None:
        line = " ".join(name.ljust(width) for name, width in self.COLUMNS) + " note"
        print(line, file=self.out)
        print("-" * len(line), file=self.out)

    def row(self, row: Row) -> None:
        impl, vs, floor = (row.series.get(k) for k in ("impl", "vs", "floor"))
        cells = [
            row.case.name,
            format_seconds(impl.median) if impl else "n/a",
            _spread(impl),
            format_seconds(vs.median) if vs else ("n/a" if "vs" in row.problems else "-"),
            _spread(vs),
            _cell(row.ratio("impl", "vs")),
            format_seconds(floor.median) if floor else "-",
            _spread(floor),
            _cell(row.ratio("impl", "floor")),
            _cell(row.ratio("vs", "floor")),
        ]
        notes = []
        if row.nbytes:
            rates = [f"{who} {row.nbytes / s.median / 1e9:.2f} GB/s" for who, s in row.series.items() if s.times]
            notes.append(", ".join(r.replace("impl", "X").replace("vs", "Y") for r in rates))
        if "modules" in row.info:
            notes.append(f"{row.info['modules']:,} modules")
        names = {"impl": "X", "vs": "Y", "floor": "floor"}
        notes.extend(f"{names.get(who, who)}: {why}" for who, why in row.problems.items())
        text = " ".join(str(c).ljust(w) for c, (_, w) in zip(cells, self.COLUMNS, strict=True))
        print(text + " " + "; ".join(notes), file=self.out, flush=True)


def run_case(
    case: bench_cases.Case,
    contenders: dict[str, Adapter],
    configs: bench_cases.ConfigCache,
    rounds: int,
) -> Row:
    """Prepare ``case`` for each adapter and once more for the floor, then time them interleaved."""
    row = Row(case)
    prepared: dict[str, bench_cases.Prepared] = {}
    for who, adapter in contenders.items():
        try:
            prepared[who] = case.prepare(adapter, configs.get(adapter))
        except NotProvided as error:
            row.problems[who] = str(error)
        except Exception as error:
            row.problems[who] = f"error while building: {type(error).__name__}: {error}"
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
        try:
            if setups.get(who):
                setups[who]()
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


def _print_host_memory(target: torch.device, results: dict[str, dict[str, Any]], out: TextIO) -> None:
    for who, r in results.items():
        name = "X" if who == "impl" else "Y"
        if "problem" in r:
            print(f"  {name} on {target}: {r['problem']}", file=out)
            continue
        trim = "" if r["ratio_after_trim"] is None else f", {r['ratio_after_trim']:.2f}x after malloc_trim"
        if r.get("ratio_active_after") is not None:
            trim += f", {r['ratio_active_after']:.2f}x in use (the rest is cached free blocks)"
        print(
            f"  {name} on {target}: params {r['param_bytes'] / 2**20:.1f} MiB; host bytes held "
            f"before the pass {r['ratio_before']:.2f}x, after the restore {r['ratio_after']:.2f}x{trim} "
            f"(floor 1.00x; counted by {r['source']}); a power-of-two pinned allocator "
            f"(CUDA, vLLM #56410) would hold {r['predicted_pow2_ratio']:.2f}x per copy",
            file=out,
        )


def _traversal_summary(rows: list[Row], out: TextIO) -> dict[str, Any]:
    points = []
    for row in rows:
        if not row.case.name.startswith("traversal/") or row.ratio("impl", "floor") is None:
            continue
        quantized = row.info.get("quantized_modules") or 0
        impl, floor = row.median("impl"), row.median("floor")
        assert impl is not None and floor is not None
        points.append(
            {
                "modules": row.info.get("modules"),
                "ratio_impl_floor": impl / floor,
                "ratio_vs_floor": row.ratio("vs", "floor"),
                "floor_per_module_us": floor / row.info["modules"] * 1e6,
                "excess_per_quantized_module_us": (impl - floor) / quantized * 1e6 if quantized else None,
            }
        )
    if points:
        print("\ntraversal (process_weights_after_loading, no-op methods, CPU target) vs its floor:", file=out)
        for p in points:
            excess = p["excess_per_quantized_module_us"]
            vs = "" if p["ratio_vs_floor"] is None else f", Y {p['ratio_vs_floor']:.2f}x"
            print(
                f"  {p['modules']:>7,} modules: X {p['ratio_impl_floor']:.2f}x floor{vs}; floor "
                f"{p['floor_per_module_us']:.2f} us/module; X's excess "
                + ("-" if excess is None else f"{excess:.2f} us per quantized module"),
                file=out,
            )
        if len(points) > 1:
            growth = points[-1]["ratio_impl_floor"] / points[0]["ratio_impl_floor"]
            print(
                f"  growth of X/floor from {points[0]['modules']:,} to {points[-1]['modules']:,} modules: "
                f"{growth:.2f}x (1.00 = the excess scales linearly, like the floor)",
                file=out,
            )
    return {"points": points}


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def busy_note(when: str) -> str | None:
    """A label when other processes compete for the CPUs (figures are then noisier)."""
    load, cpus = _load_average(), os.cpu_count() or 1
    if load is None or load < 0.5 * cpus:
        return None
    return (
        f"machine busy {when}: 1-minute load average {load:.2f} on {cpus} CPUs; other processes "
        "compete with the benchmark, so spreads are wider (multi-threaded copies can wait a "
        "scheduler tick, ~4-16 ms, for a busy core)"
    )


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
    floor = series["floor"].median
    print(f"  where X's time goes at {workload.module_count:,} modules (interleaved, {rounds} rounds):", file=out)
    for name, s in series.items():
        print(f"    {name:<26} {format_seconds(s.median):>9} {_spread(s):<11} {s.median / floor:.2f}x floor", file=out)
    return {name: s.as_dict() for name, s in series.items()}


def run(options: Options, out: TextIO | None = None) -> int:
    """Run the benchmark; print the table to ``out`` (stdout); write JSON if asked. Returns the exit status."""
    out = out if out is not None else sys.stdout
    started = time.perf_counter()
    if options.threads:
        torch.set_num_threads(options.threads)
    allocator = "" if options.malloc_default else steady_allocator()
    impl, why = _load(options.impl)
    if impl is None:
        print(f"loaderspec bench: {why}", file=sys.stderr)
        return 2
    contenders: dict[str, Adapter] = {"impl": impl}
    notes: list[str] = []
    if options.vs:
        vs, why = _load(options.vs)
        if vs is None:
            notes.append(f"--vs: {why} Running {options.impl} alone.")
        else:
            contenders["vs"] = vs
    try:
        target_list, target_notes = targets.parse_targets(options.targets)
    except ValueError as error:
        print(f"loaderspec bench: {error}", file=sys.stderr)
        return 2
    notes.extend(target_notes)
    rounds = options.effective_rounds
    scale = options.dense_scale or (16 if options.quick else 8)
    case_list = bench_cases.default_cases(target_list, quick=options.quick, scale=scale)
    if options.only:
        case_list = [c for c in case_list if any(key in c.name for key in options.only)]

    print(f"loaderspec bench on {targets.describe_machine()}", file=out)
    labels = {who: _label(a) for who, a in contenders.items()}
    vs_label = labels.get("vs", "(none: give --vs)")
    print(f"X = {labels['impl']}; Y = {vs_label}", file=out)
    print(
        f"targets: {', '.join(str(t) for t in target_list)}; {rounds} rounds per figure, X, Y and floor "
        "interleaved; medians, spread = IQR/median (noisy above 10%)",
        file=out,
    )
    print(
        f"host allocator: {allocator or 'as the process found it'}"
        + ("" if options.malloc_default or not allocator else " (--malloc-default to keep glibc's adaptive one)"),
        file=out,
    )
    busy = busy_note("at the start")
    if busy:
        notes.append(busy)
    for note in notes:
        print(f"note: {note}", file=out)
    print(file=out)
    table = Table(out)
    table.header()
    configs = bench_cases.ConfigCache()
    rows: list[Row] = []
    for case in case_list:
        row = run_case(case, contenders, configs, rounds)
        rows.append(row)
        table.row(row)

    host_memory: dict[str, Any] = {}
    accelerators = [t for t in target_list if t.type != "cpu"]
    wanted = not options.only or any(key in "host-memory" for key in options.only)
    if options.host_memory and accelerators and wanted:
        print(f"\nhost memory after the restore (dense-s{scale}, all layers offloaded, no-op methods):", file=out)
        for target in accelerators:
            host_memory[str(target)] = _host_memory(contenders, configs, target, scale)
            _print_host_memory(target, host_memory[str(target)], out)
    traversal = _traversal_summary(rows, out)
    if traversal["points"] and not options.quick:
        traversal["breakdown_10k"] = _breakdown(impl, configs, rounds, out)
    elapsed = time.perf_counter() - started
    if rows:
        print(f"\nfloors: {_floor_legend(rows)}", file=out)
    busy = busy_note("at the end")
    if busy:
        notes.append(busy)
        print(f"note: {busy}", file=out)
    print(f"total {elapsed:.0f}s", file=out)

    failed = any(not why.startswith("not provided") for row in rows for why in row.problems.values()) or any(
        not r.get("problem", "not provided").startswith("not provided")
        for per_target in host_memory.values()
        for r in per_target.values()
    )
    if options.json_path is not None:
        document = {
            "machine": targets.describe_machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "impl": labels["impl"],
            "vs": labels.get("vs"),
            "rounds": rounds,
            "targets": [str(t) for t in target_list],
            "quick": options.quick,
            "dense_scale": scale,
            "threads": torch.get_num_threads(),
            "host_allocator": allocator or "default",
            "notes": notes,
            "load_average_end": _load_average(),
            "cases": [row.as_dict() for row in rows],
            "host_memory": host_memory,
            "traversal": traversal,
            "elapsed_s": elapsed,
        }
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(document, indent=2, default=str))
        print(f"wrote {options.json_path}", file=out)
    return 1 if failed else 0


def _floor_legend(rows: list[Row]) -> str:
    kinds: dict[str, list[str]] = {}
    for row in rows:
        found = kinds.setdefault(row.case.name.split("/", 1)[0], [])
        if row.case.floor_kind not in found:
            found.append(row.case.floor_kind)
    return "; ".join(f"{prefix}: {' | '.join(found)}" for prefix, found in kinds.items())
