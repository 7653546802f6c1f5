"""What CI shows of a run: the JUnit XML report (validated against Jenkins' published schema,
meta_tests/schemas/junit-10.xsd, and read back by junitparser, a JUnit consumer from PyPI), the
GitHub step summary and the GitHub annotations, for the reference, a planted broken adapter
and vLLM 0.9.2's committed report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import junitparser
import pytest
import xmlschema
from loaderspec.conform.ci_outputs import render_junit, verdicts_of_report
from loaderspec.conform.requirements import load_requirements

from .conform_process import REPO, run_conform

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "schemas" / "junit-10.xsd"))
BROKEN = "meta_tests.broken_adapters"


def _read(path: Path) -> dict[str, dict[str, str]]:
    """Per requirement ID, what junitparser makes of its testcase: result kind and message."""
    cases = {}
    for suite in junitparser.JUnitXml.fromfile(str(path)):
        for case in suite:
            kind = type(case.result[0]).__name__ if case.result else "passed"
            message = case.result[0].message if case.result else ""
            cases[case.name.split()[0]] = {"kind": kind, "message": message or "", "chapter": case.classname}
    return cases


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory) -> tuple[int, str, dict, Path, Path]:
    tmp_path = tmp_path_factory.mktemp("junit-broken")
    junit, summary = tmp_path / "report.xml", tmp_path / "summary.md"
    code, output, data = run_conform(
        tmp_path,
        "--impl",
        f"{BROKEN}:STRIDES_LOST",
        "-k",
        "test_device_state_is_restored or test_default_dtype",
        "--junit-xml",
        str(junit),
        "--annotations",
        "github",
        GITHUB_STEP_SUMMARY=str(summary),
    )
    return code, output, data, junit, summary


def test_a_failed_requirement_is_a_junit_failure_with_its_example_and_command(broken_run):
    code, output, _, junit, _ = broken_run
    assert code == 1, output
    SCHEMA.validate(str(junit))
    cases = _read(junit)
    assert len(cases) == len(load_requirements())
    assert cases["DL-11"]["kind"] == "Failure" and cases["DL-11"]["message"].startswith("AssertionError: DL-11: ")
    assert cases["DL-11"]["chapter"] == "device-loading"
    text = junit.read_text(encoding="utf-8")
    assert "--requirement DL-11" in text, text
    assert "Falsifying example" in text or "Failing test case" in text, text
    assert cases["DT-1"]["kind"] == "passed" and cases["PM-1"] == {
        "kind": "Skipped",
        "message": "not selected",
        "chapter": "param-mapping",
    }
    suites = {suite.name: suite for suite in junitparser.JUnitXml.fromfile(str(junit))}
    assert (suites["device-loading"].failures, suites["default-dtype"].failures) == (1, 0)


def test_the_step_summary_and_the_annotation_name_the_failure(broken_run):
    _, output, _, _, summary = broken_run
    text = summary.read_text(encoding="utf-8")
    assert "**FAIL: 1 MUST requirement(s) failed: DL-11**" in text, text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "requirement" not in line]
    assert rows[0].startswith("| DL-11 ") and "| failed |" in rows[0], rows[:3]  # failures first
    annotations = [line for line in output.splitlines() if line.startswith("::error ")]
    chapter = (REPO / "spec" / "device-loading.md").read_text(encoding="utf-8").splitlines()
    line = next(number for number, text in enumerate(chapter, 1) if text.startswith("### DL-11 "))
    expected = rf"::error file=[^,]*device-loading\.md,line={line},title=DL-11 "
    assert len(annotations) == 1 and re.match(expected, annotations[0]), annotations
    assert "%0Areproduce: loaderspec conform" in annotations[0], annotations


def test_the_reference_is_every_case_passed(tmp_path):
    junit = tmp_path / "report.xml"
    code, output, _ = run_conform(
        tmp_path, "--impl", "reference", "-k", "test_param_mapping", "--junit-xml", str(junit)
    )
    assert code == 0, output
    SCHEMA.validate(str(junit))
    cases = _read(junit)
    pm = {req: case["kind"] for req, case in cases.items() if req.startswith("PM-")}
    assert pm and set(pm.values()) == {"passed"}, pm
    assert {case["message"] for req, case in cases.items() if not req.startswith("PM-")} == {"not selected"}


def test_vllm_0_9_2s_report_renders_expected_failures_as_passed_cases(tmp_path):
    data = json.loads((REPO / "docs" / "reports" / "vllm-0.9.2.json").read_text(encoding="utf-8"))
    verdicts = verdicts_of_report(data)
    path = tmp_path / "vllm.xml"
    path.write_text(render_junit(verdicts, load_requirements(), name="vllm 0.9.2", elapsed=1.5), encoding="utf-8")
    SCHEMA.validate(str(path))
    cases = _read(path)
    counts = data["summary"]["requirements"]
    kinds = [case["kind"] for case in cases.values()]
    assert kinds.count("passed") == counts.get("passed", 0) + counts.get("expected failure", 0), counts
    assert kinds.count("Skipped") == counts.get("not provided", 0), counts
    assert "Failure" not in kinds
    excused = [v.id for v in verdicts if v.verdict == "expected failure"]
    text = path.read_text(encoding="utf-8")
    for req_id in excused:
        assert f'name="expected failure {req_id}"' in text, req_id
