"""Wiring of the benchmark suite (pytest-benchmark): the implementation, targets, floors.

The implementation is injected as in the conformance suites: ``--impl NAME_OR_MODULE``
or ``LOADERSPEC_IMPL`` (default ``reference``); benchmarks receive it as the ``impl``
fixture. ``--bench-plant-slowdown=0.10`` (or ``LOADERSPEC_BENCH_PLANT_SLOWDOWN``) slows
its post-loading path by 10% of its own time, to see the regression workflow report it.

Each figure has a floor benchmark in the same group; the terminal summary prints
figure / floor per group, and ``--benchmark-json`` / autosave files get the same under
``"loaderspec"``. Nothing here fails a run on a time.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from loaderspec.adapter import Adapter, AdapterError, add_impl_option, stay_offline
from loaderspec.support import devices
from loaderspec_bench import cases, regression
from loaderspec_bench.contenders import probe_adapter
from loaderspec_bench.measure import FLOOR_CLOCK, NOISY_SPREAD, calibrate, paired_ratio, steady_allocator
from loaderspec_bench.targets import busy_note

stay_offline()

PLANT_ENV = "LOADERSPEC_BENCH_PLANT_SLOWDOWN"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loaderspec-bench", "loaderspec benchmarks")
    add_impl_option(parser)
    group.addoption(
        "--bench-plant-slowdown",
        type=float,
        default=None,
        metavar="FRACTION",
        help=f"slow process_weights_after_loading by FRACTION of its own time (also ${PLANT_ENV})",
    )
    group.addoption(
        "--bench-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="time budget per benchmark (rounds = S / time per call, 5 to 200; default 1.0)",
    )
    group.addoption(
        "--bench-dense-scale",
        type=int,
        default=8,
        metavar="S",
        help="divide Llama-3-8B's widths by S for the dense workloads (default 8: ~250 MB in bfloat16)",
    )
    group.addoption(
        "--bench-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch intra-op threads for the benchmarks (default: torch's; 1 is steadier on a shared machine)",
    )
    group.addoption(
        "--bench-malloc-default",
        action="store_true",
        help="keep glibc's adaptive malloc thresholds (default: fixed, see measure.steady_allocator)",
    )
    group.addoption(
        "--bench-e2e",
        action="store_true",
        help="also run the end-to-end workflow check (sequential pytest runs; timing-sensitive, slow)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end workflow check, runs only with --bench-e2e")
    threads = config.getoption("--bench-threads")
    if threads:
        torch.set_num_threads(threads)

    config.stash[_FIGURES] = Figures()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bench-e2e"):
        return
    skip = pytest.mark.skip(reason="end-to-end workflow check: give --bench-e2e to run it")
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Adapter:
    """The adapter under test (planted with a slowdown when asked)."""
    spec = request.config.getoption("--impl")
    try:
        adapter = probe_adapter(spec)
    except AdapterError as error:
        hint = " (the vLLM adapter needs a Python environment with vLLM installed)" if spec == "vllm" else ""
        pytest.skip(f"implementation unavailable{hint}: {error}")
    fraction = request.config.getoption("--bench-plant-slowdown")
    if fraction is None and os.environ.get(PLANT_ENV):
        fraction = float(os.environ[PLANT_ENV])
    return regression.plant(adapter, fraction) if fraction else adapter


@pytest.fixture(scope="session")
def dense_scale(request: pytest.FixtureRequest) -> int:
    """The dense decoder's scale (``--bench-dense-scale``)."""
    return int(request.config.getoption("--bench-dense-scale"))


@pytest.fixture(scope="session")
def configs() -> cases.ConfigCache:
    """One ``model_config`` per adapter."""
    return cases.ConfigCache()


def _target_params() -> list[Any]:
    # CUDA or the simulated device, not both: the simulated device takes over the pinned host allocator.
    return [pytest.param(kind, id=kind) for kind in ("cpu", devices.accelerator_kinds()[0])]


@pytest.fixture(scope="session", params=_target_params())
def target(request: pytest.FixtureRequest) -> torch.device:
    """The CPU, and the accelerator: CUDA when present, else the simulated device (skips if it cannot build)."""
    return devices.resolve_or_skip(request.param)


@pytest.fixture(scope="session", params=[p for p in _target_params() if p.id != "cpu"])
def accelerator(request: pytest.FixtureRequest) -> torch.device:
    """The accelerator only (round trips are meaningless on a CPU target, DL-1)."""
    return devices.resolve_or_skip(request.param)


# ---------------------------------------------------------------------------
# Figures, floors and the summary
# ---------------------------------------------------------------------------


@dataclass
class Entry:
    median: float
    spread: float
    nbytes: int | None = None


@dataclass
class Figures:
    """Medians of figures and floors by group, for the summary and the JSON."""

    figures: dict[str, Entry] = field(default_factory=dict)
    floors: dict[str, Entry] = field(default_factory=dict)
    paired: dict[str, Entry] = field(default_factory=dict)
    """``*_vs_floor`` benchmarks: median of figure / floor per round."""
    host_memory: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for group in dict.fromkeys([*self.figures, *self.paired]):
            figure = self.figures.get(group)
            floor = self.floors.get(group)
            paired = self.paired.get(group)
            if figure is None:
                assert paired is not None  # the group came from self.paired
                out.append({"group": group, "paired_ratio": paired.median, "paired_spread": paired.spread})
                continue
            out.append(
                {
                    "group": group,
                    "median_s": figure.median,
                    "spread": figure.spread,
                    "floor_median_s": floor.median if floor else None,
                    "floor_spread": floor.spread if floor else None,
                    "ratio_to_floor": figure.median / floor.median if floor and floor.median else None,
                    "nbytes": figure.nbytes,
                    "paired_ratio": paired.median if paired else None,
                    "paired_spread": paired.spread if paired else None,
                }
            )
        return out


_FIGURES = pytest.StashKey[Figures]()


def _stats(benchmark: Any) -> tuple[float, float] | None:
    meta = getattr(benchmark, "stats", None)
    stats = getattr(meta, "stats", None)
    if not stats:
        return None
    median = stats.median
    return median, (stats.iqr / median if median else math.nan)


@pytest.fixture(scope="session")
def host_allocator(request: pytest.FixtureRequest) -> str:
    """Fix glibc's malloc thresholds for the benchmarks (``measure.steady_allocator``), once.

    Applied when the first benchmark runs, so a session that runs none (CI's) is untouched.
    """
    if request.config.getoption("--bench-malloc-default"):
        return "default"
    return steady_allocator() or "default"


@pytest.fixture
def run_benchmark(request: pytest.FixtureRequest, benchmark: Any, host_allocator: str) -> Callable[..., None]:
    """Benchmark a prepared case's figure or floor with pytest-benchmark (pedantic, budgeted rounds)."""
    figures = request.config.stash[_FIGURES]
    budget = request.config.getoption("--bench-seconds")

    def run(case: cases.Case, prepared: cases.Prepared, role: str) -> None:
        group = case.name
        fn = prepared.run if role == "figure" else prepared.floor
        setup = prepared.setup
        if setup is not None:
            setup()
        iterations = 1 if setup is not None else calibrate(fn, 0.002)
        if setup is not None:
            setup()
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        per_round = max(time.perf_counter() - start, 1e-6)
        rounds = int(min(200, max(5, budget / per_round)))
        benchmark.group = group
        benchmark.extra_info.update(
            {
                "role": role,
                "host_allocator": host_allocator,
                "floor": case.floor_kind,
                "target": str(case.target),
                **prepared.info,
            }
        )
        if prepared.nbytes:
            benchmark.extra_info["nbytes"] = prepared.nbytes
        benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=iterations, warmup_rounds=1)
        measured = _stats(benchmark)
        if measured is None:
            return
        median, spread = measured
        entry = Entry(median, spread, prepared.nbytes)
        (figures.figures if role == "figure" else figures.floors)[group] = entry
        floor = figures.floors.get(group)
        if role == "figure" and floor is not None:
            benchmark.extra_info["floor_median_s"] = floor.median
            benchmark.extra_info["ratio_to_floor"] = median / floor.median
        if prepared.nbytes:
            benchmark.extra_info["bytes_per_s"] = prepared.nbytes / median
        if spread > NOISY_SPREAD:
            benchmark.extra_info["noisy"] = True

    return run


@pytest.fixture
def run_vs_floor(request: pytest.FixtureRequest, benchmark: Any, host_allocator: str) -> Callable[..., None]:
    """Benchmark figure / floor per round (``measure.FLOOR_CLOCK``): drift-proof regression tracking.

    The test must carry ``@pytest.mark.benchmark(timer=FLOOR_CLOCK.read)``. Figure and
    floor run on workloads of their own (``figure``, ``floor``: two :class:`cases.Prepared`).
    """
    figures = request.config.stash[_FIGURES]
    budget = request.config.getoption("--bench-seconds")

    def run(case: cases.Case, figure: cases.Prepared, floor: cases.Prepared) -> None:
        flip = [False]

        def one_round() -> None:
            flip[0] = not flip[0]
            ratio = paired_ratio(
                figure.run,
                floor.floor,
                figure_setup=figure.setup,
                floor_setup=floor.setup,
                floor_first=flip[0],
            )
            FLOOR_CLOCK.advance(ratio)

        start = time.perf_counter()
        one_round()
        per_round = max(time.perf_counter() - start, 1e-6)
        rounds = int(min(200, max(6, budget / per_round)))
        benchmark.group = f"{case.name} (figure / floor)"
        benchmark.extra_info.update(
            {
                "unit": "floors (1 s = the floor's time, measured in the same round)",
                "floor": case.floor_kind,
                "target": str(case.target),
                "host_allocator": host_allocator,
                **figure.info,
            }
        )
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=1)
        measured = _stats(benchmark)
        if measured is not None:
            figures.paired[case.name] = Entry(*measured)

    return run


@pytest.fixture(scope="session")
def bench_figures(request: pytest.FixtureRequest) -> Figures:
    """The session's figures registry (host-memory results are added here)."""
    return request.config.stash[_FIGURES]


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    figures = config.stash.get(_FIGURES, None)
    if figures is not None:
        output_json["loaderspec"] = {"figures_vs_floors": figures.rows(), "host_memory": figures.host_memory}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, None)
    if figures is None or not (figures.figures or figures.paired or figures.host_memory):
        return
    tr = terminalreporter
    tr.section("loaderspec: figures next to their floors (medians; spread = IQR/median)")
    busy = busy_note("at the end")
    if busy:
        tr.write_line(f"note: {busy}")
    for row in figures.rows():
        paired = ""
        if row.get("paired_ratio") is not None:
            paired_noisy = " noisy" if row["paired_spread"] > NOISY_SPREAD else ""
            paired = f"   paired ratio {row['paired_ratio']:.2f} ±{row['paired_spread']:.0%}{paired_noisy}"
        if "median_s" not in row:
            tr.write_line(f"{row['group']:<48}{paired}")
            continue
        noisy = " noisy" if row["spread"] > NOISY_SPREAD else ""
        line = f"{row['group']:<48} {row['median_s'] * 1e3:10.3f} ms ±{row['spread']:.0%}{noisy}"
        if row["floor_median_s"] is not None:
            floor_noisy = " noisy" if row["floor_spread"] > NOISY_SPREAD else ""
            line += (
                f"   floor {row['floor_median_s'] * 1e3:10.3f} ms ±{row['floor_spread']:.0%}{floor_noisy}"
                f"   ratio {row['ratio_to_floor']:.2f}"
            )
        if row["nbytes"]:
            line += f"   {row['nbytes'] / row['median_s'] / 1e9:.2f} GB/s"
            if row["floor_median_s"]:
                line += f" (floor {row['nbytes'] / row['floor_median_s'] / 1e9:.2f} GB/s)"
        tr.write_line(line + paired)
    for target, result in figures.host_memory.items():
        if "problem" in result:
            tr.write_line(f"host memory on {target}: {result['problem']}")
            continue
        trim = "" if result["ratio_after_trim"] is None else f" ({result['ratio_after_trim']:.2f}x after malloc_trim)"
        tr.write_line(
            f"host memory on {target}: held after the restore {result['ratio_after']:.2f}x the parameters' "
            f"bytes{trim}, floor 1.00x, counted by {result['source']}; power-of-two pinned allocator "
            f"(vLLM #56410) would hold {result['predicted_pow2_ratio']:.2f}x"
        )
