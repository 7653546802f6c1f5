"""Hypothesis strategies of the loaderspec suites, in one place (what they describe is
built by ``support/modules.py``).

They aim at the hard cases on purpose: names that overlap as suffixes, repeated
sub-names, self-contained and empty entries; every dtype torch offers, zero sizes,
transposed and strided layouts, tied weights; bodies that write, replace, add,
delete and raise at every point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from loaderspec.support.model_folders import CUSTOM_ARCH

from .support.modules import (
    BODY_ACTIONS,
    LAYOUTS,
    PARAM_NAMES,
    REUSE_OUTCOMES,
    SUBMODULE_PATHS,
    Body,
    BodyStep,
    ModuleSpec,
    ParamSpec,
    ReuseCase,
    TensorSpec,
    build_module,
)

__all__ = ["Body", "BodyStep", "ModuleSpec", "ParamSpec", "TensorSpec", "build_module"]  # re-exported for meta tests

# --- names and packed mappings (param mapping chapter) ----------------------

MODULE_NAME_POOL = (
    "qkv_proj",
    "kv_proj",
    "q_proj",
    "k_proj",
    "v_proj",
    "gate_up_proj",
    "up_proj",
    "gate_proj",
    "W_pack",
    "proj",
    "mlp.gate_up_proj",
)
"""Real fused-module names, chosen so that several are suffixes of others."""

names = st.one_of(
    st.sampled_from(MODULE_NAME_POOL),
    st.text(alphabet="kqv_p.", min_size=1, max_size=6),
)
"""Non-empty module names; the small alphabet makes collisions and suffix overlaps likely."""


@st.composite
def packed_mappings(draw: st.DrawFn, max_entries: int = 5) -> dict[str, list[str]]:
    """A packed mapping: ordinary, self-contained (``{"W": ["W"]}``), empty and
    self-including entries, with sub-names shared between entries."""
    keys = draw(st.lists(names, max_size=max_entries, unique=True))
    mapping: dict[str, list[str]] = {}
    for key in keys:
        kind = draw(st.sampled_from(["subs", "self-contained", "empty", "self-included"]))
        if kind == "self-contained":
            mapping[key] = [key]
        elif kind == "empty":
            mapping[key] = []
        else:
            subs = draw(st.lists(st.one_of(names, st.sampled_from(keys)), min_size=1, max_size=4))
            mapping[key] = [key, *subs] if kind == "self-included" else subs
    return mapping


@st.composite
def module_names_for(draw: st.DrawFn, mapping: dict[str, list[str]]) -> str:
    """A module name that names an entry at a dot, merely ends with one, or neither."""
    prefix = draw(st.sampled_from(["", "model.layers.0.self_attn", "model.layers.1.mlp", "x"]))
    # bool(): in `mapping and draw(...)` mypy would type draw() with the mapping's type as context.
    if bool(mapping) and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(mapping)))
        joiner = draw(st.sampled_from([".", "", "_", "q"]))
        return f"{prefix}{joiner}{key}" if prefix or joiner else key
    return draw(names)


@st.composite
def mappings_with_given_inverse(draw: st.DrawFn) -> tuple[dict[str, list[str]], dict[str, tuple[str, int]]]:
    """A packed mapping and a caller's own ``inverse_packed_mapping`` entries (PM-11): mostly
    for sub-names the mapping has (which the construction overwrites), some for others."""
    mapping = draw(packed_mappings())
    subs = sorted({sub for values in mapping.values() for sub in values})
    key_names = st.one_of(st.sampled_from(subs), names) if subs else names
    given = draw(st.dictionaries(key_names, st.tuples(names, st.integers(0, 3)), min_size=1, max_size=3))
    return mapping, given


@dataclass(frozen=True)
class Malformed:
    """A packed mapping no loader should accept, the part its error must name, and the
    exception type the spec requires (PM-7 ``TypeError``, PM-8 ``ValueError``)."""

    value: object
    offending: object
    error: type[Exception]


NOT_A_MAPPING = (["qkv_proj"], "qkv_proj", None, 3, ("qkv_proj", ["q_proj"]))
BAD_KEYS = (3, None, ("qkv",), b"qkv")
BAD_VALUES = ("qkv", None, 3, {"q_proj": 0}, b"q")
BAD_SUB_NAMES = (3, None, b"q", ["q_proj"])
WRONG_TYPES = ("str-value", "not-a-mapping", "bad-key", "bad-value", "bad-sub-name")
"""Defects of type (PM-7), the best-known first (vLLM 0.9.2 iterates a str value per character)."""
EMPTY_NAMES = ("empty-key", "empty-sub-name")
"""Defects of value (PM-8)."""


@st.composite
def malformed_packed_mappings(draw: st.DrawFn, kinds: tuple[str, ...] = WRONG_TYPES + EMPTY_NAMES) -> Malformed:
    """A valid mapping with one defect at a drawn position, so the error must name the bad part."""
    kind = draw(st.sampled_from(kinds))
    if kind == "not-a-mapping":
        value = draw(st.sampled_from(NOT_A_MAPPING))
        return Malformed(value, value, TypeError)
    good = draw(packed_mappings(max_entries=3))
    # Deliberately ill-typed: each defect puts a value of the wrong type somewhere.
    subs = ["q_proj", "k_proj"]
    key: object = "qkv_proj"
    entry: object = subs
    offending: object = None
    error: type[Exception] = TypeError
    if kind == "str-value":
        entry = offending = "qkv"
    elif kind == "bad-key":
        key = offending = draw(st.sampled_from(BAD_KEYS))
    elif kind == "bad-value":
        entry = offending = draw(st.sampled_from(BAD_VALUES))
    elif kind == "bad-sub-name":
        offending = draw(st.sampled_from(BAD_SUB_NAMES))
        entry = [*subs[: draw(st.integers(0, 2))], offending]
    elif kind == "empty-key":
        key, offending, error = "", "", ValueError
    else:
        entry, offending, error = ["q_proj", ""], "", ValueError
    items: list[tuple[object, object]] = [(k, v) for k, v in good.items() if k != key]
    position = draw(st.integers(0, len(items)))
    items.insert(position, (key, entry))
    # Entries after the defect may be defective too only through this one: the rest are valid.
    return Malformed(dict(items), offending, error)


# --- model-class attributes (quant config chapter) --------------------------------

ATTRIBUTE_STATES = ("absent", "none", "present")
"""A model-class attribute is missing, ``None``, or set."""

absent_attribute_pairs = st.tuples(st.sampled_from(ATTRIBUTE_STATES), st.sampled_from(ATTRIBUTE_STATES)).filter(
    lambda pair: pair != ("present", "present")
)
"""(mapper, mapping) states with at least one of them absent or None (QC-4)."""

# --- constructor signatures (model init chapter) ------------------------------------

CONFIG_KEYWORD = "<config keyword>"
"""Stands for the adapter's ``config_keyword`` (vLLM: ``vllm_config``) in drawn signatures."""
GUESSABLE_NAMES = ("prefix", "config", "cache_config", "quant_config", "lora_config", "scheduler_config")
"""The arguments the loader guesses for an old-style class (MI-7), in order."""
NEVER_PASSED_NAMES = (CONFIG_KEYWORD, "device", "extra")
"""Parameters an old-style class may also have: never passed by the loader."""
PARAMETER_KINDS = ("keyword-only", "positional-or-keyword", "positional-only")


@dataclass(frozen=True)
class InitParam:
    """One parameter of a drawn ``__init__`` (besides ``self``)."""

    name: str
    kind: str
    """One of PARAMETER_KINDS, or "var-positional" / "var-keyword" (``*args`` / ``**kwargs``)."""
    required: bool


@st.composite
def old_style_signatures(draw: st.DrawFn) -> tuple[InitParam, ...]:
    """An old-style ``__init__``: guessable names, required or not, and names the loader never
    passes (with defaults), mostly keyword-passable; ``*args``/``**kwargs`` now and then."""
    names = draw(st.lists(st.sampled_from(GUESSABLE_NAMES + NEVER_PASSED_NAMES), unique=True, max_size=6))
    if CONFIG_KEYWORD in names and "prefix" in names:
        names.remove(CONFIG_KEYWORD)  # that would be a new-style class
    params = [
        InitParam(
            name,
            draw(st.sampled_from(PARAMETER_KINDS[:2])),
            name in GUESSABLE_NAMES and draw(st.booleans()),
        )
        for name in names
    ]
    if draw(st.integers(0, 3)) == 3:
        params.append(InitParam("args", "var-positional", False))
    if draw(st.integers(0, 3)) == 3:
        params.append(InitParam("kwargs", "var-keyword", False))
    return tuple(params)


@st.composite
def unsatisfiable_signatures(draw: st.DrawFn) -> tuple[tuple[InitParam, ...], str]:
    """An ``__init__`` the loader cannot call, and the parameter that makes it so (MI-11):
    a required parameter it never passes, new-style or old-style, or a required
    positional-only guessable one (MI-13)."""
    style = draw(st.sampled_from(["old-style", "new-style", "positional-only"]))
    if style == "positional-only":
        culprit = draw(st.sampled_from(GUESSABLE_NAMES))
        params = [InitParam(culprit, "positional-only", True)]
    else:
        culprit = draw(st.sampled_from(("device", "extra", *([] if style == "old-style" else ["config"]))))
        params = [InitParam(culprit, draw(st.sampled_from(PARAMETER_KINDS[:2])), True)]
        if style == "new-style":
            params += [InitParam(CONFIG_KEYWORD, "keyword-only", False), InitParam("prefix", "keyword-only", False)]
    if draw(st.integers(0, 3)) == 3:
        params.append(InitParam("kwargs", "var-keyword", False))
    return tuple(params), culprit


# --- architectures (architecture chapter) -------------------------------------------

BACKEND = "TransformersForCausalLM"
"""Stands for the adapter's ``transformers_backend_arch`` in drawn architecture lists."""
CUSTOM = CUSTOM_ARCH
"""The custom-code architecture of ``write_custom_code_folder`` (only its auto_map finds it)."""
TOY_ARCHS = ("LoaderspecToyForCausalLM", "LoaderspecOtherForCausalLM", "MixtralForCausalLM", "QuantMixtralForCausalLM")
"""Names the architecture tests register toy classes under (Mixtral's are taken over)."""
ARCH_POOL = (*TOY_ARCHS, CUSTOM, BACKEND)
QUANTIZATIONS = (None, "fp8", "gptq_marlin", "awq_marlin", "compressed-tensors", "quark", "gptq", "awq", "bitsandbytes")
TASKS = ("generate", "embed", "classify", "reward")
MODEL_IMPL_KINDS = ("auto", "native", "transformers")
"""``model_impl`` by meaning; the adapter gives each its value (``native``: vLLM's ``vllm``)."""


@dataclass(frozen=True)
class Case:
    """One row of the decision table: a model folder's architectures and the config's choices."""

    archs: tuple[str, ...]
    model_impl: str
    """A kind of MODEL_IMPL_KINDS."""
    quantization: str | None
    task: str
    compatible: bool
    """Whether the folder's custom AutoModel class is backend-compatible."""

    def __str__(self) -> str:
        return (
            f"architectures={list(self.archs)} model_impl={self.model_impl} "
            f"quantization={self.quantization} task={self.task} compatible={self.compatible}"
        )


UNREGISTERED = "LoaderspecUnregisteredForCausalLM"
"""A name no registry knows and transformers lacks: resolved through the folder's auto_map."""


@st.composite
def architecture_cases(
    draw: st.DrawFn,
    pool: tuple[str, ...] = ARCH_POOL,
    model_impls: tuple[str, ...] = MODEL_IMPL_KINDS,
    max_archs: int = 3,
    fallback_share: bool = True,
) -> Case:
    """A decision-table row. Half the rows (behind a boolean, so failures shrink to the
    registry's plain case) list only names the registry lacks with ``auto`` or
    ``transformers``: the Transformers fallback and its errors (AR-1, TF-8..TF-12)."""
    if fallback_share and draw(st.booleans()):
        pool = (CUSTOM, UNREGISTERED, BACKEND)
        model_impls = ("auto", "transformers")
    elif fallback_share and "MixtralForCausalLM" in pool and draw(st.booleans()):
        # The quantized-Mixtral rows (AR-2) on purpose: uniform draws reach them in ~1 row of 50,
        # so a seed could miss them all. Behind a boolean: a failure shrinks to the plain row.
        others = st.lists(st.sampled_from([a for a in pool if a != "MixtralForCausalLM"]), max_size=1, unique=True)
        return Case(
            archs=("MixtralForCausalLM", *draw(others)),
            model_impl=draw(st.sampled_from([m for m in model_impls if m != "transformers"])),
            quantization=draw(st.sampled_from(QUANTIZATIONS)),
            task=draw(st.sampled_from(TASKS)),
            compatible=draw(st.booleans()),
        )
    elif fallback_share and BACKEND in pool and "native" in model_impls and draw(st.booleans()):
        # The backend's own name listed after names the registry lacks, with the native impl: AR-3
        # picks it as the first supported name (vLLM 0.32+ trips an assert there). Uniform draws
        # reach it in a few rows of 100, so a seed could miss it; behind a boolean, as above.
        return Case(
            archs=(*draw(st.lists(st.sampled_from((CUSTOM, UNREGISTERED)), min_size=1, unique=True)), BACKEND),
            model_impl="native",
            quantization=None,
            task=draw(st.sampled_from(TASKS)),
            compatible=draw(st.booleans()),
        )
    return Case(
        archs=tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_archs, unique=True))),
        model_impl=draw(st.sampled_from(model_impls)),
        quantization=draw(st.sampled_from(QUANTIZATIONS)),
        task=draw(st.sampled_from(TASKS)),
        compatible=draw(st.booleans()),
    )


# --- model layers (post-loading chapter) ---------------------------------------------

LAYER_KINDS = ("plain", "quantized", "offloaded", "qkv-cross", "attention", "foreign-method", "none-method")
"""Layer kinds: offloaded = quantized with its weight on CPU while the target is not."""


def layer_kinds(
    qkv_cross: bool, attention: bool, min_size: int = 0, required: tuple[str, ...] = ()
) -> st.SearchStrategy[list[str]]:
    """Layer kinds, without those the implementation has no base for; every kind of
    ``required`` appears at least once (at a drawn position)."""
    available = [
        kind for kind in LAYER_KINDS if (kind != "qkv-cross" or qkv_cross) and (kind != "attention" or attention)
    ]

    @st.composite
    def kinds(draw: st.DrawFn) -> list[str]:
        drawn = draw(st.lists(st.sampled_from(available), min_size=min_size, max_size=8))
        for kind in required:
            drawn.insert(draw(st.integers(0, len(drawn))), kind)
        return drawn

    return kinds()


shared_positions = st.lists(st.integers(0, 7), max_size=2)
"""Layers registered a second time (the same module object, processed once)."""
hook_dtypes = st.sampled_from([torch.float16, torch.bfloat16, torch.float32])


# --- dtypes (default dtype chapter) -----------------------------------------

DEFAULT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
"""The floating dtypes torch can make the default."""

non_default_dtypes = st.sampled_from(
    [
        torch.int8,
        torch.int64,
        torch.uint8,
        torch.bool,
        torch.complex64,
        torch.float8_e4m3fn,
        torch.float8_e5m2,
        # DT-5's other storage-less floats, where this torch has them (float4_* is its own case).
        *(
            getattr(torch, name)
            for name in ("float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2")
            if isinstance(getattr(torch, name, None), torch.dtype)
        ),
        "float16",
        None,
        float,
    ]
)
"""Values that cannot be the default dtype: non-floating, storage-less float8/float4, non-dtypes."""

BODY_EXITS = ("return", "exception", "keyboard-interrupt", "generator-closed")
"""How a ``with`` body can leave: normally, by Exception, by BaseException, by GeneratorExit."""
EXCEPTIONAL_EXITS = tuple(how for how in BODY_EXITS if how != "return")


def _has_dtype(name: str) -> bool:
    return isinstance(getattr(torch, name, None), torch.dtype)


ALL_DTYPES = tuple(
    getattr(torch, name)
    for name in (
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e8m0fnu",
        "complex32",
        "complex64",
        "complex128",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    )
    if _has_dtype(name)
)
"""Every dtype a parameter may hold here: bf16, every fp8, unsigned, bool and complex (chalf too)."""

# --- tensors and modules (device loading chapter) ---------------------------

PARAMETER_LAYOUTS = tuple(layout for layout in LAYOUTS if layout != "expanded")
"""Layouts a parameter has when the context is entered; only a body leaves overlapping data."""


@st.composite
def tensor_specs(
    draw: st.DrawFn, dtypes: tuple[torch.dtype, ...] = ALL_DTYPES, layouts: tuple[str, ...] = PARAMETER_LAYOUTS
) -> TensorSpec:
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    return TensorSpec(
        dtype=draw(st.sampled_from(dtypes)),
        shape=shape,
        layout=draw(st.sampled_from(layouts)),
        seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def module_specs(draw: st.DrawFn, max_params: int = 6, allow_on_target: bool = True) -> ModuleSpec:
    """Nested modules, parameters of every dtype and layout, some already on the
    target, some tied to an earlier one, plus buffers that must never move."""
    slots = draw(
        st.lists(
            st.tuples(st.sampled_from(SUBMODULE_PATHS), st.sampled_from(PARAM_NAMES)),
            max_size=max_params,
            unique=True,
        )
    )
    params: list[ParamSpec] = []
    for path, name in slots:
        tied_to = None
        if params and draw(st.integers(0, 4)) == 4:
            roots: list[str | None] = [p.full_name for p in params if p.tied_to is None]
            tied_to = draw(st.sampled_from(roots or [None]))
        params.append(
            ParamSpec(
                path=path,
                name=name,
                tensor=draw(tensor_specs()),
                on_target=allow_on_target and draw(st.integers(0, 3)) == 3,
                tied_to=tied_to,
            )
        )
    buffers = tuple(
        ParamSpec(path=path, name=f"buf_{i}", tensor=draw(tensor_specs()))
        for i, path in enumerate(draw(st.lists(st.sampled_from(SUBMODULE_PATHS), max_size=2)))
    )
    submodules = tuple(sorted({p.path for p in (*params, *buffers) if p.path}))
    return ModuleSpec(submodules=submodules, params=tuple(params), buffers=buffers)


# --- bodies run inside the device context -----------------------------------


@st.composite
def bodies(draw: st.DrawFn, max_steps: int = 4, layouts: tuple[str, ...] = LAYOUTS) -> Body:
    """What a body does inside the device context. The plain case is first in every choice:
    a body that returns after writing in place, under the usual default device. ``layouts``:
    those of the data a body leaves (``PARAMETER_LAYOUTS`` for a requirement that overlapping
    data, DL-16's, must not reach)."""
    steps = draw(
        st.lists(
            st.builds(
                BodyStep,
                action=st.sampled_from(BODY_ACTIONS),
                index=st.integers(0, 7),
                tensor=tensor_specs(layouts=layouts),
                on_cpu=st.integers(0, 4).map(lambda n: n == 4),
            ),
            max_size=max_steps,
        )
    )
    raises = draw(st.sampled_from([None, None, "exception", "keyboard-interrupt"]))
    default_device = draw(st.integers(0, 3).map(lambda n: n == 3))
    return Body(steps=tuple(steps), raises=raises, default_device=default_device)


# --- host storage reuse (DL-19) -----------------------------------------------


@st.composite
def reuse_cases(draw: st.DrawFn) -> ReuseCase:
    """Cases at DL-19's edges: several parameters of one dtype and shape (a restore into the
    wrong original then shows), each left by the body with the original size, stride and
    dtype or with exactly one of them changed, in separate or one shared host buffer, pinned
    or not. The plain case comes first: one unpinned parameter the body keeps."""
    dtype = draw(st.sampled_from(ALL_DTYPES))
    return ReuseCase(
        dtype=dtype,
        shape=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        outcomes=tuple(draw(st.lists(st.sampled_from(REUSE_OUTCOMES), min_size=1, max_size=4))),
        one_buffer=draw(st.booleans()),
        pin_originals=draw(st.booleans()),
        other_dtype=draw(st.sampled_from([other for other in ALL_DTYPES if other != dtype])),
        raises=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


# --- boundary cases of single clauses (meta_tests/clauses.py) -----------------------------


class OtherBaseException(BaseException):
    """A ``BaseException`` that is none of ``Exception``, ``KeyboardInterrupt``, ``GeneratorExit``."""


OTHER_BASE_EXCEPTIONS: tuple[type[BaseException], ...] = (SystemExit, OtherBaseException)
"""DT-7's "another ``BaseException``": the ones ``BODY_EXITS`` does not raise."""

SELF_INCLUDING_ENTRIES = (("W", "x"), ("x", "W"), ("W", "W"), ("W", "x", "W"))
"""Sub-name lists of an entry ``W`` that name ``W`` and are not ``["W"]``: not self-contained
(PM-4), each the nearest wrong reading of ``subs == [p]`` (``p in subs``, ``subs[0] == p``,
``set(subs) == {p}``)."""


@st.composite
def overlapping_key_cases(draw: st.DrawFn) -> tuple[dict[str, list[str]], str]:
    """A mapping with two keys that name the same module, a dotted key and its last component
    in either order among other entries, and that module's name (PM-5: the first key wins)."""
    leaf = draw(st.sampled_from(["qkv_proj", "gate_up_proj", "proj"]))
    dotted = f"{draw(st.sampled_from(['mlp', 'self_attn', 'layers.0.mlp']))}.{leaf}"
    keys = draw(st.permutations([leaf, dotted]))
    others = [(k, v) for k, v in draw(packed_mappings(max_entries=2)).items() if k not in keys]
    position = draw(st.integers(0, len(others)))
    items = [*others[:position], *((key, [f"{key}_a", f"{key}_b"]) for key in keys), *others[position:]]
    prefix = draw(st.sampled_from(["", "model.", "model.layers.1."]))
    return dict(items), prefix + dotted


@st.composite
def doubly_malformed_packed_mappings(draw: st.DrawFn) -> Malformed:
    """A mapping with two defects of type (PM-7): two bad sub-names in one entry, bad values in
    two entries, or a bad key before a bad value. ``offending`` is the first (PM-9)."""
    pair: list[object] = draw(st.lists(st.sampled_from(BAD_SUB_NAMES), min_size=2, max_size=2, unique_by=repr))
    first, second = pair
    where = draw(st.sampled_from(["one-entry", "two-entries", "key-then-value"]))
    value: dict[object, object]
    if where == "one-entry":
        value = {"qkv_proj": ["q_proj", first, "k_proj", second]}
    elif where == "two-entries":
        value = {"qkv_proj": ["q_proj", first], "gate_up_proj": [second]}
    else:
        first = draw(st.sampled_from(BAD_KEYS))
        value = {first: ["q_proj"], "gate_up_proj": second}
    return Malformed(value, first, TypeError)
