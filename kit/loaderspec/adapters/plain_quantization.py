"""The suites' quantization config for engines built on vLLM's ``QuantizationConfig`` (vLLM, SGLang)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def plain_quantization_config_class(base: type) -> type:
    """A concrete subclass of the engine's ``QuantizationConfig`` ``base`` that quantizes nothing,
    with an empty ``packed_modules_mapping`` (the ``quant_config`` hook's contract)."""

    class PlainQuantizationConfig(base):
        """A quantization scheme that quantizes nothing: the suites' quant config."""

        def get_name(self) -> Any:
            return "loaderspec-plain"

        def get_supported_act_dtypes(self) -> list[torch.dtype]:
            return [torch.float32, torch.float16, torch.bfloat16]

        @classmethod
        def get_min_capability(cls) -> int:
            return 0

        @staticmethod
        def get_config_filenames() -> list[str]:
            return []

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> Any:
            return cls()

        def get_quant_method(self, layer: torch.nn.Module, prefix: str) -> None:
            return None

        def get_scaled_act_names(self) -> list[str]:  # SGLang's base asks for it
            return []

    # A later release may add abstract methods: stub them, so the class instantiates.
    for method in sorted(getattr(PlainQuantizationConfig, "__abstractmethods__", ())):
        setattr(PlainQuantizationConfig, method, _not_implemented(method))
    PlainQuantizationConfig.__abstractmethods__ = frozenset()
    return PlainQuantizationConfig


def _not_implemented(name: str) -> Callable[..., Any]:
    def method(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"loaderspec's plain quantization config does not implement {name}")

    method.__name__ = name
    return method
