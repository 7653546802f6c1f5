"""Device loading (spec/device-loading.md): ``device_loading_context`` moves a
module's CPU parameters to the target for the block and restores them after."""

from __future__ import annotations

import contextlib
import math
import re
import unittest

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from loaderspec.support.checks import requirement

from . import strategies as lst
from .support.device_properties import (
    PlantedError,
    check_device_round_trip,
    check_failed_move_is_undone,
    check_original_storages,
    no_error,
    run_body,
    storage_bytes,
)
from .support.errors import expect_raises
from .support.modules import is_dense
from .support.tensors import Snapshot


@pytest.mark.req(
    "DL-2", "DL-3", "DL-5", "DL-6", "DL-9", "DL-10", "DL-11", "DL-12", "DL-14", "DL-15", "DL-16", "DL-17", "DL-18"
)
@given(spec=lst.module_specs(), body=lst.bodies())
def test_device_state_is_restored(impl, accelerator, pin_memory, spec, body):
    _label_body(spec, body)
    check_device_round_trip(impl.device_loading_context, spec, body, accelerator, pin_memory)


def _label_body(spec: lst.ModuleSpec, body: lst.Body) -> None:
    """Hypothesis statistics (``--hypothesis-show-statistics``): how often each branch is taken."""
    event(
        "DL: some parameter starts on the CPU" if any(not p.on_target for p in spec.params) else "DL: nothing to move"
    )
    for step in body.steps:
        event(f"DL: body step {step.action}")
        if step.tensor.layout == "expanded" and step.action in ("replace-data", "re-register", "add-parameter"):
            event("DL-16: the body leaves overlapping data")
    event(f"DL: body ends by {body.raises or 'returning'}")
    if body.default_device:
        event("DL-18: under another default device")


@pytest.mark.req("DL-1")
@given(spec=lst.module_specs(allow_on_target=False), raises=st.booleans())
def test_cpu_target_moves_nothing(impl, spec, raises):
    module = lst.build_module(spec, torch.device("cpu"))
    before = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    with pytest.raises(PlantedError) if raises else no_error():
        with impl.device_loading_context(module, torch.device("cpu")) as yielded:
            with requirement("DL-1"):
                assert yielded is module, f"DL-1: the context yielded {yielded!r}, not the module"
            inside = {name: Snapshot.of(p) for name, p in module.named_parameters()}
            with requirement("DL-1"):
                assert inside == before, "DL-1: a CPU target moved parameters on entry"
            if raises:
                raise PlantedError
    after = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    with requirement("DL-1"):
        assert after == before, "DL-1: a CPU target moved parameters on exit"


@pytest.mark.req("DL-7")
@given(spec=lst.module_specs(allow_on_target=False), failing=st.integers(0, 7))
def test_failed_move_is_undone(impl, accelerator, spec, failing):
    check_failed_move_is_undone(impl.device_loading_context, spec, failing, accelerator)


@pytest.mark.req("DL-8")
@pytest.mark.parametrize("target", ["sim", "cuda", "cpu", None, 0])
def test_target_must_be_a_device(impl, target):
    module = torch.nn.Linear(2, 2)
    weight = module.weight.data_ptr()
    with expect_raises(TypeError, "DL-8", f"target_device={target!r}", match=re.escape(repr(target))):
        with impl.device_loading_context(module, target):
            with requirement("DL-8"):
                pytest.fail(f"DL-8: the body ran with target_device={target!r}")
    with requirement("DL-8"):
        assert module.weight.data_ptr() == weight, "DL-8: a parameter moved before the target was rejected"


@pytest.mark.req("DL-13")
@given(replace=st.booleans(), through_head=st.booleans())
def test_tied_weights_stay_tied(impl, accelerator, replace, through_head):
    embed = torch.nn.Embedding(4, 3)
    head = torch.nn.Linear(3, 4, bias=False)
    head.weight = embed.weight
    model = torch.nn.ModuleDict({"embed": embed, "head": head})
    with impl.device_loading_context(model, accelerator):
        weight = model["head" if through_head else "embed"].weight
        if replace:  # a repacking body: new data, another shape
            weight.data = torch.ones(3, 4, device=accelerator)
        else:
            weight.data.mul_(2)
    with requirement("DL-13"):
        assert model["head"].weight is model["embed"].weight, "DL-13: tied parameters were untied"
    with requirement("DL-13"):
        assert model["embed"].weight.device.type == "cpu", (
            f"DL-13: the tied weight ended on {model['embed'].weight.device}"
        )


OVERLAPPING = {
    "a row twice": ((1, 3), (2, 3)),
    "one element twice": ((1,), (2,)),  # the fewest elements that can overlap
    "a row twice, a size-1 dimension between": ((1, 1, 3), (2, 1, 3)),
}
"""Overlapping data a body may leave: (shape of the data, shape it is expanded to)."""


@pytest.mark.req("DL-16")
@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
@pytest.mark.parametrize("shapes", list(OVERLAPPING.values()), ids=list(OVERLAPPING))
def test_overlapping_data_is_restored_and_the_body_error_kept(impl, accelerator, raises, shapes):
    data_shape, expanded = shapes
    module = torch.nn.Linear(3, 2, bias=True)
    bias = module.bias.detach().clone()
    values = torch.arange(float(math.prod(data_shape))).reshape(data_shape)
    planted = PlantedError("body raised on purpose")
    escaped: BaseException | None = None
    try:
        with impl.device_loading_context(module, accelerator):
            module.weight.data = values.to(accelerator).expand(expanded)
            if raises:
                raise planted
    except unittest.SkipTest:  # NotProvided
        raise
    except Exception as error:
        escaped = error
    expected = planted if raises else None
    with requirement("DL-16"):
        assert escaped is expected, (
            f"DL-16: the body {'raised ' + repr(planted) if raises else 'returned'}, the context let out {escaped!r}"
        )
    weight = module.weight
    with requirement("DL-16"):
        assert weight.device.type == "cpu" and weight.shape == expanded, (
            f"DL-16: the weight ended as {tuple(weight.shape)} on {weight.device}"
        )
    with requirement("DL-16"):
        assert torch.equal(weight, values.expand(expanded)), "DL-16: the weight was restored with other values"
    with requirement("DL-16"):
        assert is_dense(weight.data), (
            f"DL-16: overlapping {tuple(expanded)} data was restored with strides {weight.stride()}, not densely"
        )
    with requirement("DL-16"):
        assert torch.equal(module.bias, bias) and module.bias.device.type == "cpu", (
            "DL-16: the other parameter was not restored"
        )


NOT_OVERLAPPING = {
    "a leading size-1 dimension": ((1, 3), (0, 1)),
    "a size-1 dimension between": ((2, 1, 3), (3, 0, 1)),
    "two size-1 dimensions": ((1, 2, 1), (0, 1, 0)),
}
"""Data with a stride of 0 that does not overlap: (size, stride) of the data a body leaves. A
dimension of size 1 never repeats an element whatever its stride, so DL-16 does not apply and
DL-11 keeps these strides."""


@pytest.mark.req("DL-11")
@pytest.mark.parametrize("layout", list(NOT_OVERLAPPING.values()), ids=list(NOT_OVERLAPPING))
def test_stride_zero_of_a_size_one_dimension_is_kept(impl, accelerator, layout):
    size, stride = layout
    module = torch.nn.Linear(3, 2, bias=False)
    values = torch.arange(float(math.prod(size)))
    with impl.device_loading_context(module, accelerator):
        data = values.to(accelerator).as_strided(size, stride)
        module.weight.data = data
        left = (tuple(data.size()), tuple(data.stride()), data.dtype)
    weight = module.weight.data
    restored = (tuple(weight.size()), tuple(weight.stride()), weight.dtype)
    with requirement("DL-11"):
        assert restored == left, (
            f"DL-11: the body left (size, stride, dtype) {left}, which does not overlap; restored as {restored}"
        )
    with requirement("DL-10"):
        assert weight.device.type == "cpu" and torch.equal(weight, values.reshape(size)), (
            f"DL-10: the weight was restored on {weight.device} with {weight.tolist()}, not {values.tolist()}"
        )


@pytest.mark.req("DL-19")
@given(
    spec=lst.module_specs(allow_on_target=False),
    body=lst.bodies(layouts=lst.PARAMETER_LAYOUTS),
    pin_originals=st.booleans(),
)
def test_reused_host_storage_holds_the_body_values(impl, accelerator, pin_memory, spec, body, pin_originals):
    """DL-19 (MAY) under any body that leaves no overlapping data (how that is restored is
    DL-16's, and a DL-16 failure must not fail DL-19): allocating conforms; reusing the original
    host storage must happen only under DL-19's conditions, into the original view, leaving the
    storage's other bytes."""
    module = lst.build_module(spec, accelerator)
    if pin_originals:  # as vLLM's CPU offloading allocates them
        for param in module.parameters():
            if param.numel() > 0:
                param.data = param.data.pin_memory()
    _check_storages_after(impl, module, accelerator, pin_memory, lambda: run_body(module, body, accelerator))


@pytest.mark.req("DL-19")
@given(case=lst.reuse_cases())
def test_original_storage_takes_back_only_what_dl19_allows(impl, accelerator, pin_memory, case):
    """DL-19 (MAY) at its edges: bodies that keep a parameter's size, stride and dtype or change
    exactly one; several parameters of one shape; originals sharing one host buffer; pinned or not."""
    module = case.build()
    event(f"DL-19: originals {'in one buffer' if case.one_buffer else 'apart'}, pinned={case.pin_originals}")
    _check_storages_after(impl, module, accelerator, pin_memory, lambda: case.run_body(module, accelerator))


def _check_storages_after(impl, module, accelerator, pin_memory, body) -> None:
    """Run ``body`` in the context on ``module`` (every parameter on the CPU), then DL-19."""
    originals = {name: p.data for name, p in module.named_parameters() if p.device.type == "cpu"}
    storages = {name: storage_bytes(t) for name, t in originals.items()}
    at_body_end: dict[str, Snapshot] = {}
    with contextlib.suppress(PlantedError, KeyboardInterrupt):
        with impl.device_loading_context(module, accelerator):
            try:
                body()
            finally:
                at_body_end = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    check_original_storages(module, originals, storages, at_body_end, pin_memory)
