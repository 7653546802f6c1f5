"""The meta tests (checks of loaderspec itself) use the suites' fixtures and settings."""

from __future__ import annotations

import pytest
from loaderspec.adapter import add_impl_option
from loaderspec_suites import conftest as suites
from loaderspec_suites.conftest import accelerator, impl, pin_memory, target  # noqa: F401  (fixtures)


def pytest_configure(config: pytest.Config) -> None:
    suites.pytest_configure(config)  # the req marker and warning filters, when run without tests/


def pytest_addoption(parser: pytest.Parser) -> None:
    add_impl_option(parser)
