"""Tests of the simulated accelerator in kit/loaderspec/support/simulated_device.py.

Device tests skip (with the reason) when the device cannot be built or loaded;
the build-cache tests use a fake compiler and always run.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from loaderspec.support import simulated_device as sd
from loaderspec_suites.strategies import ALL_DTYPES, DEFAULT_DTYPES

DTYPES = list(ALL_DTYPES)
FLOAT_DTYPES = list(DEFAULT_DTYPES)

pytestmark = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")


@pytest.fixture(scope="module")
def sim() -> torch.device:
    try:
        return sd.simulated_device()
    except sd.SimulatedDeviceUnavailable as exc:
        pytest.skip(f"simulated device unavailable: {exc}")


def _random(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Random bit patterns of `dtype` (NaNs and infs included for float types)."""
    g = torch.Generator().manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g, dtype=torch.uint8).bool()
    itemsize = dtype.itemsize
    raw = torch.randint(0, 256, (n * itemsize,), generator=g, dtype=torch.uint8)
    return raw.view(dtype).reshape(shape)


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bytes of a (CPU or sim) tensor's values, in logical order."""
    t = t.detach().cpu().resolve_conj().resolve_neg()
    # A fresh tensor: contiguous() keeps odd strides of size-1 dims, which view() rejects.
    return torch.empty(t.shape, dtype=t.dtype).copy_(t).reshape(-1).view(torch.uint8)


def _assert_same_bits(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert torch.equal(_bits(actual), _bits(expected))


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------


def test_device_is_registered_once(sim: torch.device) -> None:
    assert sim == torch.device(sd.DEVICE_NAME, 0)
    assert sd.simulated_device() == sim  # idempotent
    assert torch._C._get_privateuse1_backend_name() == sd.DEVICE_NAME
    mod = getattr(torch, sd.DEVICE_NAME)
    assert mod.is_available() and mod.device_count() == 1 and mod.current_device() == 0
    assert not mod._is_in_bad_fork()
    with mod.device(0):
        pass
    t = torch.ones(2, device=sim)
    assert t.device == sim and t.is_sim
    assert torch.accelerator.current_accelerator().type == sd.DEVICE_NAME
    assert not torch.cuda.is_available()


def test_only_index_zero_exists(sim: torch.device) -> None:
    assert torch.empty(1, device=sd.DEVICE_NAME).device == sim
    with pytest.raises(RuntimeError, match="only index 0"):
        torch.empty(1, device=f"{sd.DEVICE_NAME}:1")


# ---------------------------------------------------------------------------
# Round trips for every dtype, contiguous or not, zero-size
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_round_trip_bits(sim: torch.device, dtype: torch.dtype) -> None:
    base = _random((6, 8), dtype)
    cases = {
        "contiguous": base,
        "transposed": base.t(),
        "strided slice": base[1::2, ::3],
        "offset slice": base[2:, 3:],
        "0-dim": base[1, 2],
        "size-1 dim, stride 2": base[0, ::2][:1],
    }
    for name, cpu in cases.items():
        on_dev = cpu.to(sim)
        assert on_dev.device == sim, name
        assert on_dev.stride() == torch.empty_like(cpu).stride(), name  # preserve_format, as on CPU
        _assert_same_bits(on_dev.cpu(), cpu)
        # views taken on the device, then copied back
        if cpu.dim() == 2:
            _assert_same_bits(on_dev.t().cpu(), cpu.t())
            _assert_same_bits(on_dev[::2].cpu(), cpu[::2])
            _assert_same_bits(on_dev.reshape(-1).cpu(), cpu.reshape(-1))
    # device -> device copy, into a non-contiguous destination
    dst = torch.empty(8, 6, dtype=dtype, device=sim).t()
    dst.copy_(base.to(sim))
    _assert_same_bits(dst.cpu(), base)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4), (2, 0, 5)], ids=str)
def test_zero_size_round_trip(sim: torch.device, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    cpu = torch.empty(shape, dtype=dtype)
    on_dev = cpu.to(sim)
    assert on_dev.device == sim and on_dev.shape == cpu.shape
    back = on_dev.cpu()
    assert back.shape == cpu.shape and back.dtype == dtype
    assert on_dev.flip(0).cpu().shape == cpu.shape
    if len(shape) >= 2:
        assert on_dev.mT.cpu().shape == cpu.mT.shape


@pytest.mark.parametrize("dtype", [*FLOAT_DTYPES, torch.int64, torch.bool, torch.complex64], ids=str)
def test_item(sim: torch.device, dtype: torch.dtype) -> None:
    cpu = _random((3,), dtype, seed=1)
    if dtype.is_floating_point:
        cpu = torch.tensor([1.5, -2.0, 3.25], dtype=dtype)
    on_dev = cpu.to(sim)
    assert on_dev[1].item() == cpu[1].item()


@pytest.mark.parametrize(
    ("size", "stride"),
    [((2, 3), (3, 1)), ((2, 3), (1, 2)), ((2, 3), (8, 2)), ((3, 4), (0, 1)), ((0, 3), (1, 0)), ((), ())],
    ids=str,
)
def test_empty_strided_honours_strides(sim: torch.device, size: tuple, stride: tuple) -> None:
    t = torch.empty_strided(size, stride, dtype=torch.float32, device=sim)
    assert t.device == sim and t.size() == size and t.stride() == stride
    pinned = torch.empty_strided(size, stride, dtype=torch.float32, device="cpu", pin_memory=True)
    assert pinned.stride() == stride
    if 0 not in stride:  # non-overlapping: copy_ in and out must be exact
        src = _random(tuple(size), torch.float32, seed=2)
        t.copy_(src)
        _assert_same_bits(t.cpu(), src)


def test_views_alias_device_memory(sim: torch.device) -> None:
    a = torch.arange(12.0).reshape(3, 4).to(sim)
    a.view(4, 3)[0].fill_(-1)
    a.unfold(1, 2, 2)[:, :, 1].mul_(10)
    a.as_strided((2,), (5,), 1).fill_(7)
    expected = torch.arange(12.0).reshape(3, 4)
    expected.view(4, 3)[0].fill_(-1)
    expected.unfold(1, 2, 2)[:, :, 1].mul_(10)
    expected.as_strided((2,), (5,), 1).fill_(7)
    assert torch.equal(a.cpu(), expected)

    c = torch.randn(4, dtype=torch.complex64)
    c_dev = c.to(sim)
    torch.view_as_real(c_dev)[:, 1].zero_()
    assert torch.equal(c_dev.cpu(), torch.complex(c.real, torch.zeros(4)))
    r = torch.randn(3, 2)
    assert torch.equal(torch.view_as_complex(r.to(sim)).cpu(), torch.view_as_complex(r))


def test_conj_and_neg_views_copy_back(sim: torch.device) -> None:
    x = torch.randn(3, 4, dtype=torch.complex128)
    x_dev = x.to(sim)
    assert torch.equal(x_dev.conj().cpu(), x.conj())
    assert torch.equal(x_dev.t().conj().cpu(), x.t().conj())
    assert torch.equal(torch._neg_view(x_dev).cpu(), -x)
    assert torch.equal((-x_dev.conj()).cpu(), -x.conj())
    assert torch.equal(x.conj().to(sim).cpu(), x.conj())
    y = torch.randn(5)
    assert torch.equal(torch._neg_view(y.to(sim)).cpu(), -y)
    out = torch.empty(3, 4, dtype=torch.complex128)
    out.copy_(x_dev.conj())
    assert torch.equal(out, x.conj())


def test_resize_and_set(sim: torch.device) -> None:
    t = torch.arange(4.0).to(sim)
    t.resize_(2, 3)
    assert t.shape == (2, 3) and t.device == sim
    assert torch.equal(t.reshape(-1)[:4].cpu(), torch.arange(4.0))
    u = torch.zeros(1, device=sim)
    u.set_(torch.ones(5).to(sim))
    assert torch.equal(u.cpu(), torch.ones(5))
    s = torch.UntypedStorage(8, device=sim)
    s.resize_(16)
    assert s.nbytes() == 16 and s.device == sim


def test_ops_fall_back_to_cpu(sim: torch.device) -> None:
    a = torch.arange(6.0).reshape(2, 3).to(sim)
    assert (a + torch.tensor(1.0)).device == sim  # 0-dim CPU tensors are allowed, as on CUDA
    assert torch.equal((a @ a.t()).cpu(), torch.arange(6.0).reshape(2, 3) @ torch.arange(6.0).reshape(2, 3).t())
    with pytest.raises(RuntimeError, match="same device"):
        _ = a + torch.ones(2, 3)
    x = torch.randn(3, device=sim, requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad is not None and x.grad.device == sim
    assert torch.equal(x.grad.cpu(), torch.full((3,), 2.0))


def test_save_and_load(sim: torch.device) -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0).to(sim)}, buf)
    buf.seek(0)
    loaded = torch.load(buf)
    assert loaded["w"].device == sim and torch.equal(loaded["w"].cpu(), torch.arange(4.0))
    buf.seek(0)
    assert torch.load(buf, map_location="cpu")["w"].device.type == "cpu"


# ---------------------------------------------------------------------------
# Pinned host memory
# ---------------------------------------------------------------------------


def test_pinned_allocator(sim: torch.device) -> None:
    assert torch.empty(3, pin_memory=True).is_pinned()
    assert not torch.empty(3).is_pinned()
    assert not torch.ones(3).is_pinned()
    p = torch.empty_strided((4, 5), (1, 4), dtype=torch.bfloat16, pin_memory=True)
    assert p.is_pinned() and p.stride() == (1, 4)
    assert p[1:, 2:].is_pinned()  # views of pinned memory are pinned
    q = torch.randn(4, 4).pin_memory()
    assert q.is_pinned() and not q.clone().is_pinned()
    # zero-byte pinned tensors have a null data pointer and, as on CUDA, report False
    assert not torch.empty(0, pin_memory=True).is_pinned()
    with pytest.raises(RuntimeError, match="only CPU tensors can be pinned"):
        torch.empty(2, device=sim, pin_memory=True)


def test_pinned_in_fresh_process(sim: torch.device) -> None:
    """Pinning works before any sim tensor exists (the hooks' lazy init is not needed first)."""
    code = (
        "import torch\n"
        f"from {sd.__name__} import simulated_device\n"
        "simulated_device()\n"
        "a = torch.empty(3, pin_memory=True)\n"
        "b = torch.empty_strided((2, 3), (1, 2), pin_memory=True)\n"
        "print(a.is_pinned(), b.is_pinned(), torch.empty(3).is_pinned())\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "True", "False"]


def test_pinned_registry_forgets_freed_memory(sim: torch.device) -> None:
    p = torch.empty(1 << 16, dtype=torch.uint8, pin_memory=True)
    assert p.is_pinned()
    del p
    # New plain allocations (which may reuse the address) must not report pinned.
    assert not any(torch.empty(1 << 16, dtype=torch.uint8).is_pinned() for _ in range(4))


# ---------------------------------------------------------------------------
# The Parameter round trip the loader utilities rely on
# ---------------------------------------------------------------------------


def _offload_and_restore(p: torch.nn.Parameter, sim: torch.device, work) -> torch.Tensor:
    p.data = p.data.to(sim)
    assert p.device == sim and p.data.device == sim
    work(p.data)
    cpu = torch.empty_strided(
        p.data.size(),
        p.data.stride(),
        dtype=p.data.dtype,
        layout=p.data.layout,
        device="cpu",
        pin_memory=True,
    )
    cpu.copy_(p.data)
    p.data = cpu
    return cpu


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_parameter_set_data_round_trip(sim: torch.device, dtype: torch.dtype, layout: str) -> None:
    base = torch.randn(6, 4, generator=torch.Generator().manual_seed(3)).to(dtype)
    t = {"contiguous": base, "transposed": base.t(), "sliced": base[::2]}[layout]
    expected = t * 2
    p = torch.nn.Parameter(t)
    ident = id(p)
    cpu = _offload_and_restore(p, sim, lambda d: d.mul_(2))
    assert id(p) == ident and p.requires_grad
    assert p.device.type == "cpu" and p.data.data_ptr() == cpu.data_ptr()
    assert cpu.is_pinned() and p.is_pinned()
    assert p.stride() == torch.empty_like(t).stride()
    _assert_same_bits(p.data, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_parameter_round_trip_every_dtype(sim: torch.device, dtype: torch.dtype) -> None:
    t = _random((3, 5), dtype, seed=4).t()
    grad = dtype.is_floating_point or dtype.is_complex
    p = torch.nn.Parameter(t.clone(), requires_grad=grad)
    cpu = _offload_and_restore(p, sim, lambda d: None)
    assert cpu.is_pinned() and p.requires_grad == grad
    _assert_same_bits(p.data, t)


def test_parameter_round_trip_zero_size(sim: torch.device) -> None:
    p = torch.nn.Parameter(torch.empty(0, 4))
    cpu = _offload_and_restore(p, sim, lambda d: d.mul_(2))
    assert p.shape == (0, 4) and p.device.type == "cpu"
    assert not cpu.is_pinned()  # null data pointer, as on CUDA


# ---------------------------------------------------------------------------
# Build and cache (fake compiler: no real build needed)
# ---------------------------------------------------------------------------


def _fake_compiler(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-cxx"
    script.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


_WRITE_OUTPUT = "open(args[args.index('-o') + 1], 'wb').write(b'not really a library')"


def test_cache_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOADERSPEC_CACHE_DIR", str(tmp_path))
    assert sd.cache_dir() == tmp_path / "simulated-device"
    monkeypatch.delenv("LOADERSPEC_CACHE_DIR")
    assert sd.cache_dir() == Path.home() / ".cache" / "loaderspec" / "simulated-device"


def test_no_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(sd.SimulatedDeviceUnavailable, match=r"no C\+\+ compiler found"):
        sd.build_library(tmp_path / "cache")


def test_build_failure_reports_compiler_stderr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cxx = _fake_compiler(tmp_path, "sys.stderr.write('fatal: simulated breakage\\n'); sys.exit(3)")
    monkeypatch.setenv("CXX", cxx)
    cache = tmp_path / "cache"
    with pytest.raises(sd.SimulatedDeviceUnavailable, match=r"(?s)exit 3.*simulated breakage"):
        sd.build_library(cache)
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []  # no temp file left


def test_cache_hit_runs_no_subprocess(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    cxx = _fake_compiler(tmp_path, f"open({str(calls)!r}, 'a').write('x')\n{_WRITE_OUTPUT}")
    monkeypatch.setenv("CXX", cxx)
    cache = tmp_path / "cache"
    first = sd.build_library(cache)
    assert first.parent == cache and first.suffix == ".so" and calls.read_text() == "x"
    mtime = first.stat().st_mtime_ns

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("warm build_library must not run a subprocess")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    assert sd.build_library(cache) == first
    assert first.stat().st_mtime_ns == mtime and calls.read_text() == "x"


def test_cache_key_covers_source_and_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, _WRITE_OUTPUT))
    first = sd.build_library(cache)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    monkeypatch.setenv("CXX", _fake_compiler(other_dir, _WRITE_OUTPUT + "  # another compiler"))
    assert sd.build_library(cache) != first
    source = tmp_path / "modified.cpp"
    source.write_bytes(sd._SOURCE.read_bytes() + b"\n// changed\n")
    monkeypatch.setattr(sd, "_SOURCE", source)
    assert sd.build_library(cache) != first


def test_concurrent_cold_builds_are_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, f"import time; time.sleep(0.2)\n{_WRITE_OUTPUT}"))
    cache = tmp_path / "cache"
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(sd.build_library(cache))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(set(results)) == 1
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == [results[0].name]
    assert results[0].read_bytes() == b"not really a library"


def test_real_build_is_cached(sim: torch.device, monkeypatch: pytest.MonkeyPatch) -> None:
    """The library simulated_device() loaded is found again without compiling."""
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("compiler invoked on a warm cache"))
    lib = sd.build_library()
    assert lib.is_file() and lib.parent == sd.cache_dir()
    assert os.access(lib, os.R_OK)
