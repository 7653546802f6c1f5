"""Meta test: every clause of the covered chapters has a test that can fail.

``clauses.CLAUSES`` splits each requirement into its checkable clauses (quantifiers,
qualifiers, conditions), each with the assertion that checks it and a planted mutant of the
reference that violates it. Checked here: the clause text is still in its requirement's
section of the spec (a spec edit is noticed), IDs are unique and name live requirements, the
assertion is in the test's source, ``docs/clauses.md`` is current, every mutant applies and
compiles, and every mutant is killed by an assertion naming the clause's requirement.

The mutants run through ``tools/mutate.py --jobs`` like the planted ones
(``test_mutants.py``), with few examples each; identical jobs run once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from loaderspec.conform.requirements import HEADING, load_requirements

from .clauses import BY_ID, CHAPTERS_DONE, CLAUSES, KINDS, Clause
from .planted_mutants import ROOT, UTILS

CLAUSE_EXAMPLES = 20
"""Examples per property for the clause mutants (a boundary case must come up within them)."""

_ID = re.compile(r"^([A-Z]{2}-\d+)\.[a-z]$")


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _sections() -> dict[str, str]:
    """Each requirement's section of its chapter (heading to next heading), whitespace normalised."""
    sections: dict[str, str] = {}
    for path in sorted((ROOT / "spec").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        matches = list(HEADING.finditer(text))
        for number, match in enumerate(matches):
            end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
            sections[match.group(1)] = _normalise(text[match.start() : end])
    return sections


def test_every_clause_text_is_in_its_requirement_section():
    sections = _sections()
    missing = [c.id for c in CLAUSES if _normalise(c.text) not in sections.get(c.requirement, "")]
    assert not missing, f"clauses whose text is no longer in their requirement's section: {missing}"


def test_clause_ids_are_unique_and_name_live_requirements():
    ids = [c.id for c in CLAUSES]
    assert len(ids) == len(set(ids)), f"duplicate clause IDs: {sorted({i for i in ids if ids.count(i) > 1})}"
    assert all(_ID.match(i) for i in ids), f"malformed clause IDs: {[i for i in ids if not _ID.match(i)]}"
    live = load_requirements()
    assert not {c.requirement for c in CLAUSES} - set(live), "clauses of no live requirement"
    assert all(c.kind in KINDS for c in CLAUSES), f"unknown kinds: {[c.id for c in CLAUSES if c.kind not in KINDS]}"


def test_every_requirement_of_the_covered_chapters_has_clauses():
    covered = {r.id for r in load_requirements().values() if r.chapter in CHAPTERS_DONE}
    with_clauses = {c.requirement for c in CLAUSES}
    assert not covered - with_clauses, (
        f"requirements of {CHAPTERS_DONE} without clauses: {sorted(covered - with_clauses)}"
    )


def test_every_clause_names_a_test_and_an_assertion_that_exist():
    problems = []
    for c in CLAUSES:
        assert c.tests, f"{c.id}: no test"
        for node in c.tests:
            path, _, name = node.partition("::")
            source = (ROOT / path).read_text(encoding="utf-8")
            if not re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE):
                problems.append(f"{c.id}: {node} does not exist")
        sources = {(ROOT / node.partition("::")[0]).read_text(encoding="utf-8") for node in c.tests}
        if not c.assertion.startswith(f"{c.requirement}: "):
            problems.append(f"{c.id}: the assertion {c.assertion!r} does not start with {c.requirement}")
        elif not any(c.assertion.removeprefix(f"{c.requirement}: ") in s for s in sources):
            # The ID itself may come from a helper (``expect_raises(TypeError, "DT-5", ...)``).
            problems.append(f"{c.id}: the assertion {c.assertion!r} is not in {c.tests}")
    assert not problems, "\n".join(problems)


def test_the_clause_page_is_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("loaderspec_clauses_tool", ROOT / "tools" / "clauses.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    page = ROOT / "docs" / "clauses.md"
    assert page.read_text(encoding="utf-8") == tool.render(), f"{page} is stale: python tools/clauses.py"


def test_every_clause_mutant_applies_and_compiles():
    source = UTILS.read_text(encoding="utf-8")
    for c in CLAUSES:
        mutated = c.planted.apply(source)
        assert mutated != source, f"{c.id}: the mutant changes nothing"
        compile(mutated, f"<{c.id} mutant>", "exec")


def _job_key(c: Clause, source: str) -> str:
    return json.dumps([c.planted.apply(source), list(c.tests)])


@pytest.fixture(scope="module")
def clause_results(tmp_path_factory) -> dict[str, dict]:
    """Run every distinct clause mutant once (2 workers); the verdict of each, by clause ID."""
    folder = tmp_path_factory.mktemp("clauses")
    source = UTILS.read_text(encoding="utf-8")
    first: dict[str, str] = {}  # job key -> the first clause with it
    for c in CLAUSES:
        first.setdefault(_job_key(c, source), c.id)
    jobs = [
        {"id": cid, "source": BY_ID[cid].planted.apply(source), "tests": list(BY_ID[cid].tests)}
        | {"max_examples": CLAUSE_EXAMPLES}
        for cid in first.values()
    ]
    (folder / "jobs.json").write_text(json.dumps(jobs))
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
    command = [sys.executable, str(ROOT / "tools" / "mutate.py"), "--jobs", str(folder / "jobs.json")]
    command += ["--out", str(folder / "results.json"), "--workers", "2", "--timeout", "300"]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    by_job = json.loads((folder / "results.json").read_text())
    return {c.id: by_job[first[_job_key(c, source)]] for c in CLAUSES}


@pytest.mark.parametrize("clause_id", list(BY_ID))
def test_clause_mutant_is_killed_by_its_requirement(clause_results, clause_id):
    c = BY_ID[clause_id]
    result = clause_results[clause_id]
    assert result["status"] == "killed", (
        f"{clause_id} ({c.text!r}): the mutant ({c.planted.bug}) was not killed by {c.tests}: {result}"
    )
    assert result["req"] == c.requirement, (
        f"{clause_id}: the mutant ({c.planted.bug}) was killed by {result['test']}, but as {result['req']}, "
        f"not {c.requirement}: {result['message'][:300]}"
    )
