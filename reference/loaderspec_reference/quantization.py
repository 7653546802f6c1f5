"""Quantization collaborators, as in ``vllm.model_executor.layers.quantization.base_config``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from loaderspec_reference.weights_mapper import WeightsMapper


class QuantizeMethodBase(ABC):
    """What a quantized layer delegates its weights' creation and use to."""

    @abstractmethod
    def create_weights(self, layer: nn.Module, *weight_args: Any, **extra_weight_attrs: Any) -> None:
        """Create the layer's (quantized) parameters."""

    @abstractmethod
    def apply(self, layer: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Run the layer's computation with its quantized weights."""

    def embedding(self, layer: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not support embedding")

    def process_weights_after_loading(self, layer: nn.Module) -> None:  # noqa: B027
        """Repack, quantize or cast ``layer``'s weights once they are loaded (default: nothing)."""


class QuantizationConfig(ABC):
    """A quantization scheme: which layers get which quantize method."""

    def __init__(self) -> None:
        self.packed_modules_mapping: dict[str, list[str]] = {}

    @abstractmethod
    def get_name(self) -> str:
        """The scheme's name, as given to ``--quantization``."""

    @abstractmethod
    def get_quant_method(self, layer: nn.Module, prefix: str) -> QuantizeMethodBase | None:
        """The quantize method for ``layer`` (named ``prefix``), or None to leave it as is."""

    def apply_vllm_mapper(self, hf_to_vllm_mapper: WeightsMapper) -> None:  # noqa: B027
        """Rename the module names this config refers to from HF to vLLM structure.

        The base scheme refers to no names, so there is nothing to rename.
        """
