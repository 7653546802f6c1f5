"""The floors do the same work as the paths they bound: same results, fewer steps.

Not benchmarks (nothing is timed): a floor that skipped work would flatter the ratios.
Runs in a few seconds on small workloads.
"""

from __future__ import annotations

import pytest
import torch
from loaderspec.adapter import Adapter
from loaderspec_bench import cases, floors, workloads


def _state(model: torch.nn.Module) -> dict[str, tuple[str, torch.dtype, tuple[int, ...], torch.Tensor]]:
    return {
        name: (p.device.type, p.dtype, tuple(p.shape), p.detach().to("cpu").clone())
        for name, p in model.named_parameters()
    }


@pytest.mark.parametrize("method", workloads.METHODS)
def test_post_loading_floor_leaves_the_model_as_the_implementation_does(
    impl: Adapter, configs: cases.ConfigCache, target: torch.device, method: str
) -> None:
    """PW-1/PW-6/PW-7: same devices, dtypes, shapes and values after the floor as after the implementation."""
    offload = 0.5 if target.type != "cpu" else 0.0
    build = dict(method=method, scale=32, target=target, offload_fraction=offload, seed=3)
    by_impl = workloads.dense_model(impl, **build)
    by_floor = workloads.dense_model(impl, **build)
    impl.process_weights_after_loading(by_impl.model, configs.get(impl), target)
    floors.post_loading_floor(impl, by_floor.model, target)()
    expected, got = _state(by_impl.model), _state(by_floor.model)
    assert expected.keys() == got.keys()
    for name, (device, dtype, shape, values) in expected.items():
        assert got[name][:3] == (device, dtype, shape), name
        assert torch.equal(got[name][3], values), name
    if offload:
        assert by_floor.offloaded_bytes > 0


def test_traversal_floor_visits_what_the_implementation_visits(impl: Adapter, configs: cases.ConfigCache) -> None:
    """The breakdown's hook variant calls each quantize hook once (PW-1) and each attention hook once (PW-4)."""
    workload = workloads.moe_model(impl, shape=workloads.moe_shape_for(1_000))
    calls: list[str] = []
    for module in workload.quantized_modules():
        method = module.quant_method
        method.process_weights_after_loading = lambda layer, calls=calls: calls.append("quant")
    variants = floors.traversal_breakdown(impl, workload.model, configs.get(impl))
    variants["+ hooks"]()
    hooks_calls = len(calls)
    calls.clear()
    impl.process_weights_after_loading(workload.model, configs.get(impl), torch.device("cpu"))
    assert hooks_calls == len(calls) == len(workload.quantized_modules())
