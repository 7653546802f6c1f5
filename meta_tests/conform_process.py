"""``loaderspec conform`` run as a user runs it, in a subprocess, for the meta tests (not a test
module: the test modules share it instead of importing one another)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def conform_env(**extra: str) -> dict[str, str]:
    """This environment, with the repository importable (the child imports the broken adapters
    as ``meta_tests.broken_adapters``) and this venv's ``loaderspec`` first on PATH."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    scripts = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PATH": scripts, **extra}


def run_conform(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, dict]:
    """Exit status, console output and the JSON report (``{}`` when none was written) of
    ``loaderspec conform --json tmp_path/report.json ARGS`` run in ``tmp_path``."""
    report = tmp_path / "report.json"
    process = subprocess.run(
        [sys.executable, "-m", "loaderspec.cli", "conform", "--json", str(report), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=conform_env(**env),
        cwd=tmp_path,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return process.returncode, process.stdout + process.stderr, data


def outcomes_by_test(data: dict) -> dict[str, str]:
    """A JSON report's outcome per test function (``test_x[param]``), by name."""
    return {t["nodeid"].split("::")[1]: t["outcome"] for t in data["tests"]}
