"""A run keeps to its own temporary folder and never outlives ``loaderspec conform``: the
transformers module cache is pointed inside it, and a SIGKILL of the parent (what CI runners
send on timeout or cancel) ends the child test process, which removes that folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loaderspec.support import simulated_device

from .conform_process import conform_env, run_conform


def _children_of(parent: int) -> list[int]:
    """Processes started with ``LOADERSPEC_PARENT_PID=parent`` (the run's test processes)."""
    marker = f"LOADERSPEC_PARENT_PID={parent}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def test_the_transformers_module_cache_stays_in_the_run_folder(tmp_path):
    hf_home = tmp_path / "hf"
    code, output, _ = run_conform(tmp_path, "--impl", "reference", "-k", "test_architecture", HF_HOME=str(hf_home))
    assert code == 0, output
    modules = hf_home / "modules"
    left = sorted(p.name for p in modules.rglob("*")) if modules.exists() else []
    assert not left, f"the run left {len(left)} entries in {modules}: {left[:5]}"


def test_a_killed_parent_takes_its_test_process_and_files_with_it(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    parent = subprocess.Popen(
        [sys.executable, "-m", "loaderspec.cli", "conform", "--impl", "reference", "-k", "test_device_state"],
        cwd=tmp_path,
        env=conform_env(TMPDIR=str(temp)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not _children_of(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        children = _children_of(parent.pid)
        assert children, "the run started no test process within 120 s"
        time.sleep(2)  # let it get into its tests
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while (_children_of(parent.pid) or any(temp.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _children_of(parent.pid), f"test processes {_children_of(parent.pid)} outlived their parent"
        assert not any(temp.iterdir()), f"left behind: {sorted(p.name for p in temp.iterdir())}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in _children_of(parent.pid):
            os.kill(pid, signal.SIGKILL)


def test_the_compiled_device_cache_honours_xdg_and_its_own_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("LOADERSPEC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert simulated_device.cache_dir().is_relative_to(tmp_path / "xdg" / "loaderspec"), simulated_device.cache_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are ignored
    assert simulated_device.cache_dir().is_relative_to(Path.home() / ".cache" / "loaderspec")
    monkeypatch.setenv("LOADERSPEC_CACHE_DIR", str(tmp_path / "own"))
    assert simulated_device.cache_dir().is_relative_to(tmp_path / "own"), simulated_device.cache_dir()
