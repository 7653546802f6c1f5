"""``TransformersForCausalLM``: any Hugging Face causal LM, run through vLLM's interface.

Builds the Hugging Face model from ``hf_config`` (from the config, never from a hub;
custom code named in ``auto_map`` is loaded from the local model folder).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from loaderspec_reference.config import VllmConfig


class TransformersForCausalLM(nn.Module):
    """vLLM's Transformers backend: wraps the model transformers builds from ``hf_config``."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        model_config = vllm_config.model_config
        if model_config is None:
            raise ValueError("TransformersForCausalLM needs vllm_config.model_config")
        self.config = model_config.hf_config
        self.prefix = prefix
        self.model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            self.config,
            trust_remote_code=model_config.trust_remote_code,
            dtype=model_config.dtype,
        )

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        logits: torch.Tensor = self.model(input_ids=input_ids, **kwargs).logits
        return logits
