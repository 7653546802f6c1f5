"""``expect_raises`` and ``expect_success``: outcomes whose every failure names the requirement.

The conformance report attributes a failure to the requirement IDs its message
names, so "DID NOT RAISE" or a wrong exception type must carry the ID too.
"""

from __future__ import annotations

import contextlib
import re
import unittest
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


class PlantedError(Exception):
    """Raised on purpose by a test body or a hook, so that only that exception is expected."""


@dataclass
class Raised:
    value: BaseException | None = None


@contextlib.contextmanager
def expect_raises(
    expected: type[BaseException] | tuple[type[BaseException], ...],
    requirement: str,
    what: str,
    match: str | None = None,
) -> Iterator[Raised]:
    """Require ``expected`` from the block; any other outcome fails as ``requirement``."""
    names = " or ".join(e.__name__ for e in (expected if isinstance(expected, tuple) else (expected,)))
    raised = Raised()
    try:
        yield raised
    except expected as error:
        raised.value = error
    except unittest.SkipTest:  # NotProvided: the implementation lacks a name
        raise
    except Exception as error:  # a wrong type is this requirement's failure, not a crash
        pytest.fail(f"{requirement}: {what}: expected {names}, got {type(error).__name__}: {error}")
    else:
        pytest.fail(f"{requirement}: {what}: no {names} was raised")
    if match is not None and not re.search(match, str(raised.value)):
        pytest.fail(f"{requirement}: {what}: the {names} does not match {match!r}: {raised.value}")


@contextlib.contextmanager
def expect_success(requirement: str, what: str) -> Iterator[None]:
    """Any exception from the block (the implementation's own ``assert`` included) fails as
    ``requirement``, so the report does not blame every requirement the test cites."""
    try:
        yield
    except unittest.SkipTest:
        raise
    except Exception as error:
        pytest.fail(f"{requirement}: {what} raised {type(error).__name__}: {error}")
