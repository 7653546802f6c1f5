"""Platform queries, as in ``vllm.utils`` / ``vllm.platforms``."""

import torch


def is_pin_memory_available() -> bool:
    """Whether page-locked (pinned) host memory can be allocated here.

    True exactly when an accelerator that supports pinned host memory is present
    (CUDA, or a PrivateUse1 backend that registered a pinned allocator).
    vLLM answers False on its CPU platform and on WSL (vllm#43453).
    """
    accelerator = torch.accelerator.current_accelerator()
    if accelerator is None:
        return False
    try:
        probe = torch.empty(1, pin_memory=True)
    except RuntimeError:
        return False
    return probe.is_pinned()
