"""The pytest plugin of ``loaderspec conform``: streams each test's outcome, the
requirement IDs it cites and the Hypothesis examples it ran, as JSON lines, and
stops a test that hangs.

Loaded in the child pytest process with ``-p loaderspec.conform.plugin``; the
parent (:mod:`loaderspec.conform.runner`) reads the stream even if the child dies.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import threading
import time
import unittest
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from loaderspec.adapter import HOOKS, OPTIONAL_HOOKS, NotProvided, load_adapter
from loaderspec.conform.adapter_check import raised_in, source_files
from loaderspec.support import checks

# "60 passing examples, 0 failing examples" (older Hypothesis) or "60 passing, 0 failing"
_EXAMPLES = re.compile(r"(\d+) passing(?: examples?)?, (?:and )?(\d+) failing")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loaderspec conform")
    group.addoption("--loaderspec-events", default=None, help="write JSON-lines test events to this file")
    group.addoption("--loaderspec-timeout", type=float, default=0, help="seconds before a test is stopped (0: never)")
    group.addoption("--loaderspec-check-adapter", action="store_true", help="check the adapter before any test")
    group.addoption(
        "--loaderspec-only",
        default="",
        help="comma-separated requirement IDs: only tests citing one run, other requirements' checks set aside",
    )
    group.addoption(
        "--loaderspec-set-aside", default="", help="comma-separated requirement IDs whose failures are swallowed"
    )


class _Events:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")

    def write(self, **event: Any) -> None:
        self._file.write(json.dumps(event, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


_events: _Events | None = None
_timeout: float = 0
_adapter_files: frozenset[str] = frozenset()
_collected_before_selection = 0


_only: frozenset[str] | None = None
_set_aside_first: frozenset[str] = frozenset()


def _ids(option: str) -> frozenset[str]:
    return frozenset(part.strip() for part in option.split(",") if part.strip())


def pytest_configure(config: pytest.Config) -> None:
    global _events, _timeout, _adapter_files, _only, _set_aside_first
    path = config.getoption("--loaderspec-events")
    _timeout = config.getoption("--loaderspec-timeout") or 0
    _only = _ids(config.getoption("--loaderspec-only")) or None
    _set_aside_first = _ids(config.getoption("--loaderspec-set-aside"))
    if path:
        _events = _Events(path)
        _adapter_files = adapter_files(config.getoption("--impl", None))
        _end_with_the_parent()


def _end_with_the_parent() -> None:
    """When ``loaderspec conform`` (``$LOADERSPEC_PARENT_PID``) is gone, however it died, remove
    its working folder (``$LOADERSPEC_WORKDIR``, this process's temporary files) and end: an
    orphaned run would go on for minutes and leave its files behind."""
    parent = int(os.environ.get("LOADERSPEC_PARENT_PID", "0") or 0)
    workdir = os.environ.get("LOADERSPEC_WORKDIR")
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        os._exit(_ORPHANED_EXIT_STATUS)

    threading.Thread(target=watch, name="loaderspec-parent-watch", daemon=True).start()


_ORPHANED_EXIT_STATUS = 137


def adapter_files(impl: str | None) -> frozenset[str]:
    """The source files of the adapter's class and its bases: code a failure can be the adapter's fault in."""
    try:
        adapter = load_adapter(impl)
    except Exception:  # the suites' impl fixture reports it, as an error of every test
        return frozenset()
    return source_files(adapter)


def _check_the_adapter(session: pytest.Session) -> None:
    """Check the adapter before any test runs (after collection, so a -k that selects nothing is
    refused without it); a broken one ends the session (the runner says why)."""
    if _events is None or not session.config.getoption("--loaderspec-check-adapter") or not session.items:
        return
    from loaderspec.conform.adapter_check import check_adapter

    report = check_adapter(load_adapter(session.config.getoption("--impl", None)))
    _events.write(
        event="adapter_check", problems=report.problems, not_provided=report.not_provided, unusable=report.unusable
    )
    if report.problems:
        pytest.exit("the adapter is broken; what is wrong follows below", returncode=2)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _events is not None:
        _events.write(event="finish")
        _events.close()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Count the tests before -k deselects any, to explain a -k that selects nothing; with
    --loaderspec-only, deselect the tests that cite none of its requirements."""
    global _collected_before_selection
    _collected_before_selection = len(items)
    if _only is not None:
        kept = [item for item in items if _only & set(_requirements(item))]
        dropped = [item for item in items if item not in kept]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    if _events is not None:
        _events.write(
            event="collected",
            nodeids=[item.nodeid for item in session.items],
            requirements={item.nodeid: _requirements(item) for item in session.items},
            before_selection=_collected_before_selection,
        )
    _check_the_adapter(session)


_current: pytest.Item | None = None
_TIMEOUT_EXIT_STATUS = 124


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module that fails to import is an error of the run, not a silent gap."""
    if _events is not None and report.failed:
        _events.write(
            event="result",
            nodeid=report.nodeid,
            when="collect",
            outcome="error",
            requirements=[],
            duration=0,
            examples=None,
            message=report.longreprtext,
            time=time.time(),
        )


def _on_alarm(signum: int, frame: object) -> None:
    """Record the hanging test as timed out, then end the process.

    Raising inside the test would not do: Hypothesis replays a failing example while
    shrinking (hanging again), and an implementation may swallow the exception. The
    runner starts a new process for the tests not yet run.
    """
    if _events is not None and _current is not None:
        _events.write(
            event="result",
            nodeid=_current.nodeid,
            when="call",
            outcome="timeout",
            requirements=_requirements(_current),
            duration=_timeout,
            examples=None,
            message=f"the test ran longer than {_timeout:g} s and was stopped (--timeout)",
            time=time.time(),
        )
        _events.write(event="end", nodeid=_current.nodeid)
        _events.close()
    os._exit(_TIMEOUT_EXIT_STATUS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    global _current
    _current = item
    if _events is not None:
        _events.write(event="start", nodeid=item.nodeid)
    try:
        result = yield
        if _events is not None:
            _learn_past_failures(item, nextitem)
        return result
    finally:
        _current = None
        if _events is not None:
            _events.write(event="end", nodeid=item.nodeid)


_EXAMPLES_ENDED = pytest.StashKey[list]()
"""[examples run, examples a set-aside failure ended, that requirement] of the item's latest run."""
_LACKING = pytest.StashKey[dict[str, set[str]]]()
"""Per requirement, the features it needed that the implementation lacks (``checks.Lacking``),
over the item's runs."""
_CHECKED = pytest.StashKey[set[str]]()
"""The requirements whose checks ran, over the item's runs."""
_ERROR = pytest.StashKey[BaseException | None]()
"""The exception the call phase of the item's latest run failed with (None: it did not fail)."""
_rerunning = False


def _learn_past_failures(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a failure, run the test again with the failed requirements set aside, until it
    passes, stops outside any requirement's check, or shows nothing new: so one requirement's
    failure never hides another's verdict. Each requirement found gets its own shrunk example."""
    global _rerunning
    error = item.stash.get(_ERROR, None)
    if error is None:
        return
    cited = set(_requirements(item))
    findings, stop = findings_of(error, _set_aside_first)
    set_aside = set(_set_aside_first) | {f["requirement"] for f in findings}
    learned: list[dict] = []
    reruns = 0
    while findings and stop is None and cited - set_aside:
        item._initrequest()  # type: ignore[attr-defined]  # fresh fixtures, as pytest-rerunfailures does
        item.stash[_ERROR] = None
        reruns += 1
        _rerunning = True
        try:
            with checks.setting_aside(frozenset(set_aside), _only):
                runtestprotocol(item, nextitem=nextitem, log=False)
        finally:
            _rerunning = False
        error = item.stash.get(_ERROR, None)
        if error is None:
            run, ended, requirement = item.stash.get(_EXAMPLES_ENDED, [0, 0, ""])
            if run and ended == run:  # it passed, but only by checking nothing after the failed one
                stop = {
                    "line": f"every example stopped at {requirement}'s failure: what follows it depends on it",
                    "example": "",
                    "where": "",
                    "set_aside": sorted(set_aside),
                    "hook": None,
                    "adapter": False,
                }
            break
        findings, stop = findings_of(error, set_aside)
        findings = [f for f in findings if f["requirement"] not in set_aside]
        learned += findings
        set_aside |= {f["requirement"] for f in findings}
    if reruns and _events is not None:
        _events.write(
            event="findings", nodeid=item.nodeid, findings=learned, stopped=stop, reruns=reruns, **_coverage(item)
        )


def findings_of(error: BaseException, set_aside: set[str] | frozenset[str]) -> tuple[list[dict], dict | None]:
    """The requirement failures in ``error`` (one per failing check Hypothesis reported), and
    the first failure outside any requirement's check (what stopped the test), if any."""
    findings: list[dict] = []
    stop: dict | None = None
    for leaf in _exception_leaves(error):
        if isinstance(leaf, checks.RequirementFailure):
            findings.append(
                {
                    "requirement": leaf.requirement,
                    "line": leaf.line,
                    "example": _example(leaf),
                    "where": _where(leaf.cause),
                    "set_aside": sorted(set_aside),
                    "hook": _hook_in(leaf.cause),
                }
            )
        elif stop is None and not isinstance(leaf, unittest.SkipTest):
            root = _root(leaf)
            text = str(root).strip().splitlines()
            stop = {
                "line": f"{type(root).__name__}: {text[0] if text else ''}".rstrip(": "),
                "example": _example(leaf),
                "where": _where(root),
                "set_aside": sorted(set_aside),
                "hook": _hook_in(root),
                "adapter": _raised_in_adapter(root),
            }
    return findings, stop


def _exception_leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _exception_leaves(inner)]
    return [error]


def _example(error: BaseException) -> str:
    """Hypothesis' shrunk example (its notes), without the hint to edit the suites' source."""
    notes = [n for n in getattr(error, "__notes__", []) if "reproduce_failure" not in n]
    return "\n".join(notes).strip()


def _where(error: BaseException) -> str:
    """file:line of the innermost frame of ``error``'s traceback (where it was raised)."""
    traceback = error.__traceback__
    if traceback is None:
        return ""
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return f"{traceback.tb_frame.f_code.co_filename}:{traceback.tb_lineno}"


_HOOK_NAMES = frozenset((*HOOKS, *OPTIONAL_HOOKS))


def _hook_in(error: BaseException) -> str | None:
    """The adapter hook ``error`` (or what it was raised from) passed through, if any: then the
    failure is in the test's preparation, not in the call under test."""
    for link in _chain(error):
        traceback = link.__traceback__
        while traceback is not None:
            code = traceback.tb_frame.f_code
            if code.co_name in _HOOK_NAMES and str(Path(code.co_filename).resolve()) in _adapter_files:
                return code.co_name
            traceback = traceback.tb_next
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _noting_not_provided(item), _set_aside_ends_quietly(item), _first_run_settings():
        if not _timeout:
            return (yield)
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        # Re-fires every second after the first, in case something swallows the first one.
        signal.setitimer(signal.ITIMER_REAL, _timeout, 1.0)
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _first_run_settings() -> Iterator[None]:
    """--loaderspec-set-aside and --loaderspec-only in the first run (reruns set their own)."""
    if _rerunning or (not _set_aside_first and _only is None):
        yield
        return
    with checks.setting_aside(_set_aside_first, _only):
        yield


@contextlib.contextmanager
def _set_aside_ends_quietly(item: pytest.Item) -> Iterator[None]:
    """A SetAside ends its example as uninformative: inside Hypothesis' inner test (so it is not
    a failure to shrink), or around a plain test."""
    hypothesis: Any = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(hypothesis, "inner_test", None)
    tally = item.stash[_EXAMPLES_ENDED] = [0, 0, ""]  # examples run, ended by a set-aside failure, whose
    lacking = item.stash.setdefault(_LACKING, {})
    checks.start_test()
    if inner is None:
        tally[0] = 1
        try:
            yield
        except checks.SetAside as ended:
            tally[1], tally[2] = 1, ended.requirement
        except checks.Lacking as missing:
            lacking.setdefault(missing.requirement, set()).add(missing.feature)
        finally:
            item.stash.setdefault(_CHECKED, set()).update(checks.checked())
        return

    @functools.wraps(inner)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        tally[0] += 1
        try:
            return inner(*args, **kwargs)
        except checks.SetAside as ended:
            tally[1] += 1
            tally[2] = tally[2] or ended.requirement
            return None
        except checks.Lacking as missing:
            lacking.setdefault(missing.requirement, set()).add(missing.feature)
            return None

    hypothesis.inner_test = quiet
    try:
        yield
    finally:
        hypothesis.inner_test = inner
        item.stash.setdefault(_CHECKED, set()).update(checks.checked())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _noting_not_provided(item):
        return (yield)


_not_provided: set[str] = set()
"""Tests a NotProvided ended, seen as it passes (pytest turns a unittest.SkipTest into its own skip)."""


@contextlib.contextmanager
def _noting_not_provided(item: pytest.Item) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        if any(isinstance(link, NotProvided) for link in _chain(error)):
            _not_provided.add(item.nodeid)
        raise


def _requirements(item: pytest.Item) -> list[str]:
    return [req_id for mark in item.iter_markers("req") for req_id in mark.args]


def _examples(item: pytest.Item) -> int | None:
    phases = _EXAMPLES.findall(getattr(item, "hypothesis_statistics", "") or "")
    return sum(int(passing) + int(failing) for passing, failing in phases) if phases else None


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _skip_kind(item: pytest.Item, error: BaseException | None) -> str:
    """``not provided`` when the implementation or adapter lacks a name or hook (a
    NotProvided ended the test); else ``skipped``: this machine cannot run the test (a
    device, a compiler, a cache folder)."""
    if item.nodeid in _not_provided or any(isinstance(e, NotProvided) for e in _chain(error)):
        return "not provided"
    return "skipped"


def _root(error: BaseException) -> BaseException:
    """The exception a test failure is about: ``pytest.fail`` from the suites' ``expect_*``
    helpers wraps the implementation's exception, which it was raised while handling."""
    if isinstance(error, checks.RequirementFailure):
        error = error.cause
    while isinstance(error, pytest.fail.Exception) and error.__context__ is not None:
        error = error.__context__
    return error


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [_root(error)]


def _raised_in_adapter(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in the adapter's own code."""
    return raised_in(error, _adapter_files)


def _is_adapter_error(error: BaseException) -> bool:
    leaves = _leaves(error)
    return bool(leaves) and all(_raised_in_adapter(leaf) for leaf in leaves)


def _outcome(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str, str]:
    error = call.excinfo.value if call.excinfo else None
    if report.passed:
        return "passed", ""
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return _skip_kind(item, error), reason.removeprefix("Skipped: ")
    if error is not None and _is_adapter_error(error):
        return "adapter error", report.longreprtext
    return ("error" if report.when != "call" else "failed"), report.longreprtext


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_ERROR] = call.excinfo.value if call.excinfo is not None and report.failed else None
    if _events is None or _rerunning:
        return report
    interesting = report.when == "call" or not report.passed
    if interesting:
        outcome, message = _outcome(item, report, call)
        error = call.excinfo.value if call.excinfo is not None and report.failed else None
        findings, stop = findings_of(error, _set_aside_first) if error is not None else ([], None)
        _events.write(
            event="result",
            nodeid=item.nodeid,
            when=report.when,
            outcome=outcome,
            requirements=_requirements(item),
            duration=round(report.duration, 4),
            examples=_examples(item) if report.when == "call" else None,
            message=message,
            findings=findings,
            stopped=stop,
            time=time.time(),
            **_coverage(item),
        )
    return report


def _coverage(item: pytest.Item) -> dict[str, Any]:
    """What a test's runs checked, and what they could not for lack of a feature (event fields)."""
    lacking = item.stash.get(_LACKING, {})
    if not lacking:
        return {}
    checked: set[str] = item.stash.get(_CHECKED, set())
    return {
        "lacking": {req: sorted(features) for req, features in sorted(lacking.items())},
        "checked": sorted(checked),
    }
