"""Meta test: requirement IDs tie the spec to the suites.

Every requirement of ``spec/`` has a test; every test cites only known IDs; every
branch of the seed is in the index's branch table, whose tests column is current.
"""

from __future__ import annotations

from loaderspec.conform import traceability
from loaderspec.conform.requirements import load_requirements


def _marks():
    return traceability.requirement_marks()


def test_every_requirement_has_a_test():
    by_req = traceability.tests_by_requirement(_marks())
    untested = [req_id for req_id in load_requirements() if req_id not in by_req]
    assert not untested, f"requirements without a test: {untested}"


def test_tests_cite_only_known_requirements():
    known = load_requirements()
    cited = {test: ids for test, ids in _marks().items() if ids}
    unknown = {test: traceability.unknown_ids(ids, known) for test, ids in cited.items()}
    unknown = {test: ids for test, ids in unknown.items() if ids}
    assert not unknown, f"tests citing IDs the spec does not define: {unknown}"


def test_every_requirement_test_names_its_ids():
    unmarked = [test for test, ids in _marks().items() if not ids]
    assert not unmarked, f"tests without @pytest.mark.req(...): {unmarked}"


def test_test_modules_mirror_the_chapters():
    from loaderspec.conform.requirements import CHAPTERS

    modules = set(traceability.test_modules())
    missing = [c for c in CHAPTERS if f"test_{c.replace('-', '_')}" not in modules]
    assert not missing, f"chapters without a test module of the same name: {missing}"


def test_branch_table_covers_every_requirement():
    index = traceability.spec_dir() / "index.md"
    text = index.read_text(encoding="utf-8")
    known = load_requirements()
    rows = traceability.branch_table_requirements(text)
    bad = {branch: ids for branch, ids in rows if not ids or traceability.unknown_ids(ids, known)}
    assert not bad, f"branch-table rows with no or unknown requirement IDs: {bad}"
    covered = {req_id for _, ids in rows for req_id in ids}
    assert covered == set(known), f"requirements missing from the branch table: {sorted(set(known) - covered)}"


def test_traceability_page_is_current():
    text = (traceability.spec_dir() / "index.md").read_text(encoding="utf-8")
    rendered = traceability.render_traceability(text, traceability.tests_by_requirement(_marks()))
    page = traceability.traceability_path()
    assert page.exists() and page.read_text(encoding="utf-8") == rendered, (
        f"{page} is stale: python -m loaderspec.conform.traceability --write"
    )


def test_withdrawn_requirements_point_at_active_ones():
    everything = load_requirements(include_withdrawn=True)
    withdrawn = {req_id: req for req_id, req in everything.items() if req.withdrawn}
    assert withdrawn, "the spec has withdrawn requirements since 0.2.0; the parser found none"
    bad = {
        req_id: req.replaced_by
        for req_id, req in withdrawn.items()
        if not req.replaced_by or any(new not in everything or everything[new].withdrawn for new in req.replaced_by)
    }
    assert not bad, f"withdrawn requirements whose 'see ...' names no active requirement: {bad}"
    assert not set(withdrawn) & set(load_requirements()), "withdrawn requirements are loaded as active"


def test_withdrawn_requirements_are_cited_by_no_test():
    withdrawn = {r for r, req in load_requirements(include_withdrawn=True).items() if req.withdrawn}
    citing = {test: sorted(set(ids) & withdrawn) for test, ids in _marks().items() if set(ids) & withdrawn}
    assert not citing, f"tests citing withdrawn requirements (cite their replacements): {citing}"
