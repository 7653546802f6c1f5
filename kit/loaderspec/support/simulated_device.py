"""A simulated accelerator for CPU-only PyTorch, for tests.

``simulated_device()`` builds (once, cached on disk), loads and registers a
small C++ PrivateUse1 backend (``simulated_device.cpp`` next to this file)
named ``"sim"`` and returns ``torch.device("sim", 0)``.  Tensors on it hold
real data in host memory, so code that moves parameters to an accelerator and
back (``p.data = p.data.to(dev)`` ... ``p.data = pinned_cpu_copy``) can be
tested bit-for-bit on a machine without a GPU.  While it is installed,
``pin_memory=True`` on CPU factories allocates from the backend's pinned host
allocator and ``Tensor.is_pinned()`` reports True for those tensors only.

Facts for users of the device:

* Installation is once per process and cannot be undone.  Afterwards
  ``torch.accelerator.current_accelerator()`` is the sim device, while
  ``torch.cuda.is_available()`` stays False.
* Only ``sim:0`` exists.  Copies are synchronous; ``non_blocking``, streams and
  events are accepted and do nothing.
* Every op without a dedicated kernel runs on the CPU through
  ``at::native::cpu_fallback``: numerics are the CPU kernels', ops the CPU
  lacks (e.g. arithmetic on float8) fail as they do on CPU, and mixing a sim
  tensor with a non-scalar CPU tensor in one op raises "Expected all tensors to
  be on the same device", as on CUDA.
* ``torch.Generator(device="sim")`` is not supported; random ops on sim
  tensors draw from the default CPU generator (seeded by ``torch.manual_seed``).
* A zero-element pinned tensor reports ``is_pinned() == False`` (its data
  pointer is null), as on CUDA.
* Memory statistics (``torch.accelerator.memory_allocated`` ...) are not
  implemented.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DEVICE_NAME",
    "SimulatedDeviceUnavailable",
    "build_library",
    "cache_dir",
    "simulated_device",
]

DEVICE_NAME = "sim"

_SOURCE = Path(__file__).with_name("simulated_device.cpp")
_LIB_PREFIX = "loaderspec_simdev"
_MARKER = "_loaderspec_simulated_device"
_STDERR_TAIL_CHARS = 4000
_BUILD_TIMEOUT_S = 600

_lock = threading.RLock()
_failure: str | None = None


class SimulatedDeviceUnavailable(RuntimeError):
    """The simulated device cannot be had in this process; the message says why."""


def cache_dir() -> Path:
    """Return the folder holding built libraries.

    ``$LOADERSPEC_CACHE_DIR/simulated-device`` when that variable is set, else
    ``$XDG_CACHE_HOME/loaderspec/simulated-device`` (``~/.cache`` when that is unset or empty,
    as the XDG base-directory specification says).
    """
    return _default_cache_dir()


def _default_cache_dir() -> Path:
    root = os.environ.get("LOADERSPEC_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    caches = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    base = Path(root).expanduser() if root else caches / "loaderspec"
    return base / "simulated-device"


def _find_compiler() -> list[str]:
    """Return the compiler argv ($CXX, split like a shell would, else g++), resolved."""
    cxx = os.environ.get("CXX", "").strip()
    argv = shlex.split(cxx) if cxx else ["g++"]
    exe = shutil.which(argv[0])
    if exe is None:
        where = f"$CXX={cxx!r} is not an executable" if cxx else "g++ is not on PATH"
        raise SimulatedDeviceUnavailable(
            f"no C++ compiler found ({where}); the simulated device is a C++ "
            "extension that must be compiled against the installed torch"
        )
    return [exe, *argv[1:]]


def _compiler_identity(exe: str) -> str:
    """Identify the compiler without running it: resolved path, size and mtime.

    The resolved path of a distribution compiler names its version
    (e.g. ``x86_64-linux-gnu-g++-12``); size and mtime change on upgrade.
    """
    real = os.path.realpath(exe)
    st = os.stat(real)
    return f"{real}:{st.st_size}:{st.st_mtime_ns}"


def _compile_flags() -> tuple[list[str], list[str]]:
    """Return (compile flags, link flags) for the installed torch wheel."""
    torch_dir = Path(torch.__file__).resolve().parent
    torch_lib = torch_dir / "lib"
    try:
        from torch.utils.cpp_extension import include_paths

        includes = [str(p) for p in include_paths()]
    except ImportError:  # cpp_extension imports setuptools; these are its CPU-build paths
        includes = [
            str(torch_dir / "include"),
            str(torch_dir / "include" / "torch" / "csrc" / "api" / "include"),
        ]
    abi = int(bool(torch._C._GLIBCXX_USE_CXX11_ABI))
    cflags = [
        "-shared",
        "-fPIC",
        "-O1",
        "-std=c++20",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        *(f"-I{p}" for p in includes),
    ]
    ldflags = [
        f"-L{torch_lib}",
        "-lc10",
        "-ltorch_cpu",
        "-ltorch",
        f"-Wl,-rpath,{torch_lib}",
    ]
    return cflags, ldflags


def _cache_key(source: bytes, compiler: list[str], flags: list[str]) -> str:
    h = hashlib.sha256()
    for part in (
        source,
        torch.__version__.encode(),
        "\0".join(flags).encode(),
        "\0".join([_compiler_identity(compiler[0]), *compiler[1:]]).encode(),
    ):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def build_library(cache_dir: Path | None = None) -> Path:
    """Compile the backend, or reuse a cached build; return the shared library's path.

    The file name carries a sha256 of the C++ source, ``torch.__version__``,
    the compiler flags and the compiler's identity, so any change rebuilds.
    A cache hit runs no subprocess at all.  A cold build takes an exclusive
    lock file in the cache folder (so parallel pytest workers compile once and
    the others wait for it), writes to a temporary file there and
    ``os.replace``-s it into place, so no reader ever sees a partial library.

    Raises:
        SimulatedDeviceUnavailable: no compiler, or the build failed (the
            message carries the tail of the compiler's stderr).
    """
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    compiler = _find_compiler()
    cflags, ldflags = _compile_flags()
    try:
        source = _SOURCE.read_bytes()
    except OSError as exc:
        raise SimulatedDeviceUnavailable(f"cannot read {_SOURCE}: {exc}") from exc
    key = _cache_key(source, compiler, [*cflags, *ldflags])
    target = folder / f"{_LIB_PREFIX}-{key[:24]}.so"
    if target.is_file():
        return target

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimulatedDeviceUnavailable(f"cannot create the cache folder {folder}: {exc}") from exc
    # One builder at a time per library (others wait, then find it built);
    # the temp-file + os.replace keeps the result atomic even without the lock.
    with _build_lock(folder / f".{target.name}.lock"):
        if not target.is_file():
            _compile(compiler, cflags, ldflags, target)
    return target


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (no-op where fcntl is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SimulatedDeviceUnavailable(f"cannot write to the cache folder {path.parent}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _compile(compiler: list[str], cflags: list[str], ldflags: list[str], target: Path) -> None:
    """Compile the backend into a temp file next to `target`, then rename it into place."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise SimulatedDeviceUnavailable(f"cannot write to the cache folder {target.parent}: {exc}") from exc
    tmp = Path(tmp_name)
    cmd = [*compiler, *cflags, str(_SOURCE), "-o", str(tmp), *ldflags]
    try:
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_BUILD_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SimulatedDeviceUnavailable(f"could not run the C++ compiler {compiler[0]}: {exc}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "")[-_STDERR_TAIL_CHARS:]
            raise SimulatedDeviceUnavailable(
                f"building the simulated device failed (exit {proc.returncode}):\n"
                f"  {shlex.join(cmd)}\n--- compiler stderr (tail) ---\n{tail}"
            )
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# ---------------------------------------------------------------------------
# The Python device module registered as torch.sim
# ---------------------------------------------------------------------------


class _NoOpDeviceContext:
    """``torch.sim.device(idx)``: a context manager that does nothing (one device)."""

    def __init__(self, device: Any = None) -> None:
        self.device = device

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _make_device_module() -> types.ModuleType:
    mod = types.ModuleType(f"torch.{DEVICE_NAME}", "Simulated accelerator (tests only).")

    def is_available() -> bool:
        return True

    def device_count() -> int:
        return 1

    def current_device() -> int:
        return 0

    def set_device(device: Any) -> None:
        index = torch.device(device).index if not isinstance(device, int) else device
        if index not in (None, 0):
            raise RuntimeError(f"{DEVICE_NAME}: only device 0 exists, got {device!r}")

    def manual_seed(seed: int) -> None:
        """Random ops run on the CPU generator; torch.manual_seed already seeds it."""

    def manual_seed_all(seed: int) -> None:
        """See manual_seed."""

    def synchronize(device: Any = None) -> None:
        """All work is synchronous."""

    def is_initialized() -> bool:
        return True

    def _lazy_init() -> None:
        return None

    def _is_in_bad_fork() -> bool:
        return False

    for fn in (
        is_available,
        device_count,
        current_device,
        set_device,
        manual_seed,
        manual_seed_all,
        synchronize,
        is_initialized,
        _lazy_init,
        _is_in_bad_fork,
    ):
        setattr(mod, fn.__name__, fn)
    setattr(mod, "device", _NoOpDeviceContext)  # noqa: B010  (a module type checkers cannot know)
    setattr(mod, _MARKER, True)
    return mod


def _installed() -> bool:
    mod = getattr(torch, DEVICE_NAME, None)
    return (
        torch._C._get_privateuse1_backend_name() == DEVICE_NAME
        and getattr(mod, _MARKER, False)
        and hasattr(torch.Tensor, f"is_{DEVICE_NAME}")
    )


def _install() -> None:
    backend = torch._C._get_privateuse1_backend_name()
    if backend not in ("privateuseone", DEVICE_NAME):
        raise SimulatedDeviceUnavailable(f"the PrivateUse1 backend is already claimed by {backend!r} in this process")
    if not torch._C._dispatch_has_kernel_for_dispatch_key("aten::_has_compatible_shallow_copy_type", "PrivateUse1"):
        if torch._C._dispatch_has_kernel_for_dispatch_key("aten::empty_strided", "PrivateUse1"):
            raise SimulatedDeviceUnavailable("another PrivateUse1 backend is already loaded in this process")
        lib = build_library()
        try:
            torch.ops.load_library(str(lib))
        except OSError as exc:
            raise SimulatedDeviceUnavailable(f"cannot load {lib}: {exc}") from exc
    if backend != DEVICE_NAME:
        torch.utils.rename_privateuse1_backend(DEVICE_NAME)
    if not getattr(getattr(torch, DEVICE_NAME, None), _MARKER, False):
        torch._register_device_module(DEVICE_NAME, _make_device_module())
    if not hasattr(torch.Tensor, f"is_{DEVICE_NAME}"):
        torch.utils.generate_methods_for_privateuse1_backend()


def simulated_device() -> torch.device:
    """Build (cached), load and register the backend once per process; return ``sim:0``.

    Idempotent and thread-safe: later calls return the same device at once,
    also when this module was imported twice under different names.  A
    failure is remembered, so later calls raise the same reason without
    retrying the build.

    Raises:
        SimulatedDeviceUnavailable: with a clear reason (no compiler, build
            failure with the compiler's stderr tail, PrivateUse1 taken, ...).
    """
    global _failure
    with _lock:
        if _installed():
            return torch.device(DEVICE_NAME, 0)
        if _failure is not None:
            raise SimulatedDeviceUnavailable(_failure)
        if not sys.platform.startswith("linux"):
            _failure = f"the simulated device is only built on Linux, not {sys.platform}"
            raise SimulatedDeviceUnavailable(_failure)
        try:
            _install()
        except SimulatedDeviceUnavailable as exc:
            _failure = str(exc)
            raise
        except Exception as exc:  # registration errors from torch internals
            _failure = f"installing the simulated device failed: {type(exc).__name__}: {exc}"
            raise SimulatedDeviceUnavailable(_failure) from exc
        return torch.device(DEVICE_NAME, 0)
