"""The one place that turns a device kind (``cpu``, ``cuda``, ``sim``) into a torch device,
for the suites' fixtures and the benchmarks' targets alike."""

from __future__ import annotations

import torch

KINDS = ("cpu", "cuda", "sim")


class DeviceUnavailable(RuntimeError):
    """The device kind cannot be had on this machine; the message says why."""


def accelerator_kinds() -> list[str]:
    """Every accelerator kind worth trying here: CUDA when present, the simulated device always."""
    return (["cuda"] if torch.cuda.is_available() else []) + ["sim"]


def resolve(kind: str) -> torch.device:
    """The torch device of ``kind``; :class:`DeviceUnavailable` with the reason if there is none."""
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable("cuda requested but torch.cuda.is_available() is False")
        return torch.device("cuda", torch.cuda.current_device())
    if kind == "sim":
        from .simulated_device import SimulatedDeviceUnavailable, simulated_device

        try:
            return simulated_device()
        except SimulatedDeviceUnavailable as error:
            raise DeviceUnavailable(f"simulated device unavailable: {error}") from error
    raise ValueError(f"unknown device kind {kind!r}; expected one of {', '.join(KINDS)}")


def resolve_or_skip(kind: str) -> torch.device:
    """:func:`resolve`, or skip the calling pytest test with the reason (for fixtures)."""
    import pytest

    try:
        return resolve(kind)
    except DeviceUnavailable as error:
        pytest.skip(str(error))
