"""Regression tracking: a planted slowdown, and the meta check that the workflow catches it.

The workflow (``bench/README.md``) is pytest-benchmark's own: save a baseline with
``--benchmark-save``/``--benchmark-autosave``, later run the ``*_vs_floor`` benchmarks
(figure / floor per round, drift-proof) with ``--benchmark-compare
--benchmark-compare-fail=median:3%``. :func:`plant` makes an adapter whose ``process_weights_after_loading`` is
slower by a given fraction of its own time (the bench suite's ``--bench-plant-slowdown``),
so anyone can see a regression reported.

The meta check (:func:`meta_check`) shows that a 5% slowdown of the post-loading path is
reported as a regression and an unchanged run is not, and does so deterministically:

1. The slowdown is *proportional work*: the planted call measures its own duration ``t``
   and then busy-waits until ``1.05 t`` has passed. Whatever the machine does during the
   call, that call is 5% slower than itself; noise cannot shrink the plant.
2. Baseline, unchanged and planted runs are measured *interleaved* in one process, round
   by round in rotating order (:func:`measure.interleaved`), so drift of the machine
   (frequency, other processes) falls on all three alike and cancels in the ratios.
3. Rounds are short (one call on the 1k-module layout, ~2-3 ms) and many (201, after 10
   rounds of warm-up): on a shared machine a neighbour preempts a 25 ms call in most
   rounds, so the medians of long calls move by +-1% between runs (what the 10% check
   tolerated); a 2.5 ms round is mostly left alone, and the median of 201 of them is the
   uninterrupted time, which moves by +-0.5%.
4. Each run is saved with pytest-benchmark's ``FileStorage`` in its JSON format (as
   ``--benchmark-autosave`` does), loaded back the way ``--benchmark-compare`` loads, and
   judged by pytest-benchmark's own ``--benchmark-compare-fail`` check (``median:3%``;
   it takes whole percents: 3 is the nearest to halfway between 0% and the plant's 5%).
5. A verdict is accepted only outside a guard band: the unchanged run below +1.5% and the
   planted run above +4%. A measurement in between (the machine was unusually noisy) is
   repeated with twice the rounds, up to three times; the report says how many attempts
   it took. Measured figures: ``bench/RESULTS.md`` ("Regression tracking").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from loaderspec.adapter import Adapter

from . import workloads
from .measure import Series, interleaved

DEFAULT_THRESHOLD_PCT = 3
"""The ``--benchmark-compare-fail=median:3%`` threshold the workflow documents (whole percents only)."""

PLANTED_FRACTION = 0.05


def slowed(fn: Callable[..., Any], fraction: float) -> Callable[..., Any]:
    """``fn``, made slower by ``fraction`` of its own duration on every call (busy wait)."""
    if fraction < 0:
        raise ValueError(f"a slowdown fraction must be >= 0, got {fraction}")

    def planted(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        until = start + (time.perf_counter() - start) * (1.0 + fraction)
        while time.perf_counter() < until:
            pass
        return result

    planted.__name__ = getattr(fn, "__name__", "planted")
    planted.__doc__ = f"{getattr(fn, '__name__', fn)!s}, planted {fraction:.0%} slower"
    return planted


class PlantedAdapter(Adapter):
    """Wraps an adapter; its ``process_weights_after_loading`` is slower by ``fraction``."""

    def __init__(self, inner: Adapter, fraction: float) -> None:
        self.inner = inner
        self.fraction = fraction
        self.name = f"{inner.name}+slowdown{fraction:.0%}"
        self.utils_logger_name = inner.utils_logger_name
        self._planted = slowed(inner.lookup("process_weights_after_loading"), fraction)

    def version(self) -> str:
        return self.inner.version()

    def lookup(self, name: str) -> Any:
        if name == "process_weights_after_loading":
            return self._planted
        return self.inner.lookup(name)

    def model_config(self, folder: Path, **kwargs: Any) -> Any:
        return self.inner.model_config(folder, **kwargs)

    def vllm_config(self, model_config: Any = None, *, quant_config: Any = None) -> Any:
        return self.inner.vllm_config(model_config, quant_config=quant_config)

    def quant_config(self) -> Any:
        return self.inner.quant_config()

    @contextmanager
    def registered_model(self, arch: str, model_cls: type) -> Iterator[None]:
        with self.inner.registered_model(arch, model_cls):
            yield

    def supported_archs(self) -> list[str]:
        return self.inner.supported_archs()

    def current_vllm_config(self) -> tuple[Any, str | None]:
        return self.inner.current_vllm_config()

    def pin_memory_available(self, available: bool) -> AbstractContextManager[None]:
        return self.inner.pin_memory_available(available)


def plant(adapter: Adapter, fraction: float = PLANTED_FRACTION) -> Adapter:
    """``adapter`` with its post-loading path slowed by ``fraction`` (0 returns it unchanged)."""
    return adapter if fraction == 0 else PlantedAdapter(adapter, fraction)


# ---------------------------------------------------------------------------
# pytest-benchmark storage and compare
# ---------------------------------------------------------------------------


class _QuietLogger:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def _log(self, text: str, **_: Any) -> None:
        self.messages.append(text)

    info = warning = error = debug = _log


def _storage(path: Path) -> Any:
    from pytest_benchmark.storage.file import FileStorage
    from pytest_benchmark.utils import get_machine_id

    return FileStorage(path, logger=_QuietLogger(), default_machine_id=get_machine_id())


def benchmark_document(fullname: str, series: Series, extra_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pytest-benchmark JSON document holding one benchmark whose rounds are ``series.times``."""
    import pytest_benchmark
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for duration in series.times:
        stats.update(duration)
    values = stats.as_dict()
    values["data"] = list(series.times)
    values["iterations"] = series.iterations
    name = fullname.rsplit("::", 1)[-1]
    return {
        "machine_info": pytest_benchmark_generate_machine_info(),
        "commit_info": {},
        "benchmarks": [
            {
                "group": None,
                "name": name,
                "fullname": fullname,
                "params": None,
                "param": None,
                "extra_info": extra_info or {},
                "options": {"disable_gc": True, "timer": "perf_counter", "min_rounds": len(series.times)},
                "stats": values,
            }
        ],
        "datetime": datetime.now(UTC).isoformat(),
        "version": pytest_benchmark.__version__,
    }


def save_run(storage_path: Path, label: str, document: dict[str, Any]) -> Path:
    """Save ``document`` as pytest-benchmark's autosave does (``NNNN_label.json`` under the machine id)."""
    storage = _storage(storage_path)
    storage.save(document, label)
    return sorted(storage.query(f"*_{label}"))[-1]


def compare_runs(storage_path: Path, current: str, baseline: str, compare_fail: str) -> list[str]:
    """pytest-benchmark's ``--benchmark-compare-fail`` check of run ``current`` against ``baseline``.

    Loads both with ``FileStorage.load`` (as ``--benchmark-compare`` loads the baseline)
    and applies the parsed check to every benchmark present in both; returns the failure
    messages (empty: no regression).
    """
    from pytest_benchmark.utils import parse_compare_fail

    check = parse_compare_fail(compare_fail)
    storage = _storage(storage_path)
    (_, base_doc), *_ = list(storage.load(f"*_{baseline}"))
    (_, current_doc), *_ = list(storage.load(f"*_{current}"))
    compared = {b["fullname"]: b for b in base_doc["benchmarks"]}
    failures = []
    for bench in current_doc["benchmarks"]:
        if bench["fullname"] not in compared:
            continue
        base = dict(compared[bench["fullname"]])
        base.update(base.pop("stats"))
        now = dict(bench)
        now.update(now.pop("stats"))
        fail = check.fails(now, base)
        if fail:
            failures.append(f"{bench['fullname']} - {fail}")
    return failures


# ---------------------------------------------------------------------------
# The meta check
# ---------------------------------------------------------------------------


@dataclass
class Attempt:
    rounds: int
    medians_s: dict[str, float]
    change_pct: dict[str, float]
    failures: dict[str, list[str]]
    clear: bool


@dataclass
class MetaCheckResult:
    """What the meta check saw: per attempt, the medians and pytest-benchmark's verdicts."""

    workload: str
    threshold_pct: int
    fraction: float
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def unchanged_flagged(self) -> bool:
        return bool(self.final.failures["unchanged"])

    @property
    def planted_flagged(self) -> bool:
        return bool(self.final.failures["planted"])

    def summary(self) -> str:
        a = self.final
        return (
            f"{self.workload}: threshold median:{self.threshold_pct}%, plant +{self.fraction:.0%}; "
            f"attempt {len(self.attempts)} ({a.rounds} rounds): unchanged {a.change_pct['unchanged']:+.2f}% "
            f"-> {'REGRESSION' if a.failures['unchanged'] else 'ok'}, planted {a.change_pct['planted']:+.2f}% "
            f"-> {'REGRESSION' if a.failures['planted'] else 'ok'}"
        )


def meta_check(
    adapter: Adapter,
    storage_path: Path,
    *,
    modules: int = 1_000,
    fraction: float = PLANTED_FRACTION,
    threshold_pct: int = DEFAULT_THRESHOLD_PCT,
    rounds: int = 201,
    max_attempts: int = 3,
    config_folder: Path | None = None,
) -> MetaCheckResult:
    """Measure baseline / unchanged / planted post-loading runs interleaved and judge them.

    The workload is ``process_weights_after_loading`` on the MoE layout (``modules``
    modules, no-op methods, CPU target): the post-loading path alone. See the module
    docstring for why the verdict cannot be flipped by noise.
    """
    folder = config_folder or storage_path / "model"
    config = workloads.model_config(adapter, folder)
    workload = workloads.moe_model(adapter, shape=workloads.moe_shape_for(modules), method="noop")
    model, cpu = workload.model, torch.device("cpu")
    process = adapter.process_weights_after_loading
    planted = slowed(process, fraction)
    contenders = {
        "baseline": lambda: process(model, config, cpu),
        "unchanged": lambda: process(model, config, cpu),
        "planted": lambda: planted(model, config, cpu),
    }
    fullname = f"bench/regression.py::meta_check[{workload.name}]"
    result = MetaCheckResult(workload.name, threshold_pct, fraction)
    low_guard, high_guard = threshold_pct / 2, (threshold_pct + fraction * 100) / 2
    for attempt in range(max_attempts):
        n = rounds * 2**attempt
        series = interleaved(contenders, rounds=n, warmup=10)
        folder_name = storage_path / f"attempt-{attempt + 1}"
        for label in ("baseline", "unchanged", "planted"):
            save_run(folder_name, label, benchmark_document(fullname, series[label], {"run": label}))
        failures = {
            label: compare_runs(folder_name, label, "baseline", f"median:{threshold_pct}%")
            for label in ("unchanged", "planted")
        }
        base = series["baseline"].median
        change = {label: (series[label].median / base - 1) * 100 for label in ("unchanged", "planted")}
        clear = change["unchanged"] < low_guard and change["planted"] > high_guard
        result.attempts.append(Attempt(n, {k: s.median for k, s in series.items()}, change, failures, clear))
        if clear:
            break
    return result


def iter_attempt_lines(result: MetaCheckResult) -> Iterator[str]:
    """One line per attempt, for reports."""
    for number, a in enumerate(result.attempts, 1):
        yield (
            f"attempt {number}: {a.rounds} rounds, medians "
            + ", ".join(f"{k} {v * 1e3:.2f}ms" for k, v in a.medians_s.items())
            + f"; unchanged {a.change_pct['unchanged']:+.2f}%, planted {a.change_pct['planted']:+.2f}%"
            + ("" if a.clear else " (inside the guard band: measured again)")
        )
