"""Workloads of the post-loading benchmarks, built locally (no hub, no checkpoint).

Three model families, each built against one adapter (quantize methods must subclass
*that* implementation's ``QuantizeMethodBase``, attention layers its ``Attention``):

* :func:`dense_model`: a decoder with Llama-3-8B's layer structure and shape proportions
  (hidden 4096, intermediate 14336, 32 query heads / 8 KV heads of 128, vocab 128256,
  32 layers), every width divided by ``scale`` so it fits this machine; 32 layers are kept,
  so the module count (~390) is the real one. The module tree is vLLM's
  ``LlamaForCausalLM`` (``qkv_proj``/``gate_up_proj`` fused, ``attn``, ``rotary_emb``, ...).
* :func:`moe_model`: a mixture-of-experts layout with per-expert MLP modules, as the
  Transformers backend keeps them (DeepSeek-V3 under ``TransformersForCausalLM`` has ~75k
  modules); 30 layers x 64 experts is ~10,000 modules. Its tensors are tiny: it measures
  traversal, not tensor work.
* :func:`single_parameter_module`: one parameter of a given byte size (the size sweep,
  4 KiB to 256 MiB).

Quantize methods (:func:`quant_methods`): ``noop`` does nothing, ``repack`` transposes each
weight and makes it contiguous (assigned back to ``.data``), ``cast`` casts each weight
to the other of two 2-byte dtypes (bfloat16 -> float16, float16 -> bfloat16). Both replace
``.data`` with a new tensor; the benchmarks put the original tensors back (untimed,
:meth:`Workload.restorer`) before each call, so every call does the same work: bfloat16
weights in the ``[out, in]`` layout.

CPU offload (``offload_fraction``): the first ``ceil(fraction * layers)`` decoder layers
keep their parameters on the host (pinned when pinned memory is available, as vLLM's
``--cpu-offload-gb`` does); everything else lives on the target device. With offload, each
quantized layer's weights make a round trip host -> device -> host through
``device_loading_context`` (spec PW-6/PW-7, DL-2, DL-10..DL-12, DL-5).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from loaderspec.adapter import Adapter, NotProvided
from torch import nn

METHODS = ("noop", "repack", "cast")
"""The quantize-method kinds, by name."""

WEIGHT_DTYPE = torch.bfloat16
CAST_DTYPES = (torch.bfloat16, torch.float16)


# ---------------------------------------------------------------------------
# Quantize methods
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantMethods:
    """The three quantize-method classes of one adapter, subclasses of its ``QuantizeMethodBase``."""

    noop: type
    repack: type
    cast: type

    def get(self, kind: str) -> type:
        if kind not in METHODS:
            raise ValueError(f"unknown quantize method {kind!r}; expected one of {METHODS}")
        return getattr(self, kind)


def _weights(layer: nn.Module) -> Iterator[nn.Parameter]:
    for name, param in layer.named_parameters(recurse=False):
        if name.endswith("weight"):
            yield param


def _repack(layer: nn.Module) -> None:
    for param in _weights(layer):
        param.data = param.data.t().contiguous()


def _cast(layer: nn.Module) -> None:
    first, second = CAST_DTYPES
    for param in _weights(layer):
        param.data = param.data.to(second if param.data.dtype == first else first)


@functools.cache
def _quant_methods_for(base: type) -> QuantMethods:
    def trivial(cls_name: str, hook: Any, doc: str) -> type:
        def create_weights(self: Any, layer: nn.Module, *weight_args: Any, **extra: Any) -> None:
            return None

        def apply(self: Any, layer: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            return x

        namespace: dict[str, Any] = {"create_weights": create_weights, "apply": apply, "__doc__": doc}
        if hook is not None:
            namespace["process_weights_after_loading"] = lambda self, layer: hook(layer)
        else:
            namespace["process_weights_after_loading"] = lambda self, layer: None
        return type(cls_name, (base,), namespace)

    return QuantMethods(
        noop=trivial("BenchNoopMethod", None, "Processes nothing: the hook returns at once."),
        repack=trivial("BenchRepackMethod", _repack, "Transposes each weight and makes it contiguous."),
        cast=trivial("BenchCastMethod", _cast, "Casts each weight bfloat16 <-> float16."),
    )


def quant_methods(adapter: Adapter) -> QuantMethods:
    """The noop / repack / cast method classes for ``adapter`` (cached per base class).

    Raises :class:`~loaderspec.adapter.NotProvided` when the adapter has no
    ``QuantizeMethodBase``.
    """
    return _quant_methods_for(adapter.QuantizeMethodBase)


@functools.cache
def _attention_class_for(base: type) -> type:
    class BenchAttention(base):
        """An attention layer with a no-op backend hook (spec PW-4 calls it with the model dtype).

        ``Attention.__init__`` is not run: vLLM's needs a current ``VllmConfig`` and a
        backend; the traversal only needs the type and the hook.
        """

        def __init__(self, num_heads: int, head_size: int) -> None:
            nn.Module.__init__(self)
            self.num_heads = num_heads
            self.head_size = head_size
            self.impl = None
            self.layer_name = ""

        def process_weights_after_loading(self, act_dtype: torch.dtype) -> None:
            return None

    return BenchAttention


def attention_class(adapter: Adapter) -> type | None:
    """A subclass of ``adapter.Attention`` with a no-op hook, or None if the adapter has none."""
    try:
        return _attention_class_for(adapter.Attention)
    except NotProvided:
        return None


# ---------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------


@dataclass
class Placement:
    """Where a layer's parameters are created."""

    device: torch.device
    pin: bool = False

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
        if self.device.type == "cpu":
            data = torch.empty(shape, dtype=dtype, pin_memory=self.pin)
            data.uniform_(-0.05, 0.05, generator=generator)
            return data
        host = torch.empty(shape, dtype=dtype).uniform_(-0.05, 0.05, generator=generator)
        return host.to(self.device)


class BenchLinear(nn.Module):
    """A linear layer whose weight is ``[out, in]``, with a ``quant_method`` (vLLM's LinearBase)."""

    def __init__(
        self, out_features: int, in_features: int, where: Placement, quant_method: Any, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(where.empty((out_features, in_features), WEIGHT_DTYPE, generator), False)
        self.quant_method = quant_method


class BenchEmbedding(nn.Module):
    """A vocabulary embedding (or LM head): ``[vocab, hidden]``, unquantized method (a no-op hook)."""

    def __init__(self, vocab: int, hidden: int, where: Placement, quant_method: Any, g: torch.Generator) -> None:
        super().__init__()
        self.weight = nn.Parameter(where.empty((vocab, hidden), WEIGHT_DTYPE, g), requires_grad=False)
        self.quant_method = quant_method


class BenchRMSNorm(nn.Module):
    """An RMSNorm: one ``[hidden]`` weight, no quantize method."""

    def __init__(self, hidden: int, where: Placement, g: torch.Generator) -> None:
        super().__init__()
        self.weight = nn.Parameter(where.empty((hidden,), WEIGHT_DTYPE, g), requires_grad=False)


class Stateless(nn.Module):
    """A module without parameters (rotary embedding, activation, logits processor)."""


@dataclass(frozen=True)
class DenseShape:
    """The shape of a dense decoder."""

    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    layers: int
    vocab: int

    @property
    def qkv_out(self) -> int:
        return (self.heads + 2 * self.kv_heads) * self.head_dim


LLAMA3_8B = DenseShape(hidden=4096, intermediate=14336, heads=32, kv_heads=8, head_dim=128, layers=32, vocab=128256)
"""Llama-3-8B (meta-llama/Meta-Llama-3-8B config.json)."""


def dense_shape(scale: int = 8) -> DenseShape:
    """Llama-3-8B with every width divided by ``scale`` (heads and layers kept)."""
    if scale < 1 or LLAMA3_8B.head_dim % scale:
        raise ValueError(f"scale must be a divisor of {LLAMA3_8B.head_dim}, got {scale}")
    return replace(
        LLAMA3_8B,
        hidden=LLAMA3_8B.hidden // scale,
        intermediate=LLAMA3_8B.intermediate // scale,
        head_dim=LLAMA3_8B.head_dim // scale,
        vocab=LLAMA3_8B.vocab // scale,
    )


@dataclass(frozen=True)
class MoEShape:
    """The shape of the mixture-of-experts layout (tiny tensors: it is a traversal workload)."""

    layers: int = 30
    experts: int = 64
    hidden: int = 32
    expert_intermediate: int = 16
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 8
    vocab: int = 256

    @property
    def modules_per_layer(self) -> int:
        # decoder, self_attn, qkv, o, rotary, attn, mlp, router, experts list, 2 norms
        # + experts x (expert, gate_proj, up_proj, down_proj, act_fn)
        return 11 + 5 * self.experts

    @property
    def module_count(self) -> int:
        """``len(list(model.named_modules()))``: root, model, embed, layers, norm, lm_head, logits."""
        return 7 + self.layers * self.modules_per_layer


def moe_shape_for(modules: int, experts: int = 64) -> MoEShape:
    """The MoE shape whose module count is closest to ``modules`` (at least one layer)."""
    base = MoEShape(experts=experts)
    layers = max(1, round((modules - 7) / base.modules_per_layer))
    return replace(base, layers=layers)


@dataclass
class Workload:
    """A built model and what the benchmarks need to know about it."""

    name: str
    model: nn.Module
    target: torch.device
    method: str
    module_count: int
    param_bytes: int
    offloaded_bytes: int
    offloaded_params: int
    model_config: Any = None
    details: dict[str, Any] = field(default_factory=dict)

    def restorer(self) -> Callable[[], None]:
        """A callable putting back every parameter's current tensor (no copy).

        Repack and cast replace ``.data`` with a new tensor and leave the old one intact,
        so this undoes a pass exactly: the benchmarks run it, untimed, before each call.
        """
        pairs = [(p, p.data) for p in self.model.parameters()]

        def restore() -> None:
            for param, data in pairs:
                param.data = data

        return restore

    def quantized_modules(self) -> list[nn.Module]:
        """Modules holding a quantize method, in ``named_modules`` order (spec PW-1)."""
        return [m for _, m in self.model.named_modules() if getattr(m, "quant_method", None) is not None]


def _offloaded_layers(layers: int, fraction: float) -> int:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"offload fraction must be in [0, 1], got {fraction}")
    return math.ceil(fraction * layers)


def pin_like_context(target: torch.device) -> bool:
    """Whether host buffers are pinned, as the device context pins them (DL-5) and vLLM pins
    offloaded parameters: for a non-CPU target, when pinned memory can be allocated here.
    (vLLM's CPU platform answers False, so against vLLM on the simulated device the floors pin
    and vLLM does not.)"""
    if target.type == "cpu":
        return False
    try:
        return torch.empty(1, pin_memory=True).is_pinned()
    except RuntimeError:
        return False


def _byte_counts(model: nn.Module, target: torch.device) -> tuple[int, int, int]:
    """Total parameter bytes, and bytes and count of parameters offloaded to the host."""
    total = offloaded = count = 0
    for p in model.parameters():
        total += p.nbytes
        if p.device.type == "cpu" and target.type != "cpu":
            offloaded += p.nbytes
            count += 1
    return total, offloaded, count


def _decoder(
    *,
    layers: int,
    vocab: int,
    hidden: int,
    heads: int,
    head_dim: int,
    qkv_out: int,
    placements: tuple[Placement, Placement, int],
    methods: tuple[type, type],
    attention: type | None,
    generator: torch.Generator,
    mlp: Callable[[Placement], nn.Module],
) -> nn.Module:
    """vLLM's decoder module tree: embedding, ``layers`` x (attention block, ``mlp(where)``,
    two norms), final norm, LM head. ``placements`` = (host, target, how many leading layers
    live on the host); ``methods`` = (the linear layers' method class, the no-op one)."""
    host, on_target, offloaded = placements
    method_cls, noop_cls = methods
    g = generator
    model = nn.Module()
    model.model = nn.Module()
    model.model.embed_tokens = BenchEmbedding(vocab, hidden, on_target, noop_cls(), g)
    model.model.layers = nn.ModuleList()
    for index in range(layers):
        where = host if index < offloaded else on_target
        layer = nn.Module()
        attn = nn.Module()
        attn.qkv_proj = BenchLinear(qkv_out, hidden, where, method_cls(), g)
        attn.o_proj = BenchLinear(hidden, heads * head_dim, where, method_cls(), g)
        attn.rotary_emb = Stateless()
        attn.attn = attention(heads, head_dim) if attention is not None else Stateless()
        layer.self_attn = attn
        layer.mlp = mlp(where)
        layer.input_layernorm = BenchRMSNorm(hidden, where, g)
        layer.post_attention_layernorm = BenchRMSNorm(hidden, where, g)
        model.model.layers.append(layer)
    model.model.norm = BenchRMSNorm(hidden, on_target, g)
    model.lm_head = BenchEmbedding(vocab, hidden, on_target, noop_cls(), g)
    model.logits_processor = Stateless()
    return model


def dense_model(
    adapter: Adapter,
    *,
    method: str = "noop",
    scale: int = 8,
    target: torch.device | str = "cpu",
    offload_fraction: float = 0.0,
    seed: int = 0,
) -> Workload:
    """A Llama-3-8B-shaped decoder (vLLM's module tree), widths divided by ``scale``.

    Linear layers (``qkv_proj``, ``o_proj``, ``gate_up_proj``, ``down_proj``) get a fresh
    ``method`` instance each; embedding and LM head get a no-op method (vLLM's
    ``UnquantizedEmbeddingMethod``); norms have none. Scale 8 is ~125M parameters (~250 MB
    in bfloat16); scale 2 (~4 GB) is the largest that fits 24 GiB with room for a copy.
    """
    target = torch.device(target)
    methods = quant_methods(adapter)
    method_cls, noop_cls = methods.get(method), methods.noop
    attention = attention_class(adapter)
    shape = dense_shape(scale)
    g = torch.Generator().manual_seed(seed)
    on_target = Placement(target)
    offloaded = _offloaded_layers(shape.layers, offload_fraction)
    host = Placement(torch.device("cpu"), pin=pin_like_context(target))

    def dense_mlp(where: Placement) -> nn.Module:
        mlp = nn.Module()
        mlp.gate_up_proj = BenchLinear(2 * shape.intermediate, shape.hidden, where, method_cls(), g)
        mlp.down_proj = BenchLinear(shape.hidden, shape.intermediate, where, method_cls(), g)
        mlp.act_fn = Stateless()
        return mlp

    model = _decoder(
        layers=shape.layers,
        vocab=shape.vocab,
        hidden=shape.hidden,
        heads=shape.heads,
        head_dim=shape.head_dim,
        qkv_out=shape.qkv_out,
        placements=(host, on_target, offloaded),
        methods=(method_cls, noop_cls),
        attention=attention,
        generator=g,
        mlp=dense_mlp,
    )

    total, offloaded_bytes, offloaded_params = _byte_counts(model, target)
    suffix = f"-offload{offload_fraction:g}" if target.type != "cpu" else ""
    return Workload(
        name=f"dense-s{scale}-{method}-{target.type}{suffix}",
        model=model,
        target=target,
        method=method,
        module_count=sum(1 for _ in model.named_modules()),
        param_bytes=total,
        offloaded_bytes=offloaded_bytes,
        offloaded_params=offloaded_params,
        details={"shape": shape, "offloaded_layers": offloaded, "pinned_offload": host.pin},
    )


def moe_model(
    adapter: Adapter,
    *,
    shape: MoEShape | None = None,
    method: str = "noop",
    target: torch.device | str = "cpu",
    offload_fraction: float = 0.0,
    seed: int = 0,
) -> Workload:
    """The mixture-of-experts layout: per-expert MLP modules, every linear quantized.

    ``MoEShape()`` (30 layers x 64 experts) has 9,937 modules; :func:`moe_shape_for` picks
    the layer count for another module count (1k: 3 layers, 100k: 300 layers).
    """
    shape = shape or MoEShape()
    target = torch.device(target)
    methods = quant_methods(adapter)
    method_cls, noop_cls = methods.get(method), methods.noop
    attention = attention_class(adapter)
    g = torch.Generator().manual_seed(seed)
    on_target = Placement(target)
    offloaded = _offloaded_layers(shape.layers, offload_fraction)
    host = Placement(torch.device("cpu"), pin=pin_like_context(target))

    model = _decoder(
        layers=shape.layers,
        vocab=shape.vocab,
        hidden=shape.hidden,
        heads=shape.heads,
        head_dim=shape.head_dim,
        qkv_out=(shape.heads + 2 * shape.kv_heads) * shape.head_dim,
        placements=(host, on_target, offloaded),
        methods=(method_cls, noop_cls),
        attention=attention,
        generator=g,
        mlp=functools.partial(_moe_block, shape, method_cls, noop_cls, g),
    )

    count = sum(1 for _ in model.named_modules())
    total, offloaded_bytes, offloaded_params = _byte_counts(model, target)
    return Workload(
        name=f"moe-{_short_count(count)}-{method}-{target.type}",
        model=model,
        target=target,
        method=method,
        module_count=count,
        param_bytes=total,
        offloaded_bytes=offloaded_bytes,
        offloaded_params=offloaded_params,
        details={"shape": shape, "offloaded_layers": offloaded},
    )


def _moe_block(shape: MoEShape, method_cls: type, noop_cls: type, g: torch.Generator, where: Placement) -> nn.Module:
    """One layer's router (a no-op method) and per-expert MLPs (every linear gets ``method_cls()``)."""
    block = nn.Module()
    block.gate = BenchLinear(shape.experts, shape.hidden, where, noop_cls(), g)
    block.experts = nn.ModuleList()
    for _ in range(shape.experts):
        expert = nn.Module()
        expert.gate_proj = BenchLinear(shape.expert_intermediate, shape.hidden, where, method_cls(), g)
        expert.up_proj = BenchLinear(shape.expert_intermediate, shape.hidden, where, method_cls(), g)
        expert.down_proj = BenchLinear(shape.hidden, shape.expert_intermediate, where, method_cls(), g)
        expert.act_fn = Stateless()
        block.experts.append(expert)
    return block


def _short_count(count: int) -> str:
    if count >= 1000:
        return f"{round(count / 1000)}k"
    return str(count)


SIZE_SWEEP = tuple(4096 * 4**k for k in range(9))
"""4 KiB, 16 KiB, ..., 256 MiB: the parameter-size sweep."""

SIZE_SWEEP_QUICK = (4096, 256 * 1024, 16 * 1024 * 1024, 256 * 1024 * 1024)
"""4 KiB, 256 KiB, 16 MiB, 256 MiB (``--quick``)."""


def format_bytes(nbytes: float) -> str:
    """``4096`` -> ``'4KiB'``, ``268435456`` -> ``'256MiB'``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            value = nbytes / size
            return f"{value:.0f}{unit}" if value == int(value) else f"{value:.1f}{unit}"
    return f"{int(nbytes)}B"


def single_parameter_module(nbytes: int, *, pin: bool = False, seed: int = 0) -> nn.Module:
    """A module with one bfloat16 ``weight`` of ``nbytes`` bytes on the host (rows of 1 KiB)."""
    elements = nbytes // WEIGHT_DTYPE.itemsize
    cols = min(512, elements)
    if elements % cols:
        raise ValueError(f"{nbytes} bytes is not a whole number of {cols}-element rows")
    module = nn.Module()
    g = torch.Generator().manual_seed(seed)
    module.weight = nn.Parameter(
        Placement(torch.device("cpu"), pin).empty((elements // cols, cols), WEIGHT_DTYPE, g), False
    )
    return module


def write_config_folder(folder: Path) -> Path:
    """A local model folder (the suites' tiny Llama) for ``adapter.model_config``.

    Only ``model_config.dtype`` is read by ``process_weights_after_loading`` (spec PW-4).
    """
    from loaderspec.support.model_folders import write_llama_folder

    return write_llama_folder(folder)


def model_config(adapter: Adapter, folder: Path, dtype: torch.dtype = WEIGHT_DTYPE) -> Any:
    """``adapter.model_config`` of a tiny local folder, with ``dtype`` (written once into ``folder``)."""
    if not (folder / "config.json").is_file():
        write_config_folder(folder)
    return adapter.model_config(folder, dtype=dtype)
