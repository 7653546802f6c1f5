"""From test outcomes to a verdict per requirement and for the run; the report's text and
JSON forms.

Test outcomes (what the child pytest process saw, per test):
``passed``; ``failed`` / ``error`` (the implementation failed the test, in its body or
its setup); ``crashed`` (the process died running it); ``adapter error`` (the failure
was raised from the adapter's own code); ``timeout``; ``not run`` (collected, but the
crash limit ended the run first); ``not provided`` (the implementation or the adapter
lacks a name or hook); ``skipped`` (this machine cannot run it: no compiler, unusable
cache folder, no device).

Requirement verdicts, worst first (:data:`VERDICT_ORDER`; the worst outcome of the tests
citing a requirement wins, see :data:`LEGEND`). Run verdicts and exit statuses:
:data:`EXIT_STATUSES`.

JSON report (``--json``), kept backward compatible (keys are only ever added)::

    {
      "header": {target, target_version, spec_version, loaderspec, python, torch,
                 transformers, hypothesis, profile, seed, xfails, missing_hooks,
                 platform, elapsed_s, notes: [str]},
      "summary": {"requirements": {verdict: count}, "tests": {outcome: count},
                  "exit_status": int, "verdict": "PASS" | "FAIL" | "INCOMPLETE" |
                  "ADAPTER ERROR", "verdict_line": str, "examples": int},
      "requirements": [{id, level, title, verdict, tests: [nodeid], examples,
                        expected_failure: xfail | null, reason: str}],
      "tests": [{nodeid, outcome, requirements, duration, examples, message,
                 expected_failure: xfail | null, reproduction}],
      "stale_xfails": [xfail],
      "unexpected_passes": [xfail]
    }

where ``xfail`` is ``{id, reason, evidence, test, match}`` (``test`` and ``match`` may
be null).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loaderspec.conform.requirements import Requirement
from loaderspec.conform.xfails import Xfail

IMPLEMENTATION_FAILURES = ("failed", "error", "crashed")
"""Test outcomes that are the implementation's failures (an expected-failure entry may excuse them)."""
UNCHECKED = ("skipped", "timeout", "not run")
"""Test outcomes that leave the cited requirements unchecked by this machine."""
FAILING = (*IMPLEMENTATION_FAILURES, "adapter error", "timeout", "not run")
"""Outcomes listed among the run's failures unless excused."""

REQ_IN_MESSAGE = re.compile(r"\b([A-Z]{2}-\d+)\b")

VERDICT_ORDER = (
    "failed",
    "adapter error",
    "unexpected pass",
    "expected failure",  # known not to be met, whatever its other tests could not check
    "unchecked",
    "inconclusive",
    "not provided",
    "passed",
    "not selected",
)
"""Requirement verdicts, worst first: a requirement gets the worst its tests say about it."""

LEGEND = {
    "passed": "every test citing it ran and passed (failed requirements of the same test set aside)",
    "failed": "a test failed on it and no expected-failure entry excuses that failure",
    "expected failure": "it failed exactly as an entry of the expected-failure file says",
    "unexpected pass": "an expected-failure entry names it, but its tests passed: update the file",
    "adapter error": "a failure was raised from the adapter's own code: fix the adapter",
    "unchecked": "this machine could not check it (no compiler, unusable cache, timeout, crash limit)",
    "inconclusive": "the implementation stopped its checks before they could be made (see the reason)",
    "not provided": "the implementation or the adapter lacks a name or hook one of its tests needs",
    "not selected": "no test citing it was selected (-k)",
}
"""What each requirement verdict means (printed under the table, and in the README)."""

COLUMNS = "ID, level (MUST/SHOULD/MAY), verdict, tests citing it, Hypothesis examples run (1 per plain test), note"

EXIT_STATUSES = {
    0: "PASS: every MUST requirement in scope was checked and passed or failed as expected",
    1: "FAIL: a MUST requirement failed unexpectedly or passed unexpectedly (--require-all: or is not provided)",
    2: "bad input, refused before any test ran (options, expected-failure file, a broken adapter)",
    3: "INCOMPLETE: no failure, but a MUST requirement was left unchecked by this machine, or inconclusive",
    4: "ADAPTER ERROR: a failure came from the adapter's own code, not the implementation",
    130: "interrupted (SIGINT, Ctrl-C)",
    143: "terminated (SIGTERM)",
}


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
    unexcused: list[str] = field(default_factory=list)
    """The requirements of this failure no expected-failure entry excuses."""
    excused_by: list[Xfail] = field(default_factory=list)
    """The expected-failure entries that excuse (some of) its error lines."""
    findings: list[dict] = field(default_factory=list)
    """One per failing requirement check: {requirement, line, example, where, set_aside, hook}
    (the plugin reads the ID from the failure, never from its text)."""
    stopped: dict | None = None
    """The failure outside any requirement's check that ended the test, if any:
    {line, example, where, set_aside, hook, adapter}."""
    reruns: int = 0
    """How often the test was run again with the requirements already found failing set aside."""
    lacking: dict[str, list[str]] = field(default_factory=dict)
    """Per requirement, the features its examples needed that the implementation lacks (a
    ``model_impl``, a Transformers backend, a task): those examples ended without judging it."""
    checked: list[str] = field(default_factory=list)
    """With ``lacking``: the requirements whose checks ran in at least one example."""

    def lacks(self, req_id: str) -> list[str]:
        """The features that left ``req_id`` unjudged by this test (none: it was judged, or no
        example lacked anything): those it needed itself, else those that left the test's other
        unjudged requirements so."""
        if not self.lacking or req_id in self.checked:
            return []
        unjudged = [features for req, features in self.lacking.items() if req not in self.checked]
        return self.lacking.get(req_id) or sorted({feature for features in unjudged for feature in features})

    @property
    def judged_by_checks(self) -> bool:
        """Whether the failure's requirements are known as data (findings), not from its text."""
        return self.outcome in IMPLEMENTATION_FAILURES and bool(self.findings or self.stopped)

    def claims(self) -> list[tuple[str, str]]:
        """(requirement, error line) for each thing this failure says about a requirement: each
        finding; a stop counts against the requirement of a test that cites only one."""
        pairs = [(f["requirement"], f["line"]) for f in self.findings if f["requirement"] in self.requirements]
        if self.stopped is not None and len(self.requirements) == 1 and not self.stopped.get("hook"):
            pairs.append((self.requirements[0], self.stopped["line"]))
        return pairs

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING

    @property
    def examples_run(self) -> int:
        """Hypothesis examples run; a plain test that ran counts 1."""
        if self.examples is not None:
            return self.examples
        return 1 if self.outcome in ("passed", *IMPLEMENTATION_FAILURES, "adapter error") else 0

    def excusable_claims(self) -> list[tuple[str, str]]:
        """(requirement, error line) pairs an expected-failure entry must each excuse: the
        findings' claims; without findings, each statement for the requirements it names
        (else for every requirement the failure is about)."""
        if self.judged_by_checks:
            return self.claims()
        return [
            (requirement, line)
            for line in self.statements()
            for requirement in _named(line, self.requirements) or self.failing_requirements()
        ]

    def failing_requirements(self) -> list[str]:
        """The cited requirements this failure is about: its findings' (plus the only one a
        stopped single-requirement test cites); without findings, those its message names, else all."""
        if self.judged_by_checks:
            return sorted({requirement for requirement, _ in self.claims()})
        named = [r for line in error_lines(self.message) for r in _named(line, self.requirements)]
        return sorted(set(named)) or list(self.requirements)

    def statements(self) -> list[str]:
        """The error lines that state this failure: those naming a requirement it cites (the
        suites' messages lead with the ID; other error lines repeat a chained exception),
        else every error line, else the message's first line."""
        if self.judged_by_checks:
            claimed = [line for _, line in self.claims()]
            return claimed or [self.stopped["line"]] if self.stopped else claimed
        lines = error_lines(self.message)
        naming = [line for line in lines if _named(line, self.requirements)]
        return naming or lines or self.message.strip().splitlines()[:1] or [self.outcome]

    def first_line(self) -> str:
        """The failure's first error line (or the first line of its message)."""
        return self.statements()[0]


ERROR_LINE = re.compile(r"^(\w+(Error|Exception)|Failed|[A-Z]{2}-\d+):")


def error_lines(message: str) -> list[str]:
    """The lines of a failure report that state an error, plain or inside an exception group.

    Assertion messages lead with their IDs; other lines (tracebacks, source) may quote
    unrelated IDs, so only these count.
    """
    stripped = (line.lstrip("E |+").strip() for line in message.splitlines())
    return [text for text in stripped if ERROR_LINE.match(text)]


def _named(line: str, cited: Iterable[str]) -> list[str]:
    return [r for r in REQ_IN_MESSAGE.findall(line) if r in cited]


def missing_name(message: str) -> str:
    """The name a "not provided" outcome is about (from ``not provided by IMPL: NAME (detail)``)."""
    found = re.search(r"not provided by [^:]+: (.+?)(?: \(|$)", message)
    return found.group(1) if found else message.strip()[:80]


@dataclass
class RequirementVerdict:
    id: str
    level: str
    title: str
    verdict: str = "not selected"
    tests: list[str] = field(default_factory=list)
    examples: int = 0
    expected_failure: Xfail | None = None
    reason: str = ""
    """Why the verdict is not "passed": the missing names, the machine's reason, the entry's reason."""
    example: str = ""
    """For a failure: the shrunk example of its first failing check (Hypothesis' notes)."""
    failed_test: str = ""
    """For a failure: the test whose check failed (the reproduction command selects it)."""
    reproduction: str = ""
    """For a failure: the command that checks just this requirement in that test."""


@dataclass
class Judgement:
    """Everything the run's verdict rests on."""

    verdicts: list[RequirementVerdict]
    stale: list[Xfail]
    unexpected_passes: list[Xfail]


def excuse(results: list[TestResult], xfails: list[Xfail]) -> None:
    """Mark each failure expected or not, statement by statement (TestResult.statements).

    A statement is about the cited requirements it names (else every requirement the
    failure is about); it is excused when, for each of them, an entry names that
    requirement, covers the test and its ``match`` (if any) is found in the line.
    """
    for result in results:
        result.expected_failure, result.unexcused, result.excused_by = None, [], []
        if result.outcome not in IMPLEMENTATION_FAILURES:
            continue
        used: list[Xfail] = []
        unexcused: set[str] = set()
        for requirement, line in result.excusable_claims():
            entry = next((x for x in xfails if x.excuses(requirement, result.nodeid, line)), None)
            if entry is None:
                unexcused.add(requirement)
            else:
                used.append(entry)
        result.unexcused, result.excused_by = sorted(unexcused), used
        if used and not unexcused:
            result.expected_failure = used[0]


def _attributed(result: TestResult, req_id: str) -> str:
    """What ``result`` says about ``req_id``."""
    if result.judged_by_checks:
        if req_id in result.failing_requirements():
            return "failed" if req_id in result.unexcused else "expected failure"
        if result.stopped is None:  # its checks all ran, the failing requirements' set aside
            return "not provided" if result.lacks(req_id) else "passed"
        return "unchecked" if result.stopped.get("hook") else "inconclusive"
    if result.outcome in IMPLEMENTATION_FAILURES:
        if req_id not in result.failing_requirements():
            return "inconclusive"
        return "failed" if req_id in result.unexcused else "expected failure"
    if result.outcome in UNCHECKED:
        return "unchecked"
    if result.outcome == "passed" and result.lacks(req_id):
        return "not provided"
    if result.outcome in ("passed", "adapter error", "not provided"):
        return result.outcome
    return "unchecked"


def _reason(verdict: str, cited: list[TestResult], req_id: str, entry: Xfail | None) -> str:
    if verdict == "not provided":
        return ", ".join(_missing(cited, req_id))
    if verdict == "unchecked":
        hooked = [r for r in cited if r.judged_by_checks and r.stopped and r.stopped.get("hook")]
        if hooked and not any(r.outcome in UNCHECKED for r in cited):
            stop = hooked[0].stopped or {}
            hook = stop["hook"]
            return f"the adapter's {hook}() hook raised, from the implementation or its environment: {stop['line']}"
        return next((r.first_line() for r in cited if r.outcome in UNCHECKED), "")
    if verdict in ("expected failure", "unexpected pass") and entry is not None:
        return entry.reason
    if verdict == "inconclusive":
        stops = [r for r in cited if r.judged_by_checks and r.stopped and _attributed(r, req_id) == "inconclusive"]
        if stops:
            return _stop_reason(stops[0])
        others = {o for r in cited if r.outcome in IMPLEMENTATION_FAILURES for o in r.failing_requirements()}
        return "stopped at " + ", ".join(sorted(others - {req_id}))
    if verdict in ("failed", "adapter error"):
        for r in cited:
            if _attributed(r, req_id) != verdict:
                continue
            if r.judged_by_checks:
                return next((line for claimed, line in r.claims() if claimed == req_id), r.first_line())
            return r.first_line()
        return ""
    if verdict == "passed":
        missing = _missing(cited, req_id)
        if missing:
            return "passed where checked; not provided: " + ", ".join(missing)
    return ""


def _missing(cited: list[TestResult], req_id: str) -> list[str]:
    """The names and features ``req_id``'s tests lacked."""
    names = {missing_name(r.message) for r in cited if r.outcome == "not provided"}
    lacked = {feature for r in cited for feature in r.lacks(req_id) or r.lacking.get(req_id, [])}
    return sorted(names | lacked)


def _stop_reason(result: TestResult) -> str:
    """Which behaviour of the implementation made a requirement unobservable, and where."""
    stop = result.stopped or {}
    where = Path(stop.get("where", "")).name if stop.get("where") else ""
    aside = stop.get("set_aside") or []
    after = f" (with {', '.join(aside)} set aside)" if aside else ""
    test = result.nodeid.split("::")[-1]
    return f"{test} stopped{after} outside any requirement's check: {stop.get('line', '')}" + (
        f" at {where}" if where else ""
    )


def _failure_detail(cited: list[TestResult], req_id: str) -> tuple[str, str]:
    """(the shrunk example, the test) of ``req_id``'s first unexcused failure."""
    for result in cited:
        if _attributed(result, req_id) not in ("failed", "expected failure"):
            continue
        for finding in result.findings:
            if finding["requirement"] == req_id:
                return finding.get("example", ""), result.nodeid
        if result.stopped is not None:
            return result.stopped.get("example", ""), result.nodeid
        return "", result.nodeid
    return "", ""


def _entry_status(entry: Xfail, results: list[TestResult]) -> str:
    """``used``, ``unexpected pass`` (its tests all passed), ``stale`` (they failed otherwise)
    or ``unchecked`` (none of its tests ran here, e.g. not selected with -k)."""
    relevant = [r for r in results if entry.id in r.requirements and entry.covers_test(r.nodeid)]
    ran = [r for r in relevant if r.outcome == "passed" or r.outcome in IMPLEMENTATION_FAILURES]
    if any(entry in r.excused_by for r in ran):
        return "used"
    if not ran:
        return "unchecked"
    return "unexpected pass" if all(r.outcome == "passed" for r in ran) else "stale"


def judge(results: list[TestResult], requirements: dict[str, Requirement], xfails: list[Xfail]) -> Judgement:
    """Per-requirement verdicts, and the expected-failure entries that passed or matched nothing.

    A failing test counts against the requirements its message names (else all it
    cites), for the others it is inconclusive; the worst outcome wins (VERDICT_ORDER).
    """
    excuse(results, xfails)
    status = {entry: _entry_status(entry, results) for entry in xfails}
    unexpected = [entry for entry, s in status.items() if s == "unexpected pass"]
    verdicts = []
    for requirement in requirements.values():
        cited = [r for r in results if requirement.id in r.requirements]
        outcomes = [_attributed(r, requirement.id) for r in cited]
        # A test that lacks a name says nothing against what another test checked: the verdict
        # is what was checked, and the reason says what was not provided.
        checked = [o for o in outcomes if o != "not provided"] or outcomes
        worst = min(checked, key=VERDICT_ORDER.index) if checked else "not selected"
        entries = [x for x in xfails if x.id == requirement.id]
        if worst in ("passed", "expected failure") and any(x in unexpected for x in entries):
            worst = "unexpected pass"
        entry = next((x for x in entries if status[x] != "unchecked"), entries[0] if entries else None)
        verdicts.append(
            RequirementVerdict(
                requirement.id,
                requirement.level,
                requirement.title,
                verdict=worst,
                tests=[r.nodeid for r in cited],
                examples=sum(r.examples_run for r in cited),
                expected_failure=entry,
                reason=_reason(worst, cited, requirement.id, entry),
            )
        )
        if worst in ("failed", "expected failure"):
            verdicts[-1].example, verdicts[-1].failed_test = _failure_detail(cited, requirement.id)
    stale = [entry for entry, s in status.items() if s == "stale"]
    return Judgement(verdicts, stale, unexpected)


@dataclass
class RunVerdict:
    word: str
    exit_status: int
    line: str


def _ids(verdicts: list[RequirementVerdict]) -> str:
    shown = ", ".join(v.id for v in verdicts[:12])
    return shown + (f" and {len(verdicts) - 12} more" if len(verdicts) > 12 else "")


def run_verdict(
    results: list[TestResult], judgement: Judgement, *, require_all: bool = False, allow_inconclusive: bool = False
) -> RunVerdict:
    """The run's verdict: FAIL > ADAPTER ERROR > INCOMPLETE > PASS, over MUST requirements
    (SHOULD and MAY failures are warnings). Failures no requirement is cited for (a suite
    module that cannot be imported) fail the run too. A PASS names its scope: requirements
    not provided, and those whose tests stopped at a known failure of another requirement
    first (inconclusive), are left out of it and counted."""
    verdicts = judgement.verdicts
    must = [v for v in verdicts if v.level == "MUST"]
    by = {word: [v for v in must if v.verdict == word] for word in VERDICT_ORDER}
    failed = by["failed"] + by["unexpected pass"]
    partly = [v for v in must if v.verdict == "passed" and v.reason.startswith("passed where checked; not provided")]
    missing = by["not provided"] + partly if require_all else []
    orphans = [r for r in results if r.failing and not r.requirements]
    if failed or missing or orphans:
        what = f"{len(failed)} MUST requirement(s) failed: {_ids(failed)}" if failed else ""
        if missing:
            what = "; ".join(filter(None, [what, f"{len(missing)} not provided (--require-all): {_ids(missing)}"]))
        if orphans:
            what = "; ".join(filter(None, [what, f"{len(orphans)} suite error(s) outside any requirement"]))
        return RunVerdict("FAIL", 1, f"FAIL: {what}")
    if by["adapter error"]:
        return RunVerdict("ADAPTER ERROR", 4, f"ADAPTER ERROR in {_ids(by['adapter error'])}: fix the adapter")
    unchecked = by["unchecked"]
    inconclusive = [] if allow_inconclusive else by["inconclusive"]
    if unchecked or inconclusive or not results:
        parts = []
        if unchecked:
            parts.append(f"{len(unchecked)} MUST requirement(s) left unchecked: {_ids(unchecked)}")
        if inconclusive:
            parts.append(
                f"{len(inconclusive)} MUST requirement(s) inconclusive (the implementation stopped their checks; "
                f"--allow-inconclusive accepts that): {_ids(inconclusive)}"
            )
        what = "; ".join(parts) if results else "no test ran"
        return RunVerdict("INCOMPLETE", 3, f"INCOMPLETE: {what}")
    in_scope = [v for v in verdicts if v.verdict != "not selected"]
    checked = [v for v in in_scope if v.verdict not in ("not provided", "unchecked", "inconclusive")]
    expected = sum(v.verdict == "expected failure" for v in checked)
    scope = [
        f"PASS for {len(checked)} of {len(verdicts)} requirements"
        + (f" ({expected} as expected failures)" if expected else "")
    ]
    for word in ("not provided", "inconclusive"):
        left_out = [v for v in in_scope if v.verdict == word]
        if left_out:
            scope.append(f"{len(left_out)} {word}")
    not_selected = len(verdicts) - len(in_scope)
    if not_selected:
        scope.append(f"{not_selected} not selected")
    warnings = [v for v in verdicts if v.level != "MUST" and v.verdict in ("failed", "unexpected pass")]
    if warnings:
        scope.append(f"{len(warnings)} SHOULD/MAY warning(s)")
    return RunVerdict("PASS", 0, "; ".join(scope))


def tally(items: Iterable[str]) -> dict[str, int]:
    """Counts of each word, in order of first appearance (the one tally of the report)."""
    return dict(Counter(items))


def plain_counts(counts: dict[str, int]) -> str:
    """``{'passed': 49, 'failed': 1}`` as ``49 passed, 1 failed``."""
    return ", ".join(f"{n} {word}" for word, n in counts.items()) or "none"


def test_outcomes(results: list[TestResult]) -> dict[str, int]:
    return tally("expected failure" if r.expected_failure else r.outcome for r in results)


NOTE_WIDTH = 100
"""Characters of a note shown in the console's table (the JSON report keeps all of it)."""


def shortened(text: str, width: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters with an
    ellipsis when it was longer (never mid-token without saying so)."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    if " " in cut[width // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def render_table(verdicts: list[RequirementVerdict]) -> str:
    """The per-requirement table: ID, level, verdict, tests, examples, note."""
    rows = [("ID", "level", "verdict", "tests", "examples", "note")]
    for v in verdicts:
        rows.append((v.id, v.level, v.verdict, str(len(v.tests)), str(v.examples), v.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        lines.append(("  ".join(cells) + ("  " + shortened(row[5], NOTE_WIDTH) if row[5] else "")).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_legend(verdicts: list[RequirementVerdict]) -> str:
    """The meaning of the columns and of each verdict word the table uses."""
    used = {v.verdict for v in verdicts}
    width = max(len(word) for word in LEGEND)
    lines = [f"columns: {COLUMNS}"]
    lines += [f"  {word.ljust(width)}  {meaning}" for word, meaning in LEGEND.items() if word in used]
    return "\n".join(lines)


def render_markdown_table(verdicts: list[RequirementVerdict]) -> str:
    lines = ["| requirement | level | verdict | tests | examples | note |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        note = v.reason
        if v.expected_failure and v.verdict in ("expected failure", "unexpected pass"):
            note = f"{v.expected_failure.reason} ([evidence]({v.expected_failure.evidence}))"
        lines.append(f"| {v.id} {v.title} | {v.level} | {v.verdict} | {len(v.tests)} | {v.examples} | {note} |")
    return "\n".join(lines)


def to_json(header: dict, results: list[TestResult], judgement: Judgement, verdict: RunVerdict) -> dict:
    tests = []
    for result in results:
        entry = asdict(result)
        entry.pop("unexcused")
        entry.pop("excused_by")
        if not result.lacking:
            entry.pop("lacking")
            entry.pop("checked")
        tests.append(entry)
    return {
        "header": header,
        "summary": {
            "requirements": tally(v.verdict for v in judgement.verdicts),
            "tests": test_outcomes(results),
            "examples": sum(r.examples_run for r in results),
            "exit_status": verdict.exit_status,
            "verdict": verdict.word,
            "verdict_line": verdict.line,
        },
        "requirements": [asdict(v) for v in judgement.verdicts],
        "tests": tests,
        "stale_xfails": [asdict(entry) for entry in judgement.stale],
        "unexpected_passes": [asdict(entry) for entry in judgement.unexpected_passes],
    }
