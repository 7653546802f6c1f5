"""The meta check of the regression workflow: a planted 5% slowdown of the post-loading
path is reported as a regression by pytest-benchmark's compare, an unchanged run is not.

Deterministic by design (see ``loaderspec_bench.regression``): the plant is work
proportional to each call's own duration, the three runs are interleaved in one process,
and pytest-benchmark's ``median:3%`` check judges runs saved in its own storage format,
with a guard band that re-measures rather than accept an ambiguous measurement. About
4-11 s on a shared 2-core machine (one attempt of 201 short rounds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from loaderspec.adapter import Adapter
from loaderspec_bench import regression
from loaderspec_bench.measure import Series


def _unplanted(adapter: Adapter) -> Adapter:
    return adapter.inner if isinstance(adapter, regression.PlantedAdapter) else adapter


def test_compare_pipeline_on_synthetic_runs(tmp_path: Path) -> None:
    """Storage and compare, without timing: +10% medians fail ``median:5%``, equal ones pass."""
    name = "bench/regression.py::meta_check[synthetic]"
    base = Series("baseline", [0.010] * 9)
    for label, times in (("baseline", base.times), ("same", [0.010] * 9), ("slower", [0.011] * 9)):
        regression.save_run(tmp_path, label, regression.benchmark_document(name, Series(label, times)))
    assert regression.compare_runs(tmp_path, "same", "baseline", "median:5%") == []
    failures = regression.compare_runs(tmp_path, "slower", "baseline", "median:5%")
    assert len(failures) == 1 and "PercentageRegressionCheck" in failures[0], failures


def test_planted_slowdown_is_proportional() -> None:
    """The plant lengthens each call by at least the fraction of the call's own time."""
    calls: list[float] = []

    def work() -> None:
        start = time.perf_counter()
        sum(range(20_000))
        calls.append(time.perf_counter() - start)

    planted = regression.slowed(work, 0.10)
    for _ in range(5):
        start = time.perf_counter()
        planted()
        assert time.perf_counter() - start >= 1.10 * calls[-1]


def test_planted_slowdown_is_reported_and_unchanged_is_not(
    impl: Adapter, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """A 5% slower post-loading path fails pytest-benchmark's ``median:3%``; the same code does not."""
    result = regression.meta_check(_unplanted(impl), tmp_path)
    lines = [result.summary(), *regression.iter_attempt_lines(result)]
    record_property("meta_check", " | ".join(lines))
    print("\n".join(lines))
    assert result.planted_flagged, "a planted 5% slowdown was not reported:\n" + "\n".join(lines)
    assert not result.unchanged_flagged, "an unchanged run was reported as a regression:\n" + "\n".join(lines)


@pytest.mark.e2e
def test_workflow_end_to_end(impl: Adapter, tmp_path: Path) -> None:
    """The documented commands, as subprocesses: autosave, compare unchanged, compare planted.

    On ``test_traversal_vs_floor[10k]`` (figure / floor per round, so drift between the runs
    cancels in the ratio), with the coarser 10% plant and ``median:5%``: sequential runs rest
    on that cancelling rather than on interleaving, so this is opt-in (``--bench-e2e``, ~40 s) and not part of CI.
    """
    storage = tmp_path / "benchmarks"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(Path(__file__).with_name("test_post_loading.py")),
        "-p",
        "no:cacheprovider",
        "-q",
        "-k",
        "test_traversal_vs_floor and 10k",
        f"--benchmark-storage=file://{storage}",
        "--bench-seconds=4",
        f"--impl={_unplanted(impl).name}",
    ]
    compare = ["--benchmark-compare", "--benchmark-compare-fail=median:5%"]
    env = {k: v for k, v in os.environ.items() if k != "LOADERSPEC_BENCH_PLANT_SLOWDOWN"}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *extra], capture_output=True, text=True, env=env, timeout=300)

    saved = run("--benchmark-autosave")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    unchanged = run(*compare)
    planted = run(*compare, "--bench-plant-slowdown=0.10")
    assert unchanged.returncode == 0, "unchanged run reported:\n" + unchanged.stdout[-3000:]
    assert planted.returncode != 0 and "Performance has regressed" in planted.stdout + planted.stderr, (
        "planted slowdown not reported:\n" + planted.stdout[-3000:]
    )
