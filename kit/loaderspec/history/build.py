"""Build the history's reports: install each release, run ``loaderspec conform``, clean up.

One release at a time: its venv (``build/history/venv-X.Y.Z``) is removed once the report
is written, so the build never holds more than one vLLM on disk; the pip cache
(``build/history/pip-cache``) is shared by the releases of one build and deleted when it
ends. Resumable: a release whose report exists is skipped unless ``--force``; every release
tried gets a row in ``docs/reports/history/status.json`` (installed / ran / failed, the
error's first line, install and run seconds), written after each release.

Kept in ``build/history/`` (ignored by git): each release's log and its model-loader
sources (``sources/X.Y.Z/...``), to diff releases at a change point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from loaderspec.history.install import Installed, InstallError, first_error_line, install, loader_sources
from loaderspec.history.releases import BUILD_ORDER, RELEASES, Release, find

RUN_TIMEOUT_S = 3600
# Per test (conform's --timeout, default 300 s): some releases hang in a test (0.15.1 slept in
# several until stopped); a whole run of 0.11.2 took 110 s, so 90 s stops only a hang.
TEST_TIMEOUT_S = 90


def relative_paths(text: str, repo: str, venv: str) -> str:
    """A report's text with the checkout's and the venv's paths made location-independent
    (as .ci/conform-target.sh does for CI's reports)."""
    repo, venv = repo.rstrip("/"), venv.rstrip("/")
    text = text.replace(venv + "/", "$VENV/").replace(repo + "/", "")
    for root in {"/" + Path(path).parts[1] for path in (repo, venv) if len(Path(path).parts) > 1}:
        text = re.sub(re.escape(root) + r"/[^\s\"'\\]*", "<path>", text)
    return text


class Status:
    """``status.json``: one row per release tried, kept sorted by release."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            self.rows = {row["version"]: row for row in json.loads(path.read_text(encoding="utf-8"))["releases"]}

    def set(self, release: Release, **row: Any) -> None:
        if self.path.exists():  # another build may have written rows since this one started
            self.rows = {r["version"]: r for r in json.loads(self.path.read_text(encoding="utf-8"))["releases"]}
        self.rows[release.version] = {
            "version": release.version,
            "dist": f"{release.dist}=={release.dist_version}",
            **row,
        }
        self.save()

    def save(self) -> None:
        order = {r.version: r.key() for r in RELEASES}
        rows = sorted(self.rows.values(), key=lambda row: order.get(row["version"], (999,)))
        data = {
            "about": "Every release the history tried: `python -m loaderspec.history build` writes this file.",
            "releases": rows,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _copy(release: Release, repo: Path, report: Path, status: Status) -> None:
    assert release.copied_from is not None
    source = repo / release.copied_from
    if not source.exists():
        status.set(release, status="failed", stage="copy", error=f"{release.copied_from} does not exist")
        return
    shutil.copyfile(source, report)
    header = json.loads(report.read_text(encoding="utf-8"))["header"]
    status.set(
        release,
        status="ran",
        source=f"copied from {release.copied_from} (made by CI, with its expected-failure file)",
        transformers=header.get("transformers", ""),
        install_s=None,
        run_s=round(float(header.get("elapsed_s", 0.0)), 1),
        date=header.get("date", ""),
    )


def build_one(release: Release, repo: Path, reports: Path, work: Path, status: Status, keep_venv: bool) -> None:
    report = reports / f"{release.label}.json"
    if release.copied_from:
        _copy(release, repo, report, status)
        return
    venv = work / f"venv-{release.version}"
    log = work / "logs" / f"{release.label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# {release.dist}=={release.dist_version}, {date.today()}\n", encoding="utf-8")
    started = time.monotonic()
    marker = venv / "loaderspec-history-installed.json"
    try:
        if marker.exists():  # a venv an interrupted build left behind, installed in full
            installed = Installed(**{**json.loads(marker.read_text(encoding="utf-8")), "venv": venv})
            installed.notes = [*installed.notes, "install reused from an interrupted build"]
        else:
            installed = install(release, venv, repo, log)
            fields = {k: v for k, v in vars(installed).items() if k != "venv"}
            marker.write_text(json.dumps(fields), encoding="utf-8")
    except InstallError as error:
        status.set(
            release,
            status="failed",
            stage=f"install ({error.step})",
            error=error.line,
            install_s=round(time.monotonic() - started, 1),
            run_s=None,
            date=str(date.today()),
        )
        _remove(venv, keep_venv)
        return
    sources = work / "sources" / release.version
    for path, text in loader_sources(venv).items():
        (sources / path).parent.mkdir(parents=True, exist_ok=True)
        (sources / path).write_text(text, encoding="utf-8")
    run_started = time.monotonic()
    cache = tempfile.mkdtemp(prefix="loaderspec-history-vllm-cache-")
    env = {**os.environ, "VLLM_CACHE_ROOT": cache}
    command = [
        str(venv / "bin" / "loaderspec"),
        "conform",
        "--impl",
        "vllm",
        "--profile",
        "ci",
        "--allow-inconclusive",
        "--timeout",
        str(TEST_TIMEOUT_S),
        "--json",
        str(report),
    ]
    outcome: dict[str, Any]
    try:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"\n$ {' '.join(command)}\n")
            out.flush()
            done = subprocess.run(
                command, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S
            )
        exit_status: int | None = done.returncode
    except subprocess.TimeoutExpired:
        exit_status = None
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    run_s = round(time.monotonic() - run_started, 1)
    if report.exists():
        report.write_text(relative_paths(report.read_text(encoding="utf-8"), str(repo), str(venv)), encoding="utf-8")
        outcome = {"status": "ran", "exit_status": exit_status}
    else:
        tail = log.read_text(encoding="utf-8")[-20000:]
        line = "timed out" if exit_status is None else _conform_error(tail)
        outcome = {"status": "failed", "stage": "conform", "error": line, "exit_status": exit_status}
    status.set(
        release,
        **outcome,
        transformers=installed.transformers,
        pins=installed.pins,
        notes=installed.notes,
        install_s=round(installed.seconds, 1) or None,
        run_s=run_s,
        date=str(date.today()),
    )
    _remove(venv, keep_venv)


def _conform_error(output: str) -> str:
    """The first problem a failed ``loaderspec conform`` names (a broken adapter's first hook)."""
    lines = [line.strip() for line in output.splitlines()]
    for number, line in enumerate(lines):
        if "is broken; no test was run" in line and number + 1 < len(lines):
            return f"adapter broken for this release: {lines[number + 1]}"[:300]
    return first_error_line(output)


def _remove(venv: Path, keep: bool) -> None:
    if not keep:
        shutil.rmtree(venv, ignore_errors=True)


def build(
    versions: list[str], repo: Path, reports: Path, work: Path, *, force: bool, keep_venv: bool, retry_failed: bool
) -> int:
    """Build the named releases (all, in :data:`BUILD_ORDER` then the copied ones, when none
    are named). Returns 0, or 1 when a named release failed."""
    copied = [r.version for r in RELEASES if r.copied_from]
    wanted = [find(v) for v in versions] if versions else [find(v) for v in (*copied, *BUILD_ORDER)]
    reports.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    status = Status(reports / "status.json")
    cache = work / "pip-cache"
    os.environ["PIP_CACHE_DIR"] = str(cache)
    failed = 0
    try:
        for release in wanted:
            report = reports / f"{release.label}.json"
            row = status.rows.get(release.version, {})
            if not force and report.exists():
                print(f"[history] {release.label}: report exists, skipped (--force rebuilds it)", flush=True)
                continue
            if not force and not retry_failed and row.get("status") == "failed" and not versions:
                print(f"[history] {release.label}: failed before ({row.get('error')}), skipped", flush=True)
                continue
            print(f"[history] {release.label}: building ({release.dist}=={release.dist_version})", flush=True)
            build_one(release, repo, reports, work, status, keep_venv)
            row = status.rows[release.version]
            failed += row["status"] != "ran"
            print(
                f"[history] {release.label}: {row['status']} {row.get('error', '')} "
                f"(install {row.get('install_s')} s, run {row.get('run_s')} s)",
                flush=True,
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 1 if failed and versions else 0
