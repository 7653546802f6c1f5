"""Architecture resolution (spec/architecture.md): ``get_model_architecture`` and
friends pick the model class, with the Transformers fallback and quantized Mixtral.

The backend's architecture name and the ``model_impl`` values come from the adapter
(``impl.transformers_backend_arch``, ``impl.model_impl(kind)``); every model folder whose
code transformers imports is unique to its test (``isolated_custom_code_folder``)."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
from collections.abc import Iterator

import pytest
import torch
import transformers
from hypothesis import assume, event, given
from hypothesis import strategies as st
from loaderspec.support.checks import requirement

from . import strategies as lst
from .strategies import BACKEND, CUSTOM, Case
from .support.errors import expect_raises, expect_success, needing, tolerating_errors
from .support.logs import utils_log
from .support.modules import isolated_custom_code_folder

MIXTRAL_HANDLES = ("fp8", "compressed-tensors", "gptq_marlin", "awq_marlin", "quark")


def _toy(name: str) -> type[torch.nn.Module]:
    return type(name, (torch.nn.Module,), {"__module__": __name__})


TOYS = {arch: _toy(arch if not arch.startswith(("Mixtral", "Quant")) else f"Toy{arch}") for arch in lst.TOY_ARCHS}
"""Classes the tests register; Mixtral names are taken over for the duration of a test."""


@pytest.fixture(scope="module")
def toys_registered(impl) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for arch, cls in TOYS.items():
            stack.enter_context(impl.registered_model(arch, cls))
        yield


def _names(impl, archs) -> list[str]:
    """Drawn names with the backend's placeholder replaced by the adapter's name for it."""
    return [(impl.transformers_backend_arch or BACKEND) if arch == BACKEND else arch for arch in archs]


def _expected(impl, case: Case):
    """The spec's decision: (resolved arch or None, the error's subject, the deciding requirement)."""
    archs = _names(impl, case.archs)
    backend = impl.transformers_backend_arch or BACKEND
    supported = set(impl.supported_archs())
    if case.model_impl == "transformers" or (case.model_impl == "auto" and not any(a in supported for a in archs)):
        deciding = "AR-1"
        resolved = []
        for arch in archs:
            if arch == backend:
                resolved.append(arch)
                continue
            module = getattr(transformers, arch, None)
            ok = module.is_backend_compatible() if module is not None else case.compatible
            if not ok:
                return None, arch, "TF-8" if case.model_impl == "transformers" else "TF-11"
            resolved.append(backend)
    elif case.quantization is not None and case.quantization not in MIXTRAL_HANDLES and "MixtralForCausalLM" in archs:
        deciding, resolved = "AR-2", ["QuantMixtralForCausalLM"]
    else:
        deciding, resolved = "AR-3", list(archs)
    first = next((arch for arch in resolved if arch in supported), None)
    return (first, None, deciding) if first else (None, resolved[0], "AR-3")


def _check_class(impl, model_cls, arch, task):
    base_name = TOYS[arch].__name__ if arch in TOYS else impl.backend_arch()
    names = [c.__name__ for c in model_cls.__mro__]
    if arch in TOYS:
        with requirement("AR-3"):
            assert issubclass(model_cls, TOYS[arch]), f"AR-3: {model_cls} is not the class registered as {arch}"
    with needing("AR-4"):
        impl.task(task)
    if task in ("embed", "reward"):
        with requirement("AR-4"):
            assert model_cls.__name__ != base_name and base_name in names, (
                f"AR-4: task {task!r} should wrap {base_name} in a pooling subclass, got {model_cls} (mro {names})"
            )
    else:
        with requirement("AR-4"):
            assert model_cls.__name__ == base_name, f"AR-4: task {task!r} should keep {base_name}, got {model_cls}"


def _config_for(impl, tmp_path_factory, case: Case):
    """The row's model config; a task the engine does not adapt for is asked as ``generate``
    (only AR-4 needs the task itself: :func:`_check_class` says it is not provided)."""
    folder = isolated_custom_code_folder(
        tmp_path_factory.mktemp("arch"), architectures=_names(impl, case.archs), backend_compatible=case.compatible
    )
    return impl.model_config(
        folder,
        model_impl=impl.model_impl(case.model_impl),
        quantization=case.quantization,
        task=case.task if case.task in impl.tasks else "generate",
        trust_remote_code=True,
    )


BACKEND_DECIDED = ("AR-1", "TF-8", "TF-9", "TF-11", "TF-12")
"""The decision table's requirements that only an engine with a Transformers backend can meet."""


def _needs_of_row(impl, case: Case, deciding: str) -> None:
    """``NotProvided`` when the row asks for what the engine lacks: its ``model_impl`` kind, or
    a Transformers backend (named in the row, or the row is decided by one)."""
    impl.model_impl(case.model_impl)
    if BACKEND in case.archs or deciding in BACKEND_DECIDED:
        impl.backend_arch()


def _label(case: Case, deciding: str, expected_arch: str | None) -> None:
    event(f"AR: decided by {deciding}{'' if expected_arch else ' (an error)'}")


@pytest.mark.req("AR-1", "AR-2", "AR-3", "AR-4", "TF-1", "TF-8", "TF-9", "TF-11", "TF-12")
@given(case=lst.architecture_cases())
def test_decision_table(impl, toys_registered, tmp_path_factory, case):
    expected_arch, subject, deciding = _expected(impl, case)
    # No supported name at all is test_no_supported_architecture_is_an_error's: a failure there
    # must not leave this test's other requirements unchecked.
    assume(expected_arch is not None or deciding != "AR-3")
    _label(case, deciding, expected_arch)
    if deciding == "AR-1":
        deciding = "TF-9" if case.model_impl == "transformers" else "AR-1"
    with needing(deciding):
        _needs_of_row(impl, case, deciding)
    model_config = _config_for(impl, tmp_path_factory, case)

    if expected_arch is None:
        with expect_raises(ValueError, deciding, f"{case} must fail", match=re.escape(subject)):
            impl.get_model_architecture(model_config)
        return
    with expect_success(deciding, f"{case}, which resolves to {expected_arch},"):
        model_cls, arch = impl.get_model_architecture(model_config)
    with requirement(deciding):
        assert arch == expected_arch, f"{deciding}: {case} resolved to {arch}, expected {expected_arch}"
    _check_class(impl, model_cls, arch, case.task)


@pytest.mark.req("AR-5")
@given(case=lst.architecture_cases(pool=lst.TOY_ARCHS, model_impls=("native", "auto"), fallback_share=False))
def test_the_shorthands_agree(impl, toys_registered, tmp_path_factory, case):
    expected_arch, _, _ = _expected(impl, case)
    assume(expected_arch is not None)
    model_config = _config_for(impl, tmp_path_factory, case)
    written = list(model_config.hf_config.architectures)
    with expect_success("AR-5", f"{case}: get_model_architecture"):
        model_cls, arch = impl.get_model_architecture(model_config)
    model_config.hf_config.architectures = list(written)  # AR-6 is checked on its own
    with requirement("AR-5"):
        assert impl.get_architecture_class_name(model_config) == arch, f"AR-5: get_architecture_class_name for {case}"
    model_config.hf_config.architectures = list(written)
    with requirement("AR-5"):
        assert impl.get_model_cls(model_config).__name__ == model_cls.__name__, f"AR-5: get_model_cls for {case}"


@pytest.mark.req("AR-3")
@given(
    case=lst.architecture_cases(
        pool=(CUSTOM, "NoSuchModelForCausalLM", lst.UNREGISTERED), model_impls=("native",), fallback_share=False
    )
)
def test_no_supported_architecture_is_an_error(impl, toys_registered, tmp_path_factory, case):
    model_config = _config_for(impl, tmp_path_factory, case)
    with expect_raises(ValueError, "AR-3", f"{case}: no architecture is supported", match=case.archs[0]):
        impl.get_model_architecture(model_config)


@pytest.mark.req("AR-3")
def test_unknown_architecture_is_named(impl, tmp_path):
    folder = isolated_custom_code_folder(tmp_path, architectures=["NoSuchModelForCausalLM"])
    model_config = impl.model_config(folder, model_impl=impl.model_impl("native"), trust_remote_code=True)
    with expect_raises(ValueError, "AR-3", "an unregistered architecture", match="NoSuchModelForCausalLM"):
        impl.get_model_architecture(model_config)


@pytest.mark.req("AR-6")
@given(case=lst.architecture_cases())
def test_resolution_leaves_the_config_alone(impl, toys_registered, tmp_path_factory, case):
    model_config = _config_for(impl, tmp_path_factory, case)
    written = list(model_config.hf_config.architectures)
    with tolerating_errors():  # AR-6 holds whether the call returns or raises
        impl.get_model_architecture(model_config)
    with requirement("AR-6"):
        assert model_config.hf_config.architectures == written, (
            f"AR-6: {case} rewrote hf_config.architectures: {written} -> {model_config.hf_config.architectures}"
        )


def _missing_architectures(impl, tmp_path, architectures):
    """A model config whose architectures are ``architectures``, and the folder it was made from."""
    folder = isolated_custom_code_folder(tmp_path)
    model_config = impl.model_config(folder, model_impl=impl.model_impl("native"), trust_remote_code=True)
    model_config.hf_config.architectures = architectures
    return model_config, folder


@pytest.mark.req("AR-8")
@pytest.mark.parametrize("architectures", [None, []], ids=["none", "empty"])
def test_missing_architectures_are_rejected(impl, tmp_path, architectures):
    model_config, _ = _missing_architectures(impl, tmp_path, architectures)
    with expect_raises(ValueError, "AR-8", f"architectures={architectures!r}", match="(?i)architectures"):
        impl.get_model_architecture(model_config)


@pytest.mark.req("AR-9")
@pytest.mark.parametrize("architectures", [None, []], ids=["none", "empty"])
def test_the_rejection_names_the_model(impl, tmp_path, architectures):
    # The folder the test made, not an attribute of the engine's config (forks rename it).
    model_config, folder = _missing_architectures(impl, tmp_path, architectures)
    with expect_raises(ValueError, "AR-9", f"architectures={architectures!r}") as raised:
        impl.get_model_architecture(model_config)
    with requirement("AR-9"):
        assert str(folder) in str(raised.value), f"AR-9: the error does not name the model {folder}: {raised.value}"


# --- resolve_transformers_arch: the fallback against a real custom-code folder ---


def _custom_config(impl, tmp_path, model_impl="auto", **folder_options):
    folder = isolated_custom_code_folder(tmp_path, **folder_options)
    return impl.model_config(folder, model_impl=impl.model_impl(model_impl), trust_remote_code=True)


def _resolve(impl, model_config, given: list[str]) -> list[str]:
    """``resolve_transformers_arch`` on a copy of ``given``; its result must have one name per
    entry (TF-7) before anything else is judged, so every test calling this cites TF-7 too."""
    resolved = impl.resolve_transformers_arch(model_config, list(given))
    with requirement("TF-7"):
        assert len(resolved) == len(given), f"TF-7: resolving {given} returned {resolved}, not one name per entry"
    return resolved


@pytest.mark.req("TF-1", "TF-7")
def test_the_backend_name_is_kept_and_loads_nothing(impl, tmp_path, monkeypatch):
    log = tmp_path / "imports.log"
    monkeypatch.setenv("LOADERSPEC_IMPORT_LOG", str(log))
    model_config = _custom_config(impl, tmp_path, model_impl="transformers")
    log.write_text("")
    backend = impl.backend_arch()
    resolved = _resolve(impl, model_config, [backend])
    with requirement("TF-1"):
        assert resolved == [backend], f"TF-1: {backend} resolved to {resolved}"
    with requirement("TF-1"):
        assert log.read_text().split() == [], f"TF-1: resolving {backend} alone loaded {log.read_text().split()}"


@pytest.mark.req("TF-2")
def test_every_auto_map_class_is_loaded_in_key_order(impl, tmp_path, monkeypatch):
    folder = isolated_custom_code_folder(
        tmp_path, extra_auto_map={"AutoModelForSequenceClassification": "scoring_custom.ScoreModel"}
    )
    (folder / "scoring_custom.py").write_text(
        "import os\n"
        "with open(os.environ['LOADERSPEC_IMPORT_LOG'], 'a') as log:\n"
        "    log.write('score\\n')\n"
        "from transformers import PreTrainedModel\n"
        "class ScoreModel(PreTrainedModel):\n"
        "    pass\n"
        f"# loaderspec isolation token {folder.name}\n"
    )
    # The file lists auto_map in reverse key order: only sorting loads AutoModel first.
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = dict(reversed(list(config["auto_map"].items())))
    config_file.write_text(json.dumps(config, indent=2))
    log = tmp_path / "imports.log"
    monkeypatch.setenv("LOADERSPEC_IMPORT_LOG", str(log))
    model_config = impl.model_config(folder, model_impl=impl.model_impl("auto"), trust_remote_code=True)
    log.write_text("")
    impl.resolve_transformers_arch(model_config, [CUSTOM])
    imports = log.read_text().split()
    with requirement("TF-2"):
        assert "score" in imports, f"TF-2: the AutoModelForSequenceClassification entry was not loaded: {imports}"
    with requirement("TF-2"):
        assert "model" in imports and imports.index("model") < imports.index("score"), (
            f"TF-2: auto_map entries were not loaded in key order (AutoModel before AutoModelFor...): {imports}"
        )


@pytest.mark.req("TF-3")
@pytest.mark.parametrize("model_impl", lst.MODEL_IMPL_KINDS)
def test_missing_auto_model_is_an_error_naming_the_arch(impl, tmp_path, model_impl):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, with_auto_model=False)
    before = list(model_config.hf_config.architectures)
    with expect_raises(ValueError, "TF-3", "no class and no AutoModel", match=rf"'{CUSTOM}'.*AutoModel"):
        impl.resolve_transformers_arch(model_config, model_config.hf_config.architectures)
    with requirement("TF-7"):
        assert model_config.hf_config.architectures == before, "TF-7: a failed resolution changed the config"


@pytest.mark.req("TF-8")
def test_transformers_impl_rejects_an_incompatible_class(impl, tmp_path):
    model_config = _custom_config(impl, tmp_path, model_impl="transformers", backend_compatible=False)
    with expect_raises(ValueError, "TF-8", "an incompatible class", match=re.escape(CUSTOM)):
        impl.resolve_transformers_arch(model_config, [CUSTOM])


@pytest.mark.req("TF-11")
def test_auto_impl_rejects_an_incompatible_class(impl, tmp_path):
    model_config = _custom_config(impl, tmp_path, model_impl="auto", backend_compatible=False)
    with expect_raises(ValueError, "TF-11", "an incompatible class", match=re.escape(CUSTOM)):
        impl.resolve_transformers_arch(model_config, [CUSTOM])


def _fallback(impl, tmp_path, model_impl, order):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, backend_compatible=True)
    backend = impl.backend_arch()
    given_names = [CUSTOM, backend] if order == "custom-first" else [backend, CUSTOM]
    with utils_log(impl) as records:
        resolved = _resolve(impl, model_config, given_names)
    warned = [r for r in records if r.levelno >= logging.WARNING and CUSTOM in r.getMessage()]
    return given_names, resolved, warned


@pytest.mark.req("TF-9", "TF-12", "TF-7")
@pytest.mark.parametrize("order", ["custom-first", "backend-first"])
@pytest.mark.parametrize("model_impl", ["transformers", "auto"])
def test_a_compatible_class_becomes_the_backend(impl, tmp_path, model_impl, order):
    req_id = "TF-9" if model_impl == "transformers" else "TF-12"
    given_names, resolved, _ = _fallback(impl, tmp_path, model_impl, order)
    backend = impl.backend_arch()
    with requirement(req_id):
        assert resolved == [backend, backend], f"{req_id}: model_impl {model_impl} resolved {given_names} to {resolved}"


@pytest.mark.req("TF-10", "TF-7")
@pytest.mark.parametrize("order", ["custom-first", "backend-first"])
def test_transformers_impl_falls_back_silently(impl, tmp_path, order):
    _, _, warned = _fallback(impl, tmp_path, "transformers", order)
    with requirement("TF-10"):
        assert not warned, f"TF-10: model_impl transformers warned: {[r.getMessage() for r in warned]}"


@pytest.mark.req("TF-13", "TF-7")
@pytest.mark.parametrize("order", ["custom-first", "backend-first"])
def test_auto_impl_falls_back_with_a_warning(impl, tmp_path, order):
    _, _, warned = _fallback(impl, tmp_path, "auto", order)
    with requirement("TF-13"):
        assert warned, f"TF-13: no warning names {CUSTOM} when auto falls back to Transformers"


@pytest.mark.req("TF-6", "TF-7")
@pytest.mark.parametrize("compatible", [True, False])
def test_native_impl_keeps_the_names(impl, tmp_path, compatible):
    model_config = _custom_config(impl, tmp_path, model_impl="native", backend_compatible=compatible)
    given_names = [CUSTOM, impl.backend_arch()]
    # Refusing the names is TF-6's failure; TF-7 is then unobservable here (said as such).
    with expect_success("TF-6", f"resolving {given_names} with the native model_impl"):
        resolved = _resolve(impl, model_config, given_names)
    with requirement("TF-6"):
        assert resolved == given_names, (
            f"TF-6: model_impl {impl.model_impl('native')} resolved {given_names} to {resolved}"
        )


@pytest.mark.req("TF-7")
@given(
    archs=st.lists(st.sampled_from((CUSTOM, BACKEND, "LoaderspecToyForCausalLM")), min_size=2, max_size=4),
    model_impl=st.sampled_from(lst.MODEL_IMPL_KINDS),
)
def test_one_name_per_entry(impl, tmp_path_factory, archs, model_impl):
    model_config = _custom_config(impl, tmp_path_factory.mktemp("tf7"), model_impl=model_impl)
    given_names = _names(impl, archs)
    snapshot = copy.copy(given_names)
    resolved = impl.resolve_transformers_arch(model_config, given_names)
    with requirement("TF-7"):
        assert len(resolved) == len(snapshot), f"TF-7: resolving {snapshot} returned {resolved}, not one name per entry"
    with requirement("TF-7"):
        assert given_names == snapshot, f"TF-7: resolve_transformers_arch rewrote its argument to {given_names}"


@pytest.mark.req("TF-7", "AR-6")
def test_the_list_given_is_not_modified(impl, tmp_path):
    model_config = _custom_config(impl, tmp_path, model_impl="auto")
    given_list = [CUSTOM]
    snapshot = copy.copy(given_list)
    impl.resolve_transformers_arch(model_config, given_list)
    with requirement("TF-7"):
        assert given_list == snapshot, f"TF-7: resolve_transformers_arch rewrote its argument to {given_list}"
    impl.get_model_architecture(model_config)
    with requirement("AR-6"):
        assert model_config.hf_config.architectures == [CUSTOM], (
            f"AR-6: get_model_architecture rewrote hf_config.architectures to {model_config.hf_config.architectures}"
        )


# --- gaps found by the mutation run (tools/mutants/survivors.md) ---


def _spy_on_dynamic_loading(monkeypatch) -> list[tuple[str, str | None]]:
    """Record (module file, revision) of each class transformers loads from a model folder;
    the real loader still runs."""
    from transformers import dynamic_module_utils

    calls: list[tuple[str, str | None]] = []
    original = dynamic_module_utils.get_cached_module_file

    def get_cached_module_file(pretrained_model_name_or_path, module_file, *args, **kwargs):
        calls.append((str(module_file), kwargs.get("revision")))
        return original(pretrained_model_name_or_path, module_file, *args, **kwargs)

    monkeypatch.setattr(dynamic_module_utils, "get_cached_module_file", get_cached_module_file)
    return calls


@pytest.mark.req("AR-2")
@pytest.mark.parametrize("quantization", [*MIXTRAL_HANDLES, "gptq", None])
def test_mixtral_keeps_its_class_for_the_methods_it_handles(impl, toys_registered, tmp_path, quantization):
    folder = isolated_custom_code_folder(tmp_path, architectures=["MixtralForCausalLM"])
    model_config = impl.model_config(
        folder, model_impl=impl.model_impl("native"), quantization=quantization, trust_remote_code=True
    )
    handled = quantization is None or quantization in MIXTRAL_HANDLES
    expected = "MixtralForCausalLM" if handled else "QuantMixtralForCausalLM"
    with expect_success("AR-2", f"Mixtral with quantization={quantization}"):
        _, arch = impl.get_model_architecture(model_config)
    with requirement("AR-2"):
        assert arch == expected, (
            f"AR-2: Mixtral with quantization={quantization} resolved to {arch}, expected {expected}"
        )


@pytest.mark.req("TF-1")
@pytest.mark.parametrize("model_impl", ["auto", "transformers"])
@pytest.mark.parametrize("compatible", [True, False])
def test_backend_entries_load_nothing_and_stay(impl, tmp_path, monkeypatch, model_impl, compatible):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, backend_compatible=compatible)
    loaded = _spy_on_dynamic_loading(monkeypatch)
    backend = impl.backend_arch()
    with expect_success("TF-1", f"resolving [{backend!r}] with model_impl {model_impl}"):
        resolved = impl.resolve_transformers_arch(model_config, [backend])
    with requirement("TF-1"):
        assert resolved == [backend], f"TF-1: [{backend!r}] resolved to {resolved}"
    with requirement("TF-1"):
        assert not loaded, f"TF-1: classes were loaded for a {backend} entry: {loaded}"


@pytest.mark.req("TF-2")
def test_auto_map_is_loaded_in_key_order_with_the_revision(impl, tmp_path, monkeypatch):
    import json

    folder = isolated_custom_code_folder(
        tmp_path, extra_auto_map={"AutoModelForSequenceClassification": "a_scoring.ScoreModel"}
    )
    # A class whose file sorts first: key order and the order of the references differ.
    (folder / "a_scoring.py").write_text(
        "from transformers import PreTrainedModel\n\n\nclass ScoreModel(PreTrainedModel):\n    pass\n"
        f"# loaderspec isolation token {folder.name}\n"
    )
    config = json.loads((folder / "config.json").read_text())
    auto_map = dict(reversed(list(config["auto_map"].items())))  # written out of key order
    config["auto_map"] = auto_map
    (folder / "config.json").write_text(json.dumps(config))
    revision = "loaderspec-revision"
    model_config = impl.model_config(
        folder, model_impl=impl.model_impl("auto"), revision=revision, trust_remote_code=True
    )
    loaded = _spy_on_dynamic_loading(monkeypatch)
    impl.resolve_transformers_arch(model_config, [CUSTOM])
    expected = [auto_map[key].rsplit(".", 1)[0] + ".py" for key in sorted(auto_map)]
    with requirement("TF-2"):
        assert [file for file, _ in loaded] == expected, (
            f"TF-2: auto_map {list(auto_map)} was loaded as {[f for f, _ in loaded]}, expected key order {expected}"
        )
    with requirement("TF-2"):
        assert all(used == revision for _, used in loaded), (
            f"TF-2: classes were loaded with revisions {[r for _, r in loaded]}, not the config's {revision!r}"
        )


@pytest.mark.req("TF-9", "TF-12")
@pytest.mark.parametrize("model_impl", ["auto", "transformers"])
def test_entries_after_a_backend_entry_are_resolved(impl, tmp_path, model_impl):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, backend_compatible=True)
    backend = impl.backend_arch()
    req_id = "TF-9" if model_impl == "transformers" else "TF-12"
    with expect_success(req_id, f"resolving [{backend!r}, {CUSTOM!r}] with model_impl {model_impl}"):
        resolved = impl.resolve_transformers_arch(model_config, [backend, CUSTOM])
    with requirement(req_id):
        assert resolved == [backend, backend], f"{req_id}: [{backend}, {CUSTOM}] resolved to {resolved}"


@pytest.mark.req("TF-6")
@pytest.mark.parametrize("compatible", [True, False])
def test_native_impl_keeps_every_name(impl, tmp_path, compatible):
    model_config = _custom_config(impl, tmp_path, model_impl="native", backend_compatible=compatible)
    backend = impl.backend_arch()
    with expect_success("TF-6", f"the native model_impl with a {'' if compatible else 'not '}compatible class"):
        resolved = impl.resolve_transformers_arch(model_config, [CUSTOM, backend])
    with requirement("TF-6"):
        assert resolved == [CUSTOM, backend], f"TF-6: the native model_impl resolved the names to {resolved}"
