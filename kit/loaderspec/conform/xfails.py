"""Expected-failure files: the failures an implementation is known to have, each excused
narrowly enough that a new bug under the same requirement is still reported.

A TOML file of entries::

    [[xfail]]
    id = "DT-7"                  # a requirement ID of the spec, upper case (required)
    reason = "no try/finally: the default dtype leaks when the body raises"   # required
    evidence = "https://github.com/vllm-project/vllm/pull/51064"              # required
    test = "test_every_exceptional_exit_restores_the_default"  # optional: only this test's failures
    match = "DT-7: after a body that left by exception"  # optional: a regex searched in the error line

A failure is expected only when, for each of its error lines, an entry names the
requirement the line is about, names the failing test (if it names one) and its
``match`` is found in the line (if it has one). Any other failure, under an expected
requirement or not, is unexpected.

The file is refused (:class:`XfailFileError`, exit status 2) when it is not UTF-8 or
not TOML, an entry lacks a key or has an unknown one, an ID is not a requirement of the
spec (a withdrawn one is named with the requirements that replace it; IDs are compared
case-insensitively, and must be written upper case), a
``match`` is not a valid regular expression, or two entries name the same requirement, test
and match.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from loaderspec.conform.requirements import ID, load_requirements

REQUIRED_KEYS = ("id", "reason", "evidence")
OPTIONAL_KEYS = ("test", "match")


class XfailFileError(ValueError):
    """The expected-failure file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Xfail:
    id: str
    reason: str
    evidence: str
    test: str | None = None
    match: str | None = None

    def covers_test(self, nodeid: str) -> bool:
        """Whether this entry applies to the test ``nodeid`` (every test when it names none).

        ``test`` is a test function name, or ``file.py::name``; parameters are ignored.
        """
        if self.test is None:
            return True
        tail = nodeid.split("/")[-1].split("[")[0]
        return self.test in (tail, tail.split("::")[-1])

    def excuses(self, requirement: str, nodeid: str, error_line: str) -> bool:
        """Whether this entry excuses ``error_line`` of test ``nodeid``, a failure of ``requirement``."""
        if self.id != requirement or not self.covers_test(nodeid):
            return False
        return self.match is None or re.search(self.match, error_line) is not None

    def describe(self) -> str:
        """The entry in one line: its ID and what narrows it."""
        parts = [self.id]
        if self.test:
            parts.append(f"test {self.test}")
        if self.match:
            parts.append(f"match {self.match!r}")
        return ", ".join(parts)


def load_xfails(path: Path, known_ids: Collection[str] | None = None) -> list[Xfail]:
    """The entries of ``path``; :class:`XfailFileError` naming the file and the entry when
    the file is malformed. ``known_ids``: the spec's requirement IDs (unknown IDs are refused)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise XfailFileError(f"cannot read expected-failure file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise XfailFileError(f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise XfailFileError(f"{path} is not valid TOML: {error}") from error
    entries = data.get("xfail", [])
    if not isinstance(entries, list):
        raise XfailFileError(f"{path}: 'xfail' must be an array of tables ([[xfail]]), got {type(entries).__name__}")
    unknown_top = sorted(set(data) - {"xfail"})
    if unknown_top:
        raise XfailFileError(f"{path}: unknown top-level keys {', '.join(unknown_top)}; only [[xfail]] entries")
    xfails: list[Xfail] = []
    for number, entry in enumerate(entries, start=1):
        xfail = _entry(path, number, entry, known_ids)
        # Same requirement, test and match: the same failures, whatever the reason or evidence says.
        same = [
            i
            for i, seen in enumerate(xfails, start=1)
            if (seen.id, seen.test, seen.match) == (xfail.id, xfail.test, xfail.match)
        ]
        if same:
            raise XfailFileError(
                f"{path}: entry {number} ({xfail.describe()}) repeats entry {same[0]}: the same requirement, test "
                "and match excuse the same failures; merge them, or narrow one with test = or match ="
            )
        xfails.append(xfail)
    return xfails


def _entry(path: Path, number: int, entry: object, known_ids: Collection[str] | None) -> Xfail:
    where = f"{path}: entry {number}"
    if not isinstance(entry, dict):
        raise XfailFileError(f"{where} is not a table")
    where += f" ({entry.get('id', '?')})"
    missing = [key for key in REQUIRED_KEYS if not isinstance(entry.get(key), str) or not entry[key].strip()]
    if missing:
        raise XfailFileError(f"{where} lacks {', '.join(missing)} (or it is empty or not a string)")
    extra = sorted(set(entry) - {*REQUIRED_KEYS, *OPTIONAL_KEYS})
    if extra:
        allowed = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
        raise XfailFileError(f"{where} has unknown keys {', '.join(extra)}; allowed: {allowed}")
    bad_optional = [key for key in OPTIONAL_KEYS if key in entry and not (isinstance(entry[key], str) and entry[key])]
    if bad_optional:
        raise XfailFileError(f"{where}: {', '.join(bad_optional)} must be a non-empty string")
    req_id = entry["id"].strip()
    if "::" in req_id or req_id.startswith("test_"):
        raise XfailFileError(f"{where}: id must be a requirement ID; name a test with test = {req_id!r}")
    if not ID.match(req_id.upper()):
        raise XfailFileError(f"{where}: {req_id!r} is not a requirement ID (two letters, a dash, a number: DL-4)")
    if req_id != req_id.upper():
        raise XfailFileError(f"{where}: write the ID upper case: {req_id.upper()!r}")
    if known_ids is not None and req_id not in known_ids:
        raise XfailFileError(f"{where}: {req_id} is not a requirement of the spec{_withdrawn_hint(req_id)}")
    match = entry.get("match")
    if match is not None:
        try:
            re.compile(match)
        except re.error as error:
            raise XfailFileError(f"{where}: match {match!r} is not a valid regular expression ({error})") from error
    return Xfail(req_id, entry["reason"], entry["evidence"], entry.get("test"), match)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _literal(pattern: str) -> str:
    """A TOML literal string when it can be one: a regex reads best without doubled backslashes."""
    return f"'{pattern}'" if "'" not in pattern and "\n" not in pattern else _quote(pattern)


def dump_xfails(entries: list[Xfail], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for entry in entries:
        lines += ["", "[[xfail]]", f"id = {_quote(entry.id)}", f"reason = {_quote(entry.reason)}"]
        lines.append(f"evidence = {_quote(entry.evidence)}")
        if entry.test:
            lines.append(f"test = {_quote(entry.test)}")
        if entry.match:
            lines.append(f"match = {_literal(entry.match)}")
    return "\n".join(lines).lstrip("\n") + "\n"


_VOLATILE = re.compile(r"0x[0-9a-fA-F]+|torch\.\w+|\b\d|[\[\](){}'\"</]")
_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


_EXAMPLE_VALUE = re.compile(r"0x[0-9a-fA-F]+|'[^']*'|\"[^\"]*\"|\d+")
"""Parts of an error line that change with the example: addresses, quoted names, numbers."""
_GENERAL = {"0x": r"0x[0-9a-fA-F]+", "'": r"'[^']*'", '"': r'"[^"]*"'}


def match_pattern(error_line: str, limit: int = 200) -> str:
    """A ``match`` pattern for ``error_line`` that keeps what distinguishes the failure: every
    word of it (the observed and the expected values, ``is_pinned()=False``, ``raised`` or
    ``returned``), with only what changes with the example generalized (the parameter's name
    after the ID, numbers, quoted names, addresses). A different bug under the same requirement
    states other words, so the entry does not excuse it."""
    line = error_line[:limit]
    head = re.match(r"(?:Failed|\w+(?:Error|Exception)): [A-Z]{2}-\d+: ", line)
    parts = [re.escape(head.group(0))] if head else []
    rest = line[head.end() :] if head else line
    subject = re.match(r"([\w.]+)( .*|$)", rest)
    if head and subject and (re.search(r"[._\d]", subject.group(1)) or subject.group(1) in ("weight", "bias")):
        parts.append(r"[\w.]+")  # the parameter or module the example named
        rest = subject.group(2)
    position = 0
    for volatile in _EXAMPLE_VALUE.finditer(rest):
        parts.append(re.escape(rest[position : volatile.start()]))
        token = volatile.group(0)
        parts.append(next((pattern for start, pattern in _GENERAL.items() if token.startswith(start)), r"\d+"))
        position = volatile.end()
    parts.append(re.escape(rest[position:]))
    return "".join(parts).replace("\\ ", " ")


def _withdrawn_hint(req_id: str) -> str:
    """``; it was withdrawn, see ...`` when ``req_id`` is a withdrawn requirement (a file
    written for an older spec), else nothing."""
    requirement = load_requirements(include_withdrawn=True).get(req_id)
    if requirement is None or not requirement.withdrawn:
        return ""
    replaced = ", ".join(requirement.replaced_by) or "spec/CHANGELOG.md"
    return f" any more: it was withdrawn; its cases are now {replaced}"
