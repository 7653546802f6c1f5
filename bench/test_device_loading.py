"""Benchmarks of the device round trip (spec chapter device-loading): ``device_loading_context``.

* round trip: one host parameter, 4 KiB to 256 MiB, moved to the accelerator and back by
  the context around an empty block (DL-2, DL-10..DL-12, DL-5), against plain copies of the same
  bytes into preallocated buffers (the copy bandwidth);
* host memory: bytes held on the host after the restore, against the parameters' bytes,
  for the dense decoder with every layer offloaded (on CUDA the pinned caching allocator
  rounds blocks up to powers of two: vLLM #56410).

Nothing is asserted about time or memory; figures go to the summary and the JSON.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from loaderspec.adapter import Adapter
from loaderspec_bench import cases, floors, workloads
from loaderspec_bench.measure import FLOOR_CLOCK

SIZES = [pytest.param(n, id=workloads.format_bytes(n)) for n in workloads.SIZE_SWEEP]


@pytest.mark.parametrize("role", ["floor", "figure"])
@pytest.mark.parametrize("nbytes", SIZES)
def test_round_trip(
    run_benchmark: Callable[..., None],
    impl: Adapter,
    configs: cases.ConfigCache,
    accelerator: torch.device,
    nbytes: int,
    role: str,
) -> None:
    """DL-2/DL-10 round trip of ``nbytes``; the figure's bytes per second are in extra_info."""
    case = cases.round_trip_case(nbytes, accelerator)
    prepared = case.prepare(impl, configs.get(impl))
    run_benchmark(case, prepared, role)
    if role == "figure":
        assert prepared.keep.weight.device.type == "cpu", "DL-10: the parameter is back on the host"


@pytest.mark.benchmark(timer=FLOOR_CLOCK.read)
@pytest.mark.parametrize("nbytes", SIZES)
def test_round_trip_vs_floor(
    run_vs_floor: Callable[..., None],
    impl: Adapter,
    configs: cases.ConfigCache,
    accelerator: torch.device,
    nbytes: int,
) -> None:
    """Round trip / plain copies, paired per round (DL-2, DL-10)."""
    case = cases.round_trip_case(nbytes, accelerator)
    config = configs.get(impl)
    run_vs_floor(case, case.prepare(impl, config), case.prepare(impl, config))


def test_host_memory(
    impl: Adapter,
    configs: cases.ConfigCache,
    accelerator: torch.device,
    dense_scale: int,
    bench_figures: object,
    host_allocator: str,
) -> None:
    """Host bytes held after the post-loading pass restored every offloaded layer (DL-10, DL-5)."""
    build = cases.host_memory_build(impl, configs.get(impl), accelerator, scale=dense_scale)
    result = floors.measure_host_memory(build, accelerator)
    bench_figures.host_memory[str(accelerator)] = {**result.as_dict(), "host_allocator": host_allocator}  # type: ignore[attr-defined]
    assert result.param_bytes > 0
