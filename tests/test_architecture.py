"""Architecture resolution (spec/architecture.md): ``get_model_architecture`` and
friends pick the model class, with the Transformers fallback and quantized Mixtral."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch
import transformers
from hypothesis import assume, given
from hypothesis import strategies as st
from loaderspec.support.model_folders import CUSTOM_ARCH, write_custom_code_folder

from .support.errors import expect_raises, expect_success
from .support.logs import utils_log

BACKEND = "TransformersForCausalLM"
MIXTRAL_HANDLES = ("fp8", "compressed-tensors", "gptq_marlin", "awq_marlin", "quark")
QUANTIZATIONS = (None, "fp8", "gptq_marlin", "awq_marlin", "gptq", "awq", "bitsandbytes")
TASKS = ("generate", "embed", "classify", "reward")
MODEL_IMPLS = ("auto", "vllm", "transformers")


def _toy(name: str) -> type[torch.nn.Module]:
    return type(name, (torch.nn.Module,), {"__module__": __name__})


TOYS = {
    "LoaderspecToyForCausalLM": _toy("LoaderspecToyForCausalLM"),
    "LoaderspecOtherForCausalLM": _toy("LoaderspecOtherForCausalLM"),
    "MixtralForCausalLM": _toy("ToyMixtralForCausalLM"),
    "QuantMixtralForCausalLM": _toy("ToyQuantMixtralForCausalLM"),
}
"""Classes the tests register; Mixtral names are taken over for the duration of a test."""

ARCH_POOL = (*TOYS, CUSTOM_ARCH, BACKEND)


@pytest.fixture(scope="module")
def toys_registered(impl) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for arch, cls in TOYS.items():
            stack.enter_context(impl.registered_model(arch, cls))
        yield


def _expected(impl, archs, model_impl, quantization, compatible):
    """The spec's decision: (resolved arch or None, the error's subject, the deciding requirement)."""
    supported = set(impl.supported_archs())
    if model_impl == "transformers" or (model_impl == "auto" and not any(a in supported for a in archs)):
        deciding = "AR-1"
        resolved = []
        for arch in archs:
            if arch == BACKEND:
                resolved.append(arch)
                continue
            module = getattr(transformers, arch, None)
            ok = module.is_backend_compatible() if module is not None else compatible
            if not ok:
                return None, arch, "TF-4" if model_impl == "transformers" else "TF-5"
            resolved.append(BACKEND)
    elif quantization is not None and quantization not in MIXTRAL_HANDLES and "MixtralForCausalLM" in archs:
        deciding, resolved = "AR-2", ["QuantMixtralForCausalLM"]
    else:
        deciding, resolved = "AR-3", list(archs)
    first = next((arch for arch in resolved if arch in supported), None)
    return (first, None, deciding) if first else (None, resolved[0], "AR-3")


def _check_class(model_cls, arch, task):
    base_name = TOYS[arch].__name__ if arch in TOYS else BACKEND
    names = [c.__name__ for c in model_cls.__mro__]
    if task in ("embed", "reward"):
        assert model_cls.__name__ != base_name and base_name in names, (
            f"AR-4: task {task!r} should wrap {base_name} in a pooling subclass, got {model_cls} (mro {names})"
        )
    else:
        assert model_cls.__name__ == base_name, f"AR-4: task {task!r} should keep {base_name}, got {model_cls}"
    if arch in TOYS:
        assert issubclass(model_cls, TOYS[arch]), f"AR-3: {model_cls} is not the class registered as {arch}"


@dataclass(frozen=True)
class Case:
    """One row of the decision table: a model folder's architectures and the config's choices."""

    archs: tuple[str, ...]
    model_impl: str
    quantization: str | None
    task: str
    compatible: bool
    """Whether the folder's custom AutoModel class is backend-compatible."""

    def __str__(self) -> str:
        return (
            f"architectures={list(self.archs)} model_impl={self.model_impl} "
            f"quantization={self.quantization} task={self.task} compatible={self.compatible}"
        )


def cases(pool: tuple[str, ...] = ARCH_POOL, model_impls: tuple[str, ...] = MODEL_IMPLS) -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        archs=st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True).map(tuple),
        model_impl=st.sampled_from(model_impls),
        quantization=st.sampled_from(QUANTIZATIONS),
        task=st.sampled_from(TASKS),
        compatible=st.booleans(),
    )


def _config_for(impl, tmp_path_factory, case: Case):
    folder = write_custom_code_folder(
        tmp_path_factory.mktemp("model"), architectures=list(case.archs), backend_compatible=case.compatible
    )
    return impl.model_config(
        folder, model_impl=case.model_impl, quantization=case.quantization, task=case.task, trust_remote_code=True
    )


@pytest.mark.req("AR-1", "AR-2", "AR-3", "AR-4", "AR-5", "TF-1", "TF-4", "TF-5")
@given(case=cases())
def test_decision_table(impl, toys_registered, tmp_path_factory, case):
    expected_arch, subject, deciding = _expected(impl, case.archs, case.model_impl, case.quantization, case.compatible)
    assume(expected_arch is not None or deciding != "AR-3")  # test_no_supported_architecture_is_an_error
    model_config = _config_for(impl, tmp_path_factory, case)
    written = list(model_config.hf_config.architectures)

    if expected_arch is None:
        with expect_raises(ValueError, deciding, f"{case} must fail", match=subject):
            impl.get_model_architecture(model_config)
        return
    with expect_success(deciding, f"{case}, which resolves to {expected_arch},"):
        model_cls, arch = impl.get_model_architecture(model_config)
    assert arch == expected_arch, f"{deciding}: {case} resolved to {arch}, expected {expected_arch}"
    _check_class(model_cls, arch, case.task)
    model_config.hf_config.architectures = list(written)  # AR-6 is checked on its own
    assert impl.get_architecture_class_name(model_config) == arch, f"AR-5: get_architecture_class_name for {case}"
    model_config.hf_config.architectures = list(written)
    assert impl.get_model_cls(model_config).__name__ == model_cls.__name__, f"AR-5: get_model_cls for {case}"


@pytest.mark.req("AR-3")
@given(
    case=cases(pool=(CUSTOM_ARCH, "NoSuchModelForCausalLM", "LoaderspecUnregisteredForCausalLM"), model_impls=("vllm",))
)
def test_no_supported_architecture_is_an_error(impl, toys_registered, tmp_path_factory, case):
    model_config = _config_for(impl, tmp_path_factory, case)
    with expect_raises(ValueError, "AR-3", f"{case}: no architecture is supported", match=case.archs[0]):
        impl.get_model_architecture(model_config)


@pytest.mark.req("AR-6")
@given(case=cases())
def test_resolution_leaves_the_config_alone(impl, toys_registered, tmp_path_factory, case):
    model_config = _config_for(impl, tmp_path_factory, case)
    written = list(model_config.hf_config.architectures)
    with contextlib.suppress(Exception):  # AR-6 holds whether the call returns or raises
        impl.get_model_architecture(model_config)
    assert model_config.hf_config.architectures == written, (
        f"AR-6: {case} rewrote hf_config.architectures: {written} -> {model_config.hf_config.architectures}"
    )


@pytest.mark.req("AR-7")
@pytest.mark.parametrize("architectures", [None, []], ids=["none", "empty"])
def test_missing_architectures_are_rejected(impl, tmp_path, architectures):
    folder = write_custom_code_folder(tmp_path / "model")
    model_config = impl.model_config(folder, model_impl="vllm", trust_remote_code=True)
    model_config.hf_config.architectures = architectures
    with expect_raises(ValueError, "AR-7", f"architectures={architectures!r}", match="(?i)architectures"):
        impl.get_model_architecture(model_config)


@pytest.mark.req("AR-7")
def test_unknown_architecture_is_named(impl, tmp_path):
    folder = write_custom_code_folder(tmp_path / "model", architectures=["NoSuchModelForCausalLM"])
    model_config = impl.model_config(folder, model_impl="vllm", trust_remote_code=True)
    with expect_raises(ValueError, "AR-7", "an unregistered architecture", match="NoSuchModelForCausalLM"):
        impl.get_model_architecture(model_config)


# --- resolve_transformers_arch: the fallback against a real custom-code folder ---


def _custom_config(impl, tmp_path, model_impl="auto", **folder_options):
    folder = write_custom_code_folder(tmp_path / "model", **folder_options)
    return impl.model_config(folder, model_impl=model_impl, trust_remote_code=True)


@pytest.mark.req("TF-2")
def test_every_auto_map_class_is_loaded_in_key_order(impl, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "scoring_custom.py").write_text(
        "import os\n"
        "with open(os.environ['LOADERSPEC_IMPORT_LOG'], 'a') as log:\n"
        "    log.write('score\\n')\n"
        "from transformers import PreTrainedModel\n"
        "class ScoreModel(PreTrainedModel):\n"
        "    pass\n"
    )
    log = tmp_path / "imports.log"
    monkeypatch.setenv("LOADERSPEC_IMPORT_LOG", str(log))
    write_custom_code_folder(folder, extra_auto_map={"AutoModelForSequenceClassification": "scoring_custom.ScoreModel"})
    model_config = impl.model_config(folder, model_impl="auto", trust_remote_code=True)
    log.write_text("")
    impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH])
    imports = log.read_text().split()
    assert "score" in imports, f"TF-2: the AutoModelForSequenceClassification entry was not loaded: {imports}"
    assert "model" in imports and imports.index("model") < imports.index("score"), (
        f"TF-2: auto_map entries were not loaded in key order (AutoModel before AutoModelFor...): {imports}"
    )


@pytest.mark.req("TF-3")
@pytest.mark.parametrize("model_impl", MODEL_IMPLS)
def test_missing_auto_model_is_an_error_naming_the_arch(impl, tmp_path, model_impl):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, with_auto_model=False)
    before = list(model_config.hf_config.architectures)
    with expect_raises(ValueError, "TF-3", "no class and no AutoModel", match=rf"'{CUSTOM_ARCH}'.*AutoModel"):
        impl.resolve_transformers_arch(model_config, model_config.hf_config.architectures)
    assert model_config.hf_config.architectures == before, "TF-7: a failed resolution changed the config"


@pytest.mark.req("TF-4")
def test_transformers_impl_requires_a_compatible_backend(impl, tmp_path):
    model_config = _custom_config(impl, tmp_path, model_impl="transformers", backend_compatible=False)
    message = f"The Transformers implementation of {CUSTOM_ARCH} is not compatible"
    with expect_raises(ValueError, "TF-4", "an incompatible class", match=message):
        impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH])


@pytest.mark.req("TF-4", "TF-5")
@pytest.mark.parametrize("model_impl", ["auto", "transformers"])
def test_compatible_custom_model_falls_back(impl, tmp_path, model_impl):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, backend_compatible=True)
    with utils_log(impl) as records:
        resolved = impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH, BACKEND])
    assert resolved == [BACKEND, BACKEND], f"TF-4/TF-5: {model_impl} resolved to {resolved}"
    warned = [r for r in records if r.levelno == logging.WARNING and CUSTOM_ARCH in r.getMessage()]
    if model_impl == "auto":
        assert warned, f"TF-5: no warning names {CUSTOM_ARCH} when auto falls back to Transformers"
    else:
        assert not warned, f"TF-4: model_impl transformers warned: {[r.getMessage() for r in warned]}"


@pytest.mark.req("TF-5")
def test_auto_impl_with_incompatible_backend_is_an_error(impl, tmp_path):
    model_config = _custom_config(impl, tmp_path, model_impl="auto", backend_compatible=False)
    with expect_raises(ValueError, "TF-5", "an incompatible class", match=f"{CUSTOM_ARCH} has no vLLM implementation"):
        impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH])


@pytest.mark.req("TF-6")
@pytest.mark.parametrize("compatible", [True, False])
def test_vllm_impl_keeps_the_names(impl, tmp_path, compatible):
    model_config = _custom_config(impl, tmp_path, model_impl="vllm", backend_compatible=compatible)
    assert impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH, BACKEND]) == [CUSTOM_ARCH, BACKEND]


@pytest.mark.req("TF-7", "AR-6")
def test_the_list_given_is_not_modified(impl, tmp_path):
    model_config = _custom_config(impl, tmp_path, model_impl="auto")
    given_list = [CUSTOM_ARCH]
    snapshot = copy.copy(given_list)
    resolved = impl.resolve_transformers_arch(model_config, given_list)
    assert resolved == [BACKEND], f"TF-5: resolved to {resolved}"
    assert given_list == snapshot, f"TF-7: resolve_transformers_arch rewrote its argument to {given_list}"
    impl.get_model_architecture(model_config)
    assert model_config.hf_config.architectures == [CUSTOM_ARCH], (
        f"AR-6: get_model_architecture rewrote hf_config.architectures to {model_config.hf_config.architectures}"
    )


# --- added by the mutation run (tools/mutants/survivors.md) ---


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
    folder = write_custom_code_folder(tmp_path / "model", architectures=["MixtralForCausalLM"])
    model_config = impl.model_config(folder, model_impl="vllm", quantization=quantization, trust_remote_code=True)
    handled = quantization is None or quantization in MIXTRAL_HANDLES
    expected = "MixtralForCausalLM" if handled else "QuantMixtralForCausalLM"
    with expect_success("AR-2", f"Mixtral with quantization={quantization}"):
        _, arch = impl.get_model_architecture(model_config)
    assert arch == expected, f"AR-2: Mixtral with quantization={quantization} resolved to {arch}, expected {expected}"


@pytest.mark.req("TF-1")
@pytest.mark.parametrize("model_impl", ["auto", "transformers"])
@pytest.mark.parametrize("compatible", [True, False])
def test_backend_entries_load_nothing_and_stay(impl, tmp_path, monkeypatch, model_impl, compatible):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, backend_compatible=compatible)
    loaded = _spy_on_dynamic_loading(monkeypatch)
    with expect_success("TF-1", f"resolving [{BACKEND!r}] with model_impl {model_impl}"):
        resolved = impl.resolve_transformers_arch(model_config, [BACKEND])
    assert resolved == [BACKEND], f"TF-1: [{BACKEND!r}] resolved to {resolved}"
    assert not loaded, f"TF-1: classes were loaded for a {BACKEND} entry: {loaded}"


@pytest.mark.req("TF-2")
def test_auto_map_is_loaded_in_key_order_with_the_revision(impl, tmp_path, monkeypatch):
    import json

    folder = tmp_path / "model"
    folder.mkdir()
    # A class whose file sorts first: key order and the order of the references differ.
    (folder / "a_scoring.py").write_text(
        "from transformers import PreTrainedModel\n\n\nclass ScoreModel(PreTrainedModel):\n    pass\n"
    )
    write_custom_code_folder(folder, extra_auto_map={"AutoModelForSequenceClassification": "a_scoring.ScoreModel"})
    config = json.loads((folder / "config.json").read_text())
    auto_map = dict(reversed(list(config["auto_map"].items())))  # written out of key order
    config["auto_map"] = auto_map
    (folder / "config.json").write_text(json.dumps(config))
    revision = "loaderspec-revision"
    model_config = impl.model_config(folder, model_impl="auto", revision=revision, trust_remote_code=True)
    loaded = _spy_on_dynamic_loading(monkeypatch)
    impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH])
    expected = [auto_map[key].rsplit(".", 1)[0] + ".py" for key in sorted(auto_map)]
    assert [file for file, _ in loaded] == expected, (
        f"TF-2: auto_map {list(auto_map)} was loaded as {[f for f, _ in loaded]}, expected key order {expected}"
    )
    assert all(used == revision for _, used in loaded), (
        f"TF-2: classes were loaded with revisions {[r for _, r in loaded]}, not the config's {revision!r}"
    )


@pytest.mark.req("TF-4", "TF-5")
@pytest.mark.parametrize("model_impl", ["auto", "transformers"])
def test_entries_after_a_backend_entry_are_resolved(impl, tmp_path, model_impl):
    model_config = _custom_config(impl, tmp_path, model_impl=model_impl, backend_compatible=True)
    requirement = "TF-4" if model_impl == "transformers" else "TF-5"
    with expect_success(requirement, f"resolving [{BACKEND!r}, {CUSTOM_ARCH!r}] with model_impl {model_impl}"):
        resolved = impl.resolve_transformers_arch(model_config, [BACKEND, CUSTOM_ARCH])
    assert resolved == [BACKEND, BACKEND], f"{requirement}: [{BACKEND}, {CUSTOM_ARCH}] resolved to {resolved}"


@pytest.mark.req("TF-6")
@pytest.mark.parametrize("compatible", [True, False])
def test_vllm_impl_keeps_every_name(impl, tmp_path, compatible):
    model_config = _custom_config(impl, tmp_path, model_impl="vllm", backend_compatible=compatible)
    with expect_success("TF-6", f"model_impl vllm with a {'' if compatible else 'not '}compatible class"):
        resolved = impl.resolve_transformers_arch(model_config, [CUSTOM_ARCH, BACKEND])
    assert resolved == [CUSTOM_ARCH, BACKEND], f"TF-6: model_impl vllm resolved the names to {resolved}"
