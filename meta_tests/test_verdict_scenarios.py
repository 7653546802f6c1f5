"""The scenarios of issue 8, each run as a user would: ``loaderspec conform`` in a
subprocess, against deliberately broken adapters (meta_tests/broken_adapters.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .conform_process import conform_env, outcomes_by_test, run_conform

BROKEN = "meta_tests.broken_adapters"
DEVICE_TESTS = "test_device_state_is_restored or test_tied_weights_stay_tied"


def _verdicts(data: dict) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in data["requirements"]}


@pytest.mark.parametrize(
    ("machine", "status", "verdict", "words"),
    [
        ({}, 1, "failed", "verdict: FAIL: 4 MUST requirement(s) failed: DL-5, DL-10, DL-13, DL-15"),
        ({"CXX": "/nonexistent/g++"}, 3, "unchecked", "fix: install a C++ compiler (g++)"),
        ({"LOADERSPEC_CACHE_DIR": "/proc/loaderspec-cache"}, 3, "unchecked", "fix: make the cache folder writable"),
    ],
    ids=["compiler", "no-compiler", "unusable-cache"],
)
def test_an_unchecked_requirement_is_never_a_pass(tmp_path, machine, status, verdict, words):
    """Finding 1: without a compiler, or with an unusable cache, an implementation that never
    restores its parameters was given PASS; with the compiler it fails DL-10 (and DL-13 for tied
    weights). (DL-5, for data the body itself left unpinned on the CPU, was found only by
    Hypothesis' explain phase, which the ci profile skips since conformance runs were sped up.)"""
    machine = {"LOADERSPEC_CACHE_DIR": str(tmp_path / "cache"), **machine}
    code, output, data = run_conform(tmp_path, "--impl", f"{BROKEN}:NO_RESTORE", "-k", DEVICE_TESTS, **machine)
    assert code == status and words in output, output
    assert _verdicts(data)["DL-10"] == verdict
    if status == 3:
        assert "Left unchecked" in output and "verdict: INCOMPLETE" in output, output
    else:  # the printed reproduction command reproduces when pasted into the same shell
        command = next(t["reproduction"] for t in data["tests"] if t["outcome"] == "failed")
        assert f"--impl {BROKEN}:NO_RESTORE" in command
        again = subprocess.run(
            command, shell=True, capture_output=True, text=True, env=conform_env(**machine), timeout=600
        )
        assert again.returncode == 1 and "DL-10" in again.stdout, again.stdout + again.stderr


def test_a_missing_name_is_listed_and_scopes_the_pass(tmp_path):
    """Finding 3: a lookup that misses SupportsQuant made QC-1/3/4 "not provided", said PASS,
    and showed QC-2 passed though one of its two tests never ran. Since spec 0.2.0 only QC-3's
    test needs ``SupportsQuant``: QC-3 is not provided and the pass counts the other three."""
    code, output, data = run_conform(
        tmp_path, "--impl", f"{BROKEN}:NO_SUPPORTS_QUANT", "-k", "test_quant_config", "--markdown", "table.md"
    )
    verdicts = _verdicts(data)
    assert [verdicts[r] for r in ("QC-1", "QC-2", "QC-3", "QC-4")] == ["passed", "passed", "not provided", "passed"]
    assert "  QC-3: SupportsQuant\n" in output, output
    assert "verdict: PASS for 4 of 78 requirements; 1 not provided; 73 not selected (exit status 0)" in output
    assert code == 0 and (tmp_path / "table.md").exists()


def test_a_requirement_one_of_whose_tests_could_not_run_is_not_passed(tmp_path):
    """Finding 3, end to end: QC-2 has two tests; the adapter names an apply-mapper method the
    config lacks, so the test that spies on it is not provided while the other passes. QC-2 is
    "not provided" with the missing name, never "passed", and the PASS does not count it."""
    code, output, data = run_conform(tmp_path, "--impl", f"{BROKEN}:NO_APPLY_MAPPER", "-k", "test_quant_config")
    outcomes = outcomes_by_test(data)
    assert outcomes["test_the_mapping_is_shared_by_reference"] == "not provided", outcomes
    assert outcomes["test_later_updates_to_the_class_mapping_reach_the_config"] == "passed", outcomes
    qc2 = next(r for r in data["requirements"] if r["id"] == "QC-2")
    assert (qc2["verdict"], qc2["reason"]) == (
        "passed",
        "passed where checked; not provided: PlainQuantizationConfig.apply_loaderspec_mapper",
    ), qc2
    assert code == 0 and "verdict: PASS for 2 of 78 requirements; 3 not provided; 73 not selected" in output, output


def test_a_fault_in_the_adapters_own_code_is_an_adapter_error(tmp_path):
    code, output, data = run_conform(
        tmp_path, "--impl", f"{BROKEN}:FAULTY", "-k", "test_normal_exit_restores_the_default"
    )
    assert code == 4 and _verdicts(data)["DT-2"] == "adapter error", output
    assert "Adapter errors" in output and "NameError" in output and "verdict: ADAPTER ERROR" in output


def test_a_broken_adapter_stops_the_run_before_any_test(tmp_path):
    code, output, data = run_conform(tmp_path, "--impl", f"{BROKEN}:WRONG_TYPES")
    assert code == 2 and "hook model_config() returned dict" in output, output
    assert not data and "passed" not in output


def test_output_is_plain_and_explained(tmp_path):
    """Finding 7: a legend, no Python reprs, consistent counts; --help with exit statuses."""
    code, output, data = run_conform(tmp_path, "-k", "test_packed_mapping_is_kept_as_given or test_target_must_be")
    assert code == 0, output
    assert "{'" not in output and "None" not in output, output
    assert re.search(r"\n  passed +every test citing it ran and passed", output) and "columns: ID, level" in output
    assert data["summary"]["examples"] == sum(t["examples"] or 1 for t in data["tests"])
    assert f"examples: {data['summary']['examples']}" in output
    help_text = subprocess.run(
        [sys.executable, "-m", "loaderspec.cli", "conform", "--help"], capture_output=True, text=True, env=conform_env()
    ).stdout
    assert "exit statuses:" in help_text and "3  INCOMPLETE" in help_text and "``" not in help_text, help_text
    assert ":mod:" not in help_text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_test_processes_and_removes_temporary_files(tmp_path, signum):
    """Finding 6: SIGTERM orphaned the pytest child and left its temporary folder; Ctrl-C
    ended with a traceback."""
    pidfile, tmp = tmp_path / "child.pid", tmp_path / "tmp"
    tmp.mkdir()
    env = conform_env(LOADERSPEC_META_PIDFILE=str(pidfile), TMPDIR=str(tmp))
    command = [sys.executable, "-m", "loaderspec.cli", "conform", "--impl", f"{BROKEN}:HANGING"]
    command += ["--timeout", "600", "-k", "test_normal_exit_restores_the_default"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not pidfile.exists() or not pidfile.read_text():
        assert process.poll() is None and time.monotonic() < deadline, "the hanging test never started"
        time.sleep(0.2)
    child = int(pidfile.read_text())
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("loaderspec-conform-")]
