"""Requirement checks: which requirement a failure is about travels as a value.

The suites wrap each check in ``with requirement("DL-11"):``. A failure inside the block
(an ``assert``, ``pytest.fail``) leaves it as :class:`RequirementFailure`, which carries the
ID and the original exception; the conformance plugin reads the ID from it, never from the
message text.

So that one failing requirement never hides another, the plugin can *set aside*
requirements (:func:`setting_aside`): a set-aside requirement's failure is swallowed and the
example goes on, so the checks of every other requirement still run on it. Where the rest of
an example depends on what failed (the call under test raised, so there is no result to look
at), :func:`stop_example` ends the example as uninformative instead (:class:`SetAside`,
which the plugin turns into a normal return). With nothing set aside, as in a plain
``pytest`` run, every failure raises.
"""

from __future__ import annotations

import contextlib
import unittest
from collections.abc import Iterator
from typing import NoReturn

_set_aside: frozenset[str] = frozenset()
_only: frozenset[str] | None = None
_checked: set[str] = set()
"""The requirements whose checks ran since :func:`start_test` (passed, failed or set aside)."""


class RequirementFailure(AssertionError):
    """A check of ``requirement`` failed; ``cause`` is what the check raised."""

    def __init__(self, requirement: str, cause: BaseException) -> None:
        self.requirement = requirement
        self.cause = cause
        super().__init__(self.line)

    @property
    def line(self) -> str:
        """The failure's first error line, as the cause states it (``AssertionError: DL-11: ...``)."""
        text = str(self.cause).strip().splitlines()
        return f"{type(self.cause).__name__}: {text[0] if text else ''}".rstrip(": ")


class SetAside(Exception):
    """Ends an example whose remaining checks depend on a set-aside requirement's failure."""

    def __init__(self, requirement: str) -> None:
        self.requirement = requirement
        super().__init__(f"{requirement} is set aside and failed here; the rest of this example depends on it")


class Lacking(unittest.SkipTest):
    """Ends an example that needs a feature the implementation does not have (a ``model_impl``,
    a Transformers backend, a task): ``requirement`` is not provided there, neither passed nor
    failed, and the test's other requirements are judged on the other examples. In a plain
    ``pytest`` run, without the conformance plugin, it skips the test as ``NotProvided`` does."""

    def __init__(self, requirement: str, feature: str) -> None:
        self.requirement = requirement
        self.feature = feature
        super().__init__(f"{requirement} needs {feature}, which the implementation does not provide")


def lacking(req_id: str, feature: str) -> NoReturn:
    """End the example: ``req_id`` needs ``feature``, which the implementation lacks."""
    raise Lacking(req_id, feature)


def start_test() -> None:
    """Forget which requirements were checked (the plugin calls it before each test)."""
    _checked.clear()


def mark_checked(req_id: str) -> None:
    """Note that a check of ``req_id`` ran without a ``requirement`` block (an expected error was raised)."""
    _checked.add(req_id)


def checked() -> list[str]:
    """The requirements whose checks ran since :func:`start_test`."""
    return sorted(_checked)


def judged(req_id: str) -> bool:
    """Whether a failure of ``req_id`` is reported now (it is neither set aside nor outside --requirement)."""
    if req_id in _set_aside:
        return False
    return _only is None or req_id in _only


@contextlib.contextmanager
def setting_aside(req_ids: frozenset[str] | set[str], only: frozenset[str] | None = None) -> Iterator[None]:
    """Within the block, failures of ``req_ids`` (and, with ``only``, of every requirement not
    in it) are swallowed rather than raised."""
    global _set_aside, _only
    previous = _set_aside, _only
    _set_aside, _only = frozenset(req_ids), only
    try:
        yield
    finally:
        _set_aside, _only = previous


def _is_check_failure(error: BaseException) -> bool:
    # pytest.fail raises Failed, a BaseException; imported lazily so this module needs no pytest.
    return isinstance(error, AssertionError) or type(error).__name__ == "Failed"


@contextlib.contextmanager
def requirement(req_id: str) -> Iterator[None]:
    """A check of ``req_id``: an assertion or ``pytest.fail`` in the block is that requirement's failure.

    Other exceptions pass through untouched (an implementation's error where no requirement
    is being checked, ``NotProvided``, ``SetAside``), as does a failure already attributed by
    an inner block.
    """
    try:
        yield
    except (RequirementFailure, SetAside, unittest.SkipTest):
        raise
    except BaseException as error:
        if not _is_check_failure(error):
            raise
        _checked.add(req_id)
        if judged(req_id):
            raise RequirementFailure(req_id, error) from error
    else:
        _checked.add(req_id)


def fail(req_id: str, message: str, *, stop: bool = False) -> None:
    """Fail ``req_id`` with ``message``. When it is set aside: return (go on with the example),
    or with ``stop`` end the example (the rest depends on what failed)."""
    _checked.add(req_id)
    if judged(req_id):
        raise RequirementFailure(req_id, AssertionError(f"{req_id}: {message}"))
    if stop:
        raise SetAside(req_id)


def stop_example(req_id: str) -> None:
    """Called after a set-aside failure of ``req_id`` was swallowed where the rest of the
    example depends on it: end the example as uninformative."""
    raise SetAside(req_id)
