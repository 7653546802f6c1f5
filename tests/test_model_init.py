"""Model initialization (spec/model-init.md): ``initialize_model`` builds the model
class with the arguments its constructor asks for, inside the current-config scope."""

from __future__ import annotations

import inspect
import logging
import re
import warnings

import pytest
import torch
import transformers
from hypothesis import given
from hypothesis import strategies as st

from .support.errors import expect_raises
from .support.logs import utils_log

OLD_STYLE_NAMES = ("prefix", "config", "cache_config", "quant_config", "lora_config", "scheduler_config")
OTHER_NAMES = ("vllm_config", "device", "extra")
"""Constructor parameters an old-style class may also have: never passed by the loader."""


def _recording_class(impl, params: list[inspect.Parameter], name: str = "ToyModel") -> type[torch.nn.Module]:
    """A model class whose ``__init__`` has exactly ``params`` and records its call."""

    def __init__(self, **kwargs):
        torch.nn.Module.__init__(self)
        self.received = kwargs
        self.current = impl.current_vllm_config()

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params]
    )
    return type(name, (torch.nn.Module,), {"__init__": __init__, "__module__": __name__})


def _keyword(name: str, required: bool) -> inspect.Parameter:
    default = inspect.Parameter.empty if required else None
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)


OLD_STYLE_MESSAGE = re.compile(r"accept\W+vllm_config\W+and\W+prefix")
"""What the old-style DeprecationWarning says (the seed's text)."""


def _old_style_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [
        w for w in caught if issubclass(w.category, DeprecationWarning) and OLD_STYLE_MESSAGE.search(str(w.message))
    ]


class _Shown:
    """Holds a config for a @given test; Hypothesis prints fixtures, and some configs
    (vLLM 0.32's VllmConfig) raise from their repr."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__}>"


@pytest.fixture
def vllm_config(impl, llama_folder):
    return _Shown(impl.vllm_config(impl.model_config(llama_folder), quant_config=impl.quant_config()))


@pytest.mark.req("MI-3", "MI-5")
@given(prefix=st.sampled_from(["", "model", "language_model.model"]), required=st.booleans())
def test_new_style_class_gets_exactly_config_and_prefix(impl, vllm_config, prefix, required):
    vllm_config = vllm_config.value
    params = [_keyword("vllm_config", required), _keyword("prefix", False), _keyword("config", False)]
    model_class = _recording_class(impl, params)
    outside = impl.current_vllm_config()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = impl.initialize_model(vllm_config, prefix=prefix, model_class=model_class)
    assert isinstance(model, model_class), f"MI-3: initialize_model returned {model!r}"
    assert model.received.keys() == {"vllm_config", "prefix"}, f"MI-3: constructor got {sorted(model.received)}"
    assert model.received["vllm_config"] is vllm_config and model.received["prefix"] == prefix, (
        f"MI-3: constructor got {model.received}"
    )
    assert not _old_style_warnings(caught), "MI-3: a new-style class triggered the old-style warning"
    current, current_prefix = model.current
    assert current is vllm_config and current_prefix == prefix, (
        f"MI-5: inside __init__ the current config/prefix were {current!r}/{current_prefix!r}"
    )
    assert impl.current_vllm_config()[0] is outside[0], "MI-5: the current config was not restored"


@pytest.mark.req("MI-4", "MI-5")
@given(
    names=st.lists(st.sampled_from(OLD_STYLE_NAMES + OTHER_NAMES), unique=True, max_size=6),
    prefix=st.sampled_from(["", "model"]),
)
def test_old_style_class_gets_the_arguments_it_names(impl, vllm_config, names, prefix):
    vllm_config = vllm_config.value
    if "vllm_config" in names and "prefix" in names:
        names.remove("vllm_config")  # that would be a new-style class
    params = [_keyword(n, n in OLD_STYLE_NAMES) for n in names]
    model_class = _recording_class(impl, params, name="OldStyleToy")
    with utils_log(impl) as records, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = impl.initialize_model(vllm_config, prefix=prefix, model_class=model_class)
    expected = {
        "prefix": prefix,
        "config": vllm_config.model_config.hf_config,
        "cache_config": vllm_config.cache_config,
        "quant_config": vllm_config.quant_config,
        "lora_config": vllm_config.lora_config,
        "scheduler_config": vllm_config.scheduler_config,
    }
    expected = {name: value for name, value in expected.items() if name in names}
    assert model.received.keys() == expected.keys(), (
        f"MI-4: __init__({', '.join(names)}) got {sorted(model.received)}, expected {sorted(expected)}"
    )
    for name, value in expected.items():
        assert model.received[name] is value or model.received[name] == value, f"MI-4: wrong {name}"
    deprecations = _old_style_warnings(caught)
    assert len(deprecations) == 1, f"MI-4: expected one DeprecationWarning, got {[str(w.message) for w in caught]}"
    assert deprecations[0].filename == __file__, (
        f"MI-4: the DeprecationWarning points at {deprecations[0].filename}, not the caller (stacklevel=2)"
    )
    assert any("OldStyleToy" in r.getMessage() for r in records if r.levelno == logging.WARNING), (
        "MI-4: no logged warning names the old-style class"
    )
    current, current_prefix = model.current
    assert current is vllm_config and current_prefix == prefix, "MI-5: old-style class built outside the scope"


@pytest.mark.req("MI-1")
def test_defaults_come_from_the_vllm_config(impl, tmp_path):
    from loaderspec.support.model_folders import write_llama_folder

    arch = "LoaderspecInitToyForCausalLM"
    model_class = _recording_class(impl, [_keyword("config", True)], name=arch)
    folder = write_llama_folder(tmp_path / "model", architectures=[arch])
    vllm_config = impl.vllm_config(impl.model_config(folder, model_impl="vllm"))
    other = impl.model_config(write_llama_folder(tmp_path / "other", architectures=[arch]), model_impl="vllm")
    with impl.registered_model(arch, model_class), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        default_model = impl.initialize_model(vllm_config)
        explicit_model = impl.initialize_model(vllm_config, model_config=other)
    assert type(default_model) is model_class, f"MI-1: the class resolved from the config was {type(default_model)}"
    assert default_model.received["config"] is vllm_config.model_config.hf_config, (
        "MI-1: without model_config, hf_config must come from vllm_config.model_config"
    )
    assert explicit_model.received["config"] is other.hf_config, "MI-1: the model_config given was not used"


@pytest.mark.req("MI-2")
@pytest.mark.parametrize("with_quant_config", [True, False])
def test_quant_config_is_wired_before_construction(impl, llama_folder, with_quant_config):
    quant_config = impl.quant_config() if with_quant_config else None
    vllm_config = impl.vllm_config(impl.model_config(llama_folder), quant_config=quant_config)
    mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"]}
    seen = []

    class Wired(torch.nn.Module):
        packed_modules_mapping = mapping

        def __init__(self, *, vllm_config, prefix=""):
            super().__init__()
            if vllm_config.quant_config is not None:
                seen.append(vllm_config.quant_config.packed_modules_mapping)

    impl.initialize_model(vllm_config, model_class=Wired)
    if with_quant_config:
        assert seen and seen[0] is mapping, "MI-2: the quantization config was not wired before __init__ ran"
    else:
        assert not seen


@pytest.mark.req("MI-6")
def test_unsatisfiable_constructor_is_rejected_before_any_change(impl, vllm_config):
    vllm_config = vllm_config.value
    mapping = {"qkv_proj": ["q_proj"]}

    class NeedsDevice(torch.nn.Module):
        packed_modules_mapping = mapping

        def __init__(self, config, device):
            super().__init__()

    quant_config = vllm_config.quant_config
    before = quant_config.packed_modules_mapping
    outside = impl.current_vllm_config()
    with expect_raises(TypeError, "MI-6", "__init__(self, config, device)", match="device"):
        impl.initialize_model(vllm_config, model_class=NeedsDevice)
    assert quant_config.packed_modules_mapping is before, (
        "MI-6: the quantization config was rewired although the class could not be built"
    )
    assert impl.current_vllm_config()[0] is outside[0], "MI-6: the current config was left changed"


@pytest.mark.req("MI-3")
def test_transformers_backend_builds_the_real_model(impl, tmp_path):
    from loaderspec.support.model_folders import write_llama_folder

    folder = write_llama_folder(tmp_path / "llama")
    model_config = impl.model_config(folder, model_impl="transformers")
    vllm_config = impl.vllm_config(model_config)
    # Before initialize_model: vLLM 0.32 patches transformers' classes while building.
    expected = transformers.AutoModelForCausalLM.from_config(model_config.hf_config)
    with impl.model_init_context(vllm_config):
        model = impl.initialize_model(vllm_config)
    count = sum(p.numel() for p in model.parameters())
    expected_count = sum(p.numel() for p in expected.parameters())
    assert count >= expected_count > 0, (
        f"MI-3: the Transformers backend built {count} parameters for a model of {expected_count}"
    )


# --- added by the mutation run (tools/mutants/survivors.md) ---


@pytest.mark.req("MI-1")
def test_the_model_config_given_picks_the_class(impl, tmp_path):
    from loaderspec.support.model_folders import write_llama_folder

    own = _recording_class(impl, [_keyword("config", True)], name="LoaderspecOwnToyForCausalLM")
    chosen = _recording_class(impl, [_keyword("config", True)], name="LoaderspecChosenToyForCausalLM")
    own_folder = write_llama_folder(tmp_path / "own", architectures=[own.__name__])
    vllm_config = impl.vllm_config(impl.model_config(own_folder, model_impl="vllm"))
    given_folder = write_llama_folder(tmp_path / "given", architectures=[chosen.__name__])
    given = impl.model_config(given_folder, model_impl="vllm")
    with impl.registered_model(own.__name__, own), impl.registered_model(chosen.__name__, chosen):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = impl.initialize_model(vllm_config, model_config=given)
    assert type(model) is chosen, (
        f"MI-1: with model_config given, the class must come from it ({chosen.__name__}), got {type(model).__name__}"
    )


@pytest.mark.req("MI-3")
@pytest.mark.parametrize("var_positional", [False, True])
@pytest.mark.parametrize("var_keyword", [False, True])
def test_new_style_class_with_required_prefix_and_catch_alls(impl, vllm_config, var_positional, var_keyword):
    from .support.errors import expect_success

    vllm_config = vllm_config.value
    params = [_keyword("vllm_config", True), _keyword("prefix", True)]
    if var_positional:
        params.insert(0, inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL))
    if var_keyword:
        params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    model_class = _recording_class(impl, params)
    shown = f"__init__(self, {', '.join(str(p) for p in params)})"
    with expect_success("MI-3", shown), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = impl.initialize_model(vllm_config, prefix="model", model_class=model_class)
    assert model.received.keys() == {"vllm_config", "prefix"}, f"MI-3: {shown} got {sorted(model.received)}"


@pytest.mark.req("MI-4", "MI-6")
@pytest.mark.parametrize("var_positional", [False, True])
def test_old_style_catch_alls_need_nothing_more(impl, vllm_config, var_positional):
    from .support.errors import expect_success

    vllm_config = vllm_config.value
    params = [_keyword("config", True), inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    if var_positional:
        params.insert(0, inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL))
    model_class = _recording_class(impl, params, name="OldStyleToy")
    shown = f"__init__(self, {', '.join(str(p) for p in params)})"
    with expect_success("MI-6", f"{shown}, which needs nothing the loader cannot give,"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = impl.initialize_model(vllm_config, model_class=model_class)
    assert model.received.keys() == {"config"}, f"MI-4: {shown} got {sorted(model.received)}"


@pytest.mark.req("MI-3")
def test_prefix_defaults_to_empty(impl, vllm_config):
    vllm_config = vllm_config.value
    model_class = _recording_class(impl, [_keyword("vllm_config", True), _keyword("prefix", True)])
    model = impl.initialize_model(vllm_config, model_class=model_class)
    assert model.received.get("prefix") == "", (
        f"MI-3: without a prefix the class got prefix={model.received.get('prefix')!r}"
    )


@pytest.mark.req("MI-5")
@pytest.mark.parametrize("new_style", [True, False], ids=["new-style", "old-style"])
def test_construction_scope_checks_compilation(impl, vllm_config, new_style):
    from loaderspec.adapter import NotProvided

    current_check_compile = getattr(impl, "current_check_compile", None)
    if current_check_compile is None:  # an optional hook: not every implementation keeps the flag
        raise NotProvided(impl.name, "hook current_check_compile()", "the adapter does not implement it")
    vllm_config = vllm_config.value
    seen: list[bool] = []

    def __init__(self, **kwargs):
        torch.nn.Module.__init__(self)
        seen.append(current_check_compile())

    names = ("vllm_config", "prefix") if new_style else ("config",)
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *(_keyword(n, True) for n in names)]
    )
    model_class = type("ToyModel", (torch.nn.Module,), {"__init__": __init__, "__module__": __name__})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        impl.initialize_model(vllm_config, model_class=model_class)
    assert seen == [True], f"MI-5: the class was built with check_compile={seen}, not True"
