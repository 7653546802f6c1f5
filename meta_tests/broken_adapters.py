"""Deliberately broken adapters, for testing ``loaderspec conform`` itself.

``CRASHING`` kills its process when ``ParamMapping`` is constructed; ``HANGING``
never returns from ``set_default_torch_dtype``; ``HOOKLESS`` implements no hooks.
"""

from __future__ import annotations

import os
import time
from typing import Any

from loaderspec.adapter import Adapter, NotProvided
from loaderspec.adapters.reference import ADAPTER as REFERENCE


class _Delegating(Adapter):
    def version(self) -> str:
        return "broken-0"

    def lookup(self, name: str) -> Any:
        return REFERENCE.lookup(name)


class CrashingAdapter(_Delegating):
    name = "crashing"

    def lookup(self, name: str) -> Any:
        if name == "ParamMapping":

            def crash(*args: object, **kwargs: object) -> None:
                os._exit(139)  # as abrupt as a segfault: no cleanup, no report

            return crash
        return super().lookup(name)


class HangingAdapter(_Delegating):
    name = "hanging"

    def lookup(self, name: str) -> Any:
        if name == "set_default_torch_dtype":

            def hang(dtype: object) -> None:
                time.sleep(3600)

            return hang
        return super().lookup(name)


class HooklessAdapter(_Delegating):
    name = "hookless"

    def lookup(self, name: str) -> Any:
        if name == "ParamMapping":
            raise NotProvided(self.name, name)
        return super().lookup(name)


CRASHING = CrashingAdapter()
HANGING = HangingAdapter()
HOOKLESS = HooklessAdapter()
