"""Expected-failure files: which requirements or tests an implementation is known to fail.

A TOML file of entries::

    [[xfail]]
    id = "DT-3"                      # a requirement ID, or a test id "test_x.py::test_name"
    reason = "no try/finally: the default dtype leaks when the body raises"
    evidence = "https://github.com/vllm-project/vllm/pull/51064"

Every entry needs all three keys. Entries that match no requirement or collected test
are reported as stale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from loaderspec.conform.requirements import ID


class XfailFileError(ValueError):
    """The expected-failure file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Xfail:
    id: str
    reason: str
    evidence: str

    @property
    def is_requirement(self) -> bool:
        return bool(ID.match(self.id))

    def matches_test(self, nodeid: str) -> bool:
        """A test id matches a node id by its ``file::name`` suffix, with or without parameters."""
        if self.is_requirement:
            return False
        tail = nodeid.split("/")[-1]
        return tail == self.id or tail.split("[")[0] == self.id


def load_xfails(path: Path) -> list[Xfail]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise XfailFileError(f"cannot read expected-failure file {path}: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise XfailFileError(f"{path} is not valid TOML: {error}") from error
    entries = data.get("xfail", [])
    if not isinstance(entries, list):
        raise XfailFileError(f"{path}: 'xfail' must be an array of tables ([[xfail]]), got {type(entries).__name__}")
    unknown_top = sorted(set(data) - {"xfail"})
    if unknown_top:
        raise XfailFileError(f"{path}: unknown top-level keys {unknown_top}; only [[xfail]] entries are allowed")
    xfails = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise XfailFileError(f"{path}: entry {number} is not a table")
        missing = [key for key in ("id", "reason", "evidence") if not isinstance(entry.get(key), str) or not entry[key]]
        extra = sorted(set(entry) - {"id", "reason", "evidence"})
        if missing or extra:
            problem = f"missing or empty {missing}" if missing else f"unknown keys {extra}"
            raise XfailFileError(f"{path}: entry {number} ({entry.get('id', '?')!r}) has {problem}")
        xfails.append(Xfail(entry["id"], entry["reason"], entry["evidence"]))
    return xfails


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def dump_xfails(entries: list[Xfail], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for entry in entries:
        lines += ["", "[[xfail]]", f"id = {_quote(entry.id)}", f"reason = {_quote(entry.reason)}"]
        lines.append(f"evidence = {_quote(entry.evidence)}")
    return "\n".join(lines).lstrip("\n") + "\n"
