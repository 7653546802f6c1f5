"""Hypothesis strategies of the loaderspec suites, in one place.

They aim at the hard cases on purpose: names that overlap as suffixes, repeated
sub-names, self-contained and empty entries; every dtype torch offers, zero sizes,
transposed and strided layouts, tied weights; bodies that write, replace, add,
delete and raise at every point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st

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
    if mapping and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(mapping)))
        joiner = draw(st.sampled_from([".", "", "_", "q"]))
        return f"{prefix}{joiner}{key}" if prefix or joiner else key
    return draw(names)


malformed_packed_mappings = st.one_of(
    st.just(["qkv_proj"]),
    st.just("qkv_proj"),
    st.just({"qkv_proj": "qkv"}),
    st.just({"qkv_proj": ["q_proj", 3]}),
    st.just({3: ["q_proj"]}),
    st.just({"qkv_proj": None}),
    st.just({"": ["q_proj"]}),
    st.just({"qkv_proj": ["q_proj", ""]}),
)
"""Mappings no loader should accept: each names its own defect in the error (PM-6)."""

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
        "float16",
        None,
        float,
    ]
)
"""Values that cannot be the default dtype: non-floating, storage-less float8, non-dtypes."""

BODY_EXITS = ("return", "exception", "keyboard-interrupt", "generator-closed")
"""How a ``with`` body can leave: normally, by Exception, by BaseException, by GeneratorExit."""


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

LAYOUTS = ("contiguous", "transposed", "strided-slice", "scalar")


@dataclass(frozen=True)
class TensorSpec:
    """How to build one tensor: readable in a shrunk example."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    layout: str
    seed: int

    def build(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Random bytes of ``seed`` (NaN payloads, -0.0 and subnormals included)."""
        shape = () if self.layout == "scalar" else self.shape
        if self.layout == "transposed" and len(shape) >= 2:
            base = _random_tensor(self.dtype, (*shape[:-2], shape[-1], shape[-2]), self.seed)
            tensor = base.transpose(-1, -2)
        elif self.layout == "strided-slice" and len(shape) >= 1:
            base = _random_tensor(self.dtype, (*shape[:-1], 2 * shape[-1] + 1), self.seed)
            tensor = base[..., 1::2]
        else:
            tensor = _random_tensor(self.dtype, shape, self.seed)
        return tensor.to(device) if torch.device(device).type != "cpu" else tensor


def _random_tensor(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    numel = 1
    for size in shape:
        numel *= size
    generator = torch.Generator().manual_seed(seed)
    itemsize = torch.empty((), dtype=dtype).element_size()
    raw = torch.randint(0, 256, (numel * itemsize,), dtype=torch.uint8, generator=generator)
    if dtype == torch.bool:
        raw = raw % 2
    return raw.view(dtype).reshape(shape)


@st.composite
def tensor_specs(draw: st.DrawFn, dtypes: tuple[torch.dtype, ...] = ALL_DTYPES) -> TensorSpec:
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    return TensorSpec(
        dtype=draw(st.sampled_from(dtypes)),
        shape=shape,
        layout=draw(st.sampled_from(LAYOUTS)),
        seed=draw(st.integers(0, 2**16)),
    )


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: where it lives (``path`` ``""`` is the root module)."""

    path: str
    name: str
    tensor: TensorSpec
    on_target: bool = False
    tied_to: str | None = None
    """Full name of an earlier parameter this one shares (tied weights)."""

    @property
    def full_name(self) -> str:
        return f"{self.path}.{self.name}" if self.path else self.name


@dataclass(frozen=True)
class ModuleSpec:
    """A module tree with parameters and buffers."""

    submodules: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    buffers: tuple[ParamSpec, ...] = field(default=())


SUBMODULE_PATHS = ("", "attn", "mlp", "mlp.experts", "norm")
PARAM_NAMES = ("weight", "bias", "scale", "w13", "qzeros")


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
        if params and draw(st.integers(0, 4)) == 0:
            tied_to = draw(st.sampled_from([p.full_name for p in params if p.tied_to is None] or [None]))
        params.append(
            ParamSpec(
                path=path,
                name=name,
                tensor=draw(tensor_specs()),
                on_target=allow_on_target and draw(st.integers(0, 3)) == 0,
                tied_to=tied_to,
            )
        )
    buffers = tuple(
        ParamSpec(path=path, name=f"buf_{i}", tensor=draw(tensor_specs()))
        for i, path in enumerate(draw(st.lists(st.sampled_from(SUBMODULE_PATHS), max_size=2)))
    )
    submodules = tuple(sorted({p.path for p in (*params, *buffers) if p.path}))
    return ModuleSpec(submodules=submodules, params=tuple(params), buffers=buffers)


def build_module(spec: ModuleSpec, target: torch.device) -> torch.nn.Module:
    """A real module tree for ``spec``; parameters marked ``on_target`` start on ``target``."""
    root = torch.nn.Module()
    for path in spec.submodules:
        _ensure_submodule(root, path)
    by_name: dict[str, torch.nn.Parameter] = {}
    for param in spec.params:
        owner = _ensure_submodule(root, param.path)
        if param.tied_to is not None and param.tied_to in by_name:
            parameter = by_name[param.tied_to]
        else:
            data = param.tensor.build(target if param.on_target else "cpu")
            parameter = torch.nn.Parameter(data, requires_grad=False)
        owner.register_parameter(param.name, parameter)
        by_name[param.full_name] = parameter
    for buffer in spec.buffers:
        _ensure_submodule(root, buffer.path).register_buffer(buffer.name, buffer.tensor.build("cpu"))
    return root


def _ensure_submodule(root: torch.nn.Module, path: str) -> torch.nn.Module:
    module = root
    for part in filter(None, path.split(".")):
        if not hasattr(module, part):
            module.add_module(part, torch.nn.Module())
        module = getattr(module, part)
    return module


# --- bodies run inside the device context -----------------------------------

BODY_ACTIONS = ("write-in-place", "replace-data", "add-parameter", "delete-parameter", "re-register")


@dataclass(frozen=True)
class BodyStep:
    """One thing the body does; ``index`` picks a parameter among those present."""

    action: str
    index: int
    tensor: TensorSpec
    on_cpu: bool = False
    """For replace-data / re-register: put the new data on CPU instead of the target."""


@dataclass(frozen=True)
class Body:
    steps: tuple[BodyStep, ...]
    raises: str | None
    """None, "exception" or "keyboard-interrupt": how the body ends."""


@st.composite
def bodies(draw: st.DrawFn, max_steps: int = 4) -> Body:
    steps = draw(
        st.lists(
            st.builds(
                BodyStep,
                action=st.sampled_from(BODY_ACTIONS),
                index=st.integers(0, 7),
                tensor=tensor_specs(),
                on_cpu=st.integers(0, 4).map(lambda n: n == 0),
            ),
            max_size=max_steps,
        )
    )
    raises = draw(st.sampled_from([None, None, "exception", "keyboard-interrupt"]))
    return Body(steps=tuple(steps), raises=raises)


# --- added by the mutation run (tools/mutants/survivors.md) ---

MALFORMED_PACKED_MAPPINGS_BY_ERROR = (
    (["qkv_proj"], TypeError),
    ("qkv_proj", TypeError),
    ({"qkv_proj": "qkv"}, TypeError),
    ({"qkv_proj": ["q_proj", 3]}, TypeError),
    ({3: ["q_proj"]}, TypeError),
    ({"qkv_proj": None}, TypeError),
    ({"": ["q_proj"]}, ValueError),
    ({"qkv_proj": ["q_proj", ""]}, ValueError),
)
"""Malformed packed mappings and the exception PM-6 specifies for each: TypeError for a wrong
type, ValueError for an empty name."""
