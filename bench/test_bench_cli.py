"""Smoke test of ``loaderspec bench`` (``loaderspec_bench.cli.main``): one small workload, two
rounds, X against itself; checks the table and the JSON, never a time. A few seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loaderspec_bench.cli import main


def test_bench_cli_prints_each_figure_with_its_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    argv = ["--vs", "reference", "--rounds", "2", "--targets", "cpu", "--only", "traversal/moe-1k", "--malloc-default"]
    argv += ["--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "traversal/moe-1k/cpu" in text and "X/floor" in text and "X/Y" in text
    document = json.loads(out.read_text())
    (case,) = document["cases"]
    assert set(case["series"]) == {"impl", "vs", "floor"}
    assert case["ratio_impl_floor"] > 0 and case["series"]["impl"]["rounds"] == 2


def test_bench_cli_reports_an_unavailable_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--impl", "loaderspec_no_such_adapter", "--targets", "cpu", "--malloc-default"]) == 2
    assert "unavailable" in capsys.readouterr().err


def test_bench_cli_runs_alone_when_vs_is_unavailable(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--vs", "loaderspec_no_such_adapter", "--rounds", "1", "--targets", "cpu", "--only", "traversal/moe-1k"]
    argv.append("--malloc-default")
    assert main(argv) == 0
    assert "--vs: implementation 'loaderspec_no_such_adapter' is unavailable" in capsys.readouterr().out
