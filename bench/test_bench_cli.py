"""Smoke tests of ``loaderspec bench`` (``loaderspec_bench.cli.main``): one small workload, few
rounds, X against itself; checks the table, the JSON, saved runs and their comparison, the
options refused up front, and that an incorrect contender is reported rather than timed.
Never a time. A few seconds each."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loaderspec_bench import saved
from loaderspec_bench.cli import main

QUICK = ["--rounds", "2", "--targets", "cpu", "--only", "traversal/moe-1k", "--malloc-default"]


def test_bench_cli_prints_each_figure_with_its_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["--vs", "reference", *QUICK, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "traversal/moe-1k/cpu" in text and "X/floor" in text and "X/Y" in text
    document = json.loads(out.read_text())
    (case,) = document["cases"]
    assert set(case["series"]) == {"impl", "vs", "floor"}
    assert case["ratio_impl_floor"] > 0 and case["series"]["impl"]["rounds"] == 2


def test_bench_cli_reports_an_unavailable_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--impl", "loaderspec_no_such_adapter", "--targets", "cpu", "--malloc-default"]) == 2
    assert "unavailable" in capsys.readouterr().err


@pytest.fixture
def raising_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "loaderspec_raising_adapter.py").write_text("raise RuntimeError('planted import failure')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "loaderspec_raising_adapter"
    sys.modules.pop("loaderspec_raising_adapter", None)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--dense-scale", "7"], "--dense-scale 7"),
        (["--only", "zzz"], "--only zzz"),
        (["--threads", "0"], "--threads"),
        (["--rounds", "0"], "--rounds"),
        (["--targets", "tpu"], "--targets"),
        (["--json", "{tmp}/a-file/out.json"], "--json"),
        (["--save", "../escape"], "--save"),
        (["--dense-scale", "0"], "--dense-scale"),
        (["--vs", " "], "--vs is empty"),
        (["--impl", ""], "--impl is empty"),
    ],
)
def test_bench_cli_refuses_bad_options_before_running(
    argv: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("a file, not a folder")
    assert main([*QUICK, *(arg.replace("{tmp}", str(tmp_path)) for arg in argv)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "nothing may run before the options are checked"
    (line,) = captured.err.strip().splitlines()
    assert named in line, line


def test_bench_cli_refuses_a_vs_module_that_raises_on_import(
    raising_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--vs", raising_module, *QUICK]) == 2
    captured = capsys.readouterr()
    assert "planted import failure" in captured.err and "--vs" in captured.err
    assert "traversal/moe-1k" not in captured.out


def test_unwritable_json_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # A user who can write anywhere (root) still cannot write under /proc.
        target = locked / "out.json" if not os.access(locked, os.W_OK) else Path("/proc/loaderspec-bench.json")
        assert main([*QUICK, "--json", str(target)]) == 2
        assert "--json" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_saved_runs_compare_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--save-dir", str(tmp_path)]
    assert main([*QUICK, "--save", "first", *store]) == 0
    assert main([*QUICK, "--save", "second", *store]) == 0
    capsys.readouterr()
    document = json.loads((tmp_path / "first.json").read_text())
    assert document["format"] == saved.FORMAT and document["name"] == "first"
    assert document["machine_facts"]["cpus"] and "torch" in document and "versions" in document
    assert main(["compare", "first", "second", "--dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "first median" in text and "second x floor" in text and "traversal/moe-1k/cpu" in text
    assert main(["compare", str(tmp_path / "first.json"), "second", "--dir", str(tmp_path), "--markdown"]) == 0
    assert "| workload |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "no saved run"),
        ("{not json", "malformed JSON"),
        ("[1, 2]", "not an object"),
        ('{"format": "other/9", "cases": []}', "format"),
        ('{"impl": "x", "cases": [{"series": {}}]}', "no name"),
    ],
)
def test_compare_refuses_bad_input_with_one_line(
    tmp_path: Path, content: str | None, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if content is not None:
        (tmp_path / "bad.json").write_text(content)
    assert main(["compare", "bad", "--dir", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert named in line and "bad" in line, line


def test_compare_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path / "absent.json")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.fixture
def skipping_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An adapter whose process_weights_after_loading skips every other quantize hook."""
    (tmp_path / "loaderspec_skipping_adapter.py").write_text(
        "from loaderspec.adapters.reference import ReferenceAdapter\n"
        "class Skipping(ReferenceAdapter):\n"
        "    name = 'skipping'\n"
        "    def lookup(self, name):\n"
        "        found = super().lookup(name)\n"
        "        if name != 'process_weights_after_loading':\n"
        "            return found\n"
        "        def process(model, config, target):\n"
        "            for index, (_, module) in enumerate(model.named_modules()):\n"
        "                method = getattr(module, 'quant_method', None)\n"
        "                if method is not None and index % 2:\n"
        "                    method.process_weights_after_loading(module)\n"
        "        return process\n"
        "ADAPTER = Skipping()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "loaderspec_skipping_adapter"
    sys.modules.pop("loaderspec_skipping_adapter", None)


def test_incorrect_contender_is_reported_not_timed(
    skipping_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["--impl", skipping_module, "--vs", "reference", *QUICK, "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "incorrect: PW-1" in printed
    assert "exit status 1: 1 figure(s) not measured:" in printed, printed  # the last lines say why
    (case,) = json.loads(out.read_text())["cases"]
    assert "impl" not in case["series"] and case["problems"]["impl"].startswith("incorrect: PW-1")
    assert case["series"]["vs"]["rounds"] == 2


def test_the_junit_report_fails_an_incorrect_contender_and_passes_a_correct_one(
    skipping_module: str, tmp_path: Path
) -> None:
    import junitparser
    import xmlschema

    schema = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "meta_tests" / "schemas" / "junit-10.xsd"))
    bad, good = tmp_path / "bad.xml", tmp_path / "good.xml"
    assert main(["--impl", skipping_module, *QUICK, "--junit-xml", str(bad)]) == 1
    assert main([*QUICK, "--junit-xml", str(good)]) == 0
    for path in (bad, good):
        schema.validate(str(path))
    (bad_case,) = [case for suite in junitparser.JUnitXml.fromfile(str(bad)) for case in suite]
    (good_case,) = [case for suite in junitparser.JUnitXml.fromfile(str(good)) for case in suite]
    assert bad_case.name == "traversal/moe-1k/cpu" and not bad_case.is_passed, bad_case
    assert "incorrect: PW-1" in bad_case.result[0].message
    assert good_case.is_passed and float(good_case.time) > 0, good_case
    assert 'name="traversal/moe-1k/cpu X/floor"' in good.read_text(encoding="utf-8")
