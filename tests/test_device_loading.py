"""Device loading (spec/device-loading.md): ``device_loading_context`` moves a
module's CPU parameters to the target for the block and restores them after."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from . import strategies as lst
from .support.device_properties import (
    PlantedError,
    check_device_round_trip,
    check_failed_move_is_undone,
    no_error,
)
from .support.errors import expect_raises
from .support.tensors import Snapshot


@pytest.mark.req("DL-2", "DL-3", "DL-4", "DL-5", "DL-6", "DL-9")
@given(spec=lst.module_specs(), body=lst.bodies())
def test_device_state_is_restored(impl, accelerator, pin_memory, spec, body):
    check_device_round_trip(impl.device_loading_context, spec, body, accelerator, pin_memory)


@pytest.mark.req("DL-1")
@given(spec=lst.module_specs(allow_on_target=False), raises=st.booleans())
def test_cpu_target_moves_nothing(impl, spec, raises):
    module = lst.build_module(spec, torch.device("cpu"))
    before = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    with pytest.raises(PlantedError) if raises else no_error():
        with impl.device_loading_context(module, torch.device("cpu")) as yielded:
            assert yielded is module, f"DL-1: the context yielded {yielded!r}, not the module"
            inside = {name: Snapshot.of(p) for name, p in module.named_parameters()}
            assert inside == before, "DL-1: a CPU target moved parameters on entry"
            if raises:
                raise PlantedError
    after = {name: Snapshot.of(p) for name, p in module.named_parameters()}
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
            pytest.fail(f"DL-8: the body ran with target_device={target!r}")
    assert module.weight.data_ptr() == weight, "DL-8: a parameter moved before the target was rejected"


@pytest.mark.req("DL-4")
def test_tied_weights_stay_tied(impl, accelerator):
    embed = torch.nn.Embedding(4, 3)
    head = torch.nn.Linear(3, 4, bias=False)
    head.weight = embed.weight
    model = torch.nn.ModuleDict({"embed": embed, "head": head})
    with impl.device_loading_context(model, accelerator):
        assert model["head"].weight.device == accelerator
        model["embed"].weight.data.mul_(2)
    assert model["head"].weight is model["embed"].weight, "DL-4: tied parameters were untied"
    assert model["embed"].weight.device.type == "cpu"


# --- added by the mutation run (tools/mutants/survivors.md): a non-CPU default device ---


@pytest.mark.req("DL-4")
def test_restored_data_is_on_the_cpu_whatever_the_default_device(impl, accelerator, pin_memory):
    from .support.errors import expect_success

    module = torch.nn.Linear(3, 2)  # built on the CPU before the default device changes
    before = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    with expect_success("DL-4", f"a device context used under `with torch.device({str(accelerator)!r})`"):
        with torch.device(accelerator), impl.device_loading_context(module, accelerator):
            pass
    for name, p in module.named_parameters():
        assert p.device.type == "cpu", (
            f"DL-4: with {accelerator} as default device, {name} was restored to {p.device}, not the CPU"
        )
        assert Snapshot.of(p).content == before[name].content, f"DL-4: {name} restored with other bytes"
