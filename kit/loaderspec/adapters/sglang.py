"""The adapter of real SGLang (``--impl sglang``): SGLang's copy of vLLM's model-loader utilities.

SGLang forked ``model_loader/utils.py`` from vLLM v0.6.4 and has kept it apart since. Install
it with ``bash .ci/install-sglang.sh 0.5.23 VENV_DIR`` and run the suites from that venv.
Importing this module does not import SGLang (about 20 s): the first name or hook asked for
does, once.

Where SGLang keeps each name (0.5.23):

- ``sglang/srt/model_loader/utils.py``: ``set_default_torch_dtype``,
  ``resolve_transformers_arch``, ``get_model_architecture``, ``get_architecture_class_name``;
- ``sglang/srt/model_loader/loader.py``: ``device_loading_context`` (which stages through
  ``model_loader/post_load.py``) and ``DefaultModelLoader.postprocess_weights``, SGLang's
  post-loading pass. It takes ``(model, target_device)``: the adapter's
  ``process_weights_after_loading(model, model_config, target_device)`` calls it with those
  two and drops ``model_config`` (SGLang's pass has no attention step that would read its
  dtype);
- no ``ParamMapping``, ``get_model_cls``, ``initialize_model``, ``configure_quant_config``,
  ``VllmConfig`` or current-config scope: those requirements are "not provided".

``model_impl`` values: SGLang's ``ModelImpl`` has ``sglang`` where vLLM has ``vllm``
(:attr:`SglangAdapter.model_impl_values`: the suites ask for the engine's own implementation
by meaning, ``native``).

Import shim (declared in :meth:`SglangAdapter.version`, so it lands in every report's
header): SGLang imports ``torchvision`` at module level (multimodal processors, reached
from ``model_loader/loader.py`` through ``sglang.srt.configs``), but the only torchvision
the package index offers for this machine is a CUDA build of another torch that fails to
load ("operator torchvision::nms does not exist"). When torchvision cannot be imported, the
adapter serves ``torchvision`` and its submodules as empty stand-ins whose every callable
raises ImportError. None of the code under test calls torchvision; none of SGLang's own code
is replaced.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from loaderspec.adapter import (
    API_NAMES,
    COLLABORATOR_NAMES,
    Adapter,
    AdapterError,
    NotProvided,
    _patch_attribute,
    architectures_in_file,
    restored_entry,
    shipped_expected_failures,
    stay_offline,
)
from loaderspec.adapters.plain_quantization import plain_quantization_config_class

UTILS_MODULE = "sglang.srt.model_loader.utils"
LOADER_MODULE = "sglang.srt.model_loader.loader"

# Where each name lives in SGLang, in lookup order.
_LOCATIONS: dict[str, tuple[str, ...]] = {
    "set_default_torch_dtype": (UTILS_MODULE,),
    "resolve_transformers_arch": (UTILS_MODULE,),
    "get_model_architecture": (UTILS_MODULE,),
    "get_architecture_class_name": (UTILS_MODULE,),
    "device_loading_context": (LOADER_MODULE,),
    "Attention": ("sglang.srt.layers.radix_attention:RadixAttention",),
    "ModelImpl": ("sglang.srt.configs.model_config",),
    "QuantizeMethodBase": ("sglang.srt.layers.quantization.base_config",),
    "WeightsMapper": ("sglang.srt.models.utils",),
}

# Why a name is missing in SGLang.
_ABSENT: dict[str, str] = {
    "ParamMapping": "SGLang's model_loader has no ParamMapping",
    "get_model_cls": "SGLang's model_loader/utils.py has no get_model_cls (get_model_architecture()[0])",
    "initialize_model": "SGLang constructs models in loader.py's private _initialize_model(model_config, "
    "load_config, quant_config), with no VllmConfig",
    "configure_quant_config": "SGLang's model_loader has no configure_quant_config",
    "QKVCrossParallelLinear": "SGLang has no QKVCrossParallelLinear",
    "SupportsQuant": "SGLang's models have no SupportsQuant interface",
}

# The suites' task names -> SGLang's is_embedding (SGLang does not convert classes by task).
_EMBEDDING_TASKS = {"generate": False, "embed": True, "classify": True, "reward": True}

_MISSING = object()

TORCHVISION_SHIM_NOTE = (
    "torchvision import shim: the index's torchvision is a CUDA build that fails to load beside "
    "the CPU torch; SGLang imports it at module level, so loaderspec serves stand-ins that raise "
    "ImportError when called (no SGLang code replaced)"
)


class _TorchvisionStandIn:
    """Any attribute of the shimmed torchvision: usable at import time, raising when used."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"{self._name}: torchvision is not installed (loaderspec import shim)")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _TorchvisionStandIn(f"{self._name}.{attribute}")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)  # `class X(torchvision.transforms.Foo)` at import time


class _TorchvisionStandInModule(types.ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _TorchvisionStandIn(f"{self.__name__}.{attribute}")


class _TorchvisionShim(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``torchvision`` and every ``torchvision.*`` as a stand-in module."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _TorchvisionStandInModule(spec.name)
        module.__path__ = []
        module.__version__ = "0.0.0+loaderspec.shim"  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _torchvision_loads() -> bool:
    """Whether the installed torchvision (if any) imports beside this torch."""
    try:
        importlib.import_module("torchvision")
    except Exception:  # ImportError, or RuntimeError from a build for another torch
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


class SglangAdapter(Adapter):
    name = "sglang"
    utils_logger_name = UTILS_MODULE  # logging.getLogger(__name__) in that module
    model_impl_values = MappingProxyType({"auto": "auto", "native": "sglang", "transformers": "transformers"})

    def __init__(self) -> None:
        self._version: str | None = None
        self._imported = False
        self._shimmed: bool | None = None
        self._names: dict[str, Any] = {}
        self._quant_config_class: type | None = None

    # --- version and imports ----------------------------------------------

    def distribution_version(self) -> str:
        if self._version is None:
            try:
                self._version = distribution_version("sglang")
            except PackageNotFoundError:
                raise AdapterError(
                    "SGLang is not installed in this environment (no 'sglang' distribution): "
                    "create one with `bash .ci/install-sglang.sh 0.5.23 VENV_DIR`"
                ) from None
        return self._version

    def needs_torchvision_shim(self) -> bool:
        if self._shimmed is None:
            self._shimmed = not _torchvision_loads()
        return self._shimmed

    def version(self) -> str:
        text = f"sglang {self.distribution_version()}"
        return f"{text} ({TORCHVISION_SHIM_NOTE})" if self.needs_torchvision_shim() else text

    def expected_failures(self) -> Path | None:
        """``xfails/sglang-X.Y.Z.toml`` beside this adapter, for the installed release, if there is one."""
        return shipped_expected_failures("sglang", self.distribution_version())

    def _import(self, module: str) -> types.ModuleType:
        if not self._imported:
            self.distribution_version()
            stay_offline()
            os.environ.setdefault("SGLANG_DISABLE_REQUEST_LOGGING", "1")
            if "TRITON_CACHE_DIR" not in os.environ:
                os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="loaderspec-sglang-triton-")
            if self.needs_torchvision_shim():
                sys.meta_path.insert(0, _TorchvisionShim())
            importlib.import_module(UTILS_MODULE)
            importlib.import_module(LOADER_MODULE)
            self._imported = True
        return importlib.import_module(module)

    # --- names -------------------------------------------------------------

    def lookup(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        if name not in API_NAMES and name not in COLLABORATOR_NAMES:
            raise NotProvided(self.name, name, "not a loaderspec API or collaborator name")
        if name in _ABSENT:
            raise NotProvided(self.name, name, f"{_ABSENT[name]}; installed: sglang {self.distribution_version()}")
        if name == "process_weights_after_loading":
            found: Any = self._process_weights_after_loading()
        else:
            found = _MISSING
            for location in _LOCATIONS.get(name, ()):
                module_name, _, attribute = location.partition(":")
                found = getattr(self._import(module_name), attribute or name, _MISSING)
                if found is not _MISSING:
                    break
            if found is _MISSING:
                raise NotProvided(self.name, name, f"not found; installed: sglang {self.distribution_version()}")
        self._names[name] = found
        return found

    def _process_weights_after_loading(self) -> Any:
        loader = self._import(LOADER_MODULE).DefaultModelLoader

        def process_weights_after_loading(model: Any, model_config: Any, target_device: torch.device) -> None:
            """SGLang's post-loading pass, DefaultModelLoader.postprocess_weights(model,
            target_device); it takes no model config."""
            loader.postprocess_weights(model, target_device)

        return process_weights_after_loading

    # --- hooks -------------------------------------------------------------

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
    ) -> Any:
        folder = Path(folder)
        if task not in _EMBEDDING_TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {sorted(_EMBEDDING_TASKS)}")
        ModelConfig = self._import("sglang.srt.configs.model_config").ModelConfig
        sglang_impl = str(getattr(model_impl, "value", model_impl))
        config = ModelConfig(
            model_path=str(folder),
            trust_remote_code=trust_remote_code,
            revision=revision,
            dtype=str(dtype).removeprefix("torch."),
            is_embedding=_EMBEDDING_TASKS[task],
            model_impl=sglang_impl,
        )
        # Workaround: SGLang validates `quantization` against its GPU methods and the
        # checkpoint's files at construction; the suites' folders hold a config only.
        # The utils read only the attribute, so it is set after construction.
        config.quantization = quantization
        # The suites read these attributes by vLLM's names.
        config.task = task
        config.model = str(folder)
        # ModelConfig keeps the architectures it read, but may normalise them; the suites
        # need them exactly as config.json has them.
        architectures = architectures_in_file(folder)
        if getattr(config.hf_config, "architectures", None) != architectures:
            config.hf_config.architectures = architectures
        if config.dtype != dtype:
            config.dtype = dtype
        return config

    def quant_config(self) -> Any:
        if self._quant_config_class is None:
            base = self._import("sglang.srt.layers.quantization.base_config").QuantizationConfig
            self._quant_config_class = plain_quantization_config_class(base)
        return self._quant_config_class()

    def _registry(self) -> Any:
        return self._import("sglang.srt.models.registry").ModelRegistry

    @contextlib.contextmanager
    def registered_model(self, arch: str, model_cls: type) -> Iterator[None]:
        registry = self._registry()
        registry.get_supported_archs()  # load the built-in models first, so ours is not overwritten
        with restored_entry(registry.models, arch):
            registry.models[arch] = model_cls
            yield

    def supported_archs(self) -> list[str]:
        return list(self._registry().get_supported_archs())

    @contextlib.contextmanager
    def pin_memory_available(self, available: bool) -> Iterator[None]:
        # device_loading_context calls the name is_pin_memory_available of loader.py
        # (bound there by `from sglang.srt.utils import ...`).
        with _patch_attribute(self._import(LOADER_MODULE), "is_pin_memory_available", lambda: available):
            yield


ADAPTER = SglangAdapter()
