"""Quantization-config wiring (spec/quant-config.md): ``configure_quant_config``
hands a model class's mappings to the quantization config, by reference.

The mapper's attribute and the config's method are named by the adapter
(``impl.mapper_attribute``, ``impl.apply_mapper_method``; vLLM's by default)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from loaderspec.adapter import NotProvided
from loaderspec.support.checks import requirement

from . import strategies as lst


def _mapper(impl) -> object:
    """A real weights mapper when the implementation has the class, else a stand-in object:
    QC-1 is about which object is handed over, not about what it does."""
    if impl.provides("WeightsMapper"):
        return impl.WeightsMapper(orig_to_new_prefix={"model.": "language_model."})
    return object()


def _model_class(impl, mapper: str, mapping: str, bases: tuple[type, ...] = (torch.nn.Module,)) -> type:
    attributes: dict[str, object] = {}
    if mapper != "absent":
        attributes[impl.mapper_attribute] = None if mapper == "none" else _mapper(impl)
    if mapping != "absent":
        attributes["packed_modules_mapping"] = (
            None if mapping == "none" else {"qkv_proj": ["q_proj", "k_proj", "v_proj"]}
        )
    return type("ToyModel", bases, attributes)


def _spy_on_mapper(impl, quant_config) -> list[tuple[object, object]]:
    """Record (mapper, the config's mapping at that moment) for each call of the config's
    apply-mapper method."""
    calls: list[tuple[object, object]] = []
    original = getattr(quant_config, impl.apply_mapper_method, None)
    if original is None:
        raise NotProvided(impl.name, f"{type(quant_config).__name__}.{impl.apply_mapper_method}")

    def apply_mapper(mapper):
        calls.append((mapper, quant_config.packed_modules_mapping))
        return original(mapper)

    setattr(quant_config, impl.apply_mapper_method, apply_mapper)
    return calls


def _wire(impl, model_class):
    configure = impl.configure_quant_config  # "not provided" before anything else, when absent
    quant_config = impl.quant_config()
    calls = _spy_on_mapper(impl, quant_config)
    own_mapping = quant_config.packed_modules_mapping
    configure(quant_config, model_class)
    return quant_config, calls, own_mapping


def _where(impl, mapper: str, mapping: str) -> str:
    return f"({impl.mapper_attribute} {mapper}, packed_modules_mapping {mapping})"


@pytest.mark.req("QC-1")
@given(mapping=st.sampled_from(lst.ATTRIBUTE_STATES))
def test_the_mapper_itself_is_applied_first(impl, mapping):
    model_class = _model_class(impl, "present", mapping)
    mapper = impl.mapper_of(model_class)
    _, calls, own_mapping = _wire(impl, model_class)
    where = _where(impl, "present", mapping)
    with requirement("QC-1"):
        assert len(calls) == 1, f"QC-1: expected one {impl.apply_mapper_method}() call, got {len(calls)} {where}"
    with requirement("QC-1"):
        assert calls[0][0] is mapper, (
            f"QC-1: {impl.apply_mapper_method}() got {calls[0][0]!r}, not the class's {impl.mapper_attribute} "
            f"object itself {where}"
        )
    with requirement("QC-1"):
        assert calls[0][1] is own_mapping, f"QC-1: the mapper was applied after the mapping was set {where}"


@pytest.mark.req("QC-2")
@given(mapper=st.sampled_from(lst.ATTRIBUTE_STATES))
def test_the_mapping_is_shared_by_reference(impl, mapper):
    model_class = _model_class(impl, mapper, "present")
    quant_config, _, _ = _wire(impl, model_class)
    with requirement("QC-2"):
        assert quant_config.packed_modules_mapping is model_class.packed_modules_mapping, (
            f"QC-2: the config holds {quant_config.packed_modules_mapping!r}, not the class's own dict "
            f"{_where(impl, mapper, 'present')}"
        )


@pytest.mark.req("QC-2")
def test_later_updates_to_the_class_mapping_reach_the_config(impl):
    model_class = _model_class(impl, "absent", "present")
    quant_config = impl.quant_config()
    impl.configure_quant_config(quant_config, model_class)
    model_class.packed_modules_mapping["gate_up_proj"] = ["gate_proj", "up_proj"]
    with requirement("QC-2"):
        assert quant_config.packed_modules_mapping.get("gate_up_proj") == ["gate_proj", "up_proj"], (
            "QC-2: an update made by the model class after wiring (as chatglm's __new__ does) is not seen"
        )


@pytest.mark.req("QC-3")
@given(mapper=st.sampled_from(lst.ATTRIBUTE_STATES), mapping=st.sampled_from(lst.ATTRIBUTE_STATES))
def test_supports_quant_classes_are_left_alone(impl, mapper, mapping):
    model_class = _model_class(impl, mapper, mapping, bases=(impl.SupportsQuant, torch.nn.Module))
    quant_config = impl.quant_config()
    calls = _spy_on_mapper(impl, quant_config)
    own_mapping = quant_config.packed_modules_mapping
    own_content = dict(own_mapping)
    impl.configure_quant_config(quant_config, model_class)
    where = _where(impl, mapper, mapping)
    with requirement("QC-3"):
        assert calls == [], f"QC-3: {impl.apply_mapper_method}() was called for a SupportsQuant class {where}"
    with requirement("QC-3"):
        assert quant_config.packed_modules_mapping is own_mapping, f"QC-3: the mapping was replaced {where}"
    with requirement("QC-3"):
        assert own_mapping == own_content, f"QC-3: the mapping was changed {where}"


@pytest.mark.req("QC-4")
@given(data=st.data())
def test_missing_or_none_attributes_do_nothing(impl, data):
    mapper, mapping = data.draw(lst.absent_attribute_pairs, label="mapper, mapping")
    event(f"QC-4: mapper {mapper}, mapping {mapping}")
    model_class = _model_class(impl, mapper, mapping)
    quant_config, calls, own_mapping = _wire(impl, model_class)
    where = _where(impl, mapper, mapping)
    if mapper != "present":
        with requirement("QC-4"):
            assert calls == [], f"QC-4: {impl.apply_mapper_method}() called without a mapper {where}"
    if mapping != "present":
        with requirement("QC-4"):
            assert quant_config.packed_modules_mapping is own_mapping, f"QC-4: the mapping was replaced {where}"


# --- single clauses at their boundaries (meta_tests/clauses.py) ------------------------------


def _falsy_mapper(impl) -> object:
    """A weights mapper that is falsy, yet not ``None`` (QC-1 says "is not ``None``")."""
    base = impl.WeightsMapper if impl.provides("WeightsMapper") else object
    return type("EmptyMapper", (base,), {"__bool__": lambda self: False, "__len__": lambda self: 0})()


@pytest.mark.req("QC-1")
def test_a_falsy_mapper_is_applied(impl):
    mapper = _falsy_mapper(impl)
    model_class = type("ToyModel", (torch.nn.Module,), {impl.mapper_attribute: mapper})
    _, calls, _ = _wire(impl, model_class)
    with requirement("QC-1"):
        assert len(calls) == 1 and calls[0][0] is mapper, (
            f"QC-1: expected one {impl.apply_mapper_method}() call with the falsy (not None) mapper, got {calls}"
        )


@pytest.mark.req("QC-1")
def test_an_inherited_mapper_is_applied(impl):
    base = _model_class(impl, "present", "absent")
    model_class = type("ToyModelChild", (base,), {})
    mapper = impl.mapper_of(base)
    _, calls, _ = _wire(impl, model_class)
    with requirement("QC-1"):
        assert len(calls) == 1 and calls[0][0] is mapper, (
            f"QC-1: expected one {impl.apply_mapper_method}() call with the mapper the class inherits, got {calls}"
        )


@pytest.mark.req("QC-2")
def test_an_inherited_mapping_is_shared(impl):
    base = _model_class(impl, "absent", "present")
    model_class = type("ToyModelChild", (base,), {})
    quant_config, _, _ = _wire(impl, model_class)
    with requirement("QC-2"):
        assert quant_config.packed_modules_mapping is base.packed_modules_mapping, (
            f"QC-2: the config holds {quant_config.packed_modules_mapping!r}, not the mapping the class inherits"
        )


@pytest.mark.req("QC-2")
@given(mapper=st.sampled_from(lst.ATTRIBUTE_STATES))
def test_an_empty_mapping_is_shared_by_reference(impl, mapper):
    """``{}`` is not ``None``: a class whose ``__new__`` fills its mapping later starts empty."""
    model_class = _model_class(impl, mapper, "absent")
    model_class.packed_modules_mapping = {}
    quant_config, _, _ = _wire(impl, model_class)
    with requirement("QC-2"):
        assert quant_config.packed_modules_mapping is model_class.packed_modules_mapping, (
            f"QC-2: the config holds {quant_config.packed_modules_mapping!r}, not the class's own empty dict "
            f"{_where(impl, mapper, 'empty')}"
        )


@pytest.mark.req("QC-3")
def test_indirect_supports_quant_subclasses_are_left_alone(impl):
    base = type("ToyQuantBase", (impl.SupportsQuant, torch.nn.Module), {})
    model_class = _model_class(impl, "present", "present", bases=(base,))
    quant_config = impl.quant_config()
    calls = _spy_on_mapper(impl, quant_config)
    own_mapping = quant_config.packed_modules_mapping
    impl.configure_quant_config(quant_config, model_class)
    with requirement("QC-3"):
        assert calls == [] and quant_config.packed_modules_mapping is own_mapping, (
            f"QC-3: a class deriving from SupportsQuant through {base.__name__} was wired: "
            f"{len(calls)} {impl.apply_mapper_method}() calls, mapping {quant_config.packed_modules_mapping!r}"
        )
