"""From test outcomes to a verdict per requirement, and the report's text and JSON forms."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from loaderspec.conform.requirements import Requirement
from loaderspec.conform.xfails import Xfail

FAILING = ("failed", "error", "timeout", "crashed", "not run")
"""Outcomes that make a run fail unless expected ("not run": collected, never run)."""
REQ_IN_MESSAGE = re.compile(r"\b([A-Z]{2}-\d+)\b")

# Worst first: the verdict of a requirement is the worst outcome attributed to it.
VERDICT_ORDER = (
    "failed",
    "not run",
    "unexpected pass",
    "expected failure",
    "passed",
    "inconclusive",  # its only tests failed on other requirements first
    "not provided",
    "skipped",
    "not selected",  # no test citing it was collected (-k)
)


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: str
    requirements: list[str]
    duration: float = 0.0
    examples: int | None = None
    message: str = ""
    expected_failure: Xfail | None = None
    reproduction: str = ""

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING

    def failing_requirements(self) -> list[str]:
        """The cited requirements this failure is about: those its message names, else all."""
        named = [r for r in REQ_IN_MESSAGE.findall("\n".join(error_lines(self.message))) if r in self.requirements]
        return sorted(set(named)) or list(self.requirements)


ERROR_LINE = re.compile(r"^(\w+(Error|Exception)|Failed|[A-Z]{2}-\d+):")


def error_lines(message: str) -> list[str]:
    """The lines of a failure report that state an error, plain or inside an exception group.

    Assertion messages lead with their IDs; other lines (tracebacks, source) may quote
    unrelated IDs, so only these count.
    """
    stripped = (line.lstrip("E |+").strip() for line in message.splitlines())
    return [text for text in stripped if ERROR_LINE.match(text)]


@dataclass
class RequirementVerdict:
    id: str
    level: str
    title: str
    verdict: str = "not run"
    tests: list[str] = field(default_factory=list)
    examples: int = 0
    expected_failure: Xfail | None = None


def _worst(outcomes: list[str]) -> str:
    return min(outcomes, key=VERDICT_ORDER.index) if outcomes else "not selected"


def _attributed(result: TestResult, req_id: str) -> str:
    """What ``result`` says about ``req_id``."""
    if result.outcome == "not run":
        return "not run"
    if result.failing:
        if req_id not in result.failing_requirements():
            return "inconclusive"
        return "expected failure" if result.expected_failure else "failed"
    if result.outcome == "passed":
        return "unexpected pass" if result.expected_failure else "passed"
    return result.outcome if result.outcome in VERDICT_ORDER else "skipped"


def judge(
    results: list[TestResult], requirements: dict[str, Requirement], xfails: list[Xfail]
) -> tuple[list[RequirementVerdict], list[Xfail]]:
    """Per-requirement verdicts, and the expected-failure entries that match nothing (stale).

    A failing test counts against the requirements its message names (else all it
    cites); a passing test counts for all it cites; the worst outcome wins. A
    failure is expected when an entry names its test, or names every requirement it
    fails. An entry whose test, or requirement, passes is an unexpected pass.
    """
    by_requirement = {x.id: x for x in xfails if x.is_requirement}
    for result in results:
        by_test = next((x for x in xfails if x.matches_test(result.nodeid)), None)
        failing = result.failing_requirements() if result.failing else []
        if by_test is not None and (result.failing or result.outcome == "passed"):
            result.expected_failure = by_test
        elif failing and all(r in by_requirement for r in failing):
            result.expected_failure = by_requirement[failing[0]]

    verdicts = []
    for requirement in requirements.values():
        cited = [r for r in results if requirement.id in r.requirements]
        outcomes = [_attributed(r, requirement.id) for r in cited]
        verdict = RequirementVerdict(
            requirement.id,
            requirement.level,
            requirement.title,
            verdict=_worst(outcomes),
            tests=[r.nodeid for r in cited],
            examples=sum(r.examples or (1 if r.outcome == "passed" else 0) for r in cited),
            expected_failure=by_requirement.get(requirement.id),
        )
        if verdict.expected_failure is not None and verdict.verdict == "passed":
            verdict.verdict = "unexpected pass"
        verdicts.append(verdict)

    ran = {v.id for v in verdicts if v.tests}
    stale = [
        x
        for x in xfails
        if (x.id not in ran if x.is_requirement else not any(x.matches_test(r.nodeid) for r in results))
    ]
    return verdicts, stale


def exit_status(results: list[TestResult], verdicts: list[RequirementVerdict]) -> int:
    """1 on any unexpected failure or unexpected pass, or when no test ran; else 0."""
    if not results:
        return 1
    unexpected_failure = any(r.failing and r.expected_failure is None for r in results)
    unexpected_pass = any(v.verdict == "unexpected pass" for v in verdicts) or any(
        r.outcome == "passed" and r.expected_failure is not None for r in results
    )
    return 1 if unexpected_failure or unexpected_pass else 0


def counts(verdicts: list[RequirementVerdict]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for verdict in verdicts:
        tally[verdict.verdict] = tally.get(verdict.verdict, 0) + 1
    return tally


def render_table(verdicts: list[RequirementVerdict]) -> str:
    """The per-requirement table: ID, level, verdict, tests, examples, expected-failure reason."""
    rows = [("ID", "level", "verdict", "tests", "examples", "note")]
    for v in verdicts:
        note = v.expected_failure.reason if v.expected_failure and v.verdict != "passed" else ""
        rows.append((v.id, v.level, v.verdict, str(len(v.tests)), str(v.examples), note))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        lines.append("  ".join(cells) + ("  " + row[5] if row[5] else ""))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_markdown_table(verdicts: list[RequirementVerdict]) -> str:
    lines = ["| requirement | level | verdict | tests | examples | note |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        note = ""
        if v.expected_failure and v.verdict != "passed":
            note = f"{v.expected_failure.reason} ([evidence]({v.expected_failure.evidence}))"
        lines.append(f"| {v.id} {v.title} | {v.level} | {v.verdict} | {len(v.tests)} | {v.examples} | {note} |")
    return "\n".join(lines)


def to_json(header: dict, results: list[TestResult], verdicts: list[RequirementVerdict], stale: list[Xfail]) -> dict:
    return {
        "header": header,
        "summary": {"requirements": counts(verdicts), "exit_status": exit_status(results, verdicts)},
        "requirements": [asdict(verdict) for verdict in verdicts],
        "tests": [asdict(result) for result in results],
        "stale_xfails": [asdict(entry) for entry in stale],
    }
