"""``expect_raises`` and ``expect_success``: outcomes whose every failure is the requirement's.

A wrong outcome fails as that requirement (:func:`loaderspec.support.checks.requirement`),
with the implementation's exception kept as the failure's context. When the requirement is
set aside, the example ends there: what follows depends on the outcome that was wrong.
"""

from __future__ import annotations

import contextlib
import re
import unittest
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from loaderspec.adapter import NotProvided
from loaderspec.support.checks import RequirementFailure, SetAside, lacking, mark_checked, requirement, stop_example


class PlantedError(Exception):
    """Raised on purpose by a test body or a hook, so that only that exception is expected."""


@dataclass
class Raised:
    value: BaseException | None = None


def _fail(req_id: str, message: str) -> None:
    """Fail ``req_id`` (raises), or end the example when it is set aside."""
    with requirement(req_id):
        pytest.fail(message)
    stop_example(req_id)


@contextlib.contextmanager
def expect_raises(
    expected: type[BaseException] | tuple[type[BaseException], ...],
    req_id: str,
    what: str,
    match: str | None = None,
) -> Iterator[Raised]:
    """Require ``expected`` from the block; any other outcome fails as ``req_id``."""
    names = " or ".join(e.__name__ for e in (expected if isinstance(expected, tuple) else (expected,)))
    raised = Raised()
    try:
        yield raised
    except expected as error:
        raised.value = error
    except (unittest.SkipTest, RequirementFailure, SetAside):  # NotProvided; a check inside the block
        raise
    except Exception as error:  # a wrong type is this requirement's failure, not a crash
        _fail(req_id, f"{req_id}: {what}: expected {names}, got {type(error).__name__}: {error}")
    else:
        _fail(req_id, f"{req_id}: {what}: no {names} was raised")
    if match is not None and not re.search(match, str(raised.value)):
        _fail(req_id, f"{req_id}: {what}: the {names} does not match {match!r}: {raised.value}")
    mark_checked(req_id)


@contextlib.contextmanager
def expect_success(req_id: str, what: str) -> Iterator[None]:
    """Any exception from the block (the implementation's own ``assert`` included) fails as
    ``req_id``, so the report does not blame every requirement the test cites."""
    try:
        yield
    except (unittest.SkipTest, RequirementFailure, SetAside):
        raise
    except Exception as error:
        _fail(req_id, f"{req_id}: {what} raised {type(error).__name__}: {error}")
    else:
        mark_checked(req_id)


@contextlib.contextmanager
def needing(req_id: str) -> Iterator[None]:
    """A name or feature the implementation lacks (``NotProvided`` from the block) costs only
    ``req_id``: the example ends, that requirement is "not provided" there, and the test's
    other requirements are judged on its other examples."""
    try:
        yield
    except NotProvided as missing:
        lacking(req_id, missing.name)


@contextlib.contextmanager
def tolerating_errors() -> Iterator[None]:
    """The implementation may return or raise here, the requirement is judged after either way;
    but a name it lacks (``NotProvided``) and a check's failure still end the test."""
    try:
        yield
    except (unittest.SkipTest, RequirementFailure, SetAside):
        raise
    except Exception:  # the implementation's refusal: allowed here
        pass
