"""Correctness before timing: a contender that gets the timed work wrong is reported, not timed.

A benchmark of an implementation that skips work would only measure how fast it is wrong.
So before a case times a contender, it runs the call it is about to time once on the
contender's own workload and checks the properties that call is about (issue 8, point 8):

* post-loading (PW-1, PW-4): every quantize hook and every attention hook ran exactly once;
  with ``values=True`` (dense workloads) each parameter ends where it started (DL-10..DL-12: host
  parameters back on the host) holding what the quantize method makes of it, bit for bit
  (the method applied to a copy taken before the pass);
* round trip (DL-2, DL-10..DL-12): the parameter object is kept and is back on the host holding
  its bytes, bit for bit.

A check returns None when the call was right, else ``"<requirement>: <what went wrong>"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Check = Callable[[], "str | None"]


def check(prepared: Any) -> str | None:
    """Run ``prepared.check`` (None when the case has none)."""
    return prepared.check() if getattr(prepared, "check", None) is not None else None


def _bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().reshape(-1).to("cpu").contiguous()
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return flat.view(torch.uint8).numpy().tobytes()


class _Counted:
    """Counts the hook calls of ``process_weights_after_loading`` per module, then takes the counters off."""

    def __init__(self, quantized: list[Any], attention: list[Any]) -> None:
        self.calls: Counter[int] = Counter()
        self.patched: list[tuple[Any, str]] = []
        for method in {id(m.quant_method): m.quant_method for m in quantized}.values():
            inner = method.process_weights_after_loading
            method.process_weights_after_loading = self._counting(inner, by_argument=True)
            self.patched.append((method, "process_weights_after_loading"))
        for module in attention:
            inner = module.process_weights_after_loading
            module.__dict__["process_weights_after_loading"] = self._counting(inner, by_argument=False, owner=module)
            self.patched.append((module, "process_weights_after_loading"))

    def _counting(self, inner: Callable[..., Any], *, by_argument: bool, owner: Any = None) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[id(args[0] if by_argument else owner)] += 1
            return inner(*args, **kwargs)

        return counted

    def remove(self) -> None:
        for owner, attribute in self.patched:
            owner.__dict__.pop(attribute, None)


def _expected_values(quantized: list[Any], model: nn.Module) -> dict[int, tuple[torch.device, bytes]]:
    """Per parameter (by id): its device before the pass and its bytes after the method's hook."""
    expected: dict[int, tuple[torch.device, bytes]] = {}
    for param in model.parameters():
        expected[id(param)] = (param.device, _bytes(param))
    for module in quantized:
        shadow = nn.Module()
        params = dict(module.named_parameters(recurse=False))
        for name, param in params.items():
            shadow.register_parameter(name, nn.Parameter(param.detach().to("cpu", copy=True), requires_grad=False))
        type(module.quant_method).process_weights_after_loading(module.quant_method, shadow)
        for name, param in params.items():
            expected[id(param)] = (param.device, _bytes(getattr(shadow, name)))
    return expected


def post_loading(
    model: nn.Module,
    run: Callable[[], None],
    *,
    setup: Callable[[], None] | None,
    attention_class: type | None,
    values: bool,
) -> Check:
    """The check of a post-loading case (see the module docstring)."""

    def check_post_loading() -> str | None:
        if setup is not None:
            setup()
        quantized: list[Any] = [m for _, m in model.named_modules() if getattr(m, "quant_method", None) is not None]
        attention: list[Any] = [
            m for _, m in model.named_modules() if attention_class and isinstance(m, attention_class)
        ]
        expected = _expected_values(quantized, model) if values else {}
        counted = _Counted(quantized, attention)
        try:
            run()
        finally:
            counted.remove()
        for requirement, modules in (("PW-1", quantized), ("PW-4", attention)):
            ids = {id(m) for m in modules}
            wrong = [
                (n, counted.calls[id(m)])
                for n, m in model.named_modules()
                if id(m) in ids and counted.calls[id(m)] != 1
            ]
            if wrong:
                (name, calls), count = wrong[0], len(wrong)
                return f"{requirement}: the hook of {name or '<root>'} ran {calls} times, not once ({count} modules so)"
        for name, param in model.named_parameters():
            if id(param) not in expected:
                continue
            device, content = expected[id(param)]
            if param.device.type != device.type:
                return f"DL-10: {name} started on {device} and ended on {param.device}"
            if _bytes(param) != content:
                return f"DL-12: {name} does not hold what the quantize method made of it, bit for bit"
        return None

    return check_post_loading


def round_trip(module: nn.Module, run: Callable[[], None]) -> Check:
    """The check of a round-trip case: the parameter is back on the host, the same object, bit for bit."""

    def check_round_trip() -> str | None:
        before = {name: (p, p.device, _bytes(p)) for name, p in module.named_parameters()}
        run()
        after = dict(module.named_parameters())
        for name, (param, device, content) in before.items():
            if after.get(name) is not param:
                return f"DL-2: parameter {name} was replaced by another object"
            if param.device != device:
                return f"DL-10: {name} started on {device} and ended on {param.device}"
            if _bytes(param) != content:
                return f"DL-12: {name} came back with other bytes"
        return None

    return check_round_trip
