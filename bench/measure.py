"""Timing: several rounds of each contender, interleaved, reported as median with spread.

Rules (from the benchmark issue): a figure is the median of several rounds, shown with
its spread (the interquartile range relative to the median); a figure whose spread is
above :data:`NOISY_SPREAD` is labelled ``noisy``, never dropped. Nothing here fails on a
time.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

NOISY_SPREAD = 0.10
"""A series whose IQR is above 10% of its median is labelled noisy."""


@dataclass
class Series:
    """The per-call durations (seconds) of one contender."""

    name: str
    times: list[float] = field(default_factory=list)
    iterations: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.times) < 2:
            return self.times[0], self.times[0]
        q1, _, q3 = statistics.quantiles(self.times, n=4, method="inclusive")
        return q1, q3

    @property
    def spread(self) -> float:
        """IQR / median (0 for a single round)."""
        q1, q3 = self.quartiles
        return (q3 - q1) / self.median if self.median > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY_SPREAD

    def as_dict(self) -> dict[str, object]:
        q1, q3 = self.quartiles
        return {
            "median_s": self.median,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(self.times),
            "max_s": max(self.times),
            "spread": self.spread,
            "noisy": self.noisy,
            "rounds": len(self.times),
            "iterations": self.iterations,
            "times_s": list(self.times),
        }


STEADY_MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc's largest mmap threshold (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit)."""


def steady_allocator() -> str:
    """Fix glibc's malloc thresholds so freed host memory is reused, not unmapped and re-faulted.

    By default glibc adapts its mmap threshold to the sizes freed so far and trims the heap
    top, so whether a tensor allocation reuses warm memory or faults in fresh pages (2x the
    time of a repack on this machine) depends on the process's history: which contender ran
    before. Fixing ``M_MMAP_THRESHOLD`` at 32 MiB and disabling trimming makes every round
    reuse freed memory below 32 MiB, as a caching allocator (tcmalloc, jemalloc, CUDA's)
    does; allocations above 32 MiB are still mapped fresh each time. Returns a description
    for report headers ("" where there is no glibc ``mallopt``).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is None:
        return ""
    m_trim_threshold, m_mmap_threshold = -1, -3
    if not (mallopt(m_mmap_threshold, STEADY_MMAP_THRESHOLD) and mallopt(m_trim_threshold, 2**31 - 1)):
        return ""
    return "glibc malloc with a fixed 32 MiB mmap threshold and no trimming (freed memory is reused)"


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA); a no-op for synchronous devices."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def calibrate(fn: Callable[[], object], min_round_s: float) -> int:
    """How many calls make a round last at least ``min_round_s`` (1 for slow calls)."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    if once >= min_round_s:
        return 1
    return max(1, min(10_000, int(min_round_s / max(once, 1e-7)) + 1))


def interleaved(
    contenders: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 1,
    min_round_s: float = 0.002,
    disable_gc: bool = True,
    setups: Mapping[str, Callable[[], object] | None] | None = None,
) -> dict[str, Series]:
    """Time each contender ``rounds`` times, alternating them round by round.

    Each round runs every contender once (``iterations`` calls, calibrated so a round is
    at least ``min_round_s``), the order rotating by one each round, so drift of the
    machine (frequency, neighbours) falls on all contenders alike. ``setups[name]``, when
    given, runs untimed before each call of ``name`` (one call per round then): it puts
    back the state a call changes, so every call does the same work. The garbage
    collector is collected once, then kept off while timing (as ``--benchmark-disable-gc``).
    """
    names = list(contenders)
    setups = setups or {}

    def prepare(name: str) -> None:
        setup = setups.get(name)
        if setup is not None:
            setup()

    for _ in range(warmup):
        for name in names:
            prepare(name)
            contenders[name]()
    iterations = {}
    for name in names:
        prepare(name)
        iterations[name] = 1 if setups.get(name) else calibrate(contenders[name], min_round_s)
    series = {name: Series(name, iterations=iterations[name]) for name in names}
    gc.collect()
    was_enabled = gc.isenabled()
    if disable_gc:
        gc.disable()
    try:
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                fn, n = contenders[name], iterations[name]
                prepare(name)
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                series[name].times.append((time.perf_counter() - start) / n)
    finally:
        if was_enabled:
            gc.enable()
    return series


def format_seconds(seconds: float) -> str:
    """A duration with a unit that keeps 3-4 significant digits."""
    if seconds >= 1:
        return f"{seconds:.3f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds * 1e6:.1f}us"


class FloorClock:
    """The clock of the ``*_vs_floor`` benchmarks: it reads in floors, not in seconds.

    pytest-benchmark times a call as ``timer()`` after minus ``timer()`` before. A
    ``*_vs_floor`` round runs the figure and its floor back to back (order alternating)
    and advances this clock by ``figure time / floor time``; so pytest-benchmark records,
    saves and compares the ratio (shown as seconds: ``1.47 s`` = 1.47 floors). Drift of the
    machine between runs moves figure and floor alike and cancels in the ratio, which is
    what makes ``--benchmark-compare-fail`` usable on a shared machine.
    """

    def __init__(self) -> None:
        self._now = 0.0

    def read(self) -> float:
        return self._now

    def advance(self, floors: float) -> None:
        self._now += floors


FLOOR_CLOCK = FloorClock()


def paired_ratio(
    figure: Callable[[], object],
    floor: Callable[[], object],
    *,
    figure_setup: Callable[[], object] | None = None,
    floor_setup: Callable[[], object] | None = None,
    floor_first: bool = False,
) -> float:
    """Time ``figure`` and ``floor`` once each, back to back (setups untimed); return their ratio."""
    times = {}
    order = (("floor", floor, floor_setup), ("figure", figure, figure_setup))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name, fn, setup in order if floor_first else order[::-1]:
            if setup is not None:
                setup()
            start = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()
    return times["figure"] / max(times["floor"], 1e-9)
