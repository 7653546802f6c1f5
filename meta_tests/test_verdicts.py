"""Meta tests of the verdict rules (issue 8): PASS only for what was checked, expected
failures that cannot hide a new bug, SHOULD failures as warnings."""

from __future__ import annotations

import pytest
from loaderspec.conform.report import TestResult, judge, run_verdict
from loaderspec.conform.requirements import Requirement
from loaderspec.conform.runner import current_failures
from loaderspec.conform.xfails import Xfail, XfailFileError, dump_xfails, load_xfails

REQS = {
    "DL-10": Requirement("DL-10", "MUST", "restored", "device-loading"),
    "DL-5": Requirement("DL-5", "MUST", "pinned", "device-loading"),
    "DT-6": Requirement("DT-6", "SHOULD", "names the value", "default-dtype"),
    "QC-2": Requirement("QC-2", "MUST", "shared", "quant-config"),
}
EVIDENCE = "https://example.org/issue"


def _r(nodeid, outcome, reqs, message=""):
    return TestResult(nodeid=nodeid, outcome=outcome, requirements=reqs, examples=None, message=message)


def _run(results, xfails=(), **options):
    judgement = judge(results, REQS, list(xfails))
    return {v.id: v.verdict for v in judgement.verdicts}, run_verdict(results, judgement, **options), judgement


def test_a_requirement_the_machine_could_not_check_makes_the_run_incomplete():
    no_compiler = "simulated device unavailable: no C++ compiler found (g++ is not on PATH)"
    results = [
        _r("t.py::test_restore[sim]", "skipped", ["DL-10", "DL-5"], no_compiler),
        _r("t.py::q", "passed", ["QC-2"]),
    ]
    verdicts, verdict, judgement = _run(results)
    assert verdicts["DL-10"] == verdicts["DL-5"] == "unchecked"
    assert (verdict.word, verdict.exit_status) == ("INCOMPLETE", 3)
    assert "DL-10, DL-5" in verdict.line
    assert judgement.verdicts[0].reason == no_compiler


def test_a_requirement_whose_tests_ran_only_partly_is_not_passed():
    results = [
        _r("test_quant_config.py::test_wired", "not provided", ["QC-2"], "not provided by x: SupportsQuant"),
        _r("test_quant_config.py::test_later", "passed", ["QC-2"]),
    ]
    verdicts, _, judgement = _run(results)
    # What was checked passed; what could not run is said beside it, and --require-all fails it.
    assert verdicts["QC-2"] == "passed"
    assert judgement.verdicts[3].reason == "passed where checked; not provided: SupportsQuant"
    strict = run_verdict(results, judgement, require_all=True)
    assert (strict.exit_status, strict.line) == (1, "FAIL: 1 not provided (--require-all): QC-2"), strict


def test_should_failures_are_warnings():
    results = [_r("t.py::names", "failed", ["DT-6"], "E   AssertionError: DT-6: does not name it")]
    verdicts, verdict, _ = _run(results)
    assert verdicts["DT-6"] == "failed"
    assert verdict.exit_status == 0 and "1 SHOULD/MAY warning(s)" in verdict.line


def test_adapter_errors_are_their_own_verdict():
    results = [_r("t.py::restore", "adapter error", ["DL-10"], "E   NameError: name '_patch' is not defined")]
    verdicts, verdict, _ = _run(results)
    assert verdicts["DL-10"] == "adapter error" and verdict.exit_status == 4


def test_a_new_bug_under_an_expected_requirement_is_unexpected():
    known = Xfail("DL-10", "restores contiguous", EVIDENCE, match=r"DL-10: .*strides")
    old_bug = _r("t.py::restore", "failed", ["DL-10"], "E   AssertionError: DL-10: strides differ")
    new_bug = _r("t.py::tied", "failed", ["DL-10"], "E   AssertionError: DL-10: parameter left on sim")
    verdicts, verdict, _ = _run([old_bug, new_bug], [known])
    assert old_bug.expected_failure is known and new_bug.expected_failure is None
    assert verdicts["DL-10"] == "failed" and verdict.exit_status == 1


def test_an_entry_naming_a_test_excuses_only_that_test():
    known = Xfail("DL-10", "r", EVIDENCE, test="test_restore")
    excused = _r("t.py::test_restore[sim-pinned]", "failed", ["DL-10"], "E   AssertionError: DL-10: x")
    other = _r("t.py::test_tied", "failed", ["DL-10"], "E   AssertionError: DL-10: x")
    _run([excused, other], [known])
    assert excused.expected_failure is known and other.expected_failure is None


def test_every_error_line_of_a_multiple_failure_must_be_excused():
    message = "E   | AssertionError: DL-10: strides differ\nE   | AssertionError: DL-5: not pinned"
    result = _r("t.py::restore", "failed", ["DL-10", "DL-5"], message)
    verdicts, _, _ = _run([result], [Xfail("DL-10", "r", EVIDENCE, match="strides")])
    assert verdicts == {"DL-10": "expected failure", "DL-5": "failed", "DT-6": "not selected", "QC-2": "not selected"}


def test_entries_of_requirements_not_selected_are_not_stale():
    xfails = [Xfail("DL-10", "r", EVIDENCE), Xfail("QC-2", "r", EVIDENCE, match="gone")]
    results = [_r("t.py::q", "failed", ["QC-2"], "E   AssertionError: QC-2: another bug")]
    _, _, judgement = _run(results, xfails)
    assert [x.id for x in judgement.stale] == ["QC-2"]  # ran, failed otherwise; DL-10 was not selected


def test_write_xfails_entries_excuse_exactly_what_was_seen(tmp_path):
    seen = _r(
        "test_device_loading.py::test_restore[sim]",
        "failed",
        ["DL-10", "DL-5"],
        "E   AssertionError: DL-5: restored data of 'w' (shape (2, 3)) is not pinned",
    )
    path = tmp_path / "x.toml"
    path.write_text(dump_xfails(current_failures([seen])))
    entries = load_xfails(path, known_ids=REQS)
    assert [(e.id, e.test) for e in entries] == [("DL-5", "test_restore")]
    # Every word that states the failure is kept; only the example's name and numbers are generalized.
    assert entries[0].match and "is not pinned" in entries[0].match and "'w'" not in entries[0].match
    verdicts, _, _ = _run([seen], entries)
    assert verdicts["DL-5"] == "expected failure"
    other_bug = _r(
        "test_device_loading.py::test_restore[sim]",
        "failed",
        ["DL-10", "DL-5"],
        "E   AssertionError: DL-5: restored data of 'b' (shape (4,)) is pinned though pinned memory is unavailable",
    )
    verdicts, _, _ = _run([other_bug], entries)
    assert verdicts["DL-5"] == "failed", "a second DL-5 bug must not hide under the entry written for the first"
    different = _r("test_device_loading.py::test_restore[sim]", "failed", ["DL-10", "DL-5"], "E   ValueError: DL-5: x")
    verdicts, _, _ = _run([different], entries)
    assert verdicts["DL-5"] == "failed"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('id = "dl-10"', "write the ID upper case: 'DL-10'"),
        ('id = "ZZ-9"', "ZZ-9 is not a requirement of the spec"),
        ('id = "DL-4"', "DL-4 is not a requirement of the spec any more: it was withdrawn; its cases are now DL-10"),
        ('id = "DL4"', "is not a requirement ID"),
        ('id = "test_device_loading.py::test_restore"', "name a test with test ="),
        ('id = "DL-10"\nmatch = "("', "is not a valid regular expression"),
        ('id = "DL-10"\ntest = ""', "test must be a non-empty string"),
    ],
)
def test_bad_ids_and_patterns_are_refused(tmp_path, entry, problem):
    path = tmp_path / "bad.toml"
    path.write_text(f'[[xfail]]\n{entry}\nreason = "r"\nevidence = "e"\n')
    with pytest.raises(XfailFileError) as raised:
        load_xfails(path, known_ids=REQS)
    assert problem in str(raised.value) and "bad.toml: entry 1" in str(raised.value)


def test_duplicate_entries_are_refused(tmp_path):
    path = tmp_path / "dup.toml"
    entry = '[[xfail]]\nid = "DL-10"\nreason = "r"\nevidence = "e"\n'
    path.write_text(entry + "\n" + entry)
    with pytest.raises(XfailFileError, match=r"entry 2 .*repeats entry 1"):
        load_xfails(path, known_ids=REQS)


def test_a_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[[xfail]]\nid = "DL-10"\nreason = "caf\xe9"\nevidence = "e"\n'.encode("latin-1"))
    with pytest.raises(XfailFileError, match="not UTF-8"):
        load_xfails(path)


def test_requirements_stopped_at_a_known_failure_are_left_out_of_the_pass():
    known = Xfail("DL-10", "r", EVIDENCE)
    results = [_r("t.py::restore", "failed", ["DL-10", "DL-5"], "E   AssertionError: DL-10: not restored")]
    verdicts, verdict, _ = _run(results, [known])
    assert verdicts["DL-10"] == "expected failure" and verdicts["DL-5"] == "inconclusive"
    # An inconclusive MUST requirement makes the run INCOMPLETE, unless the user accepts it.
    assert verdict.exit_status == 3 and "1 MUST requirement(s) inconclusive" in verdict.line, verdict
    allowed = run_verdict(results, _run(results, [known])[2], allow_inconclusive=True)
    assert allowed.line == "PASS for 1 of 4 requirements (1 as expected failures); 1 inconclusive; 2 not selected"
