"""The injection point: what the suites need from an implementation under test.

The suites never import an implementation; they ask the adapter chosen with
``--impl`` (or ``LOADERSPEC_IMPL``) for each name (``impl.ParamMapping``) and for a
few hooks (build configs, register an architecture, force pinned-memory
availability). A name the implementation does not provide raises
:class:`NotProvided`, which the suites report as "not provided by <impl>".
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import unittest
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

API_NAMES = (
    "ParamMapping",
    "configure_quant_config",
    "device_loading_context",
    "get_architecture_class_name",
    "get_model_architecture",
    "get_model_cls",
    "initialize_model",
    "process_weights_after_loading",
    "resolve_transformers_arch",
    "set_default_torch_dtype",
)
"""The ten public functions and classes of ``model_loader/utils.py`` under test."""

COLLABORATOR_NAMES = (
    "Attention",
    "ModelImpl",
    "QKVCrossParallelLinear",
    "QuantizeMethodBase",
    "SupportsQuant",
    "WeightsMapper",
)
"""Base classes and enums the suites subclass or pass in."""

HOOKS = (
    "model_config",
    "vllm_config",
    "quant_config",
    "registered_model",
    "supported_archs",
    "current_vllm_config",
    "pin_memory_available",
)
"""What an adapter implements besides :meth:`Adapter.lookup`."""

OPTIONAL_HOOKS = ("model_init_context", "current_check_compile")
"""Hooks an adapter may leave out: ``model_init_context`` defaults to nothing; without
``current_check_compile``, MI-5 is "not provided"."""

ENV_VAR = "LOADERSPEC_IMPL"
DEFAULT_IMPL = "reference"


def stay_offline() -> None:
    """Never reach a model hub: the suites and benchmarks build their own local model folders.
    Values the user set are kept."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class NotProvided(unittest.SkipTest):
    """The implementation under test has no such name (reported as "not provided", not failed)."""

    def __init__(self, impl: str, name: str, detail: str = "") -> None:
        self.impl = impl
        self.name = name
        super().__init__(f"not provided by {impl}: {name}" + (f" ({detail})" if detail else ""))


class AdapterError(RuntimeError):
    """The adapter named with ``--impl`` cannot be loaded or lacks a hook."""


class Adapter:
    """Base class of adapters. Subclasses implement :meth:`lookup` and the hooks.

    Attribute access by API or collaborator name goes through :meth:`lookup`, so
    ``impl.ParamMapping`` is the implementation's ``ParamMapping`` or raises
    :class:`NotProvided`.
    """

    name: str = "unnamed"
    utils_logger_name: str = ""
    """The logger ``utils`` writes its warnings to (tests capture it)."""

    # --- vendor-neutral names ---------------------------------------------------
    # Every implementation-specific name, value or text the suites build or match comes
    # from this section, never from the suites themselves. The defaults are vLLM's; an
    # adapter of a fork that renamed things overrides only what it renamed.

    config_keyword: str = "vllm_config"
    """The keyword by which a new-style model class's ``__init__`` takes the engine config
    (MI-3) and that the old-style ``DeprecationWarning`` names (MI-8)."""
    mapper_attribute: str = "hf_to_vllm_mapper"
    """The model-class attribute holding the checkpoint-to-engine weights mapper (QC-1, QC-4)."""
    apply_mapper_method: str = "apply_vllm_mapper"
    """The quantization-config method ``configure_quant_config`` hands that mapper to (QC-1)."""
    model_impl_values: Mapping[str, str] = MappingProxyType(
        {"auto": "auto", "native": "vllm", "transformers": "transformers"}
    )
    """``model_impl`` values by meaning: ``native`` is the engine's own implementation. An
    engine that cannot be asked for one of them leaves it out: the requirements that need it
    are then "not provided"."""
    transformers_backend_arch: str | None = "TransformersForCausalLM"
    """The architecture name of the Transformers backend (TF-1, TF-9, TF-12); ``None`` for an
    engine without one (the requirements that need it are then "not provided")."""
    tasks: tuple[str, ...] = ("generate", "embed", "classify", "reward")
    """The tasks ``get_model_architecture`` adapts the class for (AR-4); an engine that takes
    no task keeps ``("generate",)``, and AR-4 is then "not provided"."""

    def model_impl(self, kind: str) -> str:
        """The ``model_impl`` value meaning ``kind`` (``auto``, ``native``, ``transformers``);
        :class:`NotProvided` when the engine has none for it."""
        if kind not in ("auto", "native", "transformers"):
            raise ValueError(f"model_impl kind {kind!r} is none of auto, native, transformers")
        try:
            return self.model_impl_values[kind]
        except KeyError:
            raise NotProvided(self.name, f"model_impl {kind}") from None

    def backend_arch(self) -> str:
        """:attr:`transformers_backend_arch`; :class:`NotProvided` for an engine without a backend."""
        if self.transformers_backend_arch is None:
            raise NotProvided(self.name, "a Transformers backend")
        return self.transformers_backend_arch

    def task(self, task: str) -> str:
        """``task`` if the engine adapts classes for it; :class:`NotProvided` otherwise."""
        if task not in self.tasks:
            raise NotProvided(self.name, f"task {task}")
        return task

    def mapper_of(self, model_class: type) -> Any:
        """The model class's weights mapper attribute (``None`` when absent)."""
        return getattr(model_class, self.mapper_attribute, None)

    # --- end of vendor-neutral names ---------------------------------------------

    def version(self) -> str:
        """The implementation's version string, for report headers."""
        return "unknown"

    def expected_failures(self) -> Path | None:
        """The expected-failure file to use when ``--xfails`` is not given (None: none)."""
        return None

    def _missing_hook(self, hook: str) -> NotProvided:
        return NotProvided(self.name, f"hook {hook}()", "the adapter does not implement it")

    def missing_hooks(self) -> list[str]:
        """The hooks this adapter leaves to the base class (tests needing them are not run)."""
        return [hook for hook in HOOKS if getattr(type(self), hook) is getattr(Adapter, hook)]

    def lookup(self, name: str) -> Any:
        """The implementation's object called ``name``; raise :class:`NotProvided` if none."""
        raise NotProvided(self.name, name)

    def __getattr__(self, name: str) -> Any:
        if name in API_NAMES or name in COLLABORATOR_NAMES:
            return self.lookup(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def provides(self, name: str) -> bool:
        try:
            self.lookup(name)
        except NotProvided:
            return False
        return True

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
        """A ModelConfig for the local model folder ``folder`` (its ``config.json``).

        ``hf_config`` must be the real transformers config read from the folder, with
        ``architectures`` exactly as the file has them.
        """
        raise self._missing_hook("model_config")

    def vllm_config(self, model_config: Any = None, *, quant_config: Any = None) -> Any:
        """A VllmConfig holding ``model_config`` and ``quant_config`` (None allowed)."""
        raise self._missing_hook("vllm_config")

    def quant_config(self) -> Any:
        """A fresh concrete QuantizationConfig with an empty ``packed_modules_mapping``."""
        raise self._missing_hook("quant_config")

    @contextlib.contextmanager
    def registered_model(self, arch: str, model_cls: type) -> Iterator[None]:
        """Register ``model_cls`` as ``arch`` for the block; restore the registry after."""
        raise self._missing_hook("registered_model")
        yield

    def supported_archs(self) -> list[str]:
        """The architecture names the registry resolves."""
        raise self._missing_hook("supported_archs")

    def current_vllm_config(self) -> tuple[Any, str | None]:
        """The (vllm_config, prefix) made current by ``set_current_vllm_config``; outside
        any such block, (None, None): not the default config a getter may make up."""
        raise self._missing_hook("current_vllm_config")

    def model_init_context(self, vllm_config: Any) -> contextlib.AbstractContextManager[None]:
        """What building a real model class needs around ``initialize_model`` (vLLM: a
        one-process distributed group). Default: nothing."""
        return contextlib.nullcontext()

    def pin_memory_available(self, available: bool) -> contextlib.AbstractContextManager[None]:
        """Make ``device_loading_context`` see ``is_pin_memory_available() == available``."""
        raise self._missing_hook("pin_memory_available")

    def current_check_compile(self) -> bool:
        """Optional (MI-5): the ``check_compile`` flag of the config ``set_current_vllm_config``
        made current. An engine whose context does not keep the flag leaves it out."""
        raise self._missing_hook("current_check_compile")


def architectures_in_file(folder: Path) -> list[str] | None:
    """``architectures`` exactly as ``folder/config.json`` has it (None when absent): what a
    ``model_config`` hook must hand over unchanged when the engine's own config class would
    fill in or drop names."""
    with open(folder / "config.json", encoding="utf-8") as file:
        architectures = json.load(file).get("architectures")
    return list(architectures) if isinstance(architectures, list) else architectures


@contextlib.contextmanager
def restored_entry(mapping: Any, key: str) -> Iterator[None]:
    """Put ``mapping[key]`` back as it was (or absent) when the block ends, whatever the block
    registered there: the restore half of a ``registered_model`` hook."""
    missing = object()
    previous = mapping.get(key, missing)
    try:
        yield
    finally:
        if previous is missing:
            mapping.pop(key, None)
        else:
            mapping[key] = previous


def shipped_expected_failures(target: str, version: str) -> Path | None:
    """The shipped expected-failure file of ``target`` (``vllm``, ``sglang``) for the release of
    ``version`` (``0.9.2.post2`` -> ``xfails/vllm-0.9.2.toml``), or None when there is none."""
    from packaging.version import Version

    release = ".".join(str(part) for part in Version(version).release[:3])
    path = Path(__file__).parent / "adapters" / "xfails" / f"{target}-{release}.toml"
    return path if path.exists() else None


def _patch_attribute(module: Any, name: str, value: Any) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        previous = getattr(module, name)
        setattr(module, name, value)
        try:
            yield
        finally:
            setattr(module, name, previous)

    return patched()


def add_impl_option(parser: Any) -> None:
    """Add ``--impl`` to a pytest parser; the suites' and the benchmarks' conftests both call
    this, and when both are collected together the second call finds it there already."""
    try:
        parser.addoption(
            "--impl",
            default=None,
            help=f"implementation under test: {builtin_names()} (default reference), or a module defining ADAPTER "
            f"(also {ENV_VAR})",
        )
    except ValueError:
        pass


BUILTIN_ADAPTERS = {
    "reference": "loaderspec.adapters.reference",
    "vllm": "loaderspec.adapters.vllm",
    "sglang": "loaderspec.adapters.sglang",
}


def import_from_the_current_folder() -> None:
    """Make an adapter module in the current folder importable, as ``python -m`` does (the
    ``loaderspec`` console script does not put the current folder on ``sys.path``)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())


def builtin_names() -> str:
    """The shipped adapters' names, for help texts and error messages."""
    return ", ".join(BUILTIN_ADAPTERS)


def load_adapter(spec: str | None = None) -> Adapter:
    """The adapter named by ``spec`` (default: ``$LOADERSPEC_IMPL``, else ``reference``).

    ``spec`` is a built-in name (``reference``, ``vllm``), a module path whose module
    defines ``ADAPTER`` (an :class:`Adapter` instance) or ``make_adapter()``, or
    ``module:attribute`` naming either.
    """
    spec = spec or os.environ.get(ENV_VAR) or DEFAULT_IMPL
    module_name, _, attribute = BUILTIN_ADAPTERS.get(spec, spec).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        known = ", ".join(BUILTIN_ADAPTERS)
        raise AdapterError(
            f"cannot load implementation {spec!r}: importing {module_name!r} failed ({error}). "
            f"Give a built-in name ({known}) or an importable module defining ADAPTER."
        ) from error
    except Exception as error:  # the adapter module's own fault: a syntax error, a raise on import
        raise AdapterError(f"cannot load implementation {spec!r}: {_import_failure(module_name, error)}") from error
    candidates = [attribute] if attribute else ["ADAPTER", "make_adapter"]
    for candidate in candidates:
        obj = getattr(module, candidate, None)
        if obj is None:
            continue
        adapter = obj() if callable(obj) and not isinstance(obj, Adapter) else obj
        if not isinstance(adapter, Adapter):
            raise AdapterError(f"{module_name}:{candidate} is {type(adapter).__name__}, not a loaderspec Adapter")
        return adapter
    raise AdapterError(f"module {module_name!r} defines none of {candidates}: it is not an adapter module")


def _import_failure(module_name: str, error: Exception) -> str:
    """One line on why importing an adapter module raised: the exception and where."""
    if isinstance(error, SyntaxError):
        return f"{module_name} has a syntax error: {error.msg} ({error.filename}, line {error.lineno})"
    import traceback

    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"importing {module_name} raised {type(error).__name__}: {error} ({frame.filename}, line {frame.lineno})"
