"""Wiring of the loaderspec suites: the implementation under test, Hypothesis
profiles, requirement markers and the device fixture.

The implementation is injected here and nowhere else: ``--impl NAME_OR_MODULE`` or
``LOADERSPEC_IMPL`` (default ``reference``); tests receive it as the ``impl``
fixture and never import an implementation themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, Phase, Verbosity, settings
from loaderspec.adapter import Adapter, add_impl_option, load_adapter, stay_offline
from loaderspec.support import devices, model_folders

stay_offline()

# Function-scoped fixtures here (impl, accelerator, pin_memory) hold no per-example state.
_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.differing_executors,
    HealthCheck.function_scoped_fixture,
]
# The ci profile (CI and `loaderspec conform`) skips the explain phase: it only annotates a
# shrunk failure ("or any other generated value") and cost ~10 s per failing device property,
# half of a conformance run against vLLM 0.32; dev and thorough keep it.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    max_examples=100,
    database=None,
    phases=[phase for phase in Phase if phase != Phase.explain],
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile("dev", deadline=None, print_blob=True, max_examples=100, suppress_health_check=_SUPPRESSED)
settings.register_profile(
    "thorough",
    deadline=None,
    print_blob=True,
    max_examples=1000,
    phases=list(Phase),
    verbosity=Verbosity.normal,
    suppress_health_check=_SUPPRESSED,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the spec requirement IDs a test checks")
    # Here rather than in an ini file: the suites also run from the installed wheel.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:transformers.*")
    config.addinivalue_line("filterwarnings", "ignore:ComplexHalf support is experimental:UserWarning")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_impl_option(parser)


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Adapter:
    """The adapter of the implementation under test."""
    return load_adapter(request.config.getoption("--impl"))


def _accelerators() -> list[pytest.ParameterSet]:
    return [pytest.param(kind, id=kind) for kind in devices.accelerator_kinds()]


@pytest.fixture(scope="session", params=_accelerators())
def accelerator(request: pytest.FixtureRequest) -> torch.device:
    """Every accelerator present: CUDA when there is one, and the simulated device always."""
    return devices.resolve_or_skip(request.param)


@pytest.fixture(scope="session", params=[pytest.param("cpu", id="cpu"), *_accelerators()])
def target(request: pytest.FixtureRequest) -> torch.device:
    """The CPU, then every accelerator: targets of the post-loading pass."""
    return devices.resolve_or_skip(request.param)


@pytest.fixture(params=[False, True], ids=["unpinned", "pinned"])
def pin_memory(request: pytest.FixtureRequest, impl: Adapter, accelerator: torch.device) -> Iterator[bool]:
    """Both answers of ``is_pin_memory_available``, as the device context sees it."""
    with impl.pin_memory_available(request.param):
        yield request.param


@pytest.fixture(scope="session")
def llama_folder(tmp_path_factory: pytest.TempPathFactory):
    """A tiny Llama model folder (config only), shared by the tests that need any model."""
    return model_folders.write_llama_folder(tmp_path_factory.mktemp("llama"))


@pytest.fixture(autouse=True)
def _default_dtype_is_float32() -> Iterator[None]:
    """Each test starts with float32 as default; a leak is reported by the test, not passed on."""
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(torch.float32)
