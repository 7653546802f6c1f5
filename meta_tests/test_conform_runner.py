"""Meta tests of ``loaderspec conform`` itself: verdicts, expected-failure files, and
what happens with bad input, crashing and hanging implementations."""

from __future__ import annotations

import pytest
from loaderspec.adapter import AdapterError, load_adapter
from loaderspec.conform.report import TestResult, judge, run_verdict
from loaderspec.conform.requirements import Requirement
from loaderspec.conform.xfails import Xfail, XfailFileError, dump_xfails, load_xfails

from .conform_process import outcomes_by_test, run_conform

REQS = {r: Requirement(r, "MUST", r, "x") for r in ("DT-7", "DT-4", "PM-5")}


def _result(nodeid, outcome, reqs, message=""):
    return TestResult(nodeid=nodeid, outcome=outcome, requirements=reqs, examples=10, message=message)


def _verdicts(results, xfails=()):
    judgement = judge(results, REQS, list(xfails))
    return {v.id: v.verdict for v in judgement.verdicts}, judgement.stale


def exit_status(results, xfails=()):
    return run_verdict(results, judge(results, REQS, list(xfails))).exit_status


def test_failure_counts_against_the_requirement_its_message_names():
    results = [_result("test_a.py::t", "failed", ["DT-7", "DT-4"], "E   AssertionError: DT-4: nested leak")]
    verdicts, _ = _verdicts(results)
    assert verdicts == {"DT-7": "inconclusive", "DT-4": "failed", "PM-5": "not selected"}


def test_failure_without_an_id_counts_against_all_cited():
    verdicts, _ = _verdicts([_result("test_a.py::t", "failed", ["DT-7", "DT-4"], "E   ZeroDivisionError")])
    assert verdicts["DT-7"] == verdicts["DT-4"] == "failed"


def test_expected_failures_and_unexpected_passes():
    xfails = [Xfail("DT-7", "leaks", "https://example.org/1"), Xfail("PM-5", "suffix match", "https://example.org/2")]
    results = [
        _result("test_a.py::t", "failed", ["DT-7"], "E   AssertionError: DT-7: leak"),
        _result("test_b.py::u", "passed", ["PM-5"]),
        _result("test_c.py::v", "passed", ["DT-4"]),
    ]
    verdicts, stale = _verdicts(results, xfails)
    assert verdicts == {"DT-7": "expected failure", "DT-4": "passed", "PM-5": "unexpected pass"}
    assert stale == []
    assert exit_status(results, xfails) == 1  # the unexpected pass


def test_collected_but_not_run_leaves_the_run_incomplete():
    results = [_result("test_a.py::t", "passed", ["DT-7"]), _result("test_b.py::u", "not run", ["DT-4"])]
    verdicts, _ = _verdicts(results)
    assert verdicts["DT-4"] == "unchecked"
    assert exit_status(results) == 3
    assert exit_status([]) == 3  # nothing ran at all


def test_expected_failure_by_test_name_matches_parametrized_nodes():
    xfails = [Xfail("DT-7", "known", "https://example.org", test="test_a.py::t")]
    results = [_result("test_a.py::t[sim-pinned]", "failed", ["DT-7"], "E   AssertionError: DT-7: x")]
    judgement = judge(results, REQS, xfails)
    assert results[0].expected_failure is xfails[0] and not judgement.stale
    assert exit_status(results, xfails) == 0


def test_xfail_file_round_trips(tmp_path):
    entries = [
        Xfail("DT-7", 'no "finally"', "https://github.com/vllm-project/vllm/pull/51064"),
        Xfail("DT-7", "other", "https://example.org", test="test_x", match=r"DT-7: \(leak\)"),
    ]
    path = tmp_path / "x.toml"
    path.write_text(dump_xfails(entries, "header"))
    assert load_xfails(path) == entries


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[xfail]]\nid = 'DT-7'\nreason = 'r'\n", "lacks evidence"),
        ("[[xfail]]\nid = 'DT-7'\nreason = 'r'\nevidence = 'e'\nseverity = 1\n", "unknown keys severity"),
        ("xfail = 3\n", "array of tables"),
        ("[[xfail]\n", "not valid TOML"),
        ("[other]\n", "unknown top-level keys"),
    ],
)
def test_malformed_xfail_file_is_named(tmp_path, text, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(XfailFileError, match=r"bad\.toml") as raised:
        load_xfails(path)
    assert problem in str(raised.value)


def test_unknown_impl_is_a_clear_error():
    with pytest.raises(AdapterError, match=r"no_such_engine_module.*reference, vllm"):
        load_adapter("no_such_engine_module")
    with pytest.raises(AdapterError, match=r"not a loaderspec Adapter|defines none of"):
        load_adapter("json")


def test_a_crashing_implementation_is_reported_and_the_run_continues(tmp_path):
    status, output, data = run_conform(
        tmp_path,
        "--impl",
        "meta_tests.broken_adapters:CRASHING",
        "-k",
        "test_packed_mapping_is_kept_as_given or test_inverse_holds or test_normal_exit_restores",
    )
    outcomes = outcomes_by_test(data)
    assert status == 1, output
    assert outcomes["test_packed_mapping_is_kept_as_given"] == "crashed", outcomes
    assert outcomes["test_inverse_holds_exactly_the_sub_names"] == "crashed", outcomes
    assert outcomes["test_normal_exit_restores_the_default"] == "passed", outcomes
    assert "the test process died" in output


def test_the_crash_limit_is_an_option(tmp_path):
    status, output, data = run_conform(
        tmp_path,
        "--impl",
        "meta_tests.broken_adapters:CRASHING",
        "--max-crashes",
        "0",
        "-k",
        "test_packed_mapping_is_kept_as_given or test_inverse_holds",
    )
    outcomes = outcomes_by_test(data)
    assert sorted(outcomes.values()) == ["crashed", "not run"], outcomes
    assert status == 1 and "stopped after 0 crashes (--max-crashes)" in output, output


def test_a_hanging_implementation_is_stopped(tmp_path):
    status, output, data = run_conform(
        tmp_path,
        "--impl",
        "meta_tests.broken_adapters:HANGING",
        "--timeout",
        "5",
        "-k",
        "test_non_default_dtype_is_rejected or test_kv_proj_does_not_match_qkv_proj",
    )
    outcomes = outcomes_by_test(data)
    assert status == 3 and "INCOMPLETE" in output and "raise --timeout" in output, output
    assert outcomes["test_non_default_dtype_is_rejected_and_changes_nothing"] == "timeout", outcomes
    # runs after the hang, in a fresh process; takes microseconds, so no load can time it out
    assert outcomes["test_kv_proj_does_not_match_qkv_proj"] == "passed", outcomes


def test_missing_names_and_hooks_are_not_provided(tmp_path):
    status, output, data = run_conform(
        tmp_path,
        "--impl",
        "meta_tests.broken_adapters:HOOKLESS",
        "-k",
        "test_packed_mapping_is_kept_as_given or test_the_mapper_itself_is_applied_first or test_the_mapping_is_shared"
        " or test_supports_quant_classes_are_left_alone or test_missing_or_none_attributes_do_nothing",
    )
    verdicts = {r["id"]: r["verdict"] for r in data["requirements"]}
    assert verdicts["PM-1"] == "not provided" and verdicts["QC-1"] == "not provided", verdicts
    assert "missing_hooks   model_config" in output and status == 0, output
    assert "PM-1: ParamMapping" in output and "QC-1, QC-2, QC-3, QC-4: hook quant_config()" in output, output
    assert "verdict: PASS for 0 of 78 requirements; 5 not provided; 73 not selected" in output, output


def test_malformed_xfail_file_stops_the_run_with_its_name(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[xfail]]\nid = 'DT-7'\n")
    status, output, _ = run_conform(tmp_path, "--xfails", str(bad))
    assert status == 2 and "bad.toml" in output and "evidence" in output, output
