"""Exact tensor snapshots for bit-for-bit comparisons in the device-state properties."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def raw_bytes(tensor: torch.Tensor) -> bytes:
    """The tensor's elements as bytes, in logical order, wherever it lives (NaN payloads kept)."""
    if tensor.numel() == 0:
        return b""
    flat = torch.empty(tensor.numel(), dtype=tensor.dtype, device="cpu")
    flat.copy_(tensor.detach().reshape(-1).to("cpu"))
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return flat.view(torch.uint8).numpy().tobytes()


@dataclass(frozen=True)
class Snapshot:
    """What a parameter's data was at one moment."""

    device: torch.device
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    data_ptr: int
    content: bytes

    @classmethod
    def of(cls, tensor: torch.Tensor) -> Snapshot:
        return cls(
            device=tensor.device,
            size=tuple(tensor.size()),
            stride=tuple(tensor.stride()),
            dtype=tensor.dtype,
            data_ptr=tensor.data_ptr(),
            content=raw_bytes(tensor),
        )

    def describe(self) -> str:
        return f"{self.dtype} size={self.size} stride={self.stride} on {self.device}"
