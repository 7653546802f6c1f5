"""The requirements of the spec, read from its Markdown chapters (shipped as ``loaderspec_spec``).

A requirement is a heading ``### XX-n (MUST|SHOULD|MAY) Title`` in a chapter file. A
withdrawn one keeps its heading as ``### XX-n (withdrawn) Title`` with a body saying
"Withdrawn in <version>, see YY-m, ..." (IDs are never reused); it needs no test and gets
no verdict, so :func:`load_requirements` leaves it out unless asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

CHAPTERS = (
    "param-mapping",
    "default-dtype",
    "device-loading",
    "post-loading",
    "quant-config",
    "architecture",
    "model-init",
)
"""The normative chapters, in reading order; each shares its name with a test module."""

HEADING = re.compile(r"^### ([A-Z]{2}-\d+) \((MUST|SHOULD|MAY|withdrawn)\) (.+)$", re.MULTILINE)
WITHDRAWN = "withdrawn"
REPLACEMENTS = re.compile(r"\bsee ([^\n]+)")
ID = re.compile(r"^[A-Z]{2}-\d+$")


@dataclass(frozen=True)
class Requirement:
    id: str
    level: str
    title: str
    chapter: str
    replaced_by: tuple[str, ...] = ()
    """For a withdrawn requirement: the IDs its "see ..." line names."""
    line: int = 0
    """The line of its heading in the chapter file (where CI annotations point)."""

    @property
    def withdrawn(self) -> bool:
        return self.level == WITHDRAWN


def spec_dir() -> Path:
    """The folder holding the spec chapters (the checkout's ``spec/`` or the installed copy)."""
    return Path(str(resources.files("loaderspec_spec")))


def load_requirements(folder: Path | None = None, *, include_withdrawn: bool = False) -> dict[str, Requirement]:
    """Every requirement of every chapter, by ID, in chapter order (withdrawn ones only
    with ``include_withdrawn``)."""
    folder = folder or spec_dir()
    requirements: dict[str, Requirement] = {}
    for chapter in CHAPTERS:
        text = (folder / f"{chapter}.md").read_text(encoding="utf-8")
        matches = list(HEADING.finditer(text))
        for number, match in enumerate(matches):
            req_id, level, title = match.groups()
            if req_id in requirements:
                raise ValueError(f"requirement {req_id} is defined twice ({requirements[req_id].chapter}, {chapter})")
            replaced_by: tuple[str, ...] = ()
            if level == WITHDRAWN:
                end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
                see = REPLACEMENTS.search(text, match.end(), end)
                replaced_by = tuple(re.findall(r"[A-Z]{2}-\d+", see.group(1))) if see else ()
            line = text.count("\n", 0, match.start()) + 1
            requirements[req_id] = Requirement(req_id, level, title.strip(), chapter, replaced_by, line)
    if include_withdrawn:
        return requirements
    return {req_id: req for req_id, req in requirements.items() if not req.withdrawn}
