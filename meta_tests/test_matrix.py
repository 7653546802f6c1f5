"""``loaderspec matrix``: the committed page is current, and every failure cell has evidence."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest
from loaderspec.conform import matrix as matrix_module
from loaderspec.conform.matrix import load_reports, matrix, render

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "docs" / "reports"
PAGE = REPO / "docs" / "conformance.md"
README = REPO / "README.md"
EXPECTED_TARGETS = {
    "reference",
    "vllm-0.9.2",
    "vllm-0.10.0",
    "vllm-0.32.0",
    "vllm-0.33.0",
    "vllm-0.34.0",
    "sglang-0.5.23",
}


def _report(target: str, version: str, requirements: list[dict], tests: list[dict] | None = None) -> dict:
    counts: dict[str, int] = {}
    for requirement in requirements:
        counts[requirement["verdict"]] = counts.get(requirement["verdict"], 0) + 1
    return {
        "header": {
            "target": target,
            "target_version": version,
            "date": "2026-11-29",
            "torch": "2.13.0+cpu",
            "transformers": "5.19.0",
            "a_key_from_a_later_runner": [1, 2],
        },
        "summary": {"requirements": counts, "exit_status": 0},
        "requirements": requirements,
        "tests": tests or [],
        "stale_xfails": [],
        "another_later_key": {},
    }


EVIDENCE = "https://github.com/example/engine/blob/v1.0/loader.py#L12"
ENTRY = {"id": "DT-7", "reason": "no try/finally", "evidence": EVIDENCE}


def _write_pair(folder: Path) -> Path:
    folder.mkdir()
    passed = {"id": "DT-7", "level": "MUST", "title": "Restores", "verdict": "passed", "tests": ["t.py::a"]}
    failed = dict(passed, verdict="expected failure", expected_failure=ENTRY)
    skipped = {"id": "PM-1", "level": "MUST", "title": "Kept", "verdict": "not provided", "tests": ["t.py::b"]}
    skip_test = {
        "nodeid": "t.py::b",
        "outcome": "not provided",
        "message": "not provided by engine: ParamMapping (the engine has none)",
    }
    (folder / "reference.json").write_text(
        json.dumps(_report("reference", "0.1.0", [passed, dict(skipped, verdict="passed")]))
    )
    (folder / "engine-1.0.0.json").write_text(
        json.dumps(_report("engine", "engine 1.0.0", [failed, skipped], [skip_test]))
    )
    return folder


def test_the_committed_page_and_readme_are_current_against_the_committed_reports() -> None:
    status = matrix(["--reports", str(REPORTS), "--output", str(PAGE), "--readme", str(README), "--check"])
    assert status == 0, "docs/conformance.md or the README summary is stale: run `loaderspec matrix --readme README.md`"


def test_the_committed_reports_cover_every_target() -> None:
    assert {report.label for report in load_reports(REPORTS)} >= EXPECTED_TARGETS


def test_ci_and_the_noxfile_run_every_target_of_the_matrix() -> None:
    ci_run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    in_ci = {"-".join(found) for found in re.findall(r"^timed .* conform_target (\w+) ([\d.]+)$", ci_run, re.MULTILINE)}
    noxfile = ast.parse((REPO / "noxfile.py").read_text(encoding="utf-8"))
    targets = next(
        node.value
        for node in noxfile.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ENGINE_TARGETS" for t in node.targets)
    )
    in_nox = {"-".join(pair) for pair in ast.literal_eval(targets)}
    engines = EXPECTED_TARGETS - {"reference"}
    assert in_ci == engines, f".ci/run runs {sorted(in_ci)}, the matrix has {sorted(engines)}"
    assert in_nox == engines, f"noxfile.py ENGINE_TARGETS is {sorted(in_nox)}, the matrix has {sorted(engines)}"


def test_every_failure_cell_of_the_committed_page_has_an_evidence_link() -> None:
    for report in load_reports(REPORTS):
        # 0 PASS, 3 INCOMPLETE (this machine left a MUST requirement unchecked); never a failure.
        assert report.summary["exit_status"] in (0, 3), f"{report.label}: its committed run had unexpected outcomes"
        for requirement in report.requirements:
            if requirement["verdict"] in ("expected failure", "failed", "unexpected pass"):
                cell = matrix_module.cell(requirement, report)
                assert re.search(r"\]\(https://github\.com/[^)]+\)", cell), (
                    f"{report.label} {requirement['id']}: {cell}"
                )


def test_cells_carry_the_reason_and_evidence_and_extra_keys_are_ignored(tmp_path: Path) -> None:
    page = render(load_reports(_write_pair(tmp_path / "reports")))
    row = next(line for line in page.splitlines() if line.startswith("| DT-7"))
    assert row == f"| DT-7 Restores | passed | **expected failure**: no try/finally ([evidence]({EVIDENCE})) |"
    row = next(line for line in page.splitlines() if line.startswith("| PM-1"))
    assert row.endswith("| passed | not provided: ParamMapping (the engine has none) |"), row
    assert "| date | 2026-11-29 | 2026-11-29 |" in page
    assert "| version | 0.1.0 | engine 1.0.0 |" in page
    assert page.index("| reference |") < page.index("| engine-1.0.0 |"), "the reference comes first"


def test_check_exits_1_on_a_stale_page_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports, page = _write_pair(tmp_path / "reports"), tmp_path / "conformance.md"
    assert matrix(["--reports", str(reports), "--output", str(page), "--check"]) == 1
    assert not page.exists()
    assert matrix(["--reports", str(reports), "--output", str(page)]) == 0
    assert matrix(["--reports", str(reports), "--output", str(page), "--check"]) == 0
    data = json.loads((reports / "engine-1.0.0.json").read_text())
    changed = copy.deepcopy(data)
    changed["requirements"][0]["expected_failure"]["reason"] = "a new reason"
    (reports / "engine-1.0.0.json").write_text(json.dumps(changed))
    before = page.read_text()
    assert matrix(["--reports", str(reports), "--output", str(page), "--check"]) == 1
    assert page.read_text() == before
    assert "is stale" in capsys.readouterr().err


def test_the_readme_summary_is_spliced_between_its_markers(tmp_path: Path) -> None:
    reports, readme = _write_pair(tmp_path / "reports"), tmp_path / "README.md"
    readme.write_text(f"intro\n{matrix_module.README_BEGIN}\nold\n{matrix_module.README_END}\nrest\n")
    assert matrix(["--reports", str(reports), "--output", str(tmp_path / "page.md"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text
    assert "- **engine-1.0.0** (engine 1.0.0): 1 expected failure, 1 not provided" in text


@pytest.mark.parametrize("content", [None, "not json", json.dumps({"header": {}})])
def test_bad_reports_are_exit_2_naming_the_problem(
    tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    if content is not None:
        (folder / "bad.json").write_text(content)
    assert matrix(["--reports", str(folder), "--output", str(tmp_path / "page.md")]) == 2
    error = capsys.readouterr().err
    assert ("no reports" in error) if content is None else ("bad.json" in error)
