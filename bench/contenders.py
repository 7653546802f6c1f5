"""The implementations a benchmark compares: loaded through their adapters, imported up front.

Shared by ``loaderspec bench`` (:mod:`loaderspec_bench.runner`) and the pytest suite
(``bench/conftest.py``).
"""

from __future__ import annotations

from loaderspec.adapter import Adapter, AdapterError, NotProvided, load_adapter


def probe_adapter(spec: str) -> Adapter:
    """Load adapter ``spec`` and make it import its implementation now (a lazy adapter, such
    as vLLM's, would otherwise fail at the first benchmark). Raises ``AdapterError``."""
    try:
        adapter = load_adapter(spec)
    except AdapterError:
        raise
    except Exception as error:  # an adapter module that raises on import is bad input, not a crash
        raise AdapterError(f"loading {spec!r} raised {type(error).__name__}: {error}") from error
    try:
        adapter.lookup("process_weights_after_loading")
    except NotProvided:
        pass  # reported per case
    except AdapterError:
        raise
    except Exception as error:
        raise AdapterError(f"{type(error).__name__}: {error}") from error
    return adapter


def load_contender(spec: str) -> tuple[Adapter | None, str]:
    """The adapter and ``""``, or None and a sentence saying why it cannot be used here."""
    try:
        return probe_adapter(spec), ""
    except AdapterError as error:
        hint = (
            " The vLLM adapter works only in a Python environment where vLLM is installed "
            "(e.g. a venv made by .ci/install-vllm.sh; see docs/upstream.md)."
            if spec == "vllm"
            else ""
        )
        return None, f"implementation {spec!r} is unavailable here: {str(error).rstrip('.')}.{hint}"


def label(adapter: Adapter) -> str:
    """``name version`` for report headers (the name alone when the adapter has no version)."""
    try:
        return f"{adapter.name} {adapter.version()}"
    except Exception:  # a version hook is optional for a report header
        return adapter.name
