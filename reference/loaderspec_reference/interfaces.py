"""Model interfaces, as in ``vllm.model_executor.models.interfaces``."""

from __future__ import annotations

from typing import Any, ClassVar

from loaderspec_reference.quantization import QuantizationConfig
from loaderspec_reference.weights_mapper import WeightsMapper


class SupportsQuant:
    """Mixin of models that wire their own mappings into the quantization config.

    On construction it finds the quantization config among the arguments (directly,
    or as ``VllmConfig.quant_config``), applies ``hf_to_vllm_mapper`` to it and adds
    ``packed_modules_mapping`` to its mapping. ``configure_quant_config`` skips such
    classes (spec QC-3).
    """

    hf_to_vllm_mapper: ClassVar[WeightsMapper | None] = None
    packed_modules_mapping: ClassVar[dict[str, list[str]] | None] = None
    quant_config: QuantizationConfig | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> SupportsQuant:
        instance = super().__new__(cls)
        quant_config = cls._find_quant_config(*args, **kwargs)
        if quant_config is not None:
            instance.quant_config = quant_config
            if instance.hf_to_vllm_mapper is not None:
                quant_config.apply_vllm_mapper(instance.hf_to_vllm_mapper)
            if instance.packed_modules_mapping is not None:
                quant_config.packed_modules_mapping.update(instance.packed_modules_mapping)
        return instance

    @staticmethod
    def _find_quant_config(*args: Any, **kwargs: Any) -> QuantizationConfig | None:
        from loaderspec_reference.config import VllmConfig

        for value in [*args, *kwargs.values()]:
            if isinstance(value, VllmConfig):
                return value.quant_config
            if isinstance(value, QuantizationConfig):
                return value
        return None
