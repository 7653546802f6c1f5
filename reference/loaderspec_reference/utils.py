"""Utilities for selecting and loading models: the reference for vLLM 0.9.2's
``vllm/model_executor/model_loader/utils.py``.

Every public name here is specified in ``spec/``; docstrings cite the requirement
IDs they implement. Where the reference departs from vLLM 0.9.2 on purpose, the
code says ``DIVERGENCE`` and names the entry in ``spec/divergences.md``.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import transformers
from torch import nn
from transformers.dynamic_module_utils import get_class_from_dynamic_module

from loaderspec_reference.adapters import as_embedding_model, as_reward_model
from loaderspec_reference.config import ModelConfig, ModelImpl, VllmConfig, set_current_vllm_config
from loaderspec_reference.interfaces import SupportsQuant
from loaderspec_reference.layers import Attention, QKVCrossParallelLinear
from loaderspec_reference.logger import init_logger
from loaderspec_reference.platform import is_pin_memory_available
from loaderspec_reference.quantization import QuantizationConfig, QuantizeMethodBase
from loaderspec_reference.registry import ModelRegistry

__all__ = [
    "ParamMapping",
    "configure_quant_config",
    "device_loading_context",
    "get_architecture_class_name",
    "get_model_architecture",
    "get_model_cls",
    "initialize_model",
    "logger",
    "process_weights_after_loading",
    "resolve_transformers_arch",
    "set_default_torch_dtype",
]

logger = init_logger(__name__)

MIXTRAL_HANDLES = ("fp8", "compressed-tensors", "gptq_marlin", "awq_marlin", "quark")
"""Quantization methods that the regular ``MixtralForCausalLM`` handles itself (AR-2; the spec's name)."""

TRANSFORMERS_BACKEND_ARCH = "TransformersForCausalLM"

OLD_STYLE_ARGUMENTS: dict[str, Callable[[VllmConfig, ModelConfig, str], object]] = {
    "prefix": lambda vllm_config, model_config, prefix: prefix,
    "config": lambda vllm_config, model_config, prefix: model_config.hf_config,
    "cache_config": lambda vllm_config, model_config, prefix: vllm_config.cache_config,
    "quant_config": lambda vllm_config, model_config, prefix: vllm_config.quant_config,
    "lora_config": lambda vllm_config, model_config, prefix: vllm_config.lora_config,
    "scheduler_config": lambda vllm_config, model_config, prefix: vllm_config.scheduler_config,
}
"""The only constructor arguments guessed for an old-style model class (MI-7), in vLLM's order,
each with where its value comes from."""


@contextlib.contextmanager
def set_default_torch_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Sets the default torch dtype to the given dtype.

    DT-1 inside the block the default is ``dtype``; DT-2/DT-7 on every exit, normal
    or by any exception (``BaseException`` included), the default is the one before,
    DT-8 and the exception propagates;
    DT-4 blocks nest; DT-5/DT-6 a dtype that cannot be the default is rejected with
    ``TypeError`` naming it, before anything changes.
    """
    old_dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(dtype)
    except TypeError as error:
        # DIVERGENCE D-11: torch refuses before changing anything, but its message omits the value (DT-6).
        raise TypeError(f"set_default_torch_dtype: {dtype!r} cannot be the default dtype ({error})") from error
    try:
        yield
    finally:
        # DIVERGENCE D-1: vLLM 0.9.2 restores only on normal exit (no try/finally).
        torch.set_default_dtype(old_dtype)


def _validate_packed_mapping(packed_mapping: object) -> None:
    if not isinstance(packed_mapping, Mapping):
        raise TypeError(
            f"packed_mapping must be a mapping of packed name -> list of sub-names, "
            f"got {type(packed_mapping).__name__}: {packed_mapping!r}"
        )
    for packed_name, sub_params in packed_mapping.items():
        if not isinstance(packed_name, str):
            raise TypeError(f"packed_mapping key {packed_name!r} is not a str")
        if not packed_name:
            raise ValueError("packed_mapping has an empty key ''")
        if not isinstance(sub_params, (list, tuple)):
            raise TypeError(
                f"packed_mapping[{packed_name!r}] must be a list of sub-names, "
                f"got {type(sub_params).__name__}: {sub_params!r}"
            )
        for sub_name in sub_params:
            if not isinstance(sub_name, str):
                raise TypeError(f"packed_mapping[{packed_name!r}] holds {sub_name!r}, which is not a str")
            if not sub_name:
                raise ValueError(f"packed_mapping[{packed_name!r}] holds an empty sub-name ''")


@dataclass
class ParamMapping:
    """
    A class to handle parameter mapping for model weight loading.
    It creates a bidirectional mapping between packed parameters and their
    constituent parts.

    PM-1 ``packed_mapping`` is kept as given; PM-2/PM-3 ``inverse_packed_mapping``
    maps each sub-name to ``(packed_name, index)``, the last entry naming it winning;
    PM-4 self-contained entries are skipped; PM-5 ``get_sub_modules`` matches whole
    dotted components; malformed mappings are rejected (PM-7 ``TypeError``, PM-8
    ``ValueError``, PM-9 naming the part, PM-10 leaving it unchanged); PM-11 a given
    ``inverse_packed_mapping`` is extended in place.
    """

    packed_mapping: dict[str, list[str]]
    inverse_packed_mapping: dict[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # DIVERGENCE D-7: vLLM 0.9.2 validates nothing (a str value is iterated per character).
        _validate_packed_mapping(self.packed_mapping)
        for packed_name, sub_params in self.packed_mapping.items():
            # Skip self-contained cases (e.g., {"W_pack": ["W_pack"]})
            if len(sub_params) == 1 and sub_params[0] == packed_name:
                continue
            for index, param_name in enumerate(sub_params):
                self.inverse_packed_mapping[param_name] = (packed_name, index)

    def get_sub_modules(self, module_name: str) -> tuple[str, list[str]] | None:
        """The first packed entry, in mapping order, that ``module_name`` names (PM-5).

        ``module_name`` names ``key`` when it equals ``key`` or ends with ``"." + key``.
        """
        for key, value in self.packed_mapping.items():
            # DIVERGENCE D-4: vLLM 0.9.2 uses a bare endswith, so "kv_proj" matches "qkv_proj".
            if module_name == key or module_name.endswith("." + key):
                return key, value
        return None


def configure_quant_config(quant_config: QuantizationConfig, model_class: type[nn.Module]) -> None:
    """
    Pass packed_modules_mapping by reference to quant_config so that
    quant_config can properly match fused modules

    Note that model attributes are passed by reference to quant_config,
    enabling them to be updated by model_class.__new__ (ex. chatglm, qwen)

    QC-1 the mapper is applied first, QC-2 the mapping is shared by reference,
    QC-3 ``SupportsQuant`` classes are left alone, QC-4 absent attributes do nothing.
    """
    if not issubclass(model_class, SupportsQuant):
        hf_to_vllm_mapper = getattr(model_class, "hf_to_vllm_mapper", None)
        packed_mapping = getattr(model_class, "packed_modules_mapping", None)

        # pass mappings by reference to quant_config
        if hf_to_vllm_mapper is not None:
            quant_config.apply_vllm_mapper(hf_to_vllm_mapper)
        if packed_mapping is not None:
            quant_config.packed_modules_mapping = packed_mapping


# Longer than this project's 60-line guide on purpose: it mirrors vLLM's function statement by
# statement, so that a reader can diff the two (the divergences are marked where they happen).
@contextmanager
def device_loading_context(module: nn.Module, target_device: torch.device) -> Iterator[nn.Module]:
    """Move ``module``'s CPU parameters to ``target_device`` for the block, then back.

    DL-1 a CPU target moves nothing; DL-2 CPU parameters are on the target inside;
    DL-3 other parameters are untouched; DL-10 on every exit each recorded parameter
    still present by name (DL-14, DL-15) is back on CPU, DL-11 with the block's final
    size/stride/dtype, DL-12 bit for bit, DL-13 still shared; DL-16 overlapping data
    densely; DL-17 strided; DL-18 on the CPU whatever the default device; DL-5 pinned
    iff pinned memory is available; DL-6 parameters created inside stay; DL-7 a failed
    move on entry is undone; DL-8 a target that is not a ``torch.device`` is rejected
    before anything moves; DL-19 data the body left with its original
    size/stride/dtype goes back into its original host storage when that storage already
    satisfies DL-5.
    """
    if not isinstance(target_device, torch.device):
        # DIVERGENCE D-8: vLLM 0.9.2 raises AttributeError ('str' object has no attribute 'type').
        raise TypeError(
            f"device_loading_context: target_device must be a torch.device, got "
            f"{type(target_device).__name__}: {target_device!r}"
        )
    if target_device.type == "cpu":
        # If target is CPU, no need to move anything
        yield module
        return

    original_device_states: dict[str, torch.device] = {}
    # DL-10: the original host tensors, kept for the block so the restore can copy into them.
    originals: dict[str, torch.Tensor] = {}

    try:
        # DIVERGENCE D-5: vLLM 0.9.2 moves before its try, so a failed move strands the
        # parameters already moved on the target.
        # Store original device states and move parameters to the target if they're on CPU
        for name, p in module.named_parameters():
            if p.device.type == "cpu":
                original_device = p.device
                original = p.data
                p.data = original.to(target_device)
                original_device_states[name] = original_device
                originals[name] = original
            # Parameters already on target device are not touched

        yield module

    finally:
        # Restore parameters to their original devices, ignoring new parameters
        pin_memory = is_pin_memory_available()
        # DL-10: a storage that two recorded parameters share cannot take both back.
        seen: set[int] = set()
        shared: set[int] = set()
        for original in originals.values():
            ptr = original.untyped_storage().data_ptr()
            (shared if ptr in seen else seen).add(ptr)
        for name, p in module.named_parameters():
            if name in original_device_states:
                original_device = original_device_states[name]
                original = originals[name]
                if (
                    # DL-19 (MAY): the body left the original size/stride/dtype and the original
                    # host storage already satisfies DL-5, so copy back into it instead of
                    # allocating (what vLLM's pinned CPU offloading needs: no second pinned copy).
                    p.data.device.type != "cpu"
                    and p.data.dtype == original.dtype
                    and p.data.size() == original.size()
                    and p.data.stride() == original.stride()
                    and original.untyped_storage().data_ptr() not in shared
                    and original.is_pinned() == pin_memory
                ):
                    original.copy_(p.data)
                    p.data = original
                elif original_device.type == "cpu":
                    # `torch.empty_like` does not support `pin_memory` argument
                    cpu_data = torch.empty_strided(
                        size=p.data.size(),
                        stride=_restorable_stride(p.data),
                        dtype=p.data.dtype,
                        layout=p.data.layout,
                        device="cpu",
                        pin_memory=pin_memory,
                    )
                    cpu_data.copy_(p.data)
                    p.data = cpu_data
                else:
                    # Unreachable, as in vLLM 0.9.2: only CPU parameters are recorded.
                    p.data = p.data.to(original_device)


def _restorable_stride(data: torch.Tensor) -> tuple[int, ...]:
    """``data``'s strides, or contiguous ones when a dimension of size > 1 has stride 0:
    ``copy_`` cannot write into such overlapping memory (DL-16)."""
    if data.numel() <= 1 or not any(
        stride == 0 and size > 1 for size, stride in zip(data.size(), data.stride(), strict=True)
    ):
        return tuple(data.stride())
    # DIVERGENCE D-12: vLLM 0.9.2 keeps the overlapping strides; the copy then raises in `finally`.
    strides, step = [], 1
    for size in reversed(data.size()):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def process_weights_after_loading(model: nn.Module, model_config: ModelConfig, target_device: torch.device) -> None:
    """Run every post-loading hook of ``model``, once each.

    PW-1 each module's ``QuantizeMethodBase`` processes it, in ``named_modules``
    order, PW-6/PW-7 inside ``device_loading_context(module, target_device)`` (PW-8
    entered only for a non-CPU target, where it has an effect); PW-2 a
    ``QKVCrossParallelLinear`` runs its own hook instead; PW-4 then every
    ``Attention`` hook runs with ``model_config.dtype``; PW-9 an exception propagates
    unchanged, PW-10 no later hook runs, PW-11 after the device context has restored
    the module.
    """
    for _, module in model.named_modules():
        if isinstance(module, QKVCrossParallelLinear):
            # NOTE(Isotr0py): special case for cross QKV layer because
            # q and kv proj aren't registered as submodules intentionally
            module.process_weights_after_loading()
            continue
        quant_method = getattr(module, "quant_method", None)
        if isinstance(quant_method, QuantizeMethodBase):
            # When quant methods need to process weights after loading
            # (for repacking, quantizing, etc), they expect parameters
            # to be on the global target device. This scope is for the
            # case where cpu offloading is used, where we will move the
            # parameters onto device for processing and back off after.
            if isinstance(target_device, torch.device) and target_device.type == "cpu":
                # A CPU target's context moves nothing (DL-1); entering it per module
                # was 40% of the traversal's time over its floor (bench/RESULTS.md).
                quant_method.process_weights_after_loading(module)
                continue
            with device_loading_context(module, target_device):
                quant_method.process_weights_after_loading(module)

    # Currently only used by MLA.
    # NOTE: This intentionally happens after other modules so we can easily
    # decompress the weights for MLA.
    for _, module in model.named_modules():
        if isinstance(module, Attention) and hasattr(module, "process_weights_after_loading"):
            # TODO(lucas): see if there is a way to unify the signatures
            # of process_weights_after_loading
            module.process_weights_after_loading(model_config.dtype)


def _architectures_of(model_config: ModelConfig) -> list[str]:
    architectures = getattr(model_config.hf_config, "architectures", None)
    # DIVERGENCE D-9: vLLM 0.9.2 fails with TypeError on None and passes other
    # malformed values through.
    if architectures is None or isinstance(architectures, str) or not architectures:
        raise ValueError(
            f"hf_config.architectures of model {model_config.model!r} must be a non-empty "
            f"list of class names, got {architectures!r}"
        )
    return list(architectures)


def resolve_transformers_arch(model_config: ModelConfig, architectures: list[str]) -> list[str]:
    """Replace each architecture by the Transformers backend where that is allowed.

    TF-1 the backend's own name stays; TF-2 every ``auto_map`` class is loaded, in
    key order, from the local model folder; TF-3 the model class comes from
    transformers or ``auto_map["AutoModel"]``, else ``ValueError``; it must be
    backend-compatible (TF-8 / TF-11) under model_impl transformers / auto, then it
    becomes the backend (TF-9 / TF-12), TF-10 silently / TF-13 with a warning; TF-6
    model_impl vllm changes no name; TF-7 the argument is not modified.
    """
    # DIVERGENCE D-2: vLLM 0.9.2 edits the list it is given (hf_config.architectures).
    architectures = list(architectures)
    for i, arch in enumerate(architectures):
        if arch == TRANSFORMERS_BACKEND_ARCH:
            continue
        auto_map: dict[str, str] = getattr(model_config.hf_config, "auto_map", None) or dict()
        # Make sure that config class is always initialized before model class,
        # otherwise the model class won't be able to access the config class,
        # the expected auto_map should have correct order like:
        # "auto_map": {
        #     "AutoConfig": "<your-repo-name>--<config-name>",
        #     "AutoModel": "<your-repo-name>--<config-name>",
        #     "AutoModelFor<Task>": "<your-repo-name>--<config-name>",
        # },
        auto_modules = {
            name: get_class_from_dynamic_module(module, model_config.model, revision=model_config.revision)
            for name, module in sorted(auto_map.items(), key=lambda x: x[0])
        }
        model_module: Any = getattr(transformers, arch, None)
        if model_module is None:
            if "AutoModel" not in auto_map:
                raise ValueError(
                    f"Cannot find model module. '{arch}' is not a registered "
                    "model in the Transformers library (only relevant if the "
                    "model is meant to be in Transformers) and 'AutoModel' is "
                    "not present in the model config's 'auto_map' (relevant "
                    "if the model is custom)."
                )
            model_module = auto_modules["AutoModel"]
        # TODO(Isotr0py): Further clean up these raises.
        # perhaps handled them in _ModelRegistry._raise_for_unsupported?
        if model_config.model_impl == ModelImpl.TRANSFORMERS:
            if not model_module.is_backend_compatible():
                raise ValueError(f"The Transformers implementation of {arch} is not compatible with vLLM.")
            architectures[i] = TRANSFORMERS_BACKEND_ARCH
        if model_config.model_impl == ModelImpl.AUTO:
            if not model_module.is_backend_compatible():
                raise ValueError(
                    f"{arch} has no vLLM implementation and the Transformers "
                    "implementation is not compatible with vLLM. Try setting "
                    "VLLM_USE_V1=0."
                )
            logger.warning(
                "%s has no vLLM implementation, falling back to Transformers "
                "implementation. Some features may not be supported and "
                "performance may not be optimal.",
                arch,
            )
            architectures[i] = TRANSFORMERS_BACKEND_ARCH
    return architectures


def get_model_architecture(model_config: ModelConfig) -> tuple[type[nn.Module], str]:
    """The model class and architecture name to load ``model_config`` with.

    AR-1 the Transformers backend when asked for, or when auto finds no supported
    architecture; AR-2 otherwise quantized Mixtral -> ``QuantMixtralForCausalLM``
    unless its method handles Mixtral; AR-3 the registry picks the first supported
    name; AR-4 embed/reward tasks wrap the class, others keep it; AR-6 the config is
    not modified; AR-8/AR-9 missing architectures are rejected with ``ValueError``
    naming the field and the model.
    """
    architectures = _architectures_of(model_config)

    # Special handling for quantized Mixtral.
    # FIXME(woosuk): This is a temporary hack.
    mixtral_supported = list(MIXTRAL_HANDLES)

    vllm_supported_archs = ModelRegistry.get_supported_archs()
    vllm_not_supported = not any(arch in vllm_supported_archs for arch in architectures)
    if model_config.model_impl == ModelImpl.TRANSFORMERS or (
        model_config.model_impl != ModelImpl.VLLM and vllm_not_supported
    ):
        architectures = resolve_transformers_arch(model_config, architectures)
    elif (
        model_config.quantization is not None
        and model_config.quantization not in mixtral_supported
        and "MixtralForCausalLM" in architectures
    ):
        architectures = ["QuantMixtralForCausalLM"]

    model_cls, arch = ModelRegistry.resolve_model_cls(architectures)
    if model_config.task == "embed":
        model_cls = as_embedding_model(model_cls)
    elif model_config.task == "classify":
        # Cannot automatically run as_seq_cls_model,
        # otherwise it will cause a circular reference on is_cross_encoder_model
        pass
    elif model_config.task == "reward":
        model_cls = as_reward_model(model_cls)

    return model_cls, arch


def get_model_cls(model_config: ModelConfig) -> type[nn.Module]:
    """``get_model_architecture(model_config)[0]`` (AR-5)."""
    return get_model_architecture(model_config)[0]


def get_architecture_class_name(model_config: ModelConfig) -> str:
    """``get_model_architecture(model_config)[1]`` (AR-5)."""
    return get_model_architecture(model_config)[1]


def _required_init_params(parameters: Iterable[inspect.Parameter]) -> list[str]:
    required = []
    for param in parameters:
        if param.name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            required.append(param.name)
    return required


# Mirrors vLLM's function statement by statement (see device_loading_context), hence its length.
def initialize_model(
    vllm_config: VllmConfig,
    *,
    prefix: str = "",
    model_class: type[nn.Module] | None = None,
    model_config: ModelConfig | None = None,
) -> nn.Module:
    """Initialize a model with the given configurations.

    MI-1 defaults come from ``vllm_config``; MI-2 the quantization config is wired
    first; MI-3 a new-style class gets exactly ``vllm_config`` and ``prefix``; MI-7 an
    old-style class gets the guessed arguments, with a ``DeprecationWarning`` (MI-8,
    MI-9) and a logged warning (MI-10); both are built inside
    ``set_current_vllm_config(vllm_config, check_compile=True, prefix=prefix)`` (MI-5);
    MI-11/MI-12 a class that needs an argument the loader cannot give is rejected with
    ``TypeError`` naming it, before anything changes; MI-13 positional-only parameters
    are never passed.
    """
    if model_config is None:
        # vLLM types this field Optional too; a None here fails in get_model_architecture.
        model_config = cast(ModelConfig, vllm_config.model_config)
    if model_class is None:
        model_class, _ = get_model_architecture(model_config)

    signatures = inspect.signature(model_class.__init__)
    # Every argument is passed by keyword, so positional-only names do not count (MI-13).
    all_params = [
        param.name
        for param in signatures.parameters.values()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    ]
    new_style = "vllm_config" in all_params and "prefix" in all_params
    supplied = ("vllm_config", "prefix") if new_style else tuple(n for n in OLD_STYLE_ARGUMENTS if n in all_params)
    missing = [name for name in _required_init_params(signatures.parameters.values()) if name not in supplied]
    if missing:
        # DIVERGENCE D-10: vLLM 0.9.2 wires the quantization config first and then
        # fails inside the constructor call, without naming the class.
        raise TypeError(
            f"cannot construct {model_class.__qualname__}: its __init__ requires {missing}, "
            f"which initialize_model does not pass (it passes {list(supplied)})"
        )

    if vllm_config.quant_config is not None:
        configure_quant_config(vllm_config.quant_config, model_class)

    if new_style:
        # new-style model class
        with set_current_vllm_config(vllm_config, check_compile=True, prefix=prefix):
            return model_class(vllm_config=vllm_config, prefix=prefix)

    msg = (
        "vLLM model class should accept `vllm_config` and `prefix` as "
        "input arguments. Possibly you have an old-style model class"
        " registered from out of tree and it is used for new vLLM version. "
        "Check https://docs.vllm.ai/en/latest/design/arch_overview.html "
        "for the design and update the model class accordingly."
    )
    warnings.warn(msg, DeprecationWarning, stacklevel=2)

    logger.warning("Trying to guess the arguments for old-style model class %s", model_class)
    # try to be compatible with old-style model class
    kwargs = {name: OLD_STYLE_ARGUMENTS[name](vllm_config, model_config, prefix) for name in supplied}
    with set_current_vllm_config(vllm_config, check_compile=True, prefix=prefix):
        return model_class(**kwargs)
