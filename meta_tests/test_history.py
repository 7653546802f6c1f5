"""``loaderspec history``: the committed page and picture are current; the pieces behave (issue 16).

Renders from the committed reports in docs/reports/history/ only: nothing is installed.
"""

from __future__ import annotations

import email.message
import json
import shutil
from pathlib import Path

import pytest
from loaderspec.cli import main as cli
from loaderspec.history.build import relative_paths
from loaderspec.history.install import requirements_of, transformers_cap
from loaderspec.history.render import render_command, runs_text
from loaderspec.history.verdicts import load_history

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "docs" / "reports" / "history"
PAGE = REPO / "docs" / "history.md"


def test_the_committed_page_and_picture_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert render_command(REPORTS, PAGE, check=True) == 0, capsys.readouterr().err
    assert "![requirement x release grid](history.svg)" in PAGE.read_text(encoding="utf-8")


def test_check_fails_on_a_stale_picture_and_writes_nothing(tmp_path: Path) -> None:
    shutil.copy(PAGE, tmp_path / "history.md")
    (tmp_path / "history.svg").write_text("<svg/>\n", encoding="utf-8")
    argv = ["history", "render", "--reports", str(REPORTS), "--output", str(tmp_path / "history.md"), "--check"]
    assert cli(argv) == 1
    assert (tmp_path / "history.svg").read_text(encoding="utf-8") == "<svg/>\n"
    assert render_command(REPORTS, tmp_path / "history.md", check=False) == 0
    assert render_command(REPORTS, tmp_path / "history.md", check=True) == 0


def _report(verdicts: dict[str, str]) -> dict[str, object]:
    return {
        "header": {"target": "vllm"},
        "summary": {},
        "requirements": [{"id": rid, "title": "t", "verdict": v} for rid, v in verdicts.items()],
        "tests": [],
    }


def test_equal_neighbours_merge_and_expected_failures_read_failed(tmp_path: Path) -> None:
    rows = {
        "0.8.5": {"DT-1": "passed", "DT-2": "passed"},
        "0.10.2": {"DT-1": "passed", "DT-2": "failed"},
        "0.9.2": {"DT-1": "passed", "DT-2": "expected failure"},  # out of order on purpose
        "0.11.2": {"DT-1": "failed", "DT-2": "not provided"},
    }
    for version, verdicts in rows.items():
        (tmp_path / f"vllm-{version}.json").write_text(json.dumps(_report(verdicts)), encoding="utf-8")
    history = load_history(tmp_path)
    assert [r.version for r in history.releases] == ["0.8.5", "0.9.2", "0.10.2", "0.11.2"]
    assert runs_text(history, "DT-1") == "0.8.5-0.10.2 passed, 0.11.2- failed"
    assert runs_text(history, "DT-2") == "0.8.5 passed, 0.9.2-0.10.2 failed, 0.11.2- not provided"
    assert [(c.requirement, c.before, c.at) for c in history.changes()] == [
        ("DT-1", "0.10.2", "0.11.2"),
        ("DT-2", "0.8.5", "0.9.2"),
        ("DT-2", "0.10.2", "0.11.2"),
    ]


def test_requirements_leave_out_torch_extras_and_other_platforms() -> None:
    metadata = email.message.Message()
    for line in (
        "transformers>=4.51.1",
        'torch==2.6.0+cpu; platform_machine == "x86_64"',
        "torchvision",
        'intel_extension_for_pytorch==2.6.0; platform_machine == "x86_64"',
        'numpy<2; platform_system == "NoSuchSystem"',
        'pandas; extra == "bench"',
        "xformers",
        "numba==0.61.2",
    ):
        metadata["Requires-Dist"] = line
    kept, notes = requirements_of(metadata)
    assert kept == ["transformers>=4.51.1", "numba==0.61.2"]
    assert len(notes) == 4
    assert transformers_cap(kept) == ["transformers<5"]
    assert transformers_cap(["transformers<5.20.0,>=5.16.1"]) == []


def test_report_paths_are_made_location_independent() -> None:
    text = '"/work/main/tests/x.py" "/work/main/build/history/venv-0.20.2/lib/vllm/a.py" "/work/other/y"'
    assert relative_paths(text, "/work/main/", "/work/main/build/history/venv-0.20.2") == (
        '"tests/x.py" "$VENV/lib/vllm/a.py" "<path>"'
    )


def test_evidence_belongs_to_the_change_whose_span_holds_its_release(tmp_path: Path) -> None:
    for version, verdict in (("0.10.0", "failed"), ("0.15.1", "failed"), ("0.30.0", "passed")):
        (tmp_path / f"vllm-{version}.json").write_text(json.dumps(_report({"DT-4": verdict})), encoding="utf-8")
    (tmp_path / "evidence.toml").write_text(
        '[[change]]\nrequirement = "DT-4 DT-7"\nrelease = "0.29.5"\nkind = "source"\nevidence = "e"\n'
        '[[change]]\nrequirement = "DT-4"\nrelease = "0.12.0"\nkind = "pr"\nevidence = "f"\n',
        encoding="utf-8",
    )
    history = load_history(tmp_path)
    (change,) = history.changes()
    assert (change.before, change.at) == ("0.15.1", "0.30.0")
    assert history.evidence_for(change) == ("0.29.5", history.evidence[("DT-4", "0.29.5")])
