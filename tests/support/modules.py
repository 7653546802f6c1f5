"""What the strategies describe, and how to build it: tensors, module trees, device-context
bodies, dynamic-module folders. ``tests/strategies.py`` draws these descriptions; the tests
build real objects from them here. Every description is a frozen dataclass, readable in a
shrunk example.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
from loaderspec.support.model_folders import write_custom_code_folder

from .errors import PlantedError

# --- tensors -----------------------------------------------------------------

LAYOUTS = ("contiguous", "transposed", "strided-slice", "scalar", "expanded")
"""How a tensor's elements sit in memory; ``expanded`` overlaps (a stride of 0, DL-16)."""


@dataclass(frozen=True)
class TensorSpec:
    """How to build one tensor."""

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
        elif self.layout == "expanded":
            # At least two rows sharing one: `copy_` cannot write into such a tensor.
            row = _random_tensor(self.dtype, (1, *shape[1:]), self.seed)
            tensor = row.expand(max(2, shape[0] if shape else 2), *shape[1:])
        else:
            tensor = _random_tensor(self.dtype, shape, self.seed)
        return tensor.to(device) if torch.device(device).type != "cpu" else tensor


def _random_tensor(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    numel = 1
    for size in shape:
        numel *= size
    generator = torch.Generator().manual_seed(seed)
    # device="cpu" throughout: some tests run under another default device (DL-18).
    itemsize = torch.empty((), dtype=dtype, device="cpu").element_size()
    raw = torch.randint(0, 256, (numel * itemsize,), dtype=torch.uint8, generator=generator, device="cpu")
    if dtype == torch.bool:
        raw = raw % 2
    return raw.view(dtype).reshape(shape)


def overlaps(tensor: torch.Tensor) -> bool:
    """Whether two elements share memory through a stride of 0 (what ``copy_`` refuses)."""
    if tensor.numel() <= 1:
        return False
    return any(stride == 0 and size > 1 for size, stride in zip(tensor.size(), tensor.stride(), strict=True))


def is_dense(tensor: torch.Tensor) -> bool:
    """Whether the elements fill a block of ``numel`` slots, each once (no overlap, no gap):
    the strides, taken from the smallest, are the products of the sizes inside them. Dimensions
    of size 1 are skipped (their stride is never used)."""
    expected = 1
    for stride, size in sorted(
        (stride, size) for size, stride in zip(tensor.size(), tensor.stride(), strict=True) if size != 1
    ):
        if stride != expected:
            return False
        expected *= size
    return True


# --- module trees ----------------------------------------------------------------


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


def build_module(spec: ModuleSpec, target: torch.device) -> torch.nn.Module:
    """A real module tree for ``spec``; parameters marked ``on_target`` start on ``target``."""
    root = torch.nn.Module()
    for path in spec.submodules:
        ensure_submodule(root, path)
    by_name: dict[str, torch.nn.Parameter] = {}
    for param in spec.params:
        owner = ensure_submodule(root, param.path)
        if param.tied_to is not None and param.tied_to in by_name:
            parameter = by_name[param.tied_to]
        else:
            data = param.tensor.build(target if param.on_target else "cpu")
            parameter = torch.nn.Parameter(data, requires_grad=False)
        owner.register_parameter(param.name, parameter)
        by_name[param.full_name] = parameter
    for buffer in spec.buffers:
        ensure_submodule(root, buffer.path).register_buffer(buffer.name, buffer.tensor.build("cpu"))
    return root


def ensure_submodule(root: torch.nn.Module, path: str) -> torch.nn.Module:
    module = root
    for part in filter(None, path.split(".")):
        if not hasattr(module, part):
            module.add_module(part, torch.nn.Module())
        module = getattr(module, part)
    return module


# --- bodies run inside the device context ------------------------------------------

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
    default_device: bool = False
    """Run the block under ``with torch.device(target)`` (DL-18)."""


# --- model folders whose code transformers imports ----------------------------------


def isolated_custom_code_folder(parent: Path, **options: object) -> Path:
    """A custom-code model folder (``write_custom_code_folder``) that no other test shares.

    transformers caches dynamic modules by folder name and file content, per process (and on
    disk, shared by every process of the user): a test that reuses another folder's name and
    code sees no import at all. A fresh name and a token in every code file make each folder
    import its own modules, whatever ran before.
    """
    token = uuid.uuid4().hex
    folder = write_custom_code_folder(parent / f"model_{token}", **options)  # type: ignore[arg-type]
    for code in folder.glob("*.py"):
        code.write_text(code.read_text() + f"\n# loaderspec isolation token {token}\n")
    return folder


# --- host storage reuse (DL-19) ----------------------------------------------------------

REUSE_OUTCOMES = (
    "kept",
    "written-in-place",
    "same-layout",
    "left-on-cpu",
    "dtype-changed",
    "size-changed",
    "stride-changed",
)
"""What the body leaves in one parameter. The first four keep the original size, stride and
dtype (DL-19 allows reuse); each of the last three changes exactly one of them (DL-19 forbids it)."""


@dataclass(frozen=True)
class ReuseCase:
    """Parameters ``p0``, ``p1``, ... of one dtype and shape, all on the CPU, each a view with
    a margin of one element on either side (so a write outside the view shows), and what the
    body leaves in each. Several of one shape catch a restore into the wrong original."""

    dtype: torch.dtype
    shape: tuple[int, int]
    outcomes: tuple[str, ...]
    one_buffer: bool = False
    """Every parameter is a view of one host buffer (an offloading manager's): shared storage."""
    pin_originals: bool = False
    """The host buffers are pinned, as vLLM's CPU offloading allocates them."""
    other_dtype: torch.dtype = torch.float32
    """The dtype a ``dtype-changed`` outcome leaves (never ``dtype``)."""
    raises: bool = False
    seed: int = 0

    def build(self) -> torch.nn.Module:
        numel = self.shape[0] * self.shape[1]
        count = len(self.outcomes)
        if self.one_buffer:
            buffers = [_random_tensor(self.dtype, (count * (numel + 1) + 1,), self.seed)]
        else:
            buffers = [_random_tensor(self.dtype, (numel + 2,), self.seed + index) for index in range(count)]
        if self.pin_originals:
            buffers = [buffer.pin_memory() for buffer in buffers]
        module = torch.nn.Module()
        for index in range(count):
            start = 1 + index * (numel + 1) if self.one_buffer else 1
            view = buffers[0 if self.one_buffer else index][start : start + numel].view(self.shape)
            module.register_parameter(f"p{index}", torch.nn.Parameter(view, requires_grad=False))
        return module

    def run_body(self, module: torch.nn.Module, target: torch.device) -> None:
        """Leave each parameter's data as its outcome says; then raise if ``raises``."""
        rows, columns = self.shape
        for index, outcome in enumerate(self.outcomes):
            param = getattr(module, f"p{index}")
            fresh = TensorSpec(self.dtype, self.shape, "contiguous", self.seed + 1000 + index)
            if outcome == "written-in-place":
                param.data.copy_(fresh.build(target))
            elif outcome == "same-layout":
                param.data = fresh.build(target)
            elif outcome == "left-on-cpu":
                param.data = fresh.build("cpu")
            elif outcome == "dtype-changed":
                param.data = TensorSpec(self.other_dtype, self.shape, "contiguous", fresh.seed).build(target)
            elif outcome == "size-changed":  # one more row: contiguous strides stay the same
                param.data = TensorSpec(self.dtype, (rows + 1, columns), "contiguous", fresh.seed).build(target)
            elif outcome == "stride-changed":  # every other column of a wider tensor
                param.data = TensorSpec(self.dtype, self.shape, "strided-slice", fresh.seed).build(target)
        if self.raises:
            raise PlantedError("body raised on purpose")
