"""What contributors run: ``nox -l`` lists the sessions, ``nox -s NAME`` runs one.

Sessions that install loaderspec install the pinned CPU torch first (a bare ``torch`` would pull a
multi-GB CUDA build). The engine conformance sessions and ``wheel`` call the same scripts as CI
(``.ci/``), each of which builds its own environment, so nox gives them none.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]

TORCH = "torch==2.13.0"


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install(TORCH, "-e", f".[{extras}]")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy: strict on the reference implementation, regular on the kit, the suites and bench (pyproject.toml)."""
    _install(session, "dev")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The README's test command: the suites, the meta tests and the benchmarks' own checks."""
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs, env={"HYPOTHESIS_PROFILE": "ci"})


# Every conformance target CI runs (.ci/run): (target, version) as .ci/conform-target.sh takes them.
ENGINE_TARGETS = [
    ("vllm", "0.9.2"),
    ("vllm", "0.10.0"),
    ("vllm", "0.32.0"),
    ("vllm", "0.33.0"),
    ("vllm", "0.34.0"),
    ("sglang", "0.5.23"),
]
TARGET_IDS = [f"{engine}-{version}" for engine, version in ENGINE_TARGETS]


@nox.session(name="conform-reference")
def conform_reference(session: nox.Session) -> None:
    """``loaderspec conform`` against the reference implementation (report: docs/reports/reference.json)."""
    _install(session)
    session.run("bash", ".ci/conform-target.sh", "reference", session.virtualenv.location, external=True)


@nox.session(name="conform", venv_backend="none")
@nox.parametrize("target", TARGET_IDS, ids=TARGET_IDS)
def conform_engine(session: nox.Session, target: str) -> None:
    """``loaderspec conform`` against a real engine release, in its own venv (.ci/conform-target.sh).

    The same script CI runs; the report goes to docs/reports/TARGET.json and ``nox -s matrix``
    renders docs/conformance.md from it. ``nox -s conform`` runs every target in turn.
    """
    engine, version = target.split("-", 1)
    session.run("bash", ".ci/conform-target.sh", engine, version, external=True)


@nox.session
def matrix(session: nox.Session) -> None:
    """Render docs/conformance.md and README's summary lines from the committed reports."""
    _install(session)
    session.run("loaderspec", "matrix", "--readme", "README.md")


@nox.session(venv_backend="none")
def wheel(session: nox.Session) -> None:
    """Build the wheel and run ``loaderspec conform`` from it in an empty folder."""
    session.run("bash", ".ci/wheel-conform.sh", external=True)


@nox.session
def mutation(session: nox.Session) -> None:
    """The full third-party mutation run: mutmut over the reference (tens of minutes; CI runs the planted mutants).

    Results: tools/mutants/mutmut-results.json; every mutant left alive is triaged in
    tools/mutants/third-party-survivors.md (``python tools/mutmut_run.py --check``). Arguments
    are passed on: ``nox -s mutation -- NAME...`` reruns the named mutants.
    """
    _install(session)
    session.install("mutmut==3.8.1")
    session.run("python", "tools/mutmut_run.py", *session.posargs)
    session.run("python", "tools/mutmut_run.py", "--check")


@nox.session(name="bench-quick")
def bench_quick(session: nox.Session) -> None:
    """A quick benchmark run of the reference (figures reported, never judged)."""
    _install(session)
    session.run("loaderspec", "bench", "--quick", *session.posargs)
