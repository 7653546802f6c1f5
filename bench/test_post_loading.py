"""Benchmarks of the post-loading path (spec chapter post-loading): ``process_weights_after_loading``.

* traversal: no-op quantize methods on the MoE layout (1k, 10k, 100k modules), CPU target,
  against two bare ``named_modules()`` passes with the same type checks (PW-1, PW-2, PW-4);
* dense: the Llama-3-8B-shaped decoder with no-op / repack / cast methods, on the CPU and
  on the accelerator with half the layers offloaded to the host, so every offloaded
  quantized layer makes a round trip through ``device_loading_context`` (PW-6, PW-7), against
  the same work without the loader (bare passes + direct hooks + staged copies).

Each figure and its floor share a benchmark group. The ``*_vs_floor`` benchmarks record,
per round, figure time / floor time (``measure.FLOOR_CLOCK``: shown as seconds, 1 s = the
floor): drift of the machine cancels in them, so they are what regression tracking compares
(README, "Regression tracking"). Nothing is asserted about time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from loaderspec.adapter import Adapter
from loaderspec_bench import cases, workloads
from loaderspec_bench.measure import FLOOR_CLOCK

TRAVERSAL_SIZES = [pytest.param(n, id=f"{n // 1000}k") for n in (1_000, 10_000, 100_000)]
ROLES = ["floor", "figure"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("modules", TRAVERSAL_SIZES)
def test_traversal(
    run_benchmark: Callable[..., None], impl: Adapter, configs: cases.ConfigCache, modules: int, role: str
) -> None:
    """PW-1/PW-4 traversal cost; ``figure`` is the implementation, ``floor`` the bare passes."""
    case = cases.traversal_case(modules)
    prepared = case.prepare(impl, configs.get(impl))
    run_benchmark(case, prepared, role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", workloads.METHODS)
def test_dense(
    run_benchmark: Callable[..., None],
    impl: Adapter,
    configs: cases.ConfigCache,
    target: torch.device,
    dense_scale: int,
    method: str,
    role: str,
) -> None:
    """PW-1/PW-6/PW-7 with tensor work; on an accelerator half the layers are offloaded (DL-2/DL-10)."""
    case = cases.dense_case(method, target, scale=dense_scale)
    prepared = case.prepare(impl, configs.get(impl))
    run_benchmark(case, prepared, role)
    if role == "figure" and target.type != "cpu":
        offloaded = [p for p in prepared.keep.model.parameters() if p.device.type == "cpu"]
        assert sum(p.nbytes for p in offloaded) == prepared.keep.offloaded_bytes, (
            "DL-10: after the post-loading pass the offloaded parameters are back on the host"
        )


@pytest.mark.benchmark(timer=FLOOR_CLOCK.read)
@pytest.mark.parametrize("modules", TRAVERSAL_SIZES)
def test_traversal_vs_floor(
    run_vs_floor: Callable[..., None], impl: Adapter, configs: cases.ConfigCache, modules: int
) -> None:
    """Traversal / its floor, paired per round (PW-1, PW-4)."""
    case = cases.traversal_case(modules)
    config = configs.get(impl)
    run_vs_floor(case, case.prepare(impl, config), case.prepare(impl, config))


@pytest.mark.benchmark(timer=FLOOR_CLOCK.read)
@pytest.mark.parametrize("method", workloads.METHODS)
def test_dense_vs_floor(
    run_vs_floor: Callable[..., None],
    impl: Adapter,
    configs: cases.ConfigCache,
    target: torch.device,
    dense_scale: int,
    method: str,
) -> None:
    """Dense post-loading / its floor, paired per round (PW-1, PW-6, PW-7)."""
    case = cases.dense_case(method, target, scale=dense_scale)
    config = configs.get(impl)
    run_vs_floor(case, case.prepare(impl, config), case.prepare(impl, config))
