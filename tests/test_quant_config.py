"""Quantization-config wiring (spec/quant-config.md): ``configure_quant_config``
hands a model class's mappings to the quantization config, by reference."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

ATTRIBUTE_STATES = ("absent", "none", "present")


def _model_class(impl, supports_quant: bool, mapper: str, mapping: str) -> type[torch.nn.Module]:
    attributes: dict[str, object] = {}
    if mapper != "absent":
        attributes["hf_to_vllm_mapper"] = (
            None if mapper == "none" else impl.WeightsMapper(orig_to_new_prefix={"model.": "language_model."})
        )
    if mapping != "absent":
        attributes["packed_modules_mapping"] = (
            None if mapping == "none" else {"qkv_proj": ["q_proj", "k_proj", "v_proj"]}
        )
    bases = (impl.SupportsQuant, torch.nn.Module) if supports_quant else (torch.nn.Module,)
    return type("ToyModel", bases, attributes)


def _spy_on_mapper(quant_config) -> list[tuple[object, object]]:
    """Record (mapper, the config's mapping at that moment) for each apply_vllm_mapper call."""
    calls: list[tuple[object, object]] = []
    original = quant_config.apply_vllm_mapper

    def apply_vllm_mapper(hf_to_vllm_mapper):
        calls.append((hf_to_vllm_mapper, quant_config.packed_modules_mapping))
        return original(hf_to_vllm_mapper)

    quant_config.apply_vllm_mapper = apply_vllm_mapper
    return calls


@pytest.mark.req("QC-1", "QC-2", "QC-3", "QC-4")
@given(
    supports_quant=st.booleans(),
    mapper=st.sampled_from(ATTRIBUTE_STATES),
    mapping=st.sampled_from(ATTRIBUTE_STATES),
)
def test_mappings_are_wired_by_reference(impl, supports_quant, mapper, mapping):
    model_class = _model_class(impl, supports_quant, mapper, mapping)
    quant_config = impl.quant_config()
    calls = _spy_on_mapper(quant_config)
    own_mapping = quant_config.packed_modules_mapping
    own_content = dict(own_mapping)

    impl.configure_quant_config(quant_config, model_class)

    where = f"(SupportsQuant={supports_quant}, hf_to_vllm_mapper {mapper}, packed_modules_mapping {mapping})"
    if supports_quant:
        assert calls == [], f"QC-3: apply_vllm_mapper was called for a SupportsQuant class {where}"
        assert quant_config.packed_modules_mapping is own_mapping, f"QC-3: the mapping was replaced {where}"
        assert own_mapping == own_content, f"QC-3: the mapping was changed {where}"
        return
    if mapper == "present":
        assert [m for m, _ in calls] == [model_class.hf_to_vllm_mapper], (
            f"QC-1: expected one apply_vllm_mapper(model_class.hf_to_vllm_mapper), got {calls} {where}"
        )
        assert calls[0][1] is own_mapping, f"QC-1: the mapper was applied after the mapping was set {where}"
    else:
        assert calls == [], f"QC-4: apply_vllm_mapper called without a mapper {where}"
    if mapping == "present":
        assert quant_config.packed_modules_mapping is model_class.packed_modules_mapping, (
            f"QC-2: the config holds {quant_config.packed_modules_mapping!r}, not the class's own dict {where}"
        )
    else:
        assert quant_config.packed_modules_mapping is own_mapping, f"QC-4: mapping replaced {where}"


@pytest.mark.req("QC-2")
def test_later_updates_to_the_class_mapping_reach_the_config(impl):
    model_class = _model_class(impl, False, "absent", "present")
    quant_config = impl.quant_config()
    impl.configure_quant_config(quant_config, model_class)
    model_class.packed_modules_mapping["gate_up_proj"] = ["gate_proj", "up_proj"]
    assert quant_config.packed_modules_mapping.get("gate_up_proj") == ["gate_proj", "up_proj"], (
        "QC-2: an update made by the model class after wiring (as chatglm's __new__ does) is not seen"
    )
