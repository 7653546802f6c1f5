"""Floors: what the measured paths cannot beat, measured in the same run as the figures.

* :func:`traversal_floor`: the two bare ``named_modules()`` passes of
  ``process_weights_after_loading`` with the same type checks (spec PW-1, PW-2, PW-4) and
  nothing else: no hook call, no device context.
* :func:`post_loading_floor`: the traversal floor, plus the quantize hooks called directly
  on the quantized modules, plus, for parameters on the host with an accelerator target,
  the round trip done with plain copies into preallocated buffers (spec PW-6/PW-7 without the
  context's allocations).
* :func:`copy_floor`: the bytes of a round trip moved with plain tensor copies into
  preallocated buffers (device <- host, host <- device): the copy bandwidth that
  ``device_loading_context`` (DL-2, DL-10..DL-12) cannot beat. Host buffers are pinned when the
  context would pin (DL-5).
* :func:`measure_host_memory`: host bytes held after the restore, against the parameters'
  bytes (the floor is the parameters' bytes: ratio 1.0).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from loaderspec.adapter import Adapter, NotProvided
from torch import nn

from .measure import synchronize
from .workloads import pin_like_context


class _NeverInstance:
    """Stands for a class the adapter does not provide: nothing is an instance of it."""


def _collaborator(adapter: Adapter, name: str) -> type[Any]:
    try:
        return adapter.lookup(name)
    except NotProvided:
        return _NeverInstance


def traversal_floor(adapter: Adapter, model: nn.Module) -> Callable[[], None]:
    """Two bare ``named_modules()`` passes with the checks of ``process_weights_after_loading``.

    Pass 1 (PW-1/PW-2): ``isinstance(module, QKVCrossParallelLinear)``, then
    ``isinstance(getattr(module, "quant_method", None), QuantizeMethodBase)``. Pass 2
    (PW-4): ``isinstance(module, Attention) and hasattr(module, "process_weights_after_loading")``.
    """
    qkv_cross = _collaborator(adapter, "QKVCrossParallelLinear")
    method_base = _collaborator(adapter, "QuantizeMethodBase")
    attention = _collaborator(adapter, "Attention")

    def floor() -> None:
        for _, module in model.named_modules():
            if isinstance(module, qkv_cross):
                continue
            if isinstance(getattr(module, "quant_method", None), method_base):
                pass
        for _, module in model.named_modules():
            if isinstance(module, attention) and hasattr(module, "process_weights_after_loading"):
                pass

    return floor


@dataclass
class _Staged:
    param: nn.Parameter
    offset: int  # where its bytes go in the shared device staging buffer
    host_buffer: torch.Tensor  # flat bytes on the host, its own


def _flat_bytes(nbytes: int, device: torch.device, pin: bool) -> torch.Tensor:
    if device.type == "cpu":
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=pin)
    return torch.empty(nbytes, dtype=torch.uint8, device=device)


def _view(buffer: torch.Tensor, like: torch.Tensor, offset: int = 0) -> torch.Tensor | None:
    """``buffer``'s bytes from ``offset`` viewed as a contiguous tensor shaped like ``like`` (None if it cannot)."""
    if offset + like.nbytes > buffer.numel() or not like.is_contiguous():
        return None
    return buffer[offset : offset + like.nbytes].view(like.dtype).view(like.shape)


def copy_floor(params: list[torch.Tensor], target: torch.device) -> Callable[[], None]:
    """Plain copies of ``params``' bytes host -> target -> host, into preallocated buffers.

    Buffers are allocated (and touched) once, here; the returned callable only copies.
    """
    pin = pin_like_context(target)
    pairs = []
    for p in params:
        device_buffer = torch.empty_like(p, device=target)
        host_buffer = torch.empty(p.shape, dtype=p.dtype, pin_memory=pin)
        device_buffer.copy_(p)
        host_buffer.copy_(device_buffer)
        pairs.append((p, device_buffer, host_buffer))
    synchronize(target)

    def floor() -> None:
        for source, device_buffer, host_buffer in pairs:
            device_buffer.copy_(source)
            host_buffer.copy_(device_buffer)
        synchronize(target)

    return floor


def post_loading_floor(adapter: Adapter, model: nn.Module, target: torch.device) -> Callable[[], None]:
    """The traversal floor + the quantize hooks called directly + staged copies for host parameters.

    For a quantized module with parameters on the host and an accelerator target, those
    parameters are copied into one device staging buffer, preallocated and shared by all
    modules (as an implementation that frees each module's device copies before the next
    module reuses their memory), the hook runs, and each result is copied back into the
    parameter's own preallocated host buffer (a fresh host tensor only if the hook's result
    does not fit it). The model is left equivalent (same values, devices, shapes, dtypes).
    """
    bare = traversal_floor(adapter, model)
    method_base = _collaborator(adapter, "QuantizeMethodBase")
    pin = pin_like_context(target)
    plan: list[tuple[nn.Module, Any, list[_Staged]]] = []
    staging_bytes = 0
    for _, module in model.named_modules():
        method = getattr(module, "quant_method", None)
        if not isinstance(method, method_base):
            continue
        staged: list[_Staged] = []
        offset = 0
        if target.type != "cpu":
            for _, p in module.named_parameters():
                if p.device.type == "cpu":
                    staged.append(_Staged(p, offset, _flat_bytes(p.nbytes, p.device, pin)))
                    offset += -(-p.nbytes // 64) * 64  # keep each slot 64-byte aligned
        staging_bytes = max(staging_bytes, offset)
        plan.append((module, method, staged))
    staging = _flat_bytes(staging_bytes, target, False) if staging_bytes else None

    def floor() -> None:
        bare()
        for module, method, staged in plan:
            for s in staged:
                assert staging is not None
                on_device = _view(staging, s.param.data, s.offset)
                if on_device is None:  # not contiguous: no preallocated layout fits
                    on_device = torch.empty_like(s.param.data, device=target)
                on_device.copy_(s.param.data)
                s.param.data = on_device
            method.process_weights_after_loading(module)
            for s in staged:
                result = s.param.data
                host = _view(s.host_buffer, result)
                if host is None:
                    host = torch.empty(result.shape, dtype=result.dtype, pin_memory=pin)
                host.copy_(result)
                s.param.data = host
        synchronize(target)

    return floor


# ---------------------------------------------------------------------------
# Host memory
# ---------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


_LIBC: Any = None


def _malloc_trim() -> bool:
    """Return free heap memory to the system (glibc); False where there is no malloc_trim."""
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        _LIBC = ctypes.CDLL(name) if name else False
    trim = getattr(_LIBC, "malloc_trim", None) if _LIBC else None
    if trim is None:
        return False
    trim(0)
    return True


def next_power_of_two(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@dataclass
class HostMemory:
    """Host bytes attributable to the offloaded parameters, before and after the post-loading pass."""

    source: str  # "cuda-host-allocator" or "rss"
    param_bytes: int
    held_before: int
    held_after: int
    held_after_trim: int | None
    predicted_pow2_bytes: int
    """What a power-of-two-rounding pinned allocator (CUDA's, vLLM #56410) would hold for one copy."""
    active_after: int | None = None
    """CUDA: pinned bytes in use after the pass (``held_after`` also counts cached free blocks)."""

    @property
    def ratio_after(self) -> float:
        return self.held_after / self.param_bytes

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "param_bytes": self.param_bytes,
            "held_before": self.held_before,
            "held_after": self.held_after,
            "held_after_trim": self.held_after_trim,
            "ratio_before": self.held_before / self.param_bytes,
            "ratio_after": self.ratio_after,
            "ratio_after_trim": None if self.held_after_trim is None else self.held_after_trim / self.param_bytes,
            "predicted_pow2_ratio": self.predicted_pow2_bytes / self.param_bytes,
            "active_after": self.active_after,
            "ratio_active_after": None if self.active_after is None else self.active_after / self.param_bytes,
        }


def _host_counter(target: torch.device) -> tuple[str, Callable[[], int]]:
    if target.type == "cuda":
        return "cuda-host-allocator", lambda: int(torch.cuda.host_memory_stats().get("allocated_bytes.current", 0))
    return "rss", _rss_bytes


def _empty_host_cache(target: torch.device) -> None:
    """Give cached pinned blocks back (CUDA), so earlier cases cannot serve this one's allocations."""
    if target.type != "cuda":
        return
    torch.cuda.synchronize(target)
    empty = getattr(torch.accelerator, "empty_host_cache", None)
    if empty is not None:
        empty()


def _cuda_active_bytes(target: torch.device) -> int | None:
    if target.type != "cuda":
        return None
    return int(torch.cuda.host_memory_stats().get("active_bytes.current", 0))


def measure_host_memory(
    build: Callable[[], tuple[nn.Module, Callable[[nn.Module], None]]], target: torch.device
) -> HostMemory:
    """Build a model (``build`` returns it and the pass to run), run the pass once, count host bytes.

    ``held`` is host bytes now minus host bytes before the build, less the bytes of
    parameters on the target when the target's memory is host memory (the simulated
    device). On CUDA the count is the pinned host allocator's ``allocated_bytes`` (blocks
    owned, active or cached, rounded as allocated); elsewhere it is the process RSS, which
    includes what malloc keeps after a free (``held_after_trim``: after ``malloc_trim``).
    Memory freed by the build is trimmed before the pass; nothing is trimmed between the
    pass and ``held_after``.
    """
    source, counter = _host_counter(target)
    gc.collect()
    _malloc_trim()
    _empty_host_cache(target)
    start = counter()
    model, run = build()
    host_params = [p for p in model.parameters() if p.device.type == "cpu"]
    param_bytes = sum(p.nbytes for p in host_params)
    on_target = sum(p.nbytes for p in model.parameters() if p.device.type != "cpu")
    target_in_host = on_target if (source == "rss" and target.type != "cpu") else 0
    predicted = sum(next_power_of_two(p.nbytes) for p in host_params)
    gc.collect()
    # The build's temporaries (random sources, freed) are not the pass's: give them back
    # first, so ``after`` counts what the pass and its restore leave (no trim after it).
    _malloc_trim()
    before = counter() - start - target_in_host
    run(model)
    synchronize(target)
    gc.collect()
    after = counter() - start - target_in_host
    after_trim = None
    if source == "rss" and _malloc_trim():
        after_trim = counter() - start - target_in_host
    active = _cuda_active_bytes(target)
    del model, host_params
    gc.collect()
    return HostMemory(source, param_bytes, before, after, after_trim, predicted, active)


def traversal_breakdown(adapter: Adapter, model: nn.Module, model_config: Any) -> dict[str, Callable[[], None]]:
    """Variants between the traversal floor and the implementation, CPU target (diagnosis only).

    ``floor``: the bare passes; ``+ hooks``: the same passes calling each quantize hook and
    attention hook (what ``process_weights_after_loading`` would cost if it skipped the
    device context for a CPU target, which DL-1 makes a no-op); ``+ hooks + context``:
    hooks inside the adapter's own ``device_loading_context`` (the implementation's
    structure, re-assembled); ``implementation``: ``process_weights_after_loading`` itself.
    """
    qkv_cross = _collaborator(adapter, "QKVCrossParallelLinear")
    method_base = _collaborator(adapter, "QuantizeMethodBase")
    attention = _collaborator(adapter, "Attention")
    cpu = torch.device("cpu")
    dtype = model_config.dtype

    def with_context(context: Callable[[nn.Module, torch.device], Any] | None) -> Callable[[], None]:
        def variant() -> None:
            for _, module in model.named_modules():
                if isinstance(module, qkv_cross):
                    module.process_weights_after_loading()
                    continue
                method = getattr(module, "quant_method", None)
                if isinstance(method, method_base):
                    if context is None:
                        method.process_weights_after_loading(module)
                    else:
                        with context(module, cpu):
                            method.process_weights_after_loading(module)
            for _, module in model.named_modules():
                if isinstance(module, attention) and hasattr(module, "process_weights_after_loading"):
                    module.process_weights_after_loading(dtype)

        return variant

    process = adapter.process_weights_after_loading
    return {
        "floor": traversal_floor(adapter, model),
        "+ hooks": with_context(None),
        "+ hooks + context": with_context(adapter.device_loading_context),
        "implementation": lambda: process(model, model_config, cpu),
    }
