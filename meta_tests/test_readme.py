"""The README works as written: its adapter passes the adapter check against the reference,
its verdict tables are the runner's, and docs/adapter-guide.md lists what each chapter needs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from loaderspec.adapter import API_NAMES, COLLABORATOR_NAMES
from loaderspec.conform.adapter_check import chapter_names
from loaderspec.conform.report import EXIT_STATUSES, LEGEND
from loaderspec.conform.runner import conform

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _adapter_snippet() -> str:
    section = README[README.index("### Writing an adapter") :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_adapter_passes_the_adapter_check(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_engine_adapter.py").write_text(_adapter_snippet(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        status = conform(["--impl", "my_engine_adapter", "--check-adapter"])
    finally:
        sys.modules.pop("my_engine_adapter", None)
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert out.strip() == "adapter my-engine: ok", out  # nothing "not provided" either


def test_the_readme_tables_are_the_runners():
    for word, meaning in LEGEND.items():
        assert f"| {word} | {meaning} |" in README, word
    for status, meaning in EXIT_STATUSES.items():
        assert f"| {status} | {meaning} |" in README, status


def test_the_adapter_guide_lists_every_name_each_chapter_needs():
    guide = (REPO / "docs" / "adapter-guide.md").read_text(encoding="utf-8")
    for chapter, names in chapter_names().items():
        row = next(line for line in guide.splitlines() if line.startswith(f"| [{chapter}]"))
        lookups = [n for n in names if n in API_NAMES or n in COLLABORATOR_NAMES]
        hooks = [n for n in names if n not in lookups]
        assert re.findall(r"`(\w+)`", row.split("|")[2]) == lookups, chapter
        assert re.findall(r"`(\w+)\(\)`", row.split("|")[3]) == hooks, chapter


def test_the_readme_sample_output_is_the_committed_reference_run():
    import json

    summary = json.loads((REPO / "docs" / "reports" / "reference.json").read_text(encoding="utf-8"))["summary"]
    tests, requirements = sum(summary["tests"].values()), summary["requirements"]["passed"]
    for line in (f"tests: {tests} ({tests} passed)", f"requirements: {requirements} passed"):
        assert line in README, f"README's sample output lacks {line!r} (docs/reports/reference.json)"


def test_the_readme_adapter_is_found_from_its_own_folder(tmp_path):
    """As the README says: run from the adapter's folder, no PYTHONPATH needed."""
    import os
    import subprocess

    (tmp_path / "my_engine_adapter.py").write_text(_adapter_snippet(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOADERSPEC_IMPL")}
    loaderspec = Path(sys.executable).parent / "loaderspec"
    run = subprocess.run(
        [str(loaderspec), "conform", "--impl", "my_engine_adapter", "--check-adapter"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (run.returncode, run.stdout.strip()) == (0, "adapter my-engine: ok"), run.stdout + run.stderr
