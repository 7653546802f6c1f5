"""loaderspec conform: run the property suites against an implementation, and give a
verdict per requirement and one for the run.

The suites run in a child pytest process that streams its results (see
loaderspec.conform.plugin). If the child dies (a segfault in the implementation), the
test it was running is reported as crashed and the rest run in a fresh child, up to
--max-crashes times. Before any test runs, the options, the output paths, the
expected-failure file and the adapter are checked; bad input is refused with one line
and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from loaderspec import SPEC_VERSION, __version__
from loaderspec.adapter import (
    DEFAULT_IMPL,
    ENV_VAR,
    Adapter,
    AdapterError,
    builtin_names,
    import_from_the_current_folder,
    load_adapter,
)
from loaderspec.conform import console
from loaderspec.conform.adapter_check import Breach, check_adapter, checked_expected_failures, checked_version, describe
from loaderspec.conform.ci_outputs import append_step_summary, github_annotations, render_junit, step_summary
from loaderspec.conform.report import (
    EXIT_STATUSES,
    REQ_IN_MESSAGE,
    Judgement,
    TestResult,
    judge,
    render_markdown_table,
    run_verdict,
    to_json,
)
from loaderspec.conform.requirements import Requirement, load_requirements, spec_dir
from loaderspec.conform.xfails import Xfail, XfailFileError, dump_xfails, load_xfails, match_pattern
from loaderspec.support.paths import cannot_write

PROFILES = ("ci", "dev", "thorough")
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_CRASHES = 5
_INI = "[pytest]\n"  # the suites' conftest registers what they need; no project ini applies


class BadInput(Exception):
    """Refused before any test runs; the message is the one line printed (exit status 2)."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the child's process group is ended and temporary files removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def suites_dir() -> Path:
    import loaderspec_suites

    return Path(loaderspec_suites.__file__).parent


def _epilog() -> str:
    statuses = "\n".join(f"  {status:>3}  {meaning}" for status, meaning in EXIT_STATUSES.items())
    return (
        "PASS means every MUST requirement in scope was checked and passed, or failed as an\n"
        "entry of the expected-failure file says. SHOULD and MAY failures are warnings.\n"
        "Requirements the implementation does not provide are listed, and the verdict line\n"
        "says the scope (PASS for 77 of 78 requirements; 1 not provided).\n\n"
        f"exit statuses:\n{statuses}"
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: a bad option is bad input like any other."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loaderspec conform",
        description=__doc__,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--impl",
        default=None,
        help=f"{builtin_names()} (default reference), or module[:attribute] of an adapter (${ENV_VAR})",
    )
    add("--check-adapter", action="store_true", help="only check the adapter (every hook once, every name); no tests")
    add("--profile", choices=PROFILES, default="ci", help="Hypothesis profile (default: ci, derandomized)")
    add("--seed", type=int, default=None, help="Hypothesis seed, for the dev and thorough profiles (default: random)")
    add("-k", dest="keyword", default=None, help="only the tests matching this pytest -k expression")
    add("--xfails", type=Path, default=None, help="expected-failure file (default: the adapter's)")
    add("--write-xfails", type=Path, default=None, help="write the failures seen as an expected-failure file")
    add("--force", action="store_true", help="let --write-xfails overwrite an existing file")
    add("--require-all", action="store_true", help="a MUST requirement not provided fails the run")
    add(
        "--requirement",
        dest="only",
        default=None,
        metavar="ID[,ID...]",
        help="check only these requirements: tests citing none are not run, other requirements' checks set aside",
    )
    add(
        "--allow-inconclusive",
        action="store_true",
        help="a MUST requirement the implementation left inconclusive does not make the run INCOMPLETE",
    )
    add("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds before a hanging test is stopped (300)")
    deaths = "test-process deaths (crash, timeout) before the rest is left not run (5)"
    add("--max-crashes", type=int, default=DEFAULT_MAX_CRASHES, help=deaths)
    add(
        "-v",
        "--verbose",
        action="store_true",
        help="also print pytest's own failure section, with every traceback, and its counts",
    )
    add("--json", type=Path, default=None, help="write the full report as JSON here")
    add("--markdown", type=Path, default=None, help="write the requirement table as Markdown here")
    add(
        "--junit-xml",
        type=Path,
        default=None,
        help="write a JUnit XML report here: a testsuite per chapter, a testcase per requirement",
    )
    add(
        "--annotations",
        choices=["github"],
        default=None,
        help="print a GitHub Actions ::error line per failed requirement, at its rule in the spec",
    )
    return parser


# --- checks before any test runs ---------------------------------------------------


def validate_options(args: argparse.Namespace) -> None:
    """Refuse option values that cannot mean anything (BadInput, one line)."""
    if args.impl is not None and not args.impl.strip():
        raise BadInput(f"--impl is empty; give {builtin_names()} or an adapter module (or leave it out: ${ENV_VAR})")
    if not args.timeout > 0:
        raise BadInput(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.max_crashes < 0:
        raise BadInput(f"--max-crashes must be 0 or more, got {args.max_crashes}")
    if args.seed is not None and args.profile == "ci":
        raise BadInput(
            "--seed has no effect with the ci profile (derandomized: its examples are fixed); "
            "use --profile dev or thorough with --seed, or drop --seed"
        )
    if args.keyword is not None and not args.keyword.strip():
        raise BadInput("-k is empty; give a pytest -k expression such as test_device_state_is_restored")
    if args.keyword is not None:
        _check_keyword(args.keyword)
    if args.only is not None:
        _check_only(args.only)
    if args.force and args.write_xfails is None:
        raise BadInput("--force only lets --write-xfails overwrite a file; give --write-xfails FILE, or drop --force")
    check_output_paths(args)


def _check_keyword(keyword: str) -> None:
    """A -k pytest cannot parse is bad input, not a crashed run."""
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # a later pytest moved its parser: the child reports the problem instead
        return
    try:
        Expression.compile(keyword)
    except (SyntaxError, ValueError) as error:  # pytest 9 raises SyntaxError (ParseError before)
        message = error.msg if isinstance(error, SyntaxError) else str(error)
        raise BadInput(f"-k {keyword!r} is not a pytest -k expression: {message}") from error


def _check_only(only: str) -> None:
    ids = [part.strip() for part in only.split(",") if part.strip()]
    if not ids:
        raise BadInput("--requirement is empty; give requirement IDs such as DL-12 or DL-11,DL-12")
    known = load_requirements()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise BadInput(f"--requirement {', '.join(unknown)}: not a requirement of spec {SPEC_VERSION} (e.g. DL-12)")


def check_output_paths(args: argparse.Namespace) -> None:
    """Every file the run will write must be writable now, not after the whole run."""
    outputs = (
        ("--json", args.json),
        ("--markdown", args.markdown),
        ("--junit-xml", args.junit_xml),
        ("--write-xfails", args.write_xfails),
    )
    for option, path in outputs:
        if path is None:
            continue
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise BadInput(f"{option} {path} is a folder; give a file path")
        if folder.exists() and not folder.is_dir():
            raise BadInput(f"{option} {path}: {folder} is not a folder")
        if not folder.is_dir():
            raise BadInput(f"{option} {path}: the folder {folder} does not exist")
        problem = cannot_write(path)
        if problem is not None:
            raise BadInput(f"{option} {path} cannot be written: {problem}")
    if args.write_xfails is not None and args.write_xfails.exists() and not args.force:
        raise BadInput(f"--write-xfails {args.write_xfails} exists; it may be curated: add --force to overwrite it")


def load_target(args: argparse.Namespace) -> Adapter:
    try:
        return load_adapter(args.impl)
    except AdapterError as error:
        raise BadInput(str(error)) from error


def load_expected_failures(args: argparse.Namespace, adapter: Adapter, known: dict) -> tuple[Path | None, list[Xfail]]:
    path = args.xfails or _broken_adapter_is_bad_input(checked_expected_failures, adapter)
    try:
        return path, (load_xfails(path, known_ids=known) if path else [])
    except (AdapterError, XfailFileError) as error:
        raise BadInput(str(error)) from error


def _broken_adapter_is_bad_input(check: Callable[[Adapter], Any], adapter: Adapter) -> Any:
    """``check(adapter)`` (one of the adapter check's own checks); a breach is bad input."""
    try:
        return check(adapter)
    except Breach as breach:
        raise BadInput(f"broken adapter {adapter.name}: {breach}") from breach


# --- the child processes ------------------------------------------------------------


@dataclass
class Settings:
    """What the run was asked for, after validation."""

    args: argparse.Namespace
    impl: str
    seed: int | None
    xfail_path: Path | None
    version: str
    """The adapter's ``version()``, read once."""

    @property
    def timeout(self) -> float:
        return float(self.args.timeout)


@dataclass
class SuiteRun:
    results: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    adapter_problems: list[str] = field(default_factory=list)
    unusable_hooks: list[str] = field(default_factory=list)
    """Hooks the adapter check saw raise from the implementation or its environment."""
    collected: dict[str, list[str]] = field(default_factory=dict)
    before_selection: int | None = None


def _child_command(settings: Settings, events: Path, workdir: Path, deselect: list[str], first: bool) -> list[str]:
    args = settings.args
    command = [
        sys.executable, "-m", "pytest", str(suites_dir()),
        "-c", str(workdir / "pytest.ini"), "--rootdir", str(suites_dir()), "--basetemp", str(workdir / "tmp"),
        "-p", "loaderspec.conform.plugin", "-p", "no:cacheprovider",
        "--loaderspec-events", str(events), "--loaderspec-timeout", str(args.timeout),
        f"--hypothesis-profile={args.profile}", "--impl", settings.impl,
        "--tb=short", "-rN", "--no-header",
    ]  # fmt: skip
    # Our console prints each failure once (its line, shrunk example and reproduction); pytest's
    # own FAILURES section and its "N failed" count (blind to expected failures) only with -v.
    command += ["-q"] if args.verbose else ["-qq", "--no-summary"]
    if first:
        command.append("--loaderspec-check-adapter")
    if settings.seed is not None:
        command.append(f"--hypothesis-seed={settings.seed}")
    if args.keyword:
        command += ["-k", args.keyword]
    if args.only:
        command += ["--loaderspec-only", args.only]
    return command + [f"--deselect={nodeid}" for nodeid in deselect]


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


_RANK = ("crashed", "adapter error", "timeout", "error", "failed", "not provided", "skipped", "passed")


def _merge(results: dict[str, TestResult], event: dict) -> None:
    """Fold one result event in: a test's outcome is its worst phase's."""
    new = TestResult(
        nodeid=event["nodeid"],
        outcome=event["outcome"],
        requirements=event["requirements"],
        duration=event["duration"],
        examples=event["examples"],
        message=event["message"],
        findings=list(event.get("findings") or []),
        stopped=event.get("stopped"),
        lacking=dict(event.get("lacking") or {}),
        checked=list(event.get("checked") or []),
    )
    current = results.get(new.nodeid)
    if current is None:
        results[new.nodeid] = new
        return
    if new.lacking:
        current.lacking, current.checked = new.lacking, new.checked
    current.duration += new.duration
    current.examples = current.examples if new.examples is None else new.examples
    if _RANK.index(new.outcome) < _RANK.index(current.outcome):
        current.outcome, current.message = new.outcome, new.message
        current.findings, current.stopped = new.findings, new.stopped


def _merge_findings(results: dict[str, TestResult], event: dict) -> None:
    """What the reruns with the failed requirements set aside found."""
    result = results.get(event["nodeid"])
    if result is None:
        return
    result.findings += event.get("findings") or []
    result.stopped = event.get("stopped")
    result.reruns = event.get("reruns", 0)
    if event.get("lacking"):
        result.lacking, result.checked = event["lacking"], list(event.get("checked") or [])


def _run_child(command: list[str], workdir: Path) -> int:
    """Run the child in its own process group; on SIGINT/SIGTERM (Interrupted) end the group.

    Everything the child writes stays in ``workdir``: transformers' dynamic-module cache
    (``HF_MODULES_CACHE``; else every run leaves hundreds of folders in ~/.cache/huggingface).
    The child watches this process (``LOADERSPEC_PARENT_PID``): if it dies, however (SIGKILL
    included, what CI runners send on timeout or cancel), the child removes ``workdir`` and ends.
    """
    env = {
        **os.environ,
        "HF_MODULES_CACHE": str(workdir / "hf-modules"),
        "LOADERSPEC_PARENT_PID": str(os.getpid()),
        "LOADERSPEC_WORKDIR": str(workdir),
    }
    child = subprocess.Popen(command, start_new_session=True, env=env)
    try:
        return child.wait()
    except BaseException:
        _end_process_group(child)
        raise


def _end_process_group(child: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _fold_events(run: SuiteRun, results: dict[str, TestResult], events: list[dict]) -> None:
    for event in events:
        if event["event"] == "collected" and not run.collected:
            run.collected = {n: event.get("requirements", {}).get(n, []) for n in event["nodeids"]}
            run.before_selection = event.get("before_selection")
        elif event["event"] == "adapter_check":
            run.adapter_problems = event["problems"]
            run.unusable_hooks = event.get("unusable", [])
        elif event["event"] == "result":
            _merge(results, event)
        elif event["event"] == "findings":
            _merge_findings(results, event)


def _record_crash(run: SuiteRun, results: dict[str, TestResult], events: list[dict], status: int) -> bool:
    """Mark the test the child died in as crashed (a timeout was recorded by the child itself);
    False when the child died before running any test: a fresh one would too."""
    if not any(e["event"] == "start" for e in events):
        run.notes.append(f"the test process exited with status {status} before running any test")
        return False
    ended = {e["nodeid"] for e in events if e["event"] == "end"}
    unfinished = [e["nodeid"] for e in events if e["event"] == "start" and e["nodeid"] not in ended]
    if not unfinished:
        return True
    crashed = unfinished[-1]
    cited = results[crashed].requirements if crashed in results else run.collected.get(crashed, [])
    why = f"the test process died (exit status {status}) while running this test"
    results[crashed] = TestResult(nodeid=crashed, outcome="crashed", requirements=cited, message=why)
    run.notes.append(f"{crashed}: the test process died (status {status}); continued without it")
    return True


def run_suites(settings: Settings, workdir: Path) -> SuiteRun:
    """Run the suites in child processes until every collected test has a result, or the
    crash limit is reached (the rest are then "not run")."""
    (workdir / "pytest.ini").write_text(_INI)
    run, results = SuiteRun(), dict[str, TestResult]()
    for attempt in range(settings.args.max_crashes + 1):
        events_path = workdir / f"events-{attempt}.jsonl"
        command = _child_command(settings, events_path, workdir, list(results), first=attempt == 0)
        status = _run_child(command, workdir)
        events = _read_events(events_path)
        _fold_events(run, results, events)
        finished = any(event["event"] == "finish" for event in events)
        if run.adapter_problems or finished or not _record_crash(run, results, events, status):
            break
    else:
        run.notes.append(f"stopped after {settings.args.max_crashes} crashes (--max-crashes)")
    for nodeid, cited in run.collected.items():
        if nodeid not in results:
            why = f"not run: the run stopped after {settings.args.max_crashes} test-process crashes (--max-crashes)"
            results[nodeid] = TestResult(nodeid=nodeid, outcome="not run", requirements=cited, message=why)
    run.results = list(results.values())
    return run


# --- after the run ------------------------------------------------------------------


def reproduction(result: TestResult, settings: Settings, requirement: str | None = None) -> str:
    """A command that reruns just this test against the same implementation, as given; with
    ``requirement``, checking only that requirement (the others' checks set aside)."""
    args = settings.args
    name = result.nodeid.split("::")[-1].split("[")[0]
    parts = ["loaderspec", "conform"]
    if settings.impl != DEFAULT_IMPL:
        parts += ["--impl", settings.impl]
    parts += ["--profile", args.profile]
    if settings.seed is not None:
        parts += ["--seed", str(settings.seed)]
    if args.timeout != DEFAULT_TIMEOUT:
        parts += ["--timeout", f"{args.timeout:g}"]
    if args.xfails:
        parts += ["--xfails", str(args.xfails.resolve())]
    parts += ["-k", name]
    if requirement is not None:
        parts += ["--requirement", requirement]
    return shlex.join(parts)


def current_failures(results: list[TestResult]) -> list[Xfail]:
    """An entry per failing (test, requirement, error line): narrow enough that a new bug is not excused."""
    entries: dict[tuple[str, str, str], Xfail] = {}
    for result in results:
        if result.outcome not in ("failed", "error", "crashed"):
            continue
        evidence = result.expected_failure.evidence if result.expected_failure else "TODO: link an issue or PR"
        test = result.nodeid.split("::")[-1].split("[")[0]
        claims = (
            result.claims()
            if result.judged_by_checks
            else [
                (requirement, line)
                for line in result.statements()
                for requirement in REQ_IN_MESSAGE.findall(line) or result.failing_requirements()
            ]
        )
        for requirement, line in claims:
            if requirement not in result.requirements:
                continue
            key = (requirement, test, match_pattern(line))
            entries.setdefault(key, Xfail(requirement, line[:200], evidence, test=test, match=key[2]))
    return list(entries.values())


def write_outputs(settings: Settings, adapter: Adapter, report: dict, judgement: Judgement, results: list) -> None:
    args = settings.args
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"JSON report: {args.json}")
    if args.markdown:
        args.markdown.write_text(render_markdown_table(judgement.verdicts) + "\n", encoding="utf-8")
        print(f"Markdown table: {args.markdown}")
    ci_outputs(settings, adapter, report, judgement)
    if args.write_xfails:
        entries = current_failures(results)
        title = f"Expected failures of {adapter.name} {settings.version}, written by loaderspec conform"
        text = dump_xfails(entries, title + "\nFill in each evidence link; narrow or widen each match as needed.")
        args.write_xfails.write_text(text, encoding="utf-8")
        print(f"wrote {len(entries)} expected-failure entries to {args.write_xfails}")


def ci_outputs(settings: Settings, adapter: Adapter, report: dict, judgement: Judgement) -> None:
    """The JUnit file, the GitHub step summary (when ``$GITHUB_STEP_SUMMARY`` is set) and the
    GitHub annotations, as asked."""
    args = settings.args
    requirements = load_requirements()
    verdict_line = report["summary"]["verdict_line"]
    if args.junit_xml:
        name = f"loaderspec conform {adapter.name} {settings.version}".rstrip()
        text = render_junit(judgement.verdicts, requirements, name=name, elapsed=report["header"]["elapsed_s"])
        args.junit_xml.write_text(text, encoding="utf-8")
        print(f"JUnit XML report: {args.junit_xml}")
    summary = append_step_summary(step_summary(judgement.verdicts, verdict_line, target=adapter.name))
    if summary is not None:
        print(f"step summary appended to {summary} ($GITHUB_STEP_SUMMARY)")
    if args.annotations == "github":
        for line in github_annotations(judgement.verdicts, requirements, spec_dir()):
            print(line)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_line() -> str:
    """``loaderspec --version``: loaderspec's version, the spec's it checks against and the
    reference implementation's it ships."""
    from loaderspec.adapters.reference import ADAPTER as REFERENCE

    return f"loaderspec {__version__} (spec {SPEC_VERSION}, reference implementation {REFERENCE.version()})"


def header(adapter: Adapter, settings: Settings) -> dict[str, Any]:
    return {
        "target": adapter.name,
        "target_version": settings.version,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),  # UTC day of the run (the matrix's header)
        "impl": settings.impl,
        "spec_version": SPEC_VERSION,
        "loaderspec": __version__,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "hypothesis": _version("hypothesis"),
        "profile": settings.args.profile,
        "seed": "derandomized" if settings.seed is None else settings.seed,
        "xfails": str(settings.xfail_path) if settings.xfail_path else None,
        "missing_hooks": adapter.missing_hooks(),
        "platform": platform.platform(),
    }


# --- the command --------------------------------------------------------------------


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted in the main thread, so cleanup runs."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def prepare(args: argparse.Namespace) -> tuple[Settings, Adapter, dict[str, Requirement], list[Xfail]]:
    """Validate everything the run depends on; BadInput for the first problem found."""
    validate_options(args)
    adapter = load_target(args)
    version = _broken_adapter_is_bad_input(checked_version, adapter)
    requirements = load_requirements()
    xfail_path, xfails = load_expected_failures(args, adapter, requirements)
    for entry in xfails:
        if entry.evidence.strip().upper().startswith("TODO"):
            print(
                f"warning: expected-failure entry {entry.describe()} in {xfail_path}: its evidence is a "
                f"placeholder ({entry.evidence!r}); link the issue, PR or source line that shows the deviation",
                file=sys.stderr,
            )
    seed = None if args.profile == "ci" else (args.seed if args.seed is not None else random.randrange(2**32))
    impl = args.impl or os.environ.get(ENV_VAR) or DEFAULT_IMPL
    return Settings(args, impl, seed, xfail_path, version), adapter, requirements, xfails


def execute(settings: Settings, adapter: Adapter, requirements: dict[str, Requirement], xfails: list[Xfail]) -> int:
    """Run the suites, judge, print and write; the exit status."""
    info = header(adapter, settings)
    console.print_header(info)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loaderspec-conform-") as workdir:
        run = run_suites(settings, Path(workdir))
    elapsed = time.monotonic() - started
    if run.adapter_problems:
        console.print_adapter_problems(adapter, run.adapter_problems)
        return 2
    if run.collected == {} and run.before_selection and settings.args.keyword:
        raise BadInput(
            f"-k {settings.args.keyword!r} selects none of the {run.before_selection} tests; -k matches test "
            "names and their module names (test_device_loading, test_normal_exit_restores_the_default)"
        )
    judgement = judge(run.results, requirements, xfails)
    verdict = run_verdict(
        run.results,
        judgement,
        require_all=settings.args.require_all,
        allow_inconclusive=settings.args.allow_inconclusive,
    )
    for result in run.results:
        result.reproduction = reproduction(result, settings) if result.failing else ""
    by_nodeid = {result.nodeid: result for result in run.results}
    for verdict_ in judgement.verdicts:
        if verdict_.failed_test in by_nodeid:
            verdict_.reproduction = reproduction(by_nodeid[verdict_.failed_test], settings, verdict_.id)
    run.notes[:0] = [
        f"{hook}: the implementation or its environment, not the adapter; the tests that need this hook "
        "are unchecked, the others judged"
        for hook in run.unusable_hooks
    ]
    console.print_results(run.results, judgement, settings, elapsed, run.notes)
    report = to_json(info | {"elapsed_s": round(elapsed, 2), "notes": run.notes}, run.results, judgement, verdict)
    try:
        write_outputs(settings, adapter, report, judgement, run.results)
    except OSError as error:
        console.print_verdict(verdict)
        print(f"loaderspec conform: could not write {error.filename}: {error.strerror or error}", file=sys.stderr)
        return 2
    console.print_verdict(verdict)
    return verdict.exit_status


def check_only(args: argparse.Namespace) -> int:
    adapter = load_target(args)
    report = check_adapter(adapter)
    print(describe(adapter, report), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 2


def conform(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_from_the_current_folder()  # the test processes (python -m pytest, here) see it so too
    try:
        with signals_interrupt():
            if args.check_adapter:
                validate_options(args)
                return check_only(args)
            return execute(*prepare(args))
    except BadInput as error:
        print(f"loaderspec conform: {error}", file=sys.stderr)
        return 2
    except Interrupted as interrupted:
        print(flush=True)  # the child's progress dots may have left the line open
        print(
            f"loaderspec conform: stopped by {interrupted}; the test processes were ended and their "
            "temporary files removed; no verdict",
            file=sys.stderr,
        )
        return 128 + interrupted.signum


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(conform())
