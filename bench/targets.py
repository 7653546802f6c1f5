"""Targets: the CPU, and the accelerator at hand (CUDA, else the simulated device)."""

from __future__ import annotations

import torch
from loaderspec.support import devices


def _try(kind: str) -> tuple[torch.device | None, str]:
    """The device of ``kind`` and ``""``, or None and why it is unavailable."""
    try:
        return devices.resolve(kind), ""
    except devices.DeviceUnavailable as error:
        return None, str(error)


def simulated_device() -> tuple[torch.device | None, str]:
    """The simulated device (``sim:0``) and ``""``, or None and why it is unavailable."""
    return _try("sim")


def default_targets() -> tuple[list[torch.device], list[str]]:
    """``[cpu, cuda]`` on a CUDA machine, else ``[cpu, sim]`` where the simulated device builds.

    The simulated device is not installed next to CUDA: it takes over the pinned host
    allocator of the process. Returns the targets and notes on what is missing.
    """
    targets = [torch.device("cpu")]
    notes: list[str] = []
    if torch.cuda.is_available():
        targets.append(torch.device("cuda", torch.cuda.current_device()))
        return targets, notes
    sim, why = simulated_device()
    if sim is None:
        notes.append(f"simulated device unavailable, CPU target only: {why}")
    else:
        targets.append(sim)
    return targets, notes


def parse_targets(spec: str) -> tuple[list[torch.device], list[str]]:
    """``"auto"`` or a comma list of ``cpu``, ``sim``, ``cuda`` (unavailable ones are noted, not fatal)."""
    if spec == "auto":
        return default_targets()
    targets: list[torch.device] = []
    notes: list[str] = []
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        if name not in devices.KINDS:
            raise ValueError(f"unknown target {name!r}; expected auto or a comma list of cpu, sim, cuda")
        device, why = _try(name)
        if device is None:
            notes.append(f"{name} requested but unavailable: {why}")
        else:
            targets.append(device)
    return targets, notes


def describe_machine() -> str:
    """CPU model, core count, memory, torch version, and the GPU if any."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        memory = f", {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu} x{os.cpu_count()}{memory}, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    import os

    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def busy_note(when: str) -> str | None:
    """A label when other processes compete for the CPUs (figures are then noisier)."""
    import os

    load, cpus = load_average(), os.cpu_count() or 1
    if load is None or load < 0.5 * cpus:
        return None
    return (
        f"machine busy {when}: 1-minute load average {load:.2f} on {cpus} CPUs; other processes "
        "compete with the benchmark, so spreads are wider (multi-threaded copies can wait a "
        "scheduler tick, ~4-16 ms, for a busy core)"
    )


def machine_facts() -> dict[str, object]:
    """What a saved run records about where it ran (compare runs from one machine)."""
    import os
    import platform

    return {
        "description": describe_machine(),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": load_average(),
    }
