"""Param mapping (spec/param-mapping.md): ``ParamMapping`` inverts a packed mapping
and finds the packed entry a module name refers to."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given

from . import strategies as lst
from .support.errors import expect_raises


def _self_contained(packed: str, subs: list[str]) -> bool:
    return len(subs) == 1 and subs[0] == packed


def _occurrences(mapping: dict[str, list[str]]) -> list[tuple[str, str, int]]:
    """(sub-name, packed name, index) for every non-self-contained entry, in mapping order."""
    return [
        (sub, packed, index)
        for packed, subs in mapping.items()
        if not _self_contained(packed, subs)
        for index, sub in enumerate(subs)
    ]


@pytest.mark.req("PM-1")
@given(mapping=lst.packed_mappings())
def test_packed_mapping_is_kept_as_given(impl, mapping):
    original = copy.deepcopy(mapping)
    param_mapping = impl.ParamMapping(mapping)
    assert param_mapping.packed_mapping is mapping, "PM-1: packed_mapping is not the object given"
    assert mapping == original, f"PM-1: construction changed the mapping: {original} -> {mapping}"


@pytest.mark.req("PM-2")
@given(mapping=lst.packed_mappings())
def test_inverse_holds_exactly_the_sub_names(impl, mapping):
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    expected_keys = {sub for sub, _, _ in _occurrences(mapping)}
    assert set(inverse) == expected_keys, (
        f"PM-2: inverse keys {sorted(inverse)} for mapping {mapping}; expected {sorted(expected_keys)}"
    )


@pytest.mark.req("PM-3")
@given(mapping=lst.packed_mappings())
def test_inverse_points_at_the_last_occurrence(impl, mapping):
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    occurrences = _occurrences(mapping)
    for sub, (packed, index) in inverse.items():
        assert mapping[packed][index] == sub, (
            f"PM-3: inverse[{sub!r}] = ({packed!r}, {index}) but mapping[{packed!r}] = {mapping[packed]}"
        )
        last = [(p, i) for s, p, i in occurrences if s == sub][-1]
        assert (packed, index) == last, (
            f"PM-3: {sub!r} occurs last at {last} in {mapping}, but inverse says ({packed!r}, {index})"
        )


@pytest.mark.req("PM-3")
@given(mapping=lst.packed_mappings())
def test_packed_to_subs_to_packed_round_trips(impl, mapping):
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    last = {sub: (packed, index) for sub, packed, index in _occurrences(mapping)}
    for packed, subs in mapping.items():
        for index, sub in enumerate(subs):
            if last.get(sub) == (packed, index):
                assert inverse.get(sub) == (packed, index), (
                    f"PM-3: mapping[{packed!r}][{index}] = {sub!r} maps back to {inverse.get(sub)}"
                )


@pytest.mark.req("PM-4")
@given(mapping=lst.packed_mappings())
def test_self_contained_entries_are_skipped(impl, mapping):
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    for packed, subs in mapping.items():
        if _self_contained(packed, subs):
            referenced_elsewhere = any(packed in other for name, other in mapping.items() if name != packed)
            if not referenced_elsewhere:
                assert packed not in inverse, (
                    f"PM-4: self-contained {packed!r} appears in the inverse: {inverse[packed]}"
                )
            assert all(value[0] != packed for value in inverse.values()), (
                f"PM-4: the inverse points into self-contained entry {packed!r}: {inverse}"
            )


def _names_entry(module_name: str, key: str) -> bool:
    return module_name == key or module_name.endswith("." + key)


@pytest.mark.req("PM-5")
@given(data=lst.st.data(), mapping=lst.packed_mappings())
def test_get_sub_modules_matches_whole_components(impl, data, mapping):
    module_name = data.draw(lst.module_names_for(mapping), label="module_name")
    found = impl.ParamMapping(mapping).get_sub_modules(module_name)
    matching = [key for key in mapping if _names_entry(module_name, key)]
    if not matching:
        assert found is None, f"PM-5: {module_name!r} names no entry of {list(mapping)}, got {found}"
        return
    key = matching[0]
    assert found is not None and found[0] == key, (
        f"PM-5: {module_name!r} names {matching} (first: {key!r}) in {list(mapping)}, got {found}"
    )
    assert found[1] is mapping[key], "PM-5: get_sub_modules returned a copy, not the stored list"


@pytest.mark.req("PM-5")
def test_kv_proj_does_not_match_qkv_proj(impl):
    mapping = {"kv_proj": ["k_proj", "v_proj"], "qkv_proj": ["q_proj", "k_proj", "v_proj"]}
    found = impl.ParamMapping(mapping).get_sub_modules("model.layers.0.self_attn.qkv_proj")
    assert found == ("qkv_proj", ["q_proj", "k_proj", "v_proj"]), (
        f"PM-5: 'self_attn.qkv_proj' resolved to {found} (MiniCPM-V has both kv_proj and qkv_proj)"
    )


@pytest.mark.req("PM-6")
@given(bad=lst.malformed_packed_mappings)
def test_malformed_mapping_is_rejected(impl, bad):
    with expect_raises((TypeError, ValueError), "PM-6", f"ParamMapping({bad!r})") as raised:
        impl.ParamMapping(bad)
    message = str(raised.value)
    offending = _offending_part(bad)
    assert offending in message, f"PM-6: the error for {bad!r} does not name {offending}: {message}"


def _offending_part(bad: object) -> str:
    if not isinstance(bad, dict):
        return repr(bad)
    for key, value in bad.items():
        if not isinstance(key, str) or not key:
            return repr(key)
        if not isinstance(value, list):
            return repr(value)
        for sub in value:
            if not isinstance(sub, str) or not sub:
                return repr(sub)
    raise AssertionError(f"{bad!r} is not malformed")


# --- added by the mutation run (tools/mutants/survivors.md): the exception type is specified ---


@pytest.mark.req("PM-6")
@pytest.mark.parametrize(("bad", "expected"), lst.MALFORMED_PACKED_MAPPINGS_BY_ERROR, ids=repr)
def test_malformed_mapping_raises_the_specified_type(impl, bad, expected):
    with expect_raises(expected, "PM-6", f"ParamMapping({bad!r})"):
        impl.ParamMapping(bad)
