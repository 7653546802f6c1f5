"""Default dtype (spec/default-dtype.md): ``set_default_torch_dtype`` sets the
default for its block and restores the previous one on every way out."""

from __future__ import annotations

import unittest

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from loaderspec.support.checks import requirement

from . import strategies as lst
from .support.errors import PlantedError, expect_raises, expect_success

floating = st.sampled_from(lst.DEFAULT_DTYPES)


def _leave(how: str) -> BaseException | None:
    """Raise the exception a body leaving ``how`` raises (returned by the raise's caller)."""
    if how == "exception":
        raise PlantedError("body raised on purpose")
    if how == "keyboard-interrupt":
        raise KeyboardInterrupt
    return None


def _run_block(set_default_torch_dtype, dtype: torch.dtype, how: str) -> torch.dtype:
    """Run one block that leaves ``how``; return the default dtype seen inside. Whatever the
    body raised must come out of the block as the same object (DT-8)."""
    if how == "generator-closed":
        seen = []

        def producer():
            with set_default_torch_dtype(dtype):
                seen.append(torch.get_default_dtype())
                yield 1
                yield 2

        stream = producer()
        next(stream)
        try:
            stream.close()  # GeneratorExit is raised inside the with block
        except RuntimeError as error:  # "generator ignored GeneratorExit": it was swallowed
            with requirement("DT-8"):
                pytest.fail(f"DT-8: the block swallowed GeneratorExit: {error}")
        return seen[0]
    inside = None
    thrown: list[BaseException] = []
    try:
        with set_default_torch_dtype(dtype):
            inside = torch.get_default_dtype()
            try:
                _leave(how)
            except BaseException as error:
                thrown.append(error)
                raise
    except (PlantedError, KeyboardInterrupt) as error:
        with requirement("DT-8"):
            assert thrown and error is thrown[0], f"DT-8: the body raised {thrown} but the block let out {error!r}"
    except unittest.SkipTest:  # NotProvided
        raise
    except Exception as error:
        body = "returned" if how == "return" else f"raised {thrown!r}"
        with requirement("DT-8"):
            pytest.fail(f"DT-8: the body {body} but the block raised {error!r}")
    else:
        with requirement("DT-8"):
            assert how == "return", f"DT-8: the body left by {how} but the exception was swallowed"
    assert inside is not None  # set first thing in the body, and every path to here ran the body
    return inside


def _before_inside_after(set_default_torch_dtype, before, dtype, how):
    torch.set_default_dtype(before)
    try:
        inside = _run_block(set_default_torch_dtype, dtype, how)
        return inside, torch.get_default_dtype()
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.req("DT-1")
@given(before=floating, dtype=floating, how=st.sampled_from(lst.BODY_EXITS))
def test_default_is_set_inside_the_block(impl, before, dtype, how):
    inside, _ = _before_inside_after(impl.set_default_torch_dtype, before, dtype, how)
    with requirement("DT-1"):
        assert inside == dtype, f"DT-1: inside the block the default was {inside}, not {dtype}"


@pytest.mark.req("DT-2")
@given(before=floating, dtype=floating)
def test_normal_exit_restores_the_default(impl, before, dtype):
    _, after = _before_inside_after(impl.set_default_torch_dtype, before, dtype, "return")
    with requirement("DT-2"):
        assert after == before, f"DT-2: after the body returned, the default is {after}, was {before}"


@pytest.mark.req("DT-7")
@given(before=floating, dtype=floating, how=st.sampled_from(lst.EXCEPTIONAL_EXITS))
def test_every_exceptional_exit_restores_the_default(impl, before, dtype, how):
    _, after = _before_inside_after(impl.set_default_torch_dtype, before, dtype, how)
    with requirement("DT-7"):
        assert after == before, f"DT-7: after a body that left by {how}, the default is {after}, was {before}"


@pytest.mark.req("DT-8")
@given(dtype=floating, how=st.sampled_from(lst.BODY_EXITS))
def test_the_body_exception_propagates_unchanged(impl, dtype, how):
    _before_inside_after(impl.set_default_torch_dtype, torch.float32, dtype, how)


@pytest.mark.req("DT-4")
@given(
    before=floating,
    levels=st.lists(st.tuples(floating, st.sampled_from(lst.BODY_EXITS)), min_size=1, max_size=4),
)
def test_nested_blocks_restore_their_own_entry_dtype(impl, before, levels):
    set_default_torch_dtype = impl.set_default_torch_dtype
    torch.set_default_dtype(before)
    observed: list[tuple[int, torch.dtype, torch.dtype]] = []

    def nest(depth: int) -> None:
        dtype, how = levels[depth]
        entry = torch.get_default_dtype()
        try:
            with set_default_torch_dtype(dtype):
                if depth + 1 < len(levels):
                    nest(depth + 1)
                _leave("exception" if how == "generator-closed" else how)
        except (PlantedError, KeyboardInterrupt):
            pass
        observed.append((depth, entry, torch.get_default_dtype()))

    nest(0)
    final = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    for depth, entry, after in observed:
        with requirement("DT-4"):
            assert after == entry, f"DT-4: level {depth} was entered with {entry} and left {after}"
    with requirement("DT-4"):
        assert final == before, f"DT-4: after all levels the default is {final}, was {before}"


def _reject(set_default_torch_dtype, before, bad):
    """Enter a block with ``bad``; return (the error, whether the body ran, the default after)."""
    torch.set_default_dtype(before)
    ran = []
    try:
        with expect_raises(TypeError, "DT-5", f"set_default_torch_dtype({bad!r})") as raised:
            with set_default_torch_dtype(bad):
                ran.append(True)
        return raised.value, bool(ran), torch.get_default_dtype()
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.req("DT-5")
@given(before=floating, bad=lst.non_default_dtypes)
def test_non_default_dtype_is_rejected_and_changes_nothing(impl, before, bad):
    _, ran, after = _reject(impl.set_default_torch_dtype, before, bad)
    with requirement("DT-5"):
        assert not ran, f"DT-5: the body ran with {bad!r}"
    with requirement("DT-5"):
        assert after == before, f"DT-5: rejecting {bad!r} changed the default from {before} to {after}"


@pytest.mark.req("DT-6")
@given(before=floating, bad=lst.non_default_dtypes)
def test_the_rejection_names_the_value(impl, before, bad):
    error, _, _ = _reject(impl.set_default_torch_dtype, before, bad)
    with requirement("DT-6"):
        assert str(bad) in str(error), f"DT-6: the error does not name {bad!r}: {error}"


# --- single clauses at their boundaries (meta_tests/clauses.py) ------------------------------


@pytest.mark.req("DT-1")
@given(dtype=floating)
def test_the_block_target_is_none(impl, dtype):
    try:
        with impl.set_default_torch_dtype(dtype) as target:
            pass
    finally:
        torch.set_default_dtype(torch.float32)
    with requirement("DT-1"):
        assert target is None, f"DT-1: the block's `as` target is {target!r}, not None"


@pytest.mark.req("DT-2")
@given(defaults=st.lists(floating, min_size=2, max_size=2, unique=True), dtype=floating)
def test_the_default_restored_is_the_one_at_entry_not_at_call(impl, defaults, dtype):
    """The block is made under one default and entered under another: the one at entry is restored."""
    at_call, at_entry = defaults
    torch.set_default_dtype(at_call)
    try:
        block = impl.set_default_torch_dtype(dtype)
        torch.set_default_dtype(at_entry)
        with block:
            pass
        after = torch.get_default_dtype()
    finally:
        torch.set_default_dtype(torch.float32)
    with requirement("DT-2"):
        assert after == at_entry, f"DT-2: the block was entered with {at_entry} (made under {at_call}) and left {after}"


@pytest.mark.req("DT-5")
@given(before=floating, bad=lst.non_default_dtypes)
def test_a_bad_dtype_is_rejected_on_entry_not_on_call(impl, before, bad):
    torch.set_default_dtype(before)
    try:
        with expect_success("DT-5", f"set_default_torch_dtype({bad!r}), called without entering its block,"):
            block = impl.set_default_torch_dtype(bad)
        with expect_raises(TypeError, "DT-5", f"set_default_torch_dtype({bad!r}) entered"):
            with block:
                pass
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.req("DT-6")
@given(before=floating, bad=lst.non_default_dtypes)
@example(before=torch.float32, bad="float16")
def test_the_rejection_names_the_value_by_its_repr(impl, before, bad):
    error, _, _ = _reject(impl.set_default_torch_dtype, before, bad)
    with requirement("DT-6"):
        assert repr(bad) in str(error), f"DT-6: the error does not name {bad!r} (its repr): {error}"


@pytest.mark.req("DT-7")
@given(before=floating, dtype=floating, raised=st.sampled_from(lst.OTHER_BASE_EXCEPTIONS))
def test_other_base_exceptions_restore_the_default(impl, before, dtype, raised):
    """``SystemExit`` and a ``BaseException`` of the caller's own restore the default too."""
    torch.set_default_dtype(before)
    try:
        try:
            with impl.set_default_torch_dtype(dtype):
                raise raised("body raised on purpose")
        except raised:
            pass
        after = torch.get_default_dtype()
    finally:
        torch.set_default_dtype(torch.float32)
    with requirement("DT-7"):
        assert after == before, (
            f"DT-7: after a body that raised {raised.__name__}, the default is {after}, was {before}"
        )
