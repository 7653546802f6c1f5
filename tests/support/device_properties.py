"""The device-state properties of spec/device-loading.md as plain functions.

The suites' DL tests run them against the implementation under test; the meta tests run
them against planted broken device contexts (mutants), so both check the same thing.
"""

from __future__ import annotations

import contextlib
import unittest
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal

import pytest
import torch
from hypothesis import event
from loaderspec.support.checks import requirement, stop_example

from .. import strategies as lst
from .errors import PlantedError, expect_raises
from .modules import is_dense, overlaps
from .tensors import Snapshot, raw_bytes

DeviceContext = Callable[[torch.nn.Module, torch.device], AbstractContextManager[torch.nn.Module]]


def _owner(module: torch.nn.Module, full_name: str) -> tuple[torch.nn.Module, str]:
    *path, leaf = full_name.split(".")
    for part in path:
        module = getattr(module, part)
    return module, leaf


def run_body(module: torch.nn.Module, body: lst.Body, target: torch.device) -> None:
    """Do ``body``'s steps to ``module``; each step picks among the parameters present now."""
    for number, step in enumerate(body.steps):
        where = "cpu" if step.on_cpu else target
        if step.action == "add-parameter":
            data = step.tensor.build(where)
            module.register_parameter(f"added_{number}", torch.nn.Parameter(data, requires_grad=False))
            continue
        present = list(module.named_parameters())
        if not present:
            continue
        name, param = present[step.index % len(present)]
        owner, leaf = _owner(module, name)
        if step.action == "write-in-place":
            if overlaps(param.data):  # copy_ refuses to write there; a body would not either
                continue
            same_shape = lst.TensorSpec(param.dtype, tuple(param.shape), "contiguous", step.tensor.seed)
            param.data.copy_(same_shape.build(param.device))
        elif step.action == "replace-data":
            param.data = step.tensor.build(where)
        elif step.action == "delete-parameter":
            del owner._parameters[leaf]
        elif step.action == "re-register":
            del owner._parameters[leaf]
            owner.register_parameter(leaf, torch.nn.Parameter(step.tensor.build(where), requires_grad=False))
    if body.raises == "exception":
        raise PlantedError("body raised on purpose")
    if body.raises == "keyboard-interrupt":
        raise KeyboardInterrupt


def _exit_requirement(at_body_end: dict[str, Snapshot], overlapping: set[str], on_cpu: set[str]) -> str:
    """The requirement an unexpected exception at exit breaks: the data the body left says which."""
    if overlapping & on_cpu:
        return "DL-16"
    if on_cpu - set(at_body_end):
        return "DL-14"
    return "DL-9"


def _check_entry(
    module: torch.nn.Module,
    yielded: object,
    at_entry: dict[str, Snapshot],
    on_cpu: set[str],
    buffers: dict[str, tuple[torch.device, int]],
    target: torch.device,
) -> None:
    """Inside the block, before the body: DL-2 and DL-3."""
    with requirement("DL-2"):
        assert yielded is module, f"DL-2: the context yielded {yielded!r}, not the module"
    for name, param in module.named_parameters():
        before = at_entry[name]
        if name in on_cpu:
            with requirement("DL-2"):
                assert param.device == target, f"DL-2: {name} is on {param.device} inside, not {target}"
            with requirement("DL-2"):
                assert raw_bytes(param) == before.content, f"DL-2: {name} changed value on the move"
        else:
            with requirement("DL-3"):
                assert param.data_ptr() == before.data_ptr, f"DL-3: {name} was moved on entry"
    for name, buffer in module.named_buffers():
        with requirement("DL-3"):
            assert (buffer.device, buffer.data_ptr()) == buffers[name], (
                f"DL-3: buffer {name} was moved on entry, to {buffer.device}"
            )


# One property in one function, its phases in order (entry, body, exit), so that a failure's
# traceback reads top to bottom; hence its length.
def check_device_round_trip(
    device_loading_context: DeviceContext,
    spec: lst.ModuleSpec,
    body: lst.Body,
    target: torch.device,
    pinned: bool,
) -> None:
    """The device-state property (DL-2, DL-3, DL-5, DL-6, DL-9, DL-10..DL-18) for one example."""
    module = lst.build_module(spec, target)
    at_entry = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    entered = dict(module.named_parameters())
    buffers = {name: (b.device, b.data_ptr()) for name, b in module.named_buffers()}
    on_cpu = {name for name, snap in at_entry.items() if snap.device.type == "cpu"}
    at_body_end: dict[str, Snapshot] = {}
    overlapping: set[str] = set()
    planted: list[BaseException] = []
    raised: BaseException | None = None
    entry_failures: list[AssertionError] = []
    around = torch.device(target) if body.default_device else contextlib.nullcontext()
    with around:
        default_device = torch.get_default_device()
        try:
            with device_loading_context(module, target) as yielded:
                try:
                    _check_entry(module, yielded, at_entry, on_cpu, buffers, target)
                except AssertionError as failure:
                    entry_failures.append(failure)
                try:
                    run_body(module, body, target)
                except (PlantedError, KeyboardInterrupt) as error:
                    planted.append(error)
                    raise
                finally:
                    at_body_end = {name: Snapshot.of(p) for name, p in module.named_parameters()}
                    overlapping = {name for name, p in module.named_parameters() if overlaps(p.data)}
        except unittest.SkipTest:  # NotProvided
            raise
        except BaseException as error:  # every way out is judged below
            raised = error
        default_after = torch.get_default_device()
    if entry_failures:
        raise entry_failures[0]
    exit_req = _exit_requirement(at_body_end, overlapping, on_cpu)
    if not planted and raised is not None:
        # Nothing after a context that raised on its way out is observable as the spec means it.
        with requirement(exit_req):
            raise AssertionError(
                f"{exit_req}: the body returned but the context raised {type(raised).__name__}: {raised}"
            ) from raised
        stop_example(exit_req)
    if planted:
        with requirement(exit_req):
            assert raised is planted[0], (
                f"{exit_req}: the body raised {planted[0]!r} but the context let out {raised!r}"
            )
    with requirement("DL-18"):
        assert default_after == default_device, (
            f"DL-18: the context left the default device {default_after}, was {default_device}"
        )

    exit_params = dict(module.named_parameters())
    with requirement("DL-14"):
        assert set(exit_params) == set(at_body_end), (
            f"DL-14: the context changed which parameters exist: {sorted(at_body_end)} -> {sorted(exit_params)}"
        )
    for name, param in exit_params.items():
        if name not in at_body_end:  # DL-14's failure, above; nothing to compare it with
            continue
        _check_restored(
            name, param, at_body_end[name], name in on_cpu, name in overlapping, pinned, body, target, entered, at_entry
        )
    for name, buffer in module.named_buffers():
        with requirement("DL-3"):
            assert (buffer.device, buffer.data_ptr()) == buffers[name], f"DL-3: buffer {name} was moved at exit"


def _check_restored(
    name: str,
    param: torch.nn.Parameter,
    final: Snapshot,
    was_on_cpu: bool,
    overlapping: bool,
    pinned: bool,
    body: lst.Body,
    target: torch.device,
    entered: dict[str, torch.nn.Parameter],
    at_entry: dict[str, Snapshot],
) -> None:
    """One parameter after exit, each clause its own check: a failure of one (a wrong stride)
    leaves the others (the bytes, the pinning) observable."""
    if was_on_cpu:  # before the snapshot, which needs strided data
        with requirement("DL-17"):
            assert param.layout == torch.strided, f"DL-17: {name} was restored with layout {param.layout}"
        if param.layout != torch.strided:
            stop_example("DL-17")
    now = Snapshot.of(param)
    if not was_on_cpu:
        req_id = "DL-3" if name in at_entry else "DL-6"
        with requirement(req_id):
            assert now.data_ptr == final.data_ptr and now.device == final.device, (
                f"{req_id}: {name} was not recorded on CPU at entry but was moved on exit: "
                f"{final.describe()} -> {now.describe()}"
            )
        return
    under = f" under default device {target}" if body.default_device else ""
    # A parameter the body registered under a recorded name is DL-15's case of DL-10.
    restored = "DL-10" if param is entered.get(name) else "DL-15"
    with requirement(restored):
        assert now.device.type == "cpu", f"{restored}: {name} ({final.describe()}) ended on {now.device}{under}"
    if overlapping:
        with requirement("DL-16"):
            assert (now.size, now.dtype) == (final.size, final.dtype) and is_dense(param.data), (
                f"DL-16: {name}, left overlapping ({final.describe()}), was restored as {now.describe()}"
            )
        with requirement("DL-16"):
            assert now.content == final.content, f"DL-16: {name} restored with other values ({final.describe()})"
    else:
        with requirement("DL-11"):
            assert (now.size, now.stride, now.dtype) == (final.size, final.stride, final.dtype), (
                f"DL-11: {name} was restored as {now.describe()}, the body left {final.describe()}"
            )
        with requirement("DL-12"):
            assert now.content == final.content, f"DL-12: {name} restored with other bytes ({final.describe()})"
    # Pinning is a property of host memory: on another device DL-10's failure says it all.
    if now.device.type == "cpu" and param.untyped_storage().nbytes() > 0:
        with requirement("DL-5"):
            assert param.is_pinned() == pinned, (
                f"DL-5: {name} restored with is_pinned()={param.is_pinned()}, pinned memory available={pinned}"
            )


class no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


class FailsToMove(torch.Tensor):
    """Parameter data whose move to another device fails, as an out-of-memory would."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.to and _leaves_cpu(*args[1:], *kwargs.values()):
            raise PlantedError("planted failure while moving a parameter")
        return super().__torch_function__(func, types, args, kwargs)


def _leaves_cpu(*arguments: object) -> bool:
    devices = [a for a in arguments if isinstance(a, (torch.device, str))]
    return any(torch.device(d).type != "cpu" for d in devices)


def check_failed_move_is_undone(
    device_loading_context: DeviceContext, spec: lst.ModuleSpec, failing: int, target: torch.device
) -> None:
    """DL-7 for one example: the ``failing``-th parameter cannot be moved to ``target``."""
    module = lst.build_module(spec, target)
    names = [name for name, _ in module.named_parameters()]
    if not names:
        module.register_parameter("weight", torch.nn.Parameter(torch.zeros(2), requires_grad=False))
        names = ["weight"]
    doomed = names[failing % len(names)]
    owner, leaf = _owner(module, doomed)
    original = owner._parameters[leaf]
    assert original is not None  # named_parameters() yields only parameters that are set
    owner._parameters[leaf] = torch.nn.Parameter(original.data.as_subclass(FailsToMove), requires_grad=False)
    before = {name: Snapshot.of(p) for name, p in module.named_parameters()}
    with expect_raises(PlantedError, "DL-7", f"moving {doomed} failed"):
        with device_loading_context(module, target):
            with requirement("DL-7"):
                pytest.fail("DL-7: the body ran although a parameter failed to move")
    for name, param in module.named_parameters():
        with requirement("DL-7"):
            assert param.device.type == "cpu", f"DL-7: moving {doomed} failed, and {name} was left on {param.device}"
        with requirement("DL-7"):
            assert raw_bytes(param) == before[name].content, f"DL-7: {name} changed value"


def storage_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of every byte of ``tensor``'s storage (not only its view's)."""
    return torch.empty(0, dtype=torch.uint8).set_(tensor.untyped_storage().cpu()).clone()


def check_original_storages(
    module: torch.nn.Module,
    originals: dict[str, torch.Tensor],
    storages_at_entry: dict[str, torch.Tensor],
    at_body_end: dict[str, Snapshot],
    pinned: bool,
) -> None:
    """DL-19 after the context's exit: a parameter whose data is its original host tensor again
    was allowed to be (the body kept size, stride and dtype; the original meets DL-5; no other
    recorded parameter shares its storage), holds the body's values in the original view and
    wrote nothing else; every other original storage received nothing; no parameter took
    another's original storage."""
    storage_of = {name: t.untyped_storage().data_ptr() for name, t in originals.items() if t.untyped_storage().nbytes()}
    reused: set[str] = set()
    for name, param in module.named_parameters():
        ptr = param.untyped_storage().data_ptr()
        if name in storage_of and ptr == storage_of[name]:
            reused.add(name)
            _check_reuse(name, param, originals, storage_of, at_body_end[name], pinned)
            continue
        taken = sorted(other for other, other_ptr in storage_of.items() if other_ptr == ptr and other != name)
        with requirement("DL-19"):
            assert not taken, f"DL-19: {name} was restored into the original host storage of {', '.join(taken)}"
    for name, original in originals.items():
        expected = storages_at_entry[name]
        if name in reused:  # its view holds the body's values now (checked above); nothing else may change
            view = torch.empty(0, dtype=original.dtype).set_(
                expected.untyped_storage(), original.storage_offset(), original.size(), original.stride()
            )
            view.copy_(original)
        with requirement("DL-19"):
            assert torch.equal(storage_bytes(original), expected), (
                f"DL-19: the original host storage of {name} was written"
                + (" outside its view" if name in reused else ", though its values did not go back there")
            )


def _check_reuse(
    name: str,
    param: torch.Tensor,
    originals: dict[str, torch.Tensor],
    storage_of: dict[str, int],
    final: Snapshot,
    pinned: bool,
) -> None:
    """One parameter restored into its original host storage: DL-19's conditions held."""
    original = originals[name]
    event("DL-19: the original host storage was reused")
    kept = (tuple(original.size()), tuple(original.stride()), original.dtype)
    with requirement("DL-19"):
        assert (final.size, final.stride, final.dtype) == kept, (
            f"DL-19: {name} was restored into its original storage, but the body left {final.describe()}"
        )
    with requirement("DL-19"):
        assert original.is_pinned() == pinned, (
            f"DL-19: {name} was restored into original storage with is_pinned()={original.is_pinned()}, "
            f"pinned memory available={pinned}"
        )
    sharing = sorted(other for other, ptr in storage_of.items() if ptr == storage_of[name] and other != name)
    with requirement("DL-19"):
        assert not sharing, (
            f"DL-19: {name} was restored into its original storage, which {', '.join(sharing)} also had at entry"
        )
    where = (param.storage_offset(), tuple(param.size()), tuple(param.stride()))
    with requirement("DL-19"):
        assert where == (original.storage_offset(), *kept[:2]), (
            f"DL-19: {name} reuses the original storage at offset/size/stride {where}, not the original view's"
        )
    with requirement("DL-19"):
        assert raw_bytes(original) == final.content, f"DL-19: views of {name}'s original storage miss the body's values"
