"""The adapter check that runs before the suites (``loaderspec conform --check-adapter``
runs only this): every hook called once on a tiny model folder, its return value held to
the contract its docstring states, and every name the chapters need looked up.

A broken adapter would otherwise be reported as the implementation failing dozens of
requirements; here it gets one line per problem, naming the hook and what is wrong.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loaderspec.adapter import (
    API_NAMES,
    COLLABORATOR_NAMES,
    HOOKS,
    OPTIONAL_HOOKS,
    Adapter,
    AdapterError,
    NotProvided,
)
from loaderspec.conform.requirements import CHAPTERS

CHECK_ARCH = "LoaderspecAdapterCheckForCausalLM"


@dataclass
class AdapterReport:
    problems: list[str] = field(default_factory=list)
    """One line each: the hook or name, and what is wrong with it."""
    not_provided: list[str] = field(default_factory=list)
    """Names and hooks the adapter does not provide (their tests report "not provided")."""
    unusable: list[str] = field(default_factory=list)
    """Hooks that raised from the implementation or its environment, not from the adapter's
    own code (vLLM 0.34's CPU platform asking for Triton when a config is built): not the
    adapter's fault, and only the tests that need the hook are left unchecked, with the error."""

    adapter_files: frozenset[str] = frozenset()
    """The adapter's own source files: an error raised in them is the adapter's fault."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _impl_names(tree: ast.AST) -> set[str]:
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "impl"
    }


def _fixtures_using_impl(conftest: ast.Module) -> dict[str, set[str]]:
    return {
        node.name: _impl_names(node)
        for node in conftest.body
        if isinstance(node, ast.FunctionDef) and _impl_names(node)
    }


def chapter_names() -> dict[str, list[str]]:
    """Per chapter, the names and hooks its tests ask the adapter for, directly or through a
    fixture of the suites' conftest (read from the suites' source, so it cannot drift)."""
    import loaderspec_suites

    known = set(API_NAMES) | set(COLLABORATOR_NAMES) | set(HOOKS) | set(OPTIONAL_HOOKS)
    folder = Path(loaderspec_suites.__file__).parent
    fixtures = _fixtures_using_impl(ast.parse((folder / "conftest.py").read_text(encoding="utf-8")))
    names = {}
    for chapter in CHAPTERS:
        module = ast.parse((folder / f"test_{chapter.replace('-', '_')}.py").read_text(encoding="utf-8"))
        used = _impl_names(module)
        functions = [node for node in ast.walk(module) if isinstance(node, ast.FunctionDef)]
        arguments = {arg.arg for function in functions for arg in function.args.args}
        for fixture in arguments & set(fixtures):
            used |= fixtures[fixture]
        names[chapter] = sorted(used & known)
    return names


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno})"


def _raised(what: str, error: BaseException) -> str:
    return f"{what} raised {type(error).__name__}: {error}{_where(error)}"


def _check_identity(adapter: Adapter, report: AdapterReport) -> None:
    if not isinstance(adapter.name, str) or not adapter.name:
        report.problems.append(f"name is {adapter.name!r}; set name to a non-empty string")
    if not isinstance(adapter.utils_logger_name, str):
        report.problems.append("utils_logger_name must be the name (str) of the logger utils warns to")
    for check in (checked_version, checked_expected_failures):
        try:
            check(adapter)
        except Breach as breach:
            report.problems.append(str(breach))


def checked_version(adapter: Adapter) -> str:
    """``adapter.version()``, or :class:`Breach` when it raises or is not a str."""
    try:
        version = adapter.version()
    except Exception as error:
        raise Breach(_raised("hook version()", error)) from error
    if not isinstance(version, str):
        raise Breach(f"hook version() returned {type(version).__name__}; expected a str")
    return version


def checked_expected_failures(adapter: Adapter) -> Path | None:
    """``adapter.expected_failures()`` as a Path (None: no file), or :class:`Breach`
    when it raises or names no file."""
    try:
        value = adapter.expected_failures()
    except Exception as error:
        raise Breach(_raised("hook expected_failures()", error)) from error
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not Path(value).is_file():
        raise Breach(f"hook expected_failures() returned {value!r}, which is not a file")
    return Path(value)


def _check_lookup(adapter: Adapter, report: AdapterReport) -> None:
    for name in (*API_NAMES, *COLLABORATOR_NAMES):
        try:
            value = adapter.lookup(name)
        except NotProvided:
            report.not_provided.append(name)
            continue
        except Exception as error:
            report.problems.append(_raised(f"lookup({name!r})", error) + "; return the object or raise NotProvided")
            continue
        if name in COLLABORATOR_NAMES and not isinstance(value, type):
            report.problems.append(f"lookup({name!r}) returned {type(value).__name__}; expected the class {name}")
        elif not callable(value):
            report.problems.append(f"lookup({name!r}) returned {type(value).__name__}, which is not callable")


def _implemented(adapter: Adapter, hook: str) -> bool:
    return getattr(type(adapter), hook) is not getattr(Adapter, hook)


class Breach(AdapterError):
    """One contract breach of a hook; its message names the hook."""


def _context(value: Any, hook: str) -> contextlib.AbstractContextManager[Any]:
    if not (hasattr(value, "__enter__") and hasattr(value, "__exit__")):
        raise Breach(f"hook {hook} returned {type(value).__name__}; expected a context manager")
    return value


def _check_model_config(adapter: Adapter, folder: Path) -> Any:
    import transformers

    model_config = adapter.model_config(folder)
    hf_config = getattr(model_config, "hf_config", None)
    if not isinstance(hf_config, transformers.PretrainedConfig):
        raise Breach(
            f"hook model_config() returned {type(model_config).__name__} whose hf_config is "
            f"{type(hf_config).__name__}; expected the transformers config read from the folder"
        )
    if hf_config.architectures != ["LlamaForCausalLM"]:
        raise Breach(
            f"hook model_config(): hf_config.architectures is {hf_config.architectures}; "
            "expected exactly the folder's ['LlamaForCausalLM']"
        )
    return model_config


def _check_quant_config(adapter: Adapter) -> Any:
    quant_config = adapter.quant_config()
    mapping = getattr(quant_config, "packed_modules_mapping", None)
    if mapping is None or len(mapping) != 0:
        raise Breach(
            f"hook quant_config() returned {type(quant_config).__name__} with packed_modules_mapping "
            f"{mapping!r}; expected an empty mapping"
        )
    if adapter.quant_config() is quant_config:
        raise Breach("hook quant_config() returned the same object twice; expected a fresh one per call")
    return quant_config


def _check_vllm_config(adapter: Adapter, model_config: Any, quant_config: Any) -> Any:
    vllm_config = adapter.vllm_config(model_config, quant_config=quant_config)
    if model_config is not None and getattr(vllm_config, "model_config", None) is not model_config:
        raise Breach(f"hook vllm_config(): {type(vllm_config).__name__}.model_config is not the model_config given")
    if quant_config is not None and getattr(vllm_config, "quant_config", None) is not quant_config:
        raise Breach(f"hook vllm_config(): {type(vllm_config).__name__}.quant_config is not the quant_config given")
    return vllm_config


def _check_registry(adapter: Adapter, check_registration: bool) -> None:
    archs = adapter.supported_archs()
    if not isinstance(archs, list | tuple) or not all(isinstance(a, str) for a in archs):
        raise Breach(f"hook supported_archs() returned {type(archs).__name__}; expected a list of str")
    if not check_registration:
        return
    import torch

    model_cls = type(CHECK_ARCH, (torch.nn.Module,), {})
    with _context(adapter.registered_model(CHECK_ARCH, model_cls), "registered_model()"):
        if CHECK_ARCH not in adapter.supported_archs():
            raise Breach("hook registered_model(): inside the block, supported_archs() lacks the registered name")
    if CHECK_ARCH in adapter.supported_archs():
        raise Breach("hook registered_model(): after the block the name is still registered; restore the registry")


def _check_current(adapter: Adapter) -> None:
    current = adapter.current_vllm_config()
    if not isinstance(current, tuple) or len(current) != 2:
        raise Breach(f"hook current_vllm_config() returned {type(current).__name__}; expected (config, prefix)")
    if current != (None, None):
        raise Breach(f"hook current_vllm_config() returned {current!r} outside any block; expected (None, None)")


def _check_flag(adapter: Adapter) -> None:
    flag = adapter.current_check_compile()
    if not isinstance(flag, bool):
        raise Breach(f"hook current_check_compile() returned {type(flag).__name__}; expected bool")


def _run_hook(report: AdapterReport, hook: str, check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except NotProvided as missing:
        report.not_provided.append(f"{hook}() ({missing})")
    except Breach as problem:
        _add(report.problems, str(problem))
    except Exception as error:
        if raised_in(error, report.adapter_files):
            _add(report.problems, _raised(f"hook {hook}()", error))
        else:
            _add(report.unusable, _raised(f"hook {hook}()", error) + " (raised outside the adapter's code)")
    return None


def source_files(adapter: Adapter) -> frozenset[str]:
    """The source files of the adapter's class and its bases: code a failure can be the adapter's fault in."""
    files = set()
    for cls in type(adapter).__mro__:
        module = sys.modules.get(cls.__module__)
        filename = getattr(module, "__file__", None)
        if filename and cls.__module__ != "builtins":
            files.add(str(Path(filename).resolve()))
    return frozenset(files)


def raised_in(error: BaseException, files: frozenset[str]) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in one of ``files``."""
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return str(Path(traceback.tb_frame.f_code.co_filename).resolve()) in files


def _add(problems: list[str], line: str) -> None:
    """A hook called twice (``pin_memory_available(True)``, ``(False)``) is reported once."""
    if line not in problems:
        problems.append(line)


def _check_hooks(adapter: Adapter, report: AdapterReport, folder: Path) -> None:
    implemented = {hook for hook in HOOKS if _implemented(adapter, hook)}
    report.not_provided += [f"{hook}()" for hook in HOOKS if hook not in implemented]
    model_config = quant_config = vllm_config = None
    if "model_config" in implemented:
        model_config = _run_hook(report, "model_config", _check_model_config, adapter, folder)
    if "quant_config" in implemented:
        quant_config = _run_hook(report, "quant_config", _check_quant_config, adapter)
    if "vllm_config" in implemented and model_config is not None:
        vllm_config = _run_hook(report, "vllm_config", _check_vllm_config, adapter, model_config, quant_config)
    if "supported_archs" in implemented:
        registering = "registered_model" in implemented
        _run_hook(report, "registered_model", _check_registry, adapter, registering)
    if "current_vllm_config" in implemented:
        _run_hook(report, "current_vllm_config", _check_current, adapter)
    if "pin_memory_available" in implemented:
        for available in (True, False):
            _run_hook(report, "pin_memory_available", _enter, adapter.pin_memory_available, available)
    if vllm_config is not None:
        _run_hook(report, "model_init_context", _context_of, adapter.model_init_context, vllm_config)
    if _implemented(adapter, "current_check_compile"):
        _run_hook(report, "current_check_compile", _check_flag, adapter)
    else:
        report.not_provided.append("current_check_compile() (optional; MI-5 needs it)")


def _enter(hook: Any, argument: Any) -> None:
    with _context(hook(argument), f"{hook.__name__}()"):
        pass


def _context_of(hook: Any, argument: Any) -> None:
    _context(hook(argument), f"{hook.__name__}()")


def check_adapter(adapter: Adapter) -> AdapterReport:
    """Call every hook once and look up every name; the problems found, and what is not provided."""
    from loaderspec.support import model_folders

    report = AdapterReport(adapter_files=source_files(adapter))
    _check_identity(adapter, report)
    _check_lookup(adapter, report)
    with tempfile.TemporaryDirectory(prefix="loaderspec-adapter-check-") as tmp:
        folder = model_folders.write_llama_folder(Path(tmp) / "llama")
        _check_hooks(adapter, report, folder)
    return report


def describe(adapter: Adapter, report: AdapterReport) -> str:
    """What ``--check-adapter`` prints: the verdict, then per chapter what it needs and lacks."""
    if not report.ok:  # the problems alone, the first one last: where the eye lands
        return "\n".join(f"loaderspec conform: broken adapter {adapter.name}: {p}" for p in report.problems[::-1])
    lines = [f"adapter {adapter.name}: ok"]
    lines += [
        f"  {hook}: not the adapter's fault; the tests that need this hook will be unchecked"
        for hook in report.unusable
    ]
    missing = {entry.split("(")[0].strip() for entry in report.not_provided}
    for chapter, names in chapter_names().items():
        lacking = [name for name in names if name in missing]
        if lacking:
            lines.append(f"  {chapter}: not provided: {', '.join(lacking)} (their tests report 'not provided')")
    return "\n".join(lines)
