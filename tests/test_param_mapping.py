"""Param mapping (spec/param-mapping.md): ``ParamMapping`` inverts a packed mapping
and finds the packed entry a module name refers to."""

from __future__ import annotations

import copy
import types
import unittest

import pytest
from hypothesis import event, given
from loaderspec.support.checks import requirement

from . import strategies as lst
from .support.errors import expect_success, tolerating_errors


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
    with requirement("PM-1"):
        assert param_mapping.packed_mapping is mapping, "PM-1: packed_mapping is not the object given"
    with requirement("PM-1"):
        assert mapping == original, f"PM-1: construction changed the mapping: {original} -> {mapping}"


@pytest.mark.req("PM-2")
@given(mapping=lst.packed_mappings())
def test_inverse_holds_exactly_the_sub_names(impl, mapping):
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    expected_keys = {sub for sub, _, _ in _occurrences(mapping)}
    with requirement("PM-2"):
        assert set(inverse) == expected_keys, (
            f"PM-2: inverse keys {sorted(inverse)} for mapping {mapping}; expected {sorted(expected_keys)}"
        )


@pytest.mark.req("PM-3")
@given(mapping=lst.packed_mappings())
def test_inverse_points_at_the_last_occurrence(impl, mapping):
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    occurrences = _occurrences(mapping)
    for sub, (packed, index) in inverse.items():
        with requirement("PM-3"):
            assert mapping[packed][index] == sub, (
                f"PM-3: inverse[{sub!r}] = ({packed!r}, {index}) but mapping[{packed!r}] = {mapping[packed]}"
            )
        last = [(p, i) for s, p, i in occurrences if s == sub][-1]
        with requirement("PM-3"):
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
                with requirement("PM-3"):
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
                with requirement("PM-4"):
                    assert packed not in inverse, (
                        f"PM-4: self-contained {packed!r} appears in the inverse: {inverse[packed]}"
                    )
            with requirement("PM-4"):
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
        with requirement("PM-5"):
            assert found is None, f"PM-5: {module_name!r} names no entry of {list(mapping)}, got {found}"
        return
    key = matching[0]
    with requirement("PM-5"):
        assert found is not None and found[0] == key, (
            f"PM-5: {module_name!r} names {matching} (first: {key!r}) in {list(mapping)}, got {found}"
        )
    with requirement("PM-5"):
        assert found[1] is mapping[key], "PM-5: get_sub_modules returned a copy, not the stored list"


@pytest.mark.req("PM-5")
def test_kv_proj_does_not_match_qkv_proj(impl):
    mapping = {"kv_proj": ["k_proj", "v_proj"], "qkv_proj": ["q_proj", "k_proj", "v_proj"]}
    found = impl.ParamMapping(mapping).get_sub_modules("model.layers.0.self_attn.qkv_proj")
    with requirement("PM-5"):
        assert found == ("qkv_proj", ["q_proj", "k_proj", "v_proj"]), (
            f"PM-5: 'self_attn.qkv_proj' resolved to {found} (MiniCPM-V has both kv_proj and qkv_proj)"
        )


def _rejection(impl, malformed, req_id: str) -> BaseException:
    """The exception ``ParamMapping(malformed.value)`` raises, of any type."""
    try:
        impl.ParamMapping(malformed.value)
    except unittest.SkipTest:
        raise
    except Exception as error:
        return error
    with requirement(req_id):
        pytest.fail(f"{req_id}: ParamMapping({malformed.value!r}) was accepted")


def _check_type(impl, malformed, req_id: str) -> None:
    error = _rejection(impl, malformed, req_id)
    with requirement(req_id):
        assert isinstance(error, malformed.error), (
            f"{req_id}: ParamMapping({malformed.value!r}) raised {type(error).__name__}: {error}, "
            f"expected {malformed.error.__name__}"
        )


@pytest.mark.req("PM-7")
@given(malformed=lst.malformed_packed_mappings(lst.WRONG_TYPES))
def test_a_mapping_of_the_wrong_types_is_a_type_error(impl, malformed):
    _check_type(impl, malformed, "PM-7")


@pytest.mark.req("PM-8")
@given(malformed=lst.malformed_packed_mappings(lst.EMPTY_NAMES))
def test_an_empty_name_is_a_value_error(impl, malformed):
    _check_type(impl, malformed, "PM-8")


@pytest.mark.req("PM-9")
@given(malformed=lst.malformed_packed_mappings())
def test_the_rejection_names_the_offending_part(impl, malformed):
    error = _rejection(impl, malformed, "PM-9")
    with requirement("PM-9"):
        assert repr(malformed.offending) in str(error), (
            f"PM-9: the error for {malformed.value!r} does not name {malformed.offending!r}: {error}"
        )


@pytest.mark.req("PM-10")
@given(malformed=lst.malformed_packed_mappings())
def test_a_rejected_mapping_is_left_as_it_was(impl, malformed):
    before = copy.deepcopy(malformed.value)
    with tolerating_errors():  # accepted or rejected, the argument must be unchanged
        impl.ParamMapping(malformed.value)
    with requirement("PM-10"):
        assert malformed.value == before, f"PM-10: ParamMapping({before!r}) changed it to {malformed.value!r}"


@pytest.mark.req("PM-11")
@given(case=lst.mappings_with_given_inverse())
def test_a_given_inverse_is_extended_in_place(impl, case):
    mapping, given_entries = case
    supplied = dict(given_entries)
    param_mapping = impl.ParamMapping(mapping, supplied)
    with requirement("PM-11"):
        assert param_mapping.inverse_packed_mapping is supplied, "PM-11: inverse_packed_mapping is not the dict given"
    last = {sub: (packed, index) for sub, packed, index in _occurrences(mapping)}
    expected = {**given_entries, **last}
    event("PM-11: a given entry is overwritten" if set(given_entries) & set(last) else "PM-11: given entries kept")
    with requirement("PM-11"):
        assert supplied == expected, f"PM-11: given {given_entries} and mapping {mapping}, the inverse is {supplied}"


# --- single clauses at their boundaries (meta_tests/clauses.py) ------------------------------


@pytest.mark.req("PM-1")
@given(mapping=lst.packed_mappings())
def test_a_mapping_that_is_not_a_dict_is_kept_as_given(impl, mapping):
    proxy = types.MappingProxyType(mapping)
    with expect_success("PM-1", f"ParamMapping({proxy!r}) (a mapping, not a dict)"):
        param_mapping = impl.ParamMapping(proxy)
    with requirement("PM-1"):
        assert param_mapping.packed_mapping is proxy, "PM-1: packed_mapping is not the mappingproxy given"


@pytest.mark.req("PM-4")
@given(subs=lst.st.sampled_from(lst.SELF_INCLUDING_ENTRIES))
def test_an_entry_listing_its_own_name_among_others_is_not_self_contained(impl, subs):
    mapping = {"W": list(subs)}
    inverse = impl.ParamMapping(mapping).inverse_packed_mapping
    with requirement("PM-4"):
        assert "W" in inverse and inverse["W"][0] == "W", (
            f"PM-4: the entry W: {list(subs)} is not self-contained, so W maps into it; the inverse is {inverse}"
        )


@pytest.mark.req("PM-5")
@given(case=lst.overlapping_key_cases())
def test_the_first_matching_key_wins(impl, case):
    mapping, module_name = case
    found = impl.ParamMapping(mapping).get_sub_modules(module_name)
    matching = [key for key in mapping if _names_entry(module_name, key)]
    with requirement("PM-5"):
        assert found is not None and found[0] == matching[0], (
            f"PM-5: {module_name!r} names {matching} (first: {matching[0]!r}) in {list(mapping)}, got {found}"
        )


@pytest.mark.req("PM-7")
@given(mapping=lst.packed_mappings().filter(bool))
def test_tuple_values_are_accepted(impl, mapping):
    tupled = {key: tuple(subs) for key, subs in mapping.items()}
    with expect_success("PM-7", f"ParamMapping({tupled!r}) (tuples of str are valid values)"):
        impl.ParamMapping(tupled)


@pytest.mark.req("PM-9")
@given(malformed=lst.doubly_malformed_packed_mappings())
def test_the_rejection_names_the_first_offending_part(impl, malformed):
    error = _rejection(impl, malformed, "PM-9")
    with requirement("PM-9"):
        assert repr(malformed.offending) in str(error), (
            f"PM-9: the error for {malformed.value!r} does not name the first bad part {malformed.offending!r}: {error}"
        )
