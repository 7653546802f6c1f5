"""Bad input is refused before any test runs: one line naming the problem, exit status 2
(issue 8, finding 5 and the output paths of finding 4). One row per case."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from loaderspec.conform.runner import conform

REPO = Path(__file__).resolve().parent.parent
ENTRY = '[[xfail]]\n{}\nreason = "r"\nevidence = "https://example.org"\n'


def _files(tmp: Path) -> None:
    """The inputs the cases name: adapter modules, expected-failure files, a curated file."""
    (tmp / "raising_adapter.py").write_text("raise RuntimeError('the engine is not configured')\n")
    (tmp / "syntax_error_adapter.py").write_text("def broken(:\n    pass\n")
    (tmp / "latin1.toml").write_bytes(ENTRY.format('id = "DL-10"\n# caf\xe9').encode("latin-1"))
    (tmp / "unknown.toml").write_text(ENTRY.format('id = "ZZ-1"'))
    (tmp / "lower.toml").write_text(ENTRY.format('id = "dl-10"'))
    (tmp / "dup.toml").write_text(ENTRY.format('id = "DL-10"') + ENTRY.format('id = "DL-10"'))
    # the same requirement, test and match: duplicates whatever their reasons say
    (tmp / "dup-reason.toml").write_text(
        ENTRY.format('id = "DL-10"') + ENTRY.format('id = "DL-10"\nreason = "s"').replace('reason = "r"\n', "", 1)
    )
    for hook, body in (("version", "undefined_name"), ("expected_failures", "'/no/such/xfails.toml'")):
        (tmp / f"broken_{hook}_adapter.py").write_text(
            "from loaderspec.adapters.reference import ReferenceAdapter\n\n\n"
            f"class Broken(ReferenceAdapter):\n    def {hook}(self):\n        return {body}\n\n\nADAPTER = Broken()\n"
        )
    (tmp / "curated.toml").write_text(ENTRY.format('id = "DL-10"'))
    (tmp / "a-file").write_text("")


CASES = [
    # (argv, status, words the one line must contain)
    (["--impl", ""], 2, "--impl is empty"),
    (["--impl", "no_such_engine_module"], 2, "cannot load implementation 'no_such_engine_module'"),
    (["--impl", "raising_adapter"], 2, "raised RuntimeError: the engine is not configured"),
    (["--impl", "syntax_error_adapter"], 2, "syntax_error_adapter has a syntax error"),
    (["--impl", "meta_tests.broken_adapters:WRONG_TYPES", "--check-adapter"], 2, "hook model_config() returned dict"),
    (["--xfails", "{tmp}/latin1.toml"], 2, "is not UTF-8 text"),
    (["--xfails", "{tmp}/unknown.toml"], 2, "ZZ-1 is not a requirement of the spec"),
    (["--xfails", "{tmp}/lower.toml"], 2, "write the ID upper case: 'DL-10'"),
    (["--xfails", "{tmp}/dup.toml"], 2, "entry 2 (DL-10) repeats entry 1"),
    (["--xfails", "{tmp}/missing.toml"], 2, "cannot read expected-failure file"),
    (["-k", "zzz_no_such_test"], 2, "-k 'zzz_no_such_test' selects none of the"),
    (["-k", " "], 2, "-k is empty"),
    (["--timeout", "-1"], 2, "--timeout must be a positive number of seconds, got -1"),
    (["--timeout", "0"], 2, "--timeout must be a positive number of seconds, got 0"),
    (["--seed", "7"], 2, "--seed has no effect with the ci profile"),
    (["--max-crashes", "-1"], 2, "--max-crashes must be 0 or more"),
    (["--json", "{tmp}/no-such-folder/r.json"], 2, "the folder {tmp}/no-such-folder does not exist"),
    (["--markdown", "{tmp}/no-such-folder/t.md"], 2, "the folder {tmp}/no-such-folder does not exist"),
    (["--write-xfails", "{tmp}/no-such-folder/x.toml"], 2, "does not exist"),
    (["--json", "{tmp}/a-file/r.json"], 2, "{tmp}/a-file is not a folder"),
    (["--json", "/proc/loaderspec-report.json"], 2, "cannot be written"),  # writable by permissions, for root
    (["--xfails", "{tmp}/dup-reason.toml"], 2, "entry 2 (DL-10) repeats entry 1"),
    (["--impl", "broken_version_adapter"], 2, "hook version() raised NameError"),
    (["--impl", "broken_expected_failures_adapter"], 2, "hook expected_failures() returned '/no/such/xfails.toml'"),
    (["-k", "test_ and"], 2, "is not a pytest -k expression"),
    (["--force"], 2, "--force only lets --write-xfails overwrite a file"),
    (["--json", "{tmp}"], 2, "is a folder; give a file path"),
    (["--write-xfails", "{tmp}/curated.toml"], 2, "exists; it may be curated: add --force"),
    (["--profile", "fast"], 2, "invalid choice: 'fast'"),
]


@pytest.mark.parametrize(("argv", "status", "words"), CASES, ids=[" ".join(c[0]) or "empty" for c in CASES])
def test_bad_input_is_refused_before_any_test_runs(tmp_path, monkeypatch, capsys, argv, status, words):
    _files(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    started = time.monotonic()
    try:
        got = conform(argv)
    except SystemExit as exit:  # argparse's own refusals
        got = exit.code
    out, err = capsys.readouterr()
    assert got == status, out + err
    refusal = [line for line in err.splitlines() if line.strip()]
    assert refusal and words.format(tmp=tmp_path) in refusal[-1], out + err
    assert "Traceback" not in out + err
    assert "passed" not in out, out  # no test ran
    if "--check-adapter" not in argv and "-k" not in argv:
        assert len(refusal) == 1, err
        assert time.monotonic() - started < 60
    for module in (
        "raising_adapter",
        "syntax_error_adapter",
        "broken_version_adapter",
        "broken_expected_failures_adapter",
    ):
        sys.modules.pop(module, None)
