"""docs/ci-job.md works when pasted: its install and check blocks, copied out of the page, run
as written in a fresh folder (loaderspec installed from a clone of this repository, as the page
says, into a new venv), on the shipped reference adapter; what the run leaves is what the
page's .gitignore lines name; the GitHub Actions job runs the same commands."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import junitparser
from loaderspec.conform.report import EXIT_STATUSES

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "ci-job.md"


def _block(marker: str, language: str = "bash") -> str:
    """The fenced block right after ``<!-- ci-job:MARKER -->``."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- ci-job:{marker} -->\n```{language}\n(.*?)```", text, re.DOTALL)
    assert found, f"docs/ci-job.md has no ```{language} block after <!-- ci-job:{marker} -->"
    return found.group(1)


def _yaml_job() -> str:
    found = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert found, "docs/ci-job.md has no ```yaml block"
    return found.group(1)


def _commands(text: str) -> list[str]:
    """The shell lines of ``text``, comments and blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_install_and_check_steps_run_as_documented_in_a_fresh_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-engine"
    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / ".gitignore").write_text(_block("gitignore", "gitignore"), encoding="utf-8")
    (folder / "loaderspec-xfails.toml").write_text("# The reference fails nothing: no entries.\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "LOADERSPEC_IMPL")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "/.venv" not in p)
    env |= {"LOADERSPEC_REPO": str(REPO), "LOADERSPEC_REF": "HEAD", "ADAPTER": "loaderspec.adapters.reference"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    script = _block("install") + _block("check")
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, (
        f"the documented steps failed ({run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    )
    assert "verdict: PASS for 78 of 78 requirements (exit status 0)" in run.stdout, run.stdout[-2000:]
    suites = junitparser.JUnitXml.fromfile(str(folder / "report.xml"))
    cases = [case for suite in suites for case in suite]
    assert len(cases) == 78 and all(case.is_passed for case in cases), [c.name for c in cases if not c.is_passed]
    left = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=folder, capture_output=True, text=True
    ).stdout.split("\n")
    unignored = [line[3:] for line in left if line and line[3:] not in (".gitignore", "loaderspec-xfails.toml")]
    assert not unignored, f"the run left files the documented .gitignore does not name: {unignored}"


def test_the_github_actions_job_runs_the_same_commands() -> None:
    job = _commands(_yaml_job())
    for marker in ("install", "check"):
        missing = [line for line in _commands(_block(marker)) if line not in job]
        assert not missing, f"the YAML job lacks the {marker} block's lines {missing}"
    check = " ".join(_commands(_block("check")))
    for option in ("--xfails", "--json report.json", "--junit-xml report.xml", "--annotations github"):
        assert option in check, option


def test_the_engine_steps_are_valid_shell() -> None:
    subprocess.run(["bash", "-n", "-c", _block("engine")], check=True)


def test_the_exit_statuses_are_the_readme_s() -> None:
    """One exit-status table (report.EXIT_STATUSES), shown the same here as in the README."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("<!-- ci-job:exit-statuses -->") :]
    for status, meaning in EXIT_STATUSES.items():
        assert f"| {status} | {meaning} |" in section, status
