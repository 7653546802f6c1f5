"""The benchmark cases: each figure with its floor, shared by ``loaderspec bench`` and the pytest suite.

A :class:`Case` prepares, for one adapter, a freshly built workload with the call it
measures (``run``) and the floor it is compared with (``floor``, on the same workload: the
runner times each contender and the floor on workloads of their own). Chapters follow the spec: ``post-loading``
(``process_weights_after_loading``, PW-1..PW-4) and ``device-loading``
(``device_loading_context``, DL-2, DL-10..DL-12, DL-5).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from loaderspec.adapter import Adapter
from torch import nn

from . import correctness, floors, workloads
from .measure import synchronize

DEFAULT_OFFLOAD = 0.5
"""Fraction of decoder layers offloaded to the host for accelerator targets."""


@dataclass
class Prepared:
    """One adapter's measured call on a built workload, and the floor measured beside it."""

    run: Callable[[], None]
    floor: Callable[[], None]
    setup: Callable[[], None] | None = None
    """Run untimed before each call of ``run`` or ``floor``: puts back the tensors a call replaced."""
    nbytes: int | None = None
    """Bytes making the round trip per call (for bytes per second), if any."""
    info: dict[str, Any] = field(default_factory=dict)
    keep: Any = None
    """The objects the callables need alive (the model)."""
    check: Callable[[], str | None] | None = None
    """Runs ``run`` once and checks what it is about to be timed on (:mod:`loaderspec_bench.correctness`)."""


@dataclass(frozen=True)
class Case:
    """A figure: a name (``chapter/workload/target``), what its floor is, how to prepare it."""

    name: str
    chapter: str
    floor_kind: str
    target: torch.device
    prepare: Callable[[Adapter, Any], Prepared]
    """``prepare(adapter, model_config)``."""


class ConfigCache:
    """One ``model_config`` per adapter, from one local folder (``adapter.model_config``)."""

    def __init__(self) -> None:
        # Removed when the cache is collected or the process exits (TemporaryDirectory's finalizer).
        self._tmp = tempfile.TemporaryDirectory(prefix="loaderspec-bench-")
        self._folder = Path(self._tmp.name)
        self._configs: dict[int, Any] = {}

    def get(self, adapter: Adapter) -> Any:
        if id(adapter) not in self._configs:
            self._configs[id(adapter)] = workloads.model_config(adapter, self._folder / "llama")
        return self._configs[id(adapter)]


def _post_loading_call(adapter: Adapter, model: nn.Module, config: Any, target: torch.device) -> Callable[[], None]:
    process = adapter.process_weights_after_loading

    def run() -> None:
        process(model, config, target)
        synchronize(target)

    return run


def traversal_case(modules: int) -> Case:
    """``process_weights_after_loading`` on the MoE layout, no-op methods, CPU target (PW-1, PW-4)."""
    shape = workloads.moe_shape_for(modules)
    cpu = torch.device("cpu")

    def prepare(adapter: Adapter, config: Any) -> Prepared:
        workload = workloads.moe_model(adapter, shape=shape, method="noop", target=cpu)
        quantized = len(workload.quantized_modules())
        run = _post_loading_call(adapter, workload.model, config, cpu)
        return Prepared(
            run=run,
            floor=floors.traversal_floor(adapter, workload.model),
            info={"modules": workload.module_count, "quantized_modules": quantized},
            keep=workload,
            check=correctness.post_loading(
                workload.model, run, setup=None, attention_class=workloads.attention_class(adapter), values=False
            ),
        )

    label = workloads._short_count(shape.module_count)
    return Case(f"traversal/moe-{label}/cpu", "post-loading", "2 bare named_modules passes", cpu, prepare)


def dense_case(method: str, target: torch.device, *, scale: int, offload: float = DEFAULT_OFFLOAD) -> Case:
    """``process_weights_after_loading`` on the dense decoder with ``method`` (PW-1, PW-6, PW-7)."""
    fraction = offload if target.type != "cpu" else 0.0

    def prepare(adapter: Adapter, config: Any) -> Prepared:
        workload = workloads.dense_model(adapter, method=method, scale=scale, target=target, offload_fraction=fraction)
        run = _post_loading_call(adapter, workload.model, config, target)
        setup = None if method == "noop" else workload.restorer()
        return Prepared(
            run=run,
            floor=floors.post_loading_floor(adapter, workload.model, target),
            setup=setup,
            check=correctness.post_loading(
                workload.model, run, setup=setup, attention_class=workloads.attention_class(adapter), values=True
            ),
            nbytes=workload.offloaded_bytes or None,
            info={
                "modules": workload.module_count,
                "param_bytes": workload.param_bytes,
                "offloaded_bytes": workload.offloaded_bytes,
                "offloaded_layers": workload.details["offloaded_layers"],
            },
            keep=workload,
        )

    where = target.type if target.type == "cpu" else f"{target.type}-offload{round(fraction * 100)}"
    floor = "bare passes + direct hooks" + (" + staged copies" if fraction else "")
    return Case(f"post-loading/dense-s{scale}-{method}/{where}", "post-loading", floor, target, prepare)


def round_trip_case(nbytes: int, target: torch.device) -> Case:
    """``device_loading_context`` around an empty block, one host parameter of ``nbytes`` (DL-2, DL-10..DL-12)."""

    def prepare(adapter: Adapter, config: Any) -> Prepared:
        module = workloads.single_parameter_module(nbytes, pin=workloads.pin_like_context(target))
        context = adapter.device_loading_context

        def run() -> None:
            with context(module, target):
                pass
            synchronize(target)

        return Prepared(
            run=run,
            floor=floors.copy_floor([module.get_parameter("weight").data], target),
            nbytes=nbytes,
            info={"param_bytes": nbytes},
            keep=module,
            check=correctness.round_trip(module, run),
        )

    return Case(
        f"round-trip/{workloads.format_bytes(nbytes)}/{target.type}",
        "device-loading",
        "plain copies, preallocated",
        target,
        prepare,
    )


def host_memory_build(
    adapter: Adapter, config: Any, target: torch.device, *, scale: int, offload: float = 1.0
) -> Callable[[], tuple[nn.Module, Callable[[nn.Module], None]]]:
    """For :func:`floors.measure_host_memory`: a dense model, all layers offloaded, and its pass."""

    def build() -> tuple[nn.Module, Callable[[nn.Module], None]]:
        workload = workloads.dense_model(adapter, method="noop", scale=scale, target=target, offload_fraction=offload)

        def run(model: nn.Module) -> None:
            adapter.process_weights_after_loading(model, config, target)

        return workload.model, run

    return build


def default_cases(targets: list[torch.device], *, quick: bool = False, scale: int | None = None) -> list[Case]:
    """The cases ``loaderspec bench`` runs: traversal sweep, dense x methods x targets, size sweep."""
    scale = scale or (16 if quick else 8)
    cases = [traversal_case(n) for n in ((1_000, 10_000) if quick else (1_000, 10_000, 100_000))]
    for target in targets:
        for method in workloads.METHODS:
            cases.append(dense_case(method, target, scale=scale))
    sizes = workloads.SIZE_SWEEP_QUICK if quick else workloads.SIZE_SWEEP[::2]
    for target in targets:
        if target.type != "cpu":
            cases.extend(round_trip_case(n, target) for n in sizes)
    return cases
