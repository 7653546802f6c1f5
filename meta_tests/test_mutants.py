"""Meta test: the suites catch planted broken implementations.

A property no broken implementation can fail is worthless. Two checks:

- every requirement of the spec has a planted mutant of the reference (the bug it forbids,
  ``planted_mutants.PLANTED``), and the requirement's own tests kill it with an assertion
  that starts with that requirement's ID;
- the device-state properties reject hand-written forks of ``device_loading_context``,
  each with one defect.

The planted mutants run through ``tools/mutate.py`` (one forked process per mutant, the
mutated ``utils.py`` installed as ``loaderspec_reference.utils``); the full mutation run over
every statement and operator is ``python tools/mutate.py`` (not run here: tens of minutes).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from loaderspec.conform.requirements import load_requirements
from loaderspec_suites import strategies as lst
from loaderspec_suites.support.device_properties import check_device_round_trip, check_failed_move_is_undone
from loaderspec_suites.support.modules import overlaps

from .planted_mutants import PLANTED, ROOT, UTILS

PLANTED_EXAMPLES = 20
"""Examples per property for the planted mutants (each is killed within its first few)."""


def test_every_requirement_has_a_planted_mutant():
    live = set(load_requirements())  # withdrawn requirements are left out
    assert not live - set(PLANTED), f"requirements without a planted mutant: {sorted(live - set(PLANTED))}"
    assert not set(PLANTED) - live, f"planted mutants for no live requirement: {sorted(set(PLANTED) - live)}"


def test_every_planted_mutant_applies_and_compiles():
    source = UTILS.read_text(encoding="utf-8")
    for requirement, planted in PLANTED.items():
        mutated = planted.apply(source)
        assert mutated != source, f"{requirement}: the planted mutant changes nothing"
        compile(mutated, f"<{requirement} mutant>", "exec")


@pytest.fixture(scope="module")
def planted_results(tmp_path_factory) -> dict[str, dict]:
    """Run every planted mutant once (2 workers); the verdict of each, by requirement."""
    folder = tmp_path_factory.mktemp("planted")
    source = UTILS.read_text(encoding="utf-8")
    jobs = [
        {"id": rid, "source": planted.apply(source), "tests": list(planted.tests), "max_examples": PLANTED_EXAMPLES}
        for rid, planted in PLANTED.items()
    ]
    (folder / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    command = [sys.executable, str(ROOT / "tools" / "mutate.py"), "--jobs", str(folder / "jobs.json")]
    command += ["--out", str(folder / "results.json"), "--workers", "2", "--timeout", "300"]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads((folder / "results.json").read_text())


@pytest.mark.parametrize("requirement", list(PLANTED))
def test_planted_mutant_is_killed_by_its_requirement(planted_results, requirement):
    planted = PLANTED[requirement]
    result = planted_results[requirement]
    assert result["status"] == "killed", (
        f"{requirement}: the planted mutant ({planted.bug}) was not killed by {planted.tests}: {result}"
    )
    assert result["req"] == requirement, (
        f"{requirement}: the planted mutant ({planted.bug}) was killed by {result['test']}, but as "
        f"{result['req']}, not {requirement}: {result['message'][:300]}"
    )


_pin_memory = [False]
"""What the mutants' ``is_pin_memory_available()`` answers (set per example)."""


def _restore(p: torch.Tensor, *, pin_memory: bool, keep_strides: bool = True) -> torch.Tensor:
    if keep_strides and not overlaps(p):  # overlapping data is restored densely (DL-16)
        cpu = torch.empty_strided(p.size(), p.stride(), dtype=p.dtype, device="cpu", pin_memory=pin_memory)
    else:
        cpu = torch.empty(p.size(), dtype=p.dtype, device="cpu", pin_memory=pin_memory)
    cpu.copy_(p)
    return cpu


def _make(
    *,
    copy_back=True,
    keep_strides=True,
    use_finally=True,
    honour_pin=True,
    by_name=True,
    move_inside_try=True,
):
    @contextlib.contextmanager
    def device_loading_context(module, target_device):
        if target_device.type == "cpu":
            yield module
            return
        recorded: dict[str, int] = {}
        positions: list[int] = []

        def move_all():
            for position, (name, p) in enumerate(module.named_parameters()):
                if p.device.type == "cpu":
                    p.data = p.data.to(target_device)
                    recorded[name] = position
                    positions.append(position)

        def restore():
            pin = _pin_memory[0] if honour_pin else False
            for position, (name, p) in enumerate(module.named_parameters()):
                hit = name in recorded if by_name else position in positions
                if hit and copy_back:
                    p.data = _restore(p.data, pin_memory=pin, keep_strides=keep_strides)

        if not move_inside_try:
            move_all()
        if use_finally:
            try:
                if move_inside_try:
                    move_all()
                yield module
            finally:
                restore()
        else:
            if move_inside_try:
                move_all()
            yield module
            restore()

    return device_loading_context


MUTANTS = {
    "no-copy-back": (_make(copy_back=False), ("DL-10",)),
    "contiguous-reallocation": (_make(keep_strides=False), ("DL-11",)),
    "no-restore-on-exception": (_make(use_finally=False), ("DL-10",)),
    "pinning-ignored": (_make(honour_pin=False), ("DL-5",)),
    "matched-by-position": (_make(by_name=False), ("DL-3", "DL-6", "DL-10", "DL-11", "DL-12")),
    "move-before-try (vLLM 0.9.2)": (_make(move_inside_try=False), ("DL-7",)),
}
"""Each mutant, and the requirements whose failure should expose it."""

_SEARCH = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _caught(mutant, accelerator) -> str | None:
    """The first failure the device-state properties report for ``mutant``, or None."""

    @_SEARCH
    @given(spec=lst.module_specs(), body=lst.bodies(), pinned=st.booleans())
    def round_trip(spec, body, pinned):
        _pin_memory[0] = pinned
        check_device_round_trip(mutant, spec, body, accelerator, pinned)

    @_SEARCH
    @given(spec=lst.module_specs(allow_on_target=False), failing=st.integers(0, 7))
    def failed_move(spec, failing):
        check_failed_move_is_undone(mutant, spec, failing, accelerator)

    for prop in (round_trip, failed_move):
        try:
            prop()
        except Exception as failure:  # any failure of the property counts as catching the mutant
            return f"{prop.__name__}: {type(failure).__name__}: {str(failure).splitlines()[0]}"
    return None


def test_the_correct_context_passes_the_same_search(accelerator):
    """Control: the search that must catch every mutant passes the mutants' correct twin."""
    assert _caught(_make(), accelerator) is None


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_caught(accelerator, name):
    mutant, requirements = MUTANTS[name]
    verdict = _caught(mutant, accelerator)
    assert verdict is not None, f"the device-state properties did not catch the {name!r} mutant"
    assert any(req in verdict for req in requirements), (
        f"the {name!r} mutant was caught, but not by {requirements}: {verdict}"
    )


def _mutation_tool():
    """tools/mutate.py as a module (it is a script, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("loaderspec_mutate_tool", ROOT / "tools" / "mutate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_mutation_run_covers_every_definition_of_the_reference():
    tool = _mutation_tool()
    assert tool.unmapped_definitions() == [], "tools/mutate.py SCOPE_TESTS is out of date with utils.py"
    renamed = UTILS.read_text(encoding="utf-8").replace("def _restorable_stride(", "def _restorable_strides(")
    assert tool.unmapped_definitions(renamed) == [
        "_restorable_strides is defined in utils.py but not in SCOPE_TESTS",
        "SCOPE_TESTS names _restorable_stride, which utils.py does not define",
    ]


def test_every_mutant_mutmut_left_alive_is_triaged():
    """The committed mutmut results (``nox -s mutation``, not run here) against
    tools/mutants/third-party-survivors.md: each mutant left alive is explained as equivalent,
    and each one marked fixed is killed in the results."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("loaderspec_mutmut_run", ROOT / "tools" / "mutmut_run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.check() == []
