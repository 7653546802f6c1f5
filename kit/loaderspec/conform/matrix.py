"""``loaderspec matrix``: the conformance matrix, rendered from committed JSON reports.

Each report is the ``--json`` output of one ``loaderspec conform`` run, made in that
target's own environment (``.ci/conform-target.sh TARGET VERSION``). The page has a
header per target (version, date, torch, transformers, counts) and one row per
requirement with one cell per target: the verdict, with the expected-failure entry's
reason and evidence link, or the reason the name was not provided.

    loaderspec matrix [--reports docs/reports] [--output docs/conformance.md] [--check]

``--check`` writes nothing and exits 1 when the page differs from what the reports
give (stale), 0 when it is current. Reports may carry keys this renderer does not
know; it reads only the ones it needs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TITLE = "# Conformance matrix"
README_BEGIN, README_END = "<!-- conformance-summary:begin -->", "<!-- conformance-summary:end -->"
VERDICT_ORDER = (
    "passed",
    "expected failure",
    "failed",
    "unexpected pass",
    "adapter error",
    "unchecked",
    "inconclusive",
    "not provided",
)
"""Verdicts named in the per-target counts, in this order (others follow, sorted)."""

_NOT_PROVIDED = re.compile(r"not provided by [^:]+: (.+)")
_INSTALLED = re.compile(r";\s*installed: [^);]*")


class ReportError(ValueError):
    """A report file is not a loaderspec conform JSON report; the message names the file."""


@dataclass(frozen=True)
class Report:
    """One target's conform report, as far as the matrix reads it."""

    path: Path
    header: dict[str, Any]
    summary: dict[str, Any]
    requirements: list[dict[str, Any]]
    tests: list[dict[str, Any]]

    @property
    def label(self) -> str:
        """The column title: the file's stem, e.g. ``vllm-0.32.0``."""
        return self.path.stem

    def sort_key(self) -> tuple[int, str, tuple[int, ...]]:
        target = str(self.header.get("target", self.label))
        version = tuple(int(part) for part in re.findall(r"\d+", self.label)[:3])
        # The reference, then vLLM by release, then other engines (forks of vLLM's code).
        return ({"reference": 0, "vllm": 1}.get(target, 2), target, version)


def load_report(path: Path) -> Report:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: cannot read a JSON report ({error})") from error
    missing = [key for key in ("header", "summary", "requirements", "tests") if key not in data]
    if not isinstance(data, dict) or missing:
        raise ReportError(f"{path}: not a loaderspec conform report (missing {missing})")
    return Report(path, data["header"], data["summary"], data["requirements"], data["tests"])


def load_reports(folder: Path) -> list[Report]:
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise ReportError(f"no reports (*.json) in {folder}")
    return sorted((load_report(path) for path in paths), key=Report.sort_key)


def _cell_text(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no bare pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


_ERROR_LINE = re.compile(r"^(\w+(Error|Exception)|Failed|[A-Z]{2}-\d+):")


def _first_error_line(message: str) -> str:
    """The first line stating an error (an assertion message leads with its ID), else the first line."""
    lines = [line.lstrip("E |+").strip() for line in message.splitlines()]
    return next((line for line in lines if _ERROR_LINE.match(line)), next((line for line in lines if line), ""))


def _entries_for(requirement: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The expected-failure entries that excused this requirement's failures (deduplicated)."""
    entries: list[dict[str, Any]] = []
    if requirement.get("expected_failure"):
        entries.append(requirement["expected_failure"])
    cited = set(requirement.get("tests", []))
    for test in report.tests:
        entry = test.get("expected_failure")
        if entry and test.get("nodeid") in cited and entry.get("id") == requirement["id"] and entry not in entries:
            entries.append(entry)
    return entries


def _reason_of_skip(requirement: dict[str, Any], report: Report, outcome: str) -> str:
    cited = set(requirement.get("tests", []))
    for test in report.tests:
        if test.get("nodeid") in cited and test.get("outcome") == outcome:
            text = _first_error_line(test.get("message", ""))
            found = _NOT_PROVIDED.search(text)
            return found.group(1) if found else text
    return ""


def cell(requirement: dict[str, Any], report: Report) -> str:
    verdict = requirement.get("verdict", "not run")
    if verdict in ("expected failure", "unexpected pass"):
        entries = _entries_for(requirement, report)
        # Entries that differ only in their test or match give one reason, not a repeated one.
        parts = list(
            dict.fromkeys(f"{_cell_text(e.get('reason', ''))} ([evidence]({e.get('evidence', '')}))" for e in entries)
        )
        return f"**{verdict}**: " + "; ".join(parts) if parts else f"**{verdict}** (no entry found)"
    if verdict == "failed":
        cited = set(requirement.get("tests", []))
        failing = [
            t for t in report.tests if t.get("nodeid") in cited and t.get("outcome") in ("failed", "error", "timeout")
        ]
        lines = [_cell_text(_first_error_line(t.get("message", "")))[:200] for t in failing[:1]]
        where = f" (`{failing[0]['nodeid'].split('/')[-1]}`)" if failing else ""
        return "**failed, unexpected**: " + "; ".join(lines) + where
    if verdict in ("not provided", "skipped", "inconclusive", "unchecked", "adapter error"):
        # Reports since loaderspec 0.2 carry the reason; older ones only the tests' messages.
        reason = requirement.get("reason") or _reason_of_skip(requirement, report, verdict)
        reason = _cell_text(_INSTALLED.sub("", reason))  # the version is in the header already
        return f"{verdict}: {reason}" if reason else verdict
    return verdict


def _counts(report: Report) -> str:
    tally: dict[str, int] = dict(report.summary.get("requirements", {}))
    ordered = [v for v in VERDICT_ORDER if v in tally] + sorted(v for v in tally if v not in VERDICT_ORDER)
    return ", ".join(f"{tally[v]} {v}" for v in ordered)


def _version_and_notes(report: Report) -> tuple[str, str]:
    """The adapter's version string, split into the version and its parenthesised notes
    (e.g. an import shim the adapter declares)."""
    text = str(report.header.get("target_version", "?"))
    version, _, notes = text.partition(" (")
    return version, notes[:-1] if notes.endswith(")") else notes


def _header_rows(reports: list[Report]) -> list[str]:
    def field(report: Report, key: str) -> str:
        return _cell_text(str(report.header.get(key, "?")))

    rows = [
        ("target", lambda r: f"`{field(r, 'target')}`"),
        ("version", lambda r: _cell_text(_version_and_notes(r)[0])),
        ("notes", lambda r: _cell_text(_version_and_notes(r)[1]) or "-"),
        ("date", lambda r: field(r, "date")),
        ("torch", lambda r: field(r, "torch")),
        ("transformers", lambda r: field(r, "transformers")),
        ("python", lambda r: field(r, "python")),
        ("profile", lambda r: field(r, "profile")),
        ("expected failures", lambda r: _cell_text(Path(str(r.header.get("xfails") or "none")).name)),
        ("requirements", _counts),
        ("verdict", lambda r: f"{r.summary.get('verdict', '?')} (exit status {r.summary.get('exit_status', '?')})"),
        ("run time", lambda r: f"{r.header['elapsed_s']:.0f} s" if "elapsed_s" in r.header else "?"),
    ]
    lines = ["| | " + " | ".join(r.label for r in reports) + " |", "|---|" + "---|" * len(reports)]
    lines += [f"| {name} | " + " | ".join(render(r) for r in reports) + " |" for name, render in rows]
    return lines


def render(reports: list[Report], source: str = "reports") -> str:
    """The whole page (deterministic: the same reports give the same bytes)."""
    requirement_ids: list[str] = []
    titles: dict[str, str] = {}
    for report in reports:
        for requirement in report.requirements:
            if requirement["id"] not in titles:
                requirement_ids.append(requirement["id"])
                titles[requirement["id"]] = f"{requirement['id']} {requirement.get('title', '')}".strip()
    by_id = [{r["id"]: r for r in report.requirements} for report in reports]
    lines = [
        TITLE,
        "",
        f"<!-- Generated by `loaderspec matrix` from the JSON reports in {source}/; do not edit by hand. -->",
        "",
        "Which implementations behave like vLLM 0.9.2's model-loader utilities, requirement by requirement.",
        "Each column is one `loaderspec conform --profile ci --json` run in that target's own environment",
        "(`.ci/conform-target.sh TARGET VERSION`). A failure cell is an expected failure: the reason and the",
        "evidence (the target's source at that release, or the upstream PR) come from the target's",
        'expected-failure file. "not provided": the target has no such name, so the requirement is not checked;',
        '"inconclusive": the implementation stopped its checks before they could be made (the note says where).',
        "",
        "## Targets",
        "",
        *_header_rows(reports),
        "",
        "## Requirements",
        "",
        "| requirement | " + " | ".join(r.label for r in reports) + " |",
        "|---|" + "---|" * len(reports),
    ]
    for req_id in requirement_ids:
        cells = [
            cell(index[req_id], report) if req_id in index else "not in this run"
            for index, report in zip(by_id, reports, strict=True)
        ]
        lines.append(f"| {_cell_text(titles[req_id])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_lines(reports: list[Report], page: str = "docs/conformance.md") -> str:
    """One line per target, for the README."""
    lines = []
    for report in reports:
        version, notes = _version_and_notes(report)
        about = f"{version}, {notes.split(':')[0]}" if notes else version
        lines.append(f"- **{report.label}** ({_cell_text(about)}): {_counts(report)} ([matrix]({page}))")
    return "\n".join(lines) + "\n"


def splice(text: str, block: str) -> str:
    """``text`` with the part between the README markers replaced by ``block``."""
    if README_BEGIN not in text or README_END not in text:
        raise ReportError(f"the README lacks the markers {README_BEGIN} ... {README_END}")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{block}{README_END}{tail}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loaderspec matrix",
        description=__doc__.replace("``", ""),  # the docstring's literals, as plain text
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reports", type=Path, default=Path("docs/reports"), help="folder of JSON reports")
    parser.add_argument("--output", type=Path, default=Path("docs/conformance.md"), help="the page to write")
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also update the summary lines between the conformance-summary markers of this file",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    return parser


def _targets(args: argparse.Namespace, reports: list[Report]) -> Iterable[tuple[Path, str]]:
    yield args.output, render(reports, args.reports.name)
    if args.readme is not None:
        yield args.readme, splice(args.readme.read_text(encoding="utf-8"), summary_lines(reports))


def matrix(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        reports = load_reports(args.reports)
        outputs = list(_targets(args, reports))
    except (ReportError, OSError) as error:
        print(f"loaderspec matrix: {error}", file=sys.stderr)
        return 2
    stale = []
    for path, text in outputs:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    labels = ", ".join(r.label for r in reports)
    if args.check:
        for path in stale:
            print(
                f"loaderspec matrix: {path} is stale against the reports in {args.reports}: "
                "run `loaderspec matrix` and commit the result",
                file=sys.stderr,
            )
        if not stale:
            print(f"loaderspec matrix: up to date ({labels})")
        return 1 if stale else 0
    for path in stale:
        print(f"wrote {path}")
    print(f"loaderspec matrix: {len(reports)} target{'s' if len(reports) != 1 else ''} ({labels})")
    return 0


if __name__ == "__main__":
    sys.exit(matrix())
