"""The model registry, as in ``vllm.model_executor.models.registry``: architecture name -> class."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from loaderspec_reference.logger import init_logger

logger = init_logger(__name__)


class _ModelRegistry:
    def __init__(self) -> None:
        self.models: dict[str, type[nn.Module]] = {}

    def register_model(self, model_arch: str, model_cls: type[nn.Module]) -> None:
        """Register ``model_cls`` under ``model_arch``, replacing (with a warning) any earlier one."""
        if not isinstance(model_arch, str) or not model_arch:
            raise TypeError(f"model_arch must be a non-empty str, got {model_arch!r}")
        if not (isinstance(model_cls, type) and issubclass(model_cls, nn.Module)):
            raise TypeError(f"model_cls for {model_arch!r} must be a torch.nn.Module subclass, got {model_cls!r}")
        if model_arch in self.models:
            logger.warning("Model architecture %s is already registered; overwriting it", model_arch)
        self.models[model_arch] = model_cls

    def get_supported_archs(self) -> list[str]:
        return list(self.models)

    def resolve_model_cls(self, architectures: str | Iterable[str]) -> tuple[type[nn.Module], str]:
        """The class of the first registered name in ``architectures``, and that name."""
        names = [architectures] if isinstance(architectures, str) else list(architectures)
        for arch in names:
            if arch in self.models:
                return self.models[arch], arch
        raise ValueError(
            f"Model architectures {names} are not supported for now. Supported architectures: {sorted(self.models)}"
        )


ModelRegistry = _ModelRegistry()


def _register_builtin_models() -> None:
    from loaderspec_reference.transformers_backend import TransformersForCausalLM

    ModelRegistry.register_model("TransformersForCausalLM", TransformersForCausalLM)


_register_builtin_models()
