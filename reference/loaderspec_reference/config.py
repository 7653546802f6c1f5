"""Configuration objects, as in ``vllm.config``: minimal, but carrying real values.

``ModelConfig.hf_config`` is a real :class:`transformers.PretrainedConfig`, read
from a local model folder (never from a hub).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoConfig, PretrainedConfig

if TYPE_CHECKING:
    from loaderspec_reference.quantization import QuantizationConfig

TASKS = ("generate", "embed", "classify", "reward", "score", "transcription")


class ModelImpl(str, enum.Enum):  # noqa: UP042  (as vLLM: str() gives "ModelImpl.AUTO", not the value)
    """Which implementation of a model to load (``--model-impl``)."""

    AUTO = "auto"
    VLLM = "vllm"
    TRANSFORMERS = "transformers"


@dataclass
class ModelConfig:
    """What the loader needs to know about one model.

    ``model`` is the local folder holding ``config.json`` (and any custom code named
    in its ``auto_map``); ``hf_config`` is read from it when not given.
    """

    model: str
    hf_config: PretrainedConfig | None = None
    revision: str | None = None
    model_impl: ModelImpl | str = ModelImpl.AUTO
    quantization: str | None = None
    task: str = "generate"
    dtype: torch.dtype = torch.float32
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        self.model = str(self.model)
        self.model_impl = ModelImpl(self.model_impl)
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if not isinstance(self.dtype, torch.dtype):
            raise TypeError(f"dtype must be a torch.dtype, got {self.dtype!r}")
        if self.hf_config is None:
            if not (Path(self.model) / "config.json").is_file():
                raise FileNotFoundError(
                    f"model folder {self.model!r} has no config.json (loaderspec reads local folders only, never a hub)"
                )
            self.hf_config = AutoConfig.from_pretrained(
                self.model,
                revision=self.revision,
                trust_remote_code=self.trust_remote_code,
                local_files_only=True,
            )
        elif not isinstance(self.hf_config, PretrainedConfig):
            raise TypeError(
                f"hf_config must be a transformers PretrainedConfig, got "
                f"{type(self.hf_config).__name__}: {self.hf_config!r}"
            )


@dataclass
class CacheConfig:
    """KV-cache settings an old-style model class may ask for."""

    block_size: int = 16
    cache_dtype: str = "auto"


@dataclass
class LoRAConfig:
    """LoRA settings an old-style model class may ask for."""

    max_lora_rank: int = 16
    max_loras: int = 1


@dataclass
class SchedulerConfig:
    """Scheduler settings an old-style model class may ask for."""

    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048


@dataclass
class VllmConfig:
    """Everything a model class is constructed with."""

    model_config: ModelConfig | None = None
    cache_config: CacheConfig = field(default_factory=CacheConfig)
    lora_config: LoRAConfig | None = None
    scheduler_config: SchedulerConfig = field(default_factory=SchedulerConfig)
    quant_config: QuantizationConfig | None = None


@dataclass(frozen=True)
class _CurrentConfig:
    vllm_config: VllmConfig | None = None
    check_compile: bool = False
    prefix: str | None = None


_current = _CurrentConfig()


@contextlib.contextmanager
def set_current_vllm_config(
    vllm_config: VllmConfig, check_compile: bool = False, prefix: str | None = None
) -> Iterator[None]:
    """Make ``vllm_config`` (and ``prefix``) current for the block; restore on any exit."""
    global _current
    previous = _current
    _current = _CurrentConfig(vllm_config, check_compile, prefix)
    try:
        yield
    finally:
        _current = previous


def get_current_prefix() -> str | None:
    """The ``prefix`` of the innermost ``set_current_vllm_config`` block, or None."""
    return _current.prefix


def get_current_check_compile() -> bool:
    """The ``check_compile`` flag of the innermost ``set_current_vllm_config`` block (MI-5)."""
    return _current.check_compile
