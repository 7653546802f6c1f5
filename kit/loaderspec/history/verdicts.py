"""The history's data: each release's verdict per requirement, runs of equal verdicts, change points.

Read from the reports in ``docs/reports/history/`` (``vllm-X.Y.Z.json``, the ``--json`` output
of ``loaderspec conform``), its ``status.json`` (every release tried) and ``evidence.toml``
(the upstream commit or PR behind a change point, written by hand).

A verdict here says how the release behaves, not whether CI excuses it: a CI report's
"expected failure" (its release has an expected-failure file) reads "failed", as a history
report's deviation does (those releases have no such file), and "unexpected pass" reads
"passed".
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from loaderspec.conform.matrix import Report, ReportError, load_report

AS_HISTORY = {"expected failure": "failed", "unexpected pass": "passed"}
ORDER = ("passed", "failed", "inconclusive", "not provided", "adapter error", "unchecked", "not run")
"""The verdicts of the history, in the order of the legend (others follow)."""


def history_verdict(verdict: str) -> str:
    return AS_HISTORY.get(verdict, verdict)


@dataclass(frozen=True)
class Release:
    """One release with a report."""

    version: str
    report: Report

    @property
    def key(self) -> tuple[int, ...]:
        return Version(self.version).release


@dataclass(frozen=True)
class Change:
    """A requirement whose verdict differs between two releases next to each other in the history."""

    requirement: str
    before: str  # the release before the change
    at: str  # the first release with the new verdict
    old: str
    new: str


@dataclass
class History:
    releases: list[Release]
    verdicts: dict[str, dict[str, str]]  # requirement -> release -> verdict
    requirements: dict[str, str]  # requirement -> title, in the reports' order
    status: list[dict[str, Any]]
    evidence: dict[tuple[str, str], dict[str, str]]  # (requirement, release) -> entry

    def evidence_for(self, change: Change) -> tuple[str, dict[str, str]] | None:
        """The entry for ``change``: the requirement's entry whose release lies after
        ``change.before`` and up to ``change.at`` (a release between them may not have been
        run), as (its release, the entry)."""
        low, high = Version(change.before).release, Version(change.at).release
        for (requirement, release), entry in sorted(self.evidence.items(), key=lambda item: Version(item[0][1])):
            if requirement == change.requirement and low < Version(release).release <= high:
                return release, entry
        return None

    def runs(self, requirement: str) -> list[tuple[str, str, str]]:
        """(first release, last release, verdict) for each run of equal verdicts, oldest first."""
        runs: list[tuple[str, str, str]] = []
        for release in self.releases:
            verdict = self.verdicts[requirement].get(release.version, "not run")
            if runs and runs[-1][2] == verdict:
                runs[-1] = (runs[-1][0], release.version, verdict)
            else:
                runs.append((release.version, release.version, verdict))
        return runs

    def changes(self) -> list[Change]:
        found = []
        for requirement in self.requirements:
            runs = self.runs(requirement)
            for previous, current in itertools.pairwise(runs):
                found.append(Change(requirement, previous[1], current[0], previous[2], current[2]))
        return found


def load_history(folder: Path) -> History:
    paths = sorted(path for path in folder.glob("vllm-*.json"))
    if not paths:
        raise ReportError(f"no reports (vllm-*.json) in {folder}")
    releases = sorted(
        (Release(path.stem.removeprefix("vllm-"), load_report(path)) for path in paths), key=lambda r: r.key
    )
    requirements: dict[str, str] = {}
    verdicts: dict[str, dict[str, str]] = {}
    for release in releases:
        for requirement in release.report.requirements:
            requirements.setdefault(requirement["id"], requirement.get("title", ""))
            verdicts.setdefault(requirement["id"], {})[release.version] = history_verdict(
                requirement.get("verdict", "not run")
            )
    status_path = folder / "status.json"
    status = json.loads(status_path.read_text(encoding="utf-8"))["releases"] if status_path.exists() else []
    evidence_path = folder / "evidence.toml"
    evidence: dict[tuple[str, str], dict[str, str]] = {}
    if evidence_path.exists():
        for entry in tomllib.loads(evidence_path.read_text(encoding="utf-8")).get("change", []):
            for req_id in str(entry["requirement"]).split():
                evidence[(req_id, str(entry["release"]))] = entry
    return History(releases, verdicts, requirements, status, evidence)
