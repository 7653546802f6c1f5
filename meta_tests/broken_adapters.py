"""Deliberately broken adapters, for testing ``loaderspec conform`` itself.

``CRASHING`` kills its process when ``ParamMapping`` is constructed; ``HANGING``
never returns from ``set_default_torch_dtype`` (and writes its pid to
``$LOADERSPEC_META_PIDFILE`` first); ``HOOKLESS`` implements no hooks; ``WRONG_TYPES``
returns a dict from ``model_config``; ``NO_SUPPORTS_QUANT`` lacks ``SupportsQuant``;
``NO_APPLY_MAPPER`` names an apply-mapper method the quantization config lacks (so one of
QC-2's two tests cannot run); ``FAULTY`` fails in its own code (a NameError) when
``set_default_torch_dtype`` is called; ``NO_RESTORE`` wraps the reference implementation's ``device_loading_context``
so that parameters are never restored; ``STRIDES_LOST`` restores them with contiguous strides
(vLLM 0.32/0.33's ``empty_like``: DL-11 only); ``NO_QUANT_MIXTRAL`` drops the quantized-Mixtral
special case (AR-2 only); ``NEEDS_CUDA``'s ``vllm_config()`` raises from torch where there
is no CUDA (the environment, not the adapter); ``OVERLAP_RAISES`` raises after restoring
overlapping data (DL-16 only); ``NO_BACKEND`` declares no Transformers
backend, no ``model_impl=transformers`` and no task adaptation.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import torch
from loaderspec.adapter import Adapter, NotProvided
from loaderspec.adapters.reference import ADAPTER as REFERENCE
from loaderspec.adapters.reference import ReferenceAdapter
from loaderspec_suites.support.modules import overlaps


class _Delegating(ReferenceAdapter):
    """The reference with every hook; subclasses break one thing."""

    def version(self) -> str:
        return "broken-0"

    def expected_failures(self) -> None:
        return None


class CrashingAdapter(_Delegating):
    name = "crashing"

    def lookup(self, name: str) -> Any:
        if name == "ParamMapping":

            def crash(*args: object, **kwargs: object) -> None:
                os._exit(139)  # as abrupt as a segfault: no cleanup, no report

            return crash
        return super().lookup(name)


class HangingAdapter(_Delegating):
    name = "hanging"

    def lookup(self, name: str) -> Any:
        if name == "set_default_torch_dtype":

            def hang(dtype: object) -> None:
                pidfile = os.environ.get("LOADERSPEC_META_PIDFILE")
                if pidfile:
                    with open(pidfile, "w") as file:
                        file.write(str(os.getpid()))
                time.sleep(3600)

            return hang
        return super().lookup(name)


class HooklessAdapter(Adapter):
    name = "hookless"

    def lookup(self, name: str) -> Any:
        if name == "ParamMapping":
            raise NotProvided(self.name, name)
        return REFERENCE.lookup(name)


class WrongTypesAdapter(_Delegating):
    name = "wrong-types"

    def model_config(self, folder: Any, **kwargs: Any) -> Any:
        return {"model": str(folder)}


class NoSupportsQuantAdapter(_Delegating):
    name = "no-supports-quant"

    def lookup(self, name: str) -> Any:
        if name == "SupportsQuant":
            raise NotProvided(self.name, name)
        return super().lookup(name)


class NoApplyMapperAdapter(_Delegating):
    name = "no-apply-mapper"
    apply_mapper_method = "apply_loaderspec_mapper"


class FaultyAdapter(_Delegating):
    name = "faulty"

    def lookup(self, name: str) -> Any:
        if name == "set_default_torch_dtype":

            def set_default_torch_dtype(dtype: object) -> Any:
                return undefined_engine.set_default_torch_dtype(dtype)  # type: ignore[name-defined]  # noqa: F821

            return set_default_torch_dtype
        return super().lookup(name)


class NoRestoreAdapter(_Delegating):
    """An implementation that never restores parameters to the CPU (fails DL-10)."""

    name = "no-restore"

    def lookup(self, name: str) -> Any:
        if name == "device_loading_context":

            @contextlib.contextmanager
            def device_loading_context(module: Any, target_device: Any) -> Iterator[Any]:
                if target_device.type != "cpu":
                    for parameter in module.parameters():
                        if parameter.device.type == "cpu":
                            parameter.data = parameter.data.to(target_device)
                yield module

            return device_loading_context
        return super().lookup(name)


class StridesLostAdapter(_Delegating):
    """Restores each recorded parameter with contiguous strides, as vLLM 0.32/0.33's
    ``torch.empty_like`` restore does: breaks DL-11 and nothing else."""

    name = "strides-lost"

    def lookup(self, name: str) -> Any:
        real = super().lookup(name)
        if name != "device_loading_context":
            return real

        @contextlib.contextmanager
        def device_loading_context(module: Any, target_device: Any) -> Iterator[Any]:
            # The original host storages: a restore into one of them (DL-19) keeps its view.
            recorded = {
                n: p.untyped_storage().data_ptr() for n, p in module.named_parameters() if p.device.type == "cpu"
            }
            try:
                with real(module, target_device) as yielded:
                    yield yielded
            finally:
                if isinstance(target_device, torch.device) and target_device.type != "cpu":
                    for n, parameter in module.named_parameters():
                        data = parameter.data
                        if n not in recorded or data.device.type != "cpu" or data.is_contiguous():
                            continue
                        if data.untyped_storage().data_ptr() == recorded[n]:
                            continue
                        fresh = torch.empty(data.shape, dtype=data.dtype, device="cpu", pin_memory=data.is_pinned())
                        parameter.data = fresh.copy_(data)

        return device_loading_context


class NoQuantMixtralAdapter(_Delegating):
    """Resolves a quantized Mixtral as if unquantized (upstream removed the special case):
    breaks AR-2 and nothing else."""

    name = "no-quant-mixtral"

    def lookup(self, name: str) -> Any:
        real = super().lookup(name)
        if name != "get_model_architecture":
            return real

        def get_model_architecture(model_config: Any) -> Any:
            quantization = model_config.quantization
            if "MixtralForCausalLM" in (model_config.hf_config.architectures or []):
                model_config.quantization = None
            try:
                return real(model_config)
            finally:
                model_config.quantization = quantization

        return get_model_architecture


class WithoutAdapter(_Delegating):
    """Lacks the API name in ``$LOADERSPEC_META_WITHOUT`` (NotProvided), as an engine that dropped it."""

    name = "without"

    def lookup(self, name: str) -> Any:
        if name == os.environ.get("LOADERSPEC_META_WITHOUT"):
            raise NotProvided(self.name, name)
        return super().lookup(name)


class AttentionWithoutDtypeAdapter(_Delegating):
    """Calls each attention layer's hook with no argument, as vLLM 0.34 does: breaks PW-4 only."""

    name = "attention-without-dtype"

    def lookup(self, name: str) -> Any:
        real = super().lookup(name)
        if name != "process_weights_after_loading":
            return real
        attention = super().lookup("Attention")

        def process_weights_after_loading(model: Any, model_config: Any, target_device: Any) -> None:
            for module in model.modules():
                if isinstance(module, attention):
                    hook = module.process_weights_after_loading
                    module.process_weights_after_loading = lambda *args, _hook=hook, **kwargs: _hook()
            try:
                real(model, model_config, target_device)
            finally:
                for module in model.modules():
                    module.__dict__.pop("process_weights_after_loading", None)

        return process_weights_after_loading


class OverlapRaisesAdapter(_Delegating):
    """Restores as the reference does, then raises when the body left overlapping data: a
    DL-16-only bug (0.32's first ``empty_like`` restore failed so on expanded data)."""

    name = "overlap-raises"

    def lookup(self, name: str) -> Any:
        real = super().lookup(name)
        if name != "device_loading_context":
            return real

        @contextlib.contextmanager
        def device_loading_context(module: Any, target_device: Any) -> Iterator[Any]:
            overlapping: list[str] = []
            with real(module, target_device) as inner:
                try:
                    yield inner
                finally:
                    overlapping = [n for n, p in module.named_parameters() if overlaps(p.data)]
            if overlapping:
                raise RuntimeError(f"cannot restore overlapping data of {overlapping}")

        return device_loading_context


class NeedsCudaAdapter(_Delegating):
    """``vllm_config()`` initializes CUDA first, as an engine's platform check does, so on a
    machine without CUDA it raises from torch (the environment), never from the adapter's code."""

    name = "needs-cuda"

    def vllm_config(self, model_config: Any = None, *, quant_config: Any = None) -> Any:
        torch.cuda.init()
        return super().vllm_config(model_config, quant_config=quant_config)


class NoBackendAdapter(_Delegating):
    """An engine without a Transformers backend, a ``model_impl=transformers`` or task adaptation
    (the reference, declared so): what needs those is "not provided", nothing "failed"."""

    name = "no-backend"
    model_impl_values = MappingProxyType({"auto": "auto", "native": "vllm"})
    transformers_backend_arch = None
    tasks = ("generate",)


CRASHING = CrashingAdapter()
HANGING = HangingAdapter()
HOOKLESS = HooklessAdapter()
WRONG_TYPES = WrongTypesAdapter()
NO_SUPPORTS_QUANT = NoSupportsQuantAdapter()
NO_APPLY_MAPPER = NoApplyMapperAdapter()
FAULTY = FaultyAdapter()
NO_RESTORE = NoRestoreAdapter()
STRIDES_LOST = StridesLostAdapter()
NO_QUANT_MIXTRAL = NoQuantMixtralAdapter()
WITHOUT = WithoutAdapter()
ATTENTION_WITHOUT_DTYPE = AttentionWithoutDtypeAdapter()
NEEDS_CUDA = NeedsCudaAdapter()
OVERLAP_RAISES = OverlapRaisesAdapter()
NO_BACKEND = NoBackendAdapter()
