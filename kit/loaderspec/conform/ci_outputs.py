"""What a CI system shows of a conformance run without downloading anything: a JUnit XML
report (every CI renders it as a test report), the GitHub Actions step summary (Markdown on the
run's page) and GitHub annotations (one ``::error`` per failed requirement, at its rule).

JUnit: one ``testsuite`` per spec chapter, one ``testcase`` per requirement (name: the ID and
title; classname: the chapter). A failed requirement and an unexpected pass are a ``failure``
(message: the first error line; text: the shrunk example and the command that reproduces it);
an adapter error is an ``error``; not provided, unchecked, inconclusive and not selected are
``skipped``, the verdict's word first in the message. An expected failure is a passing case (so
a CI's history does not flap on a known deviation): its entry is named in the case's
``system-out`` and in a property of its suite (the schema, Jenkins' ``junit-10.xsd``, allows
properties on suites only).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

from loaderspec.conform.report import VERDICT_ORDER, RequirementVerdict, render_markdown_table
from loaderspec.conform.requirements import Requirement
from loaderspec.conform.xfails import Xfail

JUNIT_FAILURE = ("failed", "unexpected pass")
JUNIT_ERROR = ("adapter error",)
JUNIT_SKIPPED = ("not provided", "unchecked", "inconclusive", "not selected")


def _entry(entry: Xfail) -> str:
    return f"{entry.describe()}: {entry.reason} ({entry.evidence})"


def _failure_text(verdict: RequirementVerdict) -> str:
    parts = [verdict.reason]
    if verdict.example:
        parts.append(verdict.example)
    if verdict.reproduction:
        parts.append(f"reproduce: {verdict.reproduction}")
    if verdict.expected_failure is not None and verdict.verdict == "unexpected pass":
        parts.append(f"the expected-failure entry: {_entry(verdict.expected_failure)}")
    return "\n\n".join(part for part in parts if part)


def render_junit(
    verdicts: list[RequirementVerdict], requirements: dict[str, Requirement], *, name: str, elapsed: float
) -> str:
    """The JUnit XML text of a run's verdicts (see the module docstring for the mapping)."""
    root = ElementTree.Element("testsuites", name=name, time=f"{elapsed:.3f}")
    by_chapter: dict[str, list[RequirementVerdict]] = {}
    for verdict in verdicts:
        by_chapter.setdefault(requirements[verdict.id].chapter, []).append(verdict)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for chapter, members in by_chapter.items():
        counts = {
            "tests": len(members),
            "failures": sum(v.verdict in JUNIT_FAILURE for v in members),
            "errors": sum(v.verdict in JUNIT_ERROR for v in members),
            "skipped": sum(v.verdict in JUNIT_SKIPPED for v in members),
        }
        attributes = {"name": chapter, **{key: str(value) for key, value in counts.items()}}
        suite = ElementTree.SubElement(root, "testsuite", attributes)
        expected = [v for v in members if v.verdict == "expected failure" and v.expected_failure is not None]
        if expected:
            properties = ElementTree.SubElement(suite, "properties")
            for verdict in expected:
                entry = verdict.expected_failure
                assert entry is not None
                ElementTree.SubElement(
                    properties, "property", name=f"expected failure {verdict.id}", value=_entry(entry)
                )
        for verdict in members:
            case = ElementTree.SubElement(suite, "testcase", name=f"{verdict.id} {verdict.title}", classname=chapter)
            if verdict.verdict in JUNIT_FAILURE:
                failure = ElementTree.SubElement(
                    case, "failure", type=verdict.verdict, message=_first_line(verdict) or verdict.verdict
                )
                failure.text = _failure_text(verdict)
            elif verdict.verdict in JUNIT_ERROR:
                error = ElementTree.SubElement(case, "error", type=verdict.verdict, message=_first_line(verdict))
                error.text = verdict.reason
            elif verdict.verdict in JUNIT_SKIPPED:
                message = f"{verdict.verdict}: {verdict.reason}" if verdict.reason else verdict.verdict
                ElementTree.SubElement(case, "skipped", type=verdict.verdict, message=message)
            elif verdict.verdict == "expected failure" and verdict.expected_failure is not None:
                out = ElementTree.SubElement(case, "system-out")
                out.text = f"expected failure, excused by {_entry(verdict.expected_failure)}"
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def _first_line(verdict: RequirementVerdict) -> str:
    return verdict.reason.splitlines()[0] if verdict.reason else ""


def failures_first(verdicts: Iterable[RequirementVerdict]) -> list[RequirementVerdict]:
    """The verdicts, worst first (the order of VERDICT_ORDER), each group in spec order."""
    rank = {word: number for number, word in enumerate(VERDICT_ORDER)}
    return sorted(verdicts, key=lambda v: rank.get(v.verdict, len(rank)))


def step_summary(verdicts: list[RequirementVerdict], verdict_line: str, *, target: str) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``: the verdict, then the requirement
    table with the failures first."""
    table = render_markdown_table(failures_first(verdicts))
    return f"### loaderspec conform: {target}\n\n**{verdict_line}**\n\n{table}\n"


def append_step_summary(text: str) -> Path | None:
    """Append ``text`` to the file ``$GITHUB_STEP_SUMMARY`` names, if set; the path written."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(text + "\n")
    return path


def _escape_data(text: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit, command.ts: escapeData / escapeProperty).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(
    verdicts: list[RequirementVerdict], requirements: dict[str, Requirement], spec_folder: Path
) -> list[str]:
    """One ``::error`` workflow command per failed requirement (and unexpected pass), pointing
    at the spec file and line of its rule: the path relative to the working folder when the spec
    lies below it, else the chapter's path as the loaderspec repository has it (spec/NAME.md)."""
    lines = []
    for verdict in verdicts:
        if verdict.verdict not in JUNIT_FAILURE:
            continue
        requirement = requirements[verdict.id]
        file = spec_folder / f"{requirement.chapter}.md"
        try:
            shown = file.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            shown = f"spec/{requirement.chapter}.md"
        title = f"{verdict.id} {verdict.verdict}: {verdict.title}"
        message = _first_line(verdict) or verdict.verdict
        if verdict.reproduction:
            message += f"\nreproduce: {verdict.reproduction}"
        lines.append(
            f"::error file={_escape_property(shown)},line={requirement.line},title={_escape_property(title)}"
            f"::{_escape_data(message)}"
        )
    return lines


def verdicts_of_report(data: dict) -> list[RequirementVerdict]:
    """The requirement verdicts of a ``--json`` report (to render a saved run as JUnit)."""
    verdicts = []
    for row in data["requirements"]:
        entry = row.get("expected_failure")
        fields = {**row, "expected_failure": Xfail(**entry) if entry else None}
        verdicts.append(RequirementVerdict(**fields))
    return verdicts
