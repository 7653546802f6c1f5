"""Post-loading processing (spec/post-loading.md): ``process_weights_after_loading``
runs each hook once, in order, quantization inside the device context.

Each test asks the implementation only for the bases its requirements are about:
``QKVCrossParallelLinear`` for PW-2, ``Attention`` for PW-4; elsewhere layers of a
missing kind are simply not drawn."""

from __future__ import annotations

import functools
import unittest
from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from loaderspec.support.checks import requirement

from . import strategies as lst
from .support.errors import PlantedError
from .support.tensors import raw_bytes


@dataclass
class Event:
    kind: str
    module: torch.nn.Module
    detail: object = None


@dataclass
class Recorder:
    """The hooks' shared log; the ``fail_at``-th hook call (1-based, any kind) raises."""

    fail_at: int | None = None
    log: list[Event] = field(default_factory=list)
    planted: PlantedError | None = None
    offloaded: list[torch.nn.Module] = field(default_factory=list)
    """Offloaded layers, to see where their parameters are at every hook call (PW-7)."""

    def hook(self, kind: str, module: torch.nn.Module, detail: object = None) -> None:
        self.log.append(Event(kind, module, detail))
        hooks = [e for e in self.log if e.kind in ("quant", "qkv", "attention")]
        if kind != "foreign" and self.fail_at is not None and len(hooks) == self.fail_at:
            self.planted = PlantedError(f"the {kind} hook failed on purpose")
            raise self.planted


@functools.cache
def _method_class(impl):
    class RecordingMethod(impl.QuantizeMethodBase):
        def __init__(self, recorder, repack=False):
            self.recorder, self.repack = recorder, repack

        def create_weights(self, layer, *args, **kwargs):
            raise NotImplementedError

        def apply(self, layer, *args, **kwargs):
            raise NotImplementedError

        def process_weights_after_loading(self, layer):
            devices = {name: p.device for name, p in layer.named_parameters()}
            others = {
                id(other): {p.device.type for p in other.parameters()}
                for other in self.recorder.offloaded
                if other is not layer
            }
            self.recorder.hook("quant", layer, (devices, others))
            if self.repack:
                layer.weight.data = layer.weight.data.t().contiguous()

    return RecordingMethod


@functools.cache
def _qkv_class(impl):
    class RecordingQKVCross(impl.QKVCrossParallelLinear):
        def __init__(self, recorder, quant_method):
            torch.nn.Module.__init__(self)
            self.recorder = recorder
            self.quant_method = quant_method
            self.weight = torch.nn.Parameter(torch.ones(2, 3), requires_grad=False)

        def process_weights_after_loading(self):
            self.recorder.hook("qkv", self)

    return RecordingQKVCross


@functools.cache
def _attention_class(impl):
    class RecordingAttention(impl.Attention):
        def __init__(self, recorder):
            torch.nn.Module.__init__(self)
            self.recorder = recorder

        # act_dtype optional: how the implementation calls the hook is PW-4's to judge, from the
        # record; a required parameter would turn a changed call into a TypeError of ours.
        def process_weights_after_loading(self, *args, **kwargs):
            self.recorder.hook("attention", self, _act_dtype(args, kwargs))

    return RecordingAttention


_NOT_GIVEN = "no act_dtype given"


def _act_dtype(args: tuple, kwargs: dict) -> object:
    """The act_dtype of an attention-hook call, whichever way it was passed, or what was passed instead."""
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args and set(kwargs) == {"act_dtype"}:
        return kwargs["act_dtype"]
    if not args and not kwargs:
        return _NOT_GIVEN
    return f"called with arguments {args!r} {kwargs!r}"


class ForeignMethod:
    """Has the hook's name but is no QuantizeMethodBase: must never be called (PW-1)."""

    def __init__(self, recorder):
        self.recorder = recorder

    def process_weights_after_loading(self, layer):
        self.recorder.hook("foreign", layer)


def build_model(impl, kinds, shared, target, recorder, repack=False):
    method = _method_class(impl)(recorder, repack=repack)
    model = torch.nn.Module()
    layers = torch.nn.ModuleList()
    for index, kind in enumerate(kinds):
        if kind == "qkv-cross":
            layer = _qkv_class(impl)(recorder, method)
        elif kind == "attention":
            layer = _attention_class(impl)(recorder)
        else:
            layer = torch.nn.Linear(3, 2 + index % 3, bias=index % 2 == 0)
            if kind in ("quantized", "offloaded"):
                layer.quant_method = method
                if kind == "quantized":
                    layer.to(target)
                elif target.type != "cpu":
                    recorder.offloaded.append(layer)
            elif kind == "foreign-method":
                layer.quant_method = ForeignMethod(recorder)
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


def _kinds(impl, data, min_size: int = 0, required: tuple[str, ...] = ()) -> list[str]:
    strategy = lst.layer_kinds(
        impl.provides("QKVCrossParallelLinear"), impl.provides("Attention"), min_size=min_size, required=required
    )
    return data.draw(strategy, label="kinds")


def _run_order_case(impl, llama_folder, target, kinds, shared, dtype):
    """Run the pass over a model of ``kinds``; return (hooks seen, hooks the spec orders, describer)."""
    recorder = Recorder()
    model = build_model(impl, kinds, shared, target, recorder)
    kinds_by_module = {id(layer): kind for layer, kind in zip(model.layers, kinds, strict=False)}
    model_config = impl.model_config(llama_folder, dtype=dtype)
    impl.process_weights_after_loading(model, model_config, target)
    seen = [(e.kind, e.module, e.detail) if e.kind == "attention" else (e.kind, e.module) for e in recorder.log]
    expected = expected_events(model, kinds_by_module, model_config.dtype)

    def describe(note: str) -> str:
        def show(events):
            # (kind, layer index[, the act_dtype an attention hook got]): what the implementation passed
            return [
                (e[0], kinds.index(kinds_by_module[id(e[1])]) if id(e[1]) in kinds_by_module else "?", *e[2:])
                for e in events
            ]

        return f"{note}; for layers {kinds} the hooks ran as {show(seen)}, expected {show(expected)}"

    return seen, expected, kinds_by_module, describe


@pytest.mark.req("PW-1")
@given(data=st.data(), shared=lst.shared_positions, dtype=lst.hook_dtypes)
def test_each_quantized_module_is_processed_once_in_order(impl, llama_folder, target, data, shared, dtype):
    kinds = _kinds(impl, data, required=("quantized",))
    seen, expected, kinds_by_module, describe = _run_order_case(impl, llama_folder, target, kinds, shared, dtype)
    # A cross-QKV layer's quant_method is PW-2's business.
    quant_seen = [e for e in seen if e[0] in ("quant", "foreign") and kinds_by_module.get(id(e[1])) != "qkv-cross"]
    quant_expected = [e for e in expected if e[0] == "quant"]
    with requirement("PW-1"):
        assert quant_seen == quant_expected, describe("PW-1: each quantized module once, in traversal order")


@pytest.mark.req("PW-4")
@given(data=st.data(), shared=lst.shared_positions, dtype=lst.hook_dtypes)
def test_attention_hooks_run_last_with_the_model_dtype(impl, llama_folder, target, data, shared, dtype):
    impl.Attention  # noqa: B018 (not provided -> reported as such)
    kinds = _kinds(impl, data, required=("attention",))
    seen, expected, _, describe = _run_order_case(impl, llama_folder, target, kinds, shared, dtype)
    attention_expected = [e for e in expected if e[0] == "attention"]
    first_pass = len(seen) - len([e for e in seen if e[0] == "attention"])
    with requirement("PW-4"):
        assert [e for e in seen if e[0] == "attention"] == attention_expected, describe(
            "PW-4: each attention hook once, in traversal order, with model_config.dtype"
        )
    with requirement("PW-4"):
        assert all(e[0] == "attention" for e in seen[first_pass:]), describe(
            "PW-4: an attention hook ran before the first pass ended"
        )


@pytest.mark.req("PW-2")
@given(data=st.data(), shared=lst.shared_positions, dtype=lst.hook_dtypes)
def test_cross_qkv_layers_run_their_own_hook(impl, llama_folder, target, data, shared, dtype):
    impl.QKVCrossParallelLinear  # noqa: B018 (not provided -> reported as such)
    kinds = _kinds(impl, data, required=("qkv-cross",))
    seen, expected, kinds_by_module, describe = _run_order_case(impl, llama_folder, target, kinds, shared, dtype)
    on_cross = [e for e in seen if e[0] == "quant" and kinds_by_module.get(id(e[1])) == "qkv-cross"]
    with requirement("PW-2"):
        assert not on_cross, describe("PW-2: the traversal called a cross-QKV layer's quant_method")
    first_pass = [e for e in seen if e[0] in ("qkv", "quant")]
    expected_first = [e for e in expected if e[0] in ("qkv", "quant")]
    with requirement("PW-2"):
        assert first_pass == expected_first, describe("PW-2: each cross-QKV hook once, in the first pass")


@pytest.mark.req("PW-6", "PW-7")
@given(data=st.data(), repack=st.booleans())
def test_quantize_methods_run_inside_the_device_context(impl, llama_folder, accelerator, data, repack):
    kinds = _kinds(impl, data, required=("offloaded",))
    recorder = Recorder()
    model = build_model(impl, kinds, [], accelerator, recorder, repack=repack)
    offloaded = [layer for layer, kind in zip(model.layers, kinds, strict=False) if kind == "offloaded"]
    expected_after = {}
    for layer in offloaded:
        weight = layer.weight.detach()
        expected_after[id(layer)] = raw_bytes(weight.t().contiguous() if repack else weight)
    impl.process_weights_after_loading(model, impl.model_config(llama_folder), accelerator)
    for event_ in recorder.log:
        if event_.kind == "quant":
            devices, others = event_.detail
            with requirement("PW-6"):
                assert all(device == accelerator for device in devices.values()), (
                    f"PW-6: a quantize method saw parameters on {devices}, not all on {accelerator}"
                )
            with requirement("PW-7"):
                assert all(types == {"cpu"} for types in others.values()), (
                    f"PW-7: while a quantize method ran, another offloaded layer had parameters on {others}"
                )
    for layer in offloaded:
        devices = {name: p.device.type for name, p in layer.named_parameters()}
        with requirement("PW-7"):
            assert set(devices.values()) == {"cpu"}, f"PW-7: an offloaded layer ended with {devices}"
        with requirement("PW-7"):
            assert raw_bytes(layer.weight) == expected_after[id(layer)], (
                "PW-7: an offloaded weight lost what the hook left"
            )


@pytest.mark.req("PW-8")
@given(data=st.data())
def test_with_a_cpu_target_hooks_see_parameters_in_place(impl, llama_folder, data):
    kinds = _kinds(impl, data, required=("offloaded",))
    recorder = Recorder()
    cpu = torch.device("cpu")
    model = build_model(impl, kinds, [], cpu, recorder)
    impl.process_weights_after_loading(model, impl.model_config(llama_folder), cpu)
    quant = [e for e in recorder.log if e.kind == "quant"]
    with requirement("PW-8"):
        assert len(quant) == sum(kind in ("quantized", "offloaded") for kind in kinds), (
            f"PW-8: with a CPU target, {len(quant)} quantize calls for layers {kinds}"
        )
    for event_ in quant:
        devices, _ = event_.detail
        with requirement("PW-8"):
            assert {d.type for d in devices.values()} <= {"cpu"}, f"PW-8: with a CPU target a hook saw {devices}"


def _failing_case(impl, llama_folder, target, data):
    """A model whose hooks include a failing one (most examples: drawn among those that run)."""
    kinds = _kinds(impl, data, required=("offloaded",))
    probe = build_model(impl, kinds, [], target, Recorder())
    kinds_by_module = {id(layer): kind for layer, kind in zip(probe.layers, kinds, strict=False)}
    hooks = len(expected_events(probe, kinds_by_module, torch.float32))
    fail_at = data.draw(st.integers(1, hooks), label="fail_at")
    recorder = Recorder(fail_at=fail_at)
    model = build_model(impl, kinds, [], target, recorder)
    before = {
        id(layer): {name: raw_bytes(p) for name, p in layer.named_parameters()}
        for layer, kind in zip(model.layers, kinds, strict=False)
        if kind == "offloaded"
    }
    raised = None
    try:
        impl.process_weights_after_loading(model, impl.model_config(llama_folder), target)
    except unittest.SkipTest:  # NotProvided
        raise
    except BaseException as error:
        raised = error
    failed = [e.kind for e in recorder.log if e.kind != "foreign"][fail_at - 1] if recorder.planted else None
    event(f"PW: the {failed} hook fails" if failed else "PW: no hook failed")
    return kinds, model, recorder, raised, before


@pytest.mark.req("PW-9")
@given(data=st.data())
def test_a_hook_exception_propagates_unchanged(impl, llama_folder, target, data):
    kinds, _, recorder, raised, _ = _failing_case(impl, llama_folder, target, data)
    with requirement("PW-9"):
        assert recorder.planted is not None, f"PW-9: the failing hook never ran for layers {kinds}: {recorder.log}"
    with requirement("PW-9"):
        assert raised is recorder.planted, f"PW-9: the hook raised {recorder.planted!r}, the pass let out {raised!r}"


@pytest.mark.req("PW-10")
@given(data=st.data())
def test_no_hook_runs_after_a_failing_one(impl, llama_folder, target, data):
    kinds, _, recorder, _, _ = _failing_case(impl, llama_folder, target, data)
    hooks = [e.kind for e in recorder.log if e.kind != "foreign"]
    with requirement("PW-10"):
        assert len(hooks) == recorder.fail_at, (
            f"PW-10: after hook {recorder.fail_at} failed, hooks still ran: {hooks} (layers {kinds})"
        )


@pytest.mark.req("PW-11")
@given(data=st.data())
def test_a_failing_hook_module_is_restored_first(impl, llama_folder, target, data):
    kinds, model, _, _, before = _failing_case(impl, llama_folder, target, data)
    for layer, kind in zip(model.layers, kinds, strict=False):
        if kind == "offloaded":
            for name, p in layer.named_parameters():
                with requirement("PW-11"):
                    assert p.device.type == "cpu", f"PW-11: a failed hook left {name} on {p.device}"
                with requirement("PW-11"):
                    assert raw_bytes(p) == before[id(layer)][name], f"PW-11: {name} changed value"


# --- single clauses at their boundaries (meta_tests/clauses.py) ------------------------------


class _OwnHookModule(torch.nn.Module):
    """No ``Attention``, yet with a ``process_weights_after_loading`` method of its own (PW-4)."""

    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def process_weights_after_loading(self, *args, **kwargs):
        self.recorder.hook("foreign", self, _act_dtype(args, kwargs))


@pytest.mark.req("PW-4")
@given(position=st.integers(0, 2), dtype=lst.hook_dtypes)
def test_only_attention_modules_get_the_attention_hook_call(impl, llama_folder, target, position, dtype):
    impl.Attention  # noqa: B018 (not provided -> reported as such)
    recorder = Recorder()
    model = build_model(impl, ["attention", "plain"], [], target, recorder)
    model.layers.insert(position, _OwnHookModule(recorder))
    impl.process_weights_after_loading(model, impl.model_config(llama_folder, dtype=dtype), target)
    called = [e.detail for e in recorder.log if isinstance(e.module, _OwnHookModule)]
    with requirement("PW-4"):
        assert not called, f"PW-4: the second pass called the hook of a module that is no Attention, with {called}"
