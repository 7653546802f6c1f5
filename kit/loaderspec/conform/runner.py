"""``loaderspec conform``: run the suites against an implementation and give a verdict
per requirement.

The suites run in a child pytest process that streams its results (see
:mod:`loaderspec.conform.plugin`); if the child dies (a segfault in the
implementation), the test it was running is reported as crashed and the rest are
run in a fresh child.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import loaderspec
from loaderspec.adapter import Adapter, AdapterError, load_adapter
from loaderspec.conform.report import TestResult, counts, error_lines, exit_status, judge, render_table, to_json
from loaderspec.conform.requirements import load_requirements
from loaderspec.conform.xfails import Xfail, XfailFileError, dump_xfails, load_xfails

PROFILES = ("ci", "dev", "thorough")
MAX_RESTARTS = 5
_INI = "[pytest]\n"  # the suites' conftest registers what they need; no project ini applies


def suites_dir() -> Path:
    import loaderspec_suites

    return Path(loaderspec_suites.__file__).parent


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="loaderspec conform", description=__doc__)
    parser.add_argument("--impl", default=None, help="reference (default), vllm, or module[:attribute] of an adapter")
    parser.add_argument("--profile", choices=PROFILES, default="ci", help="Hypothesis profile (default: ci)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed for dev/thorough (default: random)")
    parser.add_argument("--json", type=Path, default=None, help="write the full report as JSON here")
    parser.add_argument("--xfails", type=Path, default=None, help="expected-failure file (default: the adapter's)")
    parser.add_argument("--write-xfails", type=Path, default=None, help="write the current failures as a starting file")
    parser.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a hanging test is stopped")
    parser.add_argument("--markdown", type=Path, default=None, help="write the requirement table as Markdown here")
    return parser


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def header(adapter: Adapter, args: argparse.Namespace, seed: int | None, xfail_path: Path | None) -> dict:
    return {
        "target": adapter.name,
        "target_version": adapter.version(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),  # UTC day of the run (the matrix's header)
        "spec_version": loaderspec.SPEC_VERSION,
        "loaderspec": loaderspec.__version__,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "hypothesis": _version("hypothesis"),
        "profile": args.profile,
        "seed": "derandomized" if seed is None else seed,
        "xfails": str(xfail_path) if xfail_path else None,
        "missing_hooks": adapter.missing_hooks(),
        "platform": platform.platform(),
    }


def _child_command(
    args: argparse.Namespace, seed: int | None, events: Path, ini: Path, deselect: list[str]
) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", str(suites_dir()),
        "-c", str(ini), "--rootdir", str(suites_dir()),
        "-p", "loaderspec.conform.plugin", "-p", "no:cacheprovider",
        "--loaderspec-events", str(events), "--loaderspec-timeout", str(args.timeout),
        f"--hypothesis-profile={args.profile}",
        "-q", "--tb=short", "-rN", "--no-header",
    ]  # fmt: skip
    if args.impl:
        command += ["--impl", args.impl]
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    if args.keyword:
        command += ["-k", args.keyword]
    command += [f"--deselect={nodeid}" for nodeid in deselect]
    return command


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the child died mid-write
    return events


def _cited(nodeid: str, events: list[dict]) -> list[str]:
    for event in events:
        if event["event"] == "collected":
            return event.get("requirements", {}).get(nodeid, [])
    return []


def _merge(results: dict[str, TestResult], event: dict) -> None:
    """Fold one result event in: a test's outcome is its worst phase's."""
    rank = ("crashed", "timeout", "error", "failed", "not provided", "skipped", "passed")
    current = results.get(event["nodeid"])
    new = TestResult(
        nodeid=event["nodeid"],
        outcome=event["outcome"],
        requirements=event["requirements"],
        duration=event["duration"],
        examples=event["examples"],
        message=event["message"],
    )
    if current is None:
        results[new.nodeid] = new
        return
    current.duration += new.duration
    current.examples = current.examples if new.examples is None else new.examples
    if rank.index(new.outcome) < rank.index(current.outcome):
        current.outcome, current.message = new.outcome, new.message


def run_suites(args: argparse.Namespace, seed: int | None, workdir: Path) -> tuple[list[TestResult], list[str]]:
    """Run the suites in child processes until every collected test has a result.

    Returns the results and notes about what could not be run.
    """
    ini = workdir / "pytest.ini"
    ini.write_text(_INI)
    results: dict[str, TestResult] = {}
    notes: list[str] = []
    collected: dict[str, list[str]] = {}
    for attempt in range(MAX_RESTARTS + 1):
        events_path = workdir / f"events-{attempt}.jsonl"
        command = _child_command(args, seed, events_path, ini, deselect=list(results))
        child = subprocess.run(command, check=False)
        events = _read_events(events_path)
        for event in events:
            if event["event"] == "collected" and not collected:
                collected = {n: event.get("requirements", {}).get(n, []) for n in event["nodeids"]}
            elif event["event"] == "result":
                _merge(results, event)
        if any(event["event"] == "finish" for event in events):
            break
        ended = {e["nodeid"] for e in events if e["event"] == "end"}
        unfinished = [e["nodeid"] for e in events if e["event"] == "start" and e["nodeid"] not in ended]
        if unfinished:
            crashed = unfinished[-1]
            cited = results[crashed].requirements if crashed in results else _cited(crashed, events)
            results[crashed] = TestResult(
                nodeid=crashed,
                outcome="crashed",
                requirements=cited,
                message=f"the test process died (exit status {child.returncode}) while running this test",
            )
            notes.append(f"{crashed}: the test process died (status {child.returncode}); continued without it")
        elif not any(e["event"] == "start" for e in events):
            notes.append(f"the test process exited with status {child.returncode} before running any test")
            break
    else:
        notes.append(f"gave up after {MAX_RESTARTS} crashes")
    not_run = [nodeid for nodeid in collected if nodeid not in results]
    for nodeid in not_run:
        results[nodeid] = TestResult(
            nodeid=nodeid,
            outcome="not run",
            requirements=collected[nodeid],
            message="collected, but the test process ended before running it",
        )
    if not_run:
        notes.append(f"{len(not_run)} collected tests were not run: {not_run[:5]}{' ...' if len(not_run) > 5 else ''}")
    if not collected and not results:
        notes.append("no test was collected")
    return list(results.values()), notes


def reproduction(result: TestResult, args: argparse.Namespace, seed: int | None) -> str:
    """A command that reruns just this test against the same implementation."""
    name = result.nodeid.split("::")[-1].split("[")[0]
    parts = ["loaderspec conform"]
    if args.impl:
        parts.append(f"--impl {args.impl}")
    parts.append(f"--profile {args.profile}")
    if seed is not None:
        parts.append(f"--seed {seed}")
    parts.append(f"-k {name}")
    command = " ".join(parts)
    blob = re.search(r"@reproduce_failure\([^)]*\)", result.message)
    if blob:
        command += f"\n    (or add {blob.group(0)} to {name} in {result.nodeid.split('::')[0]})"
    return command


def _failure_summary(result: TestResult) -> str:
    lines = result.message.splitlines()
    keep = [line for line in lines if line.startswith("E ")] or lines[-15:]
    return "\n".join("    " + line for line in keep[:60])


def conform(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        adapter = load_adapter(args.impl)
    except AdapterError as error:
        print(f"loaderspec conform: {error}", file=sys.stderr)
        return 2
    seed = None if args.profile == "ci" else (args.seed if args.seed is not None else random.randrange(2**32))
    try:
        xfail_path = args.xfails or adapter.expected_failures()
        xfails: list[Xfail] = load_xfails(xfail_path) if xfail_path else []
        info = header(adapter, args, seed, xfail_path)
    except (AdapterError, XfailFileError) as error:
        print(f"loaderspec conform: {error}", file=sys.stderr)
        return 2
    requirements = load_requirements()
    width = max(len(key) for key in info)
    print("loaderspec conform")
    for key, value in info.items():
        print(f"  {key.ljust(width)}  {value}")
    if info["missing_hooks"]:
        print(f"  note: the adapter lacks hooks {info['missing_hooks']}; tests needing them report 'not provided'")
    print("pytest's progress follows; its counts know nothing of expected failures: the verdict is at the end")
    print(flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loaderspec-conform-") as workdir:
        results, notes = run_suites(args, seed, Path(workdir))
    elapsed = time.monotonic() - started
    verdicts, stale = judge(results, requirements, xfails)
    for result in results:
        result.reproduction = reproduction(result, args, seed) if result.failing else ""

    failures = [r for r in results if r.failing and r.expected_failure is None]
    if failures:
        print("\nUnexpected failures")
        for result in failures:
            print(f"\n  {result.nodeid} [{', '.join(result.failing_requirements())}] {result.outcome}")
            print(_failure_summary(result))
            print(f"  reproduce: {result.reproduction}")
    unexpected_passes = [r for r in results if r.outcome == "passed" and r.expected_failure is not None]
    for result in unexpected_passes:
        print(f"\n  unexpected pass: {result.nodeid} (expected to fail: {result.expected_failure.reason})")
    print("\nRequirements\n")
    print(render_table(verdicts))
    tests_tally: dict[str, int] = {}
    for result in results:
        key = "expected failure" if result.expected_failure and result.failing else result.outcome
        tests_tally[key] = tests_tally.get(key, 0) + 1
    print(f"\nrequirements: {counts(verdicts)}")
    print(f"tests: {tests_tally}; {sum(r.examples or 0 for r in results)} examples; {elapsed:.1f} s")
    for entry in stale:
        print(f"stale expected-failure entry (matches nothing): {entry.id} ({entry.reason})")
    for note in notes:
        print(f"not run: {note}")

    report = to_json(info | {"elapsed_s": round(elapsed, 2), "notes": notes}, results, verdicts, stale)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"JSON report: {args.json}")
    if args.markdown:
        from loaderspec.conform.report import render_markdown_table

        args.markdown.write_text(render_markdown_table(verdicts) + "\n", encoding="utf-8")
    if args.write_xfails:
        entries = _current_failures(results)
        title = f"Expected failures of {adapter.name} {adapter.version()}, written by loaderspec conform"
        args.write_xfails.write_text(dump_xfails(entries, title + "\nFill in each evidence link."), encoding="utf-8")
        print(f"wrote {len(entries)} expected-failure entries to {args.write_xfails}")
    status = exit_status(results, verdicts)
    print(f"verdict: {'PASS' if status == 0 else 'FAIL'} (exit status {status})")
    return status


def _current_failures(results: list[TestResult]) -> list[Xfail]:
    entries: dict[str, Xfail] = {}
    for result in results:
        if not result.failing:
            continue
        reason = next(iter(error_lines(result.message)), result.outcome)[:200]
        evidence = result.expected_failure.evidence if result.expected_failure else "TODO: link an issue or PR"
        failing = result.failing_requirements()
        if len(failing) == 1:
            entries.setdefault(failing[0], Xfail(failing[0], reason, evidence))
        else:
            test_id = result.nodeid.split("[")[0]
            entries.setdefault(test_id, Xfail(test_id, reason, evidence))
    return list(entries.values())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(conform())
