"""What ``loaderspec conform`` prints: plain text, one idea a line, the verdict last."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from typing import Any

from loaderspec.adapter import Adapter
from loaderspec.conform.report import (
    Judgement,
    RequirementVerdict,
    RunVerdict,
    TestResult,
    plain_counts,
    render_legend,
    render_table,
    tally,
    test_outcomes,
)


def print_header(info: dict[str, Any]) -> None:
    width = max(len(key) for key in info)
    print("loaderspec conform")
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(value) or "none"
        print(f"  {key.ljust(width)}  {'none' if value is None else value}")
    print("checking the adapter, then the suites; pytest's progress follows (its counts know nothing")
    print("of expected failures): the verdict is at the end", flush=True)


def print_adapter_problems(adapter: Adapter, problems: list[str]) -> None:
    print(f"\nThe adapter {adapter.name} is broken; no test was run (fix it, then rerun):")
    for problem in problems:
        print(f"  {problem}")
    print("verdict: broken adapter, no test run (exit status 2)")


def _failure_summary(result: TestResult) -> str:
    lines = result.message.splitlines()
    keep = [line for line in lines if line.startswith("E ")] or lines[-15:]
    return "\n".join("    " + line for line in keep[:60])


def _print_failures(results: list[TestResult], judgement: Judgement) -> None:
    failures = [r for r in results if r.outcome in ("failed", "error", "crashed") and r.expected_failure is None]
    if failures:
        print("\nUnexpected failures")
    for result in failures:
        print(f"\n  {result.nodeid} [{', '.join(result.unexcused or result.failing_requirements())}] {result.outcome}")
        if not result.judged_by_checks:
            print(_failure_summary(result))
            print(f"  reproduce: {result.reproduction}")
            continue
        for finding in result.findings:
            if finding["requirement"] not in result.unexcused:
                continue
            print(f"    {finding['requirement']}: {finding['line']}")
            if finding.get("example"):
                print(textwrap.indent(finding["example"], "        "))
            print(f"      reproduce: {result.reproduction} --requirement {finding['requirement']}")
        stop = result.stopped
        if stop is not None:
            print(f"    stopped outside any requirement's check: {stop['line']}")
            if stop.get("example"):
                print(textwrap.indent(stop["example"], "        "))
            print(f"      reproduce: {result.reproduction}")
    adapter_errors = [r for r in results if r.outcome == "adapter error"]
    if adapter_errors:
        print("\nAdapter errors (raised from the adapter's own code: fix the adapter, not the implementation)")
    for result in adapter_errors:
        print(f"\n  {result.nodeid} [{', '.join(result.requirements)}]")
        print(_failure_summary(result))


def _fix(verdict: RequirementVerdict, settings: Any) -> str:
    reason = verdict.reason.lower()
    if "compiler" in reason:
        return "install a C++ compiler (g++), or set CXX to one"
    if "cache folder" in reason:
        return "make the cache folder writable, or set LOADERSPEC_CACHE_DIR to a writable folder"
    if "longer than" in reason:
        now = settings.args.timeout
        return f"raise --timeout (now {now:g} s) on a slow machine; a hang is the implementation's bug"
    if "--max-crashes" in reason:
        return f"fix the crashes above, or raise --max-crashes (now {settings.args.max_crashes})"
    return "see the reason"


def _print_scope(judgement: Judgement, settings: Any) -> None:
    must = [v for v in judgement.verdicts if v.level == "MUST"]
    missing: dict[str, list[str]] = defaultdict(list)
    for v in judgement.verdicts:
        if v.verdict == "not provided":
            missing[v.reason].append(v.id)
    if missing:
        print("\nNot provided (the implementation or adapter lacks these names; --require-all makes this a failure)")
    for names, ids in missing.items():
        print(f"  {', '.join(ids)}: {names}")
    inconclusive = [v for v in must if v.verdict == "inconclusive"]
    if inconclusive:
        print("\nInconclusive (the implementation stopped their checks before they could be made; INCOMPLETE")
        print("unless --allow-inconclusive)")
    for v in inconclusive:
        print(f"  {v.id}: {v.reason}")
    unchecked = [v for v in must if v.verdict == "unchecked"]
    if unchecked:
        print("\nLeft unchecked by this machine (the verdict cannot be PASS until these are checked)")
    for v in unchecked:
        print(f"  {v.id}: {v.reason}\n        fix: {_fix(v, settings)}")


def _print_warnings(judgement: Judgement) -> None:
    warnings = [v for v in judgement.verdicts if v.level != "MUST" and v.verdict in ("failed", "unexpected pass")]
    for v in warnings:
        print(f"warning: {v.level} requirement {v.id} {v.verdict}: {v.reason}")
    for entry in judgement.unexpected_passes:
        print(f"unexpected pass: the tests of {entry.describe()} passed; remove or narrow that entry ({entry.reason})")
    for entry in judgement.stale:
        print(f"stale expected-failure entry (its tests failed, but not as it says): {entry.describe()}")


def print_results(
    results: list[TestResult], judgement: Judgement, settings: Any, elapsed: float, notes: list[str]
) -> None:
    _print_failures(results, judgement)
    print("\nRequirements\n")
    print(render_table(judgement.verdicts))
    print()
    print(render_legend(judgement.verdicts))
    _print_scope(judgement, settings)
    print()
    _print_warnings(judgement)
    examples = sum(r.examples_run for r in results)
    rows = sum(v.examples for v in judgement.verdicts)
    print(f"requirements: {plain_counts(tally(v.verdict for v in judgement.verdicts))}")
    print(f"tests: {len(results)} ({plain_counts(test_outcomes(results))}) in {elapsed:.1f} s")
    extra = ""
    if rows != examples:
        extra = f" (the rows add up to {rows}: a test citing several requirements counts in each)"
    print(f"examples: {examples}{extra}")
    for note in notes:
        print(f"note: {note}")


def print_verdict(verdict: RunVerdict) -> None:
    print(f"verdict: {verdict.line} (exit status {verdict.exit_status})")
