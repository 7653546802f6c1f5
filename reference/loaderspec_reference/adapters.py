"""Pooling adapters, as in ``vllm.model_executor.models.adapters``.

Each turns a generative model class into a pooling one by subclassing it; a class
that already pools is returned unchanged.
"""

from __future__ import annotations

from torch import nn

_GENERATE_SUFFIXES = ("ForCausalLM", "ForConditionalGeneration", "ChatModel", "LMHeadModel")


def is_pooling_model(model_cls: type[nn.Module]) -> bool:
    return bool(getattr(model_cls, "is_pooling_model", False))


def _pooling_model_name(orig_name: str, pooling_suffix: str) -> str:
    name = orig_name
    for suffix in _GENERATE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name + pooling_suffix


def _as_pooling_model(model_cls: type[nn.Module], pooling_task: str, suffix: str) -> type[nn.Module]:
    if is_pooling_model(model_cls):
        return model_cls
    name = _pooling_model_name(model_cls.__name__, suffix)
    pooling_cls = type(
        name,
        (model_cls,),
        {"is_pooling_model": True, "pooling_task": pooling_task, "__module__": model_cls.__module__},
    )
    pooling_cls.__qualname__ = name
    return pooling_cls


def as_embedding_model(model_cls: type[nn.Module]) -> type[nn.Module]:
    """A subclass of ``model_cls`` that pools hidden states into embeddings."""
    return _as_pooling_model(model_cls, "embed", "ForEmbedding")


def as_reward_model(model_cls: type[nn.Module]) -> type[nn.Module]:
    """A subclass of ``model_cls`` that pools hidden states into rewards."""
    return _as_pooling_model(model_cls, "reward", "ForReward")
