"""The two layer bases ``process_weights_after_loading`` treats specially.

``Attention`` is ``vllm.attention.Attention``; ``QKVCrossParallelLinear`` is
``vllm.model_executor.layers.linear.QKVCrossParallelLinear`` (single process: no
tensor parallelism, so "parallel" means nothing here).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from loaderspec_reference.quantization import QuantizeMethodBase


class Attention(nn.Module):
    """An attention layer; its backend ``impl`` may post-process weights (MLA does)."""

    def __init__(self, num_heads: int, head_size: int, impl: Any = None, prefix: str = "") -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_size = head_size
        self.impl = impl
        self.layer_name = prefix

    def process_weights_after_loading(self, act_dtype: torch.dtype) -> None:
        """Let the backend post-process weights for activations of ``act_dtype``."""
        if hasattr(self.impl, "process_weights_after_loading"):
            self.impl.process_weights_after_loading(act_dtype)


class QKVCrossParallelLinear(nn.Module):
    """Cross-attention QKV projection: Q from the decoder, KV from the encoder.

    Its two projections are deliberately *not* registered submodules (they live in
    ``self.proj``), so a model traversal never reaches them: this layer's own
    ``process_weights_after_loading`` must process them (spec PW-2).
    """

    def __init__(
        self,
        hidden_size: int,
        head_size: int,
        total_num_heads: int,
        total_num_kv_heads: int | None = None,
        bias: bool = True,
        quant_method: QuantizeMethodBase | None = None,
    ) -> None:
        super().__init__()
        kv_heads = total_num_kv_heads or total_num_heads
        q_proj = nn.Linear(hidden_size, head_size * total_num_heads, bias=bias)
        kv_proj = nn.Linear(hidden_size, 2 * head_size * kv_heads, bias=bias)
        # A plain dict, not nn.ModuleDict: hidden from named_modules() on purpose.
        self.proj: dict[str, nn.Module] = {"q_proj_decoder": q_proj, "kv_proj_encoder": kv_proj}
        self.quant_method = quant_method

    def process_weights_after_loading(self) -> None:
        """Run the quantize method's post-processing on both hidden projections."""
        if self.quant_method is None:
            return
        for layer in self.proj.values():
            self.quant_method.process_weights_after_loading(layer)
