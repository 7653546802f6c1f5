"""pytest plugin for the mutmut run (``nox -s mutation``, tools/mutmut_run.py); not used elsewhere.

mutmut 3 calls every mutated function through a *trampoline* (two frames in
``mutmut/mutation/trampoline.py``) that picks the original or the active mutant. That extra
frame is visible to ``warnings.warn(..., stacklevel=2)``: ``initialize_model``'s deprecation
warning (MI-9) would point at the trampoline, not at the caller, and the clean run would fail
before any mutant is tried. This plugin makes ``warnings.warn`` count past trampoline frames,
so a warning points where it does in the unmutated program: a mutant that changes
``stacklevel`` still points elsewhere and is still caught by MI-9.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

_REAL_WARN = warnings.warn


def _is_trampoline(frame: FrameType) -> bool:
    path = Path(frame.f_code.co_filename)
    return path.name == "trampoline.py" and path.parent.name == "mutation" and path.parent.parent.name == "mutmut"


def _warn(message: Any, category: Any = None, stacklevel: int = 1, source: Any = None) -> None:
    # Frame 1 of the caller's count is the function calling warn (our caller's frame).
    frame: FrameType | None = sys._getframe(1)
    hidden = 0
    counted = 1
    while frame is not None and counted < stacklevel:
        frame = frame.f_back
        if frame is not None and _is_trampoline(frame):
            hidden += 1
        else:
            counted += 1
    _REAL_WARN(message, category, stacklevel + hidden + 1, source)


def pytest_configure(config: Any) -> None:
    warnings.warn = _warn


def pytest_unconfigure(config: Any) -> None:
    warnings.warn = _REAL_WARN
