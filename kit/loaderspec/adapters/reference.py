"""The adapter of the reference implementation (the default target)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import loaderspec_reference
import torch
from loaderspec_reference import config, interfaces, layers, quantization, utils, weights_mapper
from loaderspec_reference.registry import ModelRegistry

from loaderspec.adapter import Adapter, NotProvided, _patch_attribute, restored_entry
from loaderspec.adapters.plain_quantization import plain_quantization_config_class

_COLLABORATORS = {
    "Attention": layers.Attention,
    "ModelImpl": config.ModelImpl,
    "QKVCrossParallelLinear": layers.QKVCrossParallelLinear,
    "QuantizeMethodBase": quantization.QuantizeMethodBase,
    "SupportsQuant": interfaces.SupportsQuant,
    "WeightsMapper": weights_mapper.WeightsMapper,
}


PlainQuantizationConfig = plain_quantization_config_class(quantization.QuantizationConfig)
"""The suites' quant config: quantizes nothing (the class vLLM's and SGLang's adapters use too)."""


class ReferenceAdapter(Adapter):
    name = "reference"
    utils_logger_name = utils.logger.name

    def version(self) -> str:
        return loaderspec_reference.__version__

    def lookup(self, name: str) -> Any:
        if name in _COLLABORATORS:
            return _COLLABORATORS[name]
        if hasattr(utils, name):
            return getattr(utils, name)
        raise NotProvided(self.name, name)

    def model_config(
        self,
        folder: Path,
        *,
        model_impl: str = "auto",
        quantization: str | None = None,
        task: str = "generate",
        dtype: torch.dtype = torch.float32,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> config.ModelConfig:
        return config.ModelConfig(
            model=str(folder),
            model_impl=model_impl,
            quantization=quantization,
            task=task,
            dtype=dtype,
            revision=revision,
            trust_remote_code=trust_remote_code,
        )

    def vllm_config(self, model_config: Any = None, *, quant_config: Any = None) -> config.VllmConfig:
        return config.VllmConfig(model_config=model_config, quant_config=quant_config)

    def quant_config(self) -> quantization.QuantizationConfig:
        return PlainQuantizationConfig()

    @contextlib.contextmanager
    def registered_model(self, arch: str, model_cls: type) -> Iterator[None]:
        with restored_entry(ModelRegistry.models, arch):
            ModelRegistry.models[arch] = model_cls
            yield

    def supported_archs(self) -> list[str]:
        return list(ModelRegistry.get_supported_archs())

    def current_vllm_config(self) -> tuple[Any, str | None]:
        return config._current.vllm_config, config.get_current_prefix()

    def current_check_compile(self) -> bool:
        """The ``check_compile`` flag of the current-config scope (optional hook, MI-5)."""
        return config.get_current_check_compile()

    def pin_memory_available(self, available: bool) -> contextlib.AbstractContextManager[None]:
        return _patch_attribute(utils, "is_pin_memory_available", lambda: available)


ADAPTER = ReferenceAdapter()
