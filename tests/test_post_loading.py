"""Post-loading processing (spec/post-loading.md): ``process_weights_after_loading``
runs each hook once, in order, quantization inside the device context."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from .support.errors import PlantedError, expect_raises
from .support.tensors import raw_bytes

KINDS = ("plain", "quantized", "offloaded", "qkv-cross", "attention", "foreign-method", "none-method")
"""Module kinds: offloaded = quantized with its weight on CPU while the target is not."""


@dataclass
class Event:
    kind: str
    module: torch.nn.Module
    detail: object = None


@functools.cache
def _layer_classes(impl):
    """Recording subclasses of the implementation's bases (built once per implementation)."""

    class RecordingMethod(impl.QuantizeMethodBase):
        def __init__(self, log, fail_at=None, repack=False):
            self.log, self.fail_at, self.repack = log, fail_at, repack

        def create_weights(self, layer, *args, **kwargs):
            raise NotImplementedError

        def apply(self, layer, *args, **kwargs):
            raise NotImplementedError

        def process_weights_after_loading(self, layer):
            devices = {name: p.device for name, p in layer.named_parameters()}
            self.log.append(Event("quant", layer, devices))
            if self.fail_at is not None and len([e for e in self.log if e.kind == "quant"]) == self.fail_at:
                raise PlantedError("quantize method failed on purpose")
            if self.repack:
                layer.weight.data = layer.weight.data.t().contiguous()

    RecordingQKVCross = None
    if impl.provides("QKVCrossParallelLinear"):  # vLLM 0.11.1 removed it

        class RecordingQKVCross(impl.QKVCrossParallelLinear):
            def __init__(self, log, quant_method):
                torch.nn.Module.__init__(self)
                self.log = log
                self.quant_method = quant_method
                self.weight = torch.nn.Parameter(torch.ones(2, 3), requires_grad=False)

            def process_weights_after_loading(self):
                self.log.append(Event("qkv", self))

    class RecordingAttention(impl.Attention):
        def __init__(self, log):
            torch.nn.Module.__init__(self)
            self.log = log

        def process_weights_after_loading(self, act_dtype):
            self.log.append(Event("attention", self, act_dtype))

    return RecordingMethod, RecordingQKVCross, RecordingAttention


class ForeignMethod:
    """Has the hook's name but is no QuantizeMethodBase: must never be called (PW-1)."""

    def __init__(self, log):
        self.log = log

    def process_weights_after_loading(self, layer):
        self.log.append(Event("foreign", layer))


def build_model(impl, kinds, shared, target, log, fail_at=None, repack=False):
    RecordingMethod, RecordingQKVCross, RecordingAttention = _layer_classes(impl)
    method = RecordingMethod(log, fail_at=fail_at, repack=repack)
    model = torch.nn.Module()
    layers = torch.nn.ModuleList()
    for index, kind in enumerate(kinds):
        if kind == "qkv-cross":
            layer = RecordingQKVCross(log, method)
        elif kind == "attention":
            layer = RecordingAttention(log)
        else:
            layer = torch.nn.Linear(3, 2 + index % 3, bias=index % 2 == 0)
            if kind in ("quantized", "offloaded"):
                layer.quant_method = method
                if kind == "quantized":
                    layer.to(target)
            elif kind == "foreign-method":
                layer.quant_method = ForeignMethod(log)
            elif kind == "none-method":
                layer.quant_method = None
        layers.append(layer)
    for position in shared:
        if layers:
            layers.append(layers[position % len(layers)])  # the same module twice: processed once
    model.layers = layers
    return model


def expected_events(model, kinds_by_module, dtype):
    """The spec's order: quantization and cross-QKV hooks in named_modules order, then attention."""
    first, second = [], []
    for _, module in model.named_modules():
        kind = kinds_by_module.get(id(module))
        if kind == "qkv-cross":
            first.append(("qkv", module))
        elif kind in ("quantized", "offloaded"):
            first.append(("quant", module))
        elif kind == "attention":
            second.append(("attention", module, dtype))
    return first + second


def kinds_lists(impl, min_size: int = 0) -> st.SearchStrategy[list[str]]:
    """Layer kinds, without cross-QKV layers when the implementation has no such base."""
    available = [k for k in KINDS if k != "qkv-cross" or impl.provides("QKVCrossParallelLinear")]
    return st.lists(st.sampled_from(available), min_size=min_size, max_size=8)


shared_lists = st.lists(st.integers(0, 7), max_size=2)
dtypes = st.sampled_from([torch.float16, torch.bfloat16, torch.float32])


def _run_order_case(impl, llama_folder, target, kinds, shared, dtype):
    """Run the pass over a model of ``kinds``; return (hooks seen, hooks the spec orders, describer)."""
    log: list[Event] = []
    model = build_model(impl, kinds, shared, target, log)
    kinds_by_module = {id(layer): kind for layer, kind in zip(model.layers, kinds, strict=False)}
    model_config = impl.model_config(llama_folder, dtype=dtype)
    impl.process_weights_after_loading(model, model_config, target)
    seen = [(e.kind, e.module, e.detail) if e.kind == "attention" else (e.kind, e.module) for e in log]
    expected = expected_events(model, kinds_by_module, model_config.dtype)

    def describe(note: str) -> str:
        def show(events):
            return [
                (e[0], kinds.index(kinds_by_module[id(e[1])]) if id(e[1]) in kinds_by_module else "?") for e in events
            ]

        return f"{note}; for layers {kinds} the hooks ran as {show(seen)}, expected {show(expected)}"

    return seen, expected, kinds_by_module, describe


@pytest.mark.req("PW-1", "PW-4")
@given(data=st.data(), shared=shared_lists, dtype=dtypes)
def test_each_hook_runs_once_in_order(impl, llama_folder, target, data, shared, dtype):
    kinds = data.draw(kinds_lists(impl), label="kinds")
    seen, expected, kinds_by_module, describe = _run_order_case(impl, llama_folder, target, kinds, shared, dtype)

    def first_pass_of_others(events):  # cross-QKV layers are PW-2's own test
        return [e for e in events if e[0] != "qkv" and kinds_by_module.get(id(e[1])) != "qkv-cross"]

    seen, expected = first_pass_of_others(seen), first_pass_of_others(expected)
    quant_seen = [e for e in seen if e[0] in ("quant", "foreign")]
    quant_expected = [e for e in expected if e[0] == "quant"]
    assert quant_seen == quant_expected, describe("PW-1: each quantized module once, in traversal order")
    assert seen == expected, describe("PW-4: attention hooks last, once each, with model_config.dtype")


@pytest.mark.req("PW-2")
@given(data=st.data(), shared=shared_lists, dtype=dtypes)
def test_cross_qkv_layers_run_their_own_hook(impl, llama_folder, target, data, shared, dtype):
    impl.QKVCrossParallelLinear  # noqa: B018 (not provided -> reported as such)
    kinds = data.draw(kinds_lists(impl).map(lambda ks: ["qkv-cross", *ks]), label="kinds")
    seen, expected, kinds_by_module, describe = _run_order_case(impl, llama_folder, target, kinds, shared, dtype)
    on_cross = [e for e in seen if e[0] == "quant" and kinds_by_module.get(id(e[1])) == "qkv-cross"]
    assert not on_cross, describe("PW-2: the traversal called a cross-QKV layer's quant_method")
    first_pass = [e for e in seen if e[0] in ("qkv", "quant")]
    expected_first = [e for e in expected if e[0] in ("qkv", "quant")]
    assert first_pass == expected_first, describe("PW-2: each cross-QKV hook once, in the first pass")


@pytest.mark.req("PW-3")
@given(data=st.data(), repack=st.booleans())
def test_quantize_methods_run_inside_the_device_context(impl, llama_folder, accelerator, data, repack):
    kinds = data.draw(kinds_lists(impl), label="kinds")
    log: list[Event] = []
    model = build_model(impl, kinds, [], accelerator, log, repack=repack)
    offloaded = [layer for layer, kind in zip(model.layers, kinds, strict=False) if kind == "offloaded"]
    impl.process_weights_after_loading(model, impl.model_config(llama_folder), accelerator)
    for event in log:
        if event.kind == "quant":
            assert all(device == accelerator for device in event.detail.values()), (
                f"PW-3: a quantize method saw parameters on {event.detail}, not all on {accelerator}"
            )
    for layer in offloaded:
        devices = {name: p.device.type for name, p in layer.named_parameters()}
        assert set(devices.values()) == {"cpu"}, f"PW-3: an offloaded layer ended with {devices}"


@pytest.mark.req("PW-5")
@given(data=st.data(), fail_at=st.integers(1, 4))
def test_a_failing_hook_stops_the_pass(impl, llama_folder, target, data, fail_at):
    kinds = data.draw(kinds_lists(impl, min_size=1), label="kinds")
    log: list[Event] = []
    model = build_model(impl, kinds, [], target, log, fail_at=fail_at)
    snapshots = {
        id(layer): {name: raw_bytes(p) for name, p in layer.named_parameters()}
        for layer, kind in zip(model.layers, kinds, strict=False)
        if kind == "offloaded"
    }
    quant_layers = sum(kind in ("quantized", "offloaded") for kind in kinds)
    if quant_layers < fail_at:
        impl.process_weights_after_loading(model, impl.model_config(llama_folder), target)
        return
    with expect_raises(PlantedError, "PW-5", f"a quantize method failing at call {fail_at}"):
        impl.process_weights_after_loading(model, impl.model_config(llama_folder), target)
    kinds_seen = [e.kind for e in log]
    assert kinds_seen.count("quant") == fail_at and "attention" not in kinds_seen, (
        f"PW-5: after the quantize method failed at call {fail_at}, hooks still ran: {kinds_seen}"
    )
    for layer, kind in zip(model.layers, kinds, strict=False):
        if kind == "offloaded":
            for name, p in layer.named_parameters():
                assert p.device.type == "cpu", f"PW-5: a failed hook left {name} on {p.device}"
                assert raw_bytes(p) == snapshots[id(layer)][name], f"PW-5: {name} changed value"


# --- added by the mutation run (tools/mutants/survivors.md): no hook of any kind after a failure ---


@pytest.mark.req("PW-5")
@given(data=st.data())
def test_no_hook_of_any_kind_runs_after_a_failed_one(impl, llama_folder, target, data):
    kinds = data.draw(kinds_lists(impl), label="kinds before")
    after = data.draw(kinds_lists(impl, min_size=1), label="kinds after")
    failing = data.draw(st.sampled_from(["quantized", "offloaded"]), label="failing kind")
    kinds = [k for k in kinds if k not in ("quantized", "offloaded")] + [failing] + after
    log: list[Event] = []
    model = build_model(impl, kinds, [], target, log, fail_at=1)
    with expect_raises(PlantedError, "PW-5", "the first quantize method failing"):
        impl.process_weights_after_loading(model, impl.model_config(llama_folder), target)
    failed_at = next(i for i, e in enumerate(log) if e.kind == "quant")
    later = [e.kind for e in log[failed_at + 1 :]]
    assert not later, f"PW-5: for layers {kinds}, hooks ran after the failed quantize method: {later}"
