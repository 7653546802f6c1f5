"""docs/ci-job.md: its shell steps, copied out of the page, run as written on a shipped adapter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci-job.md"


def _block(marker: str) -> str:
    """The fenced block right after ``<!-- ci-job:MARKER -->``."""
    found = re.search(rf"<!-- ci-job:{marker} -->\n```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert found, f"docs/ci-job.md has no ```bash block after <!-- ci-job:{marker} -->"
    return found.group(1)


def _conform_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("loaderspec conform")]
    assert len(lines) == 1, f"expected one `loaderspec conform` line, found {lines}"
    return lines[0]


def test_the_check_steps_run_as_documented_on_the_reference_adapter(tmp_path: Path) -> None:
    xfails = tmp_path / "loaderspec-xfails.toml"
    xfails.write_text("# The reference fails nothing: no entries.\n", encoding="utf-8")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # this venv's loaderspec
    env["ADAPTER"] = "loaderspec.adapters.reference"  # a module path, as a downstream user gives theirs
    env["XFAILS"] = str(xfails)
    env.pop("LOADERSPEC_IMPL", None)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block("check")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (
        f"the documented check failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["header"]["target"] == "reference"
    assert report["header"]["xfails"] == str(xfails)
    assert report["summary"]["exit_status"] == 0
    assert report["summary"]["requirements"].get("passed", 0) > 0


def test_the_github_actions_job_runs_the_same_command() -> None:
    yaml_job = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert yaml_job, "docs/ci-job.md has no ```yaml block"
    assert _conform_line(yaml_job.group(1)) == _conform_line(_block("check"))
    assert "--xfails" in _conform_line(_block("check")) and "--json report.json" in _conform_line(_block("check"))


def test_the_install_steps_are_valid_shell() -> None:
    subprocess.run(["bash", "-n", "-c", _block("install")], check=True)
