"""The pytest plugin of ``loaderspec conform``: streams each test's outcome, the
requirement IDs it cites and the Hypothesis examples it ran, as JSON lines, and
stops a test that hangs.

Loaded in the child pytest process with ``-p loaderspec.conform.plugin``; the
parent (:mod:`loaderspec.conform.runner`) reads the stream even if the child dies.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from loaderspec.adapter import NotProvided

# "60 passing examples, 0 failing examples" (older Hypothesis) or "60 passing, 0 failing"
_EXAMPLES = re.compile(r"(\d+) passing(?: examples?)?, (?:and )?(\d+) failing")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loaderspec conform")
    group.addoption("--loaderspec-events", default=None, help="write JSON-lines test events to this file")
    group.addoption("--loaderspec-timeout", type=float, default=0, help="seconds before a test is stopped (0: never)")


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


def pytest_configure(config: pytest.Config) -> None:
    global _events, _timeout
    path = config.getoption("--loaderspec-events")
    _timeout = config.getoption("--loaderspec-timeout") or 0
    if path:
        _events = _Events(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _events is not None:
        _events.write(event="finish")
        _events.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    if _events is not None:
        _events.write(
            event="collected",
            nodeids=[item.nodeid for item in session.items],
            requirements={item.nodeid: _requirements(item) for item in session.items},
        )


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
        return (yield)
    finally:
        _current = None
        if _events is not None:
            _events.write(event="end", nodeid=item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if not _timeout:
        return (yield)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    # Re-fires every second after the first, in case something swallows the first one.
    signal.setitimer(signal.ITIMER_REAL, _timeout)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _requirements(item: pytest.Item) -> list[str]:
    return [req_id for mark in item.iter_markers("req") for req_id in mark.args]


def _examples(item: pytest.Item) -> int | None:
    phases = _EXAMPLES.findall(getattr(item, "hypothesis_statistics", "") or "")
    return sum(int(passing) + int(failing) for passing, failing in phases) if phases else None


def _outcome(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str, str]:
    if report.passed:
        return "passed", ""
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        kind = "not provided" if call.excinfo and call.excinfo.errisinstance(NotProvided) else "skipped"
        if "not provided by" in reason:
            kind = "not provided"
        return kind, reason
    return ("error" if report.when != "call" else "failed"), report.longreprtext


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _events is None:
        return report
    interesting = report.when == "call" or not report.passed
    if interesting:
        outcome, message = _outcome(report, call)
        _events.write(
            event="result",
            nodeid=item.nodeid,
            when=report.when,
            outcome=outcome,
            requirements=_requirements(item),
            duration=round(report.duration, 4),
            examples=_examples(item) if report.when == "call" else None,
            message=message,
            time=time.time(),
        )
    return report
