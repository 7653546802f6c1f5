"""The requirements of the spec, read from its Markdown chapters (shipped as ``loaderspec_spec``).

A requirement is a heading ``### XX-n (MUST|SHOULD|MAY) Title`` in a chapter file.
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

HEADING = re.compile(r"^### ([A-Z]{2}-\d+) \((MUST|SHOULD|MAY)\) (.+)$", re.MULTILINE)
ID = re.compile(r"^[A-Z]{2}-\d+$")


@dataclass(frozen=True)
class Requirement:
    id: str
    level: str
    title: str
    chapter: str


def spec_dir() -> Path:
    """The folder holding the spec chapters (the checkout's ``spec/`` or the installed copy)."""
    return Path(str(resources.files("loaderspec_spec")))


def load_requirements(folder: Path | None = None) -> dict[str, Requirement]:
    """Every requirement of every chapter, by ID, in chapter order."""
    folder = folder or spec_dir()
    requirements: dict[str, Requirement] = {}
    for chapter in CHAPTERS:
        text = (folder / f"{chapter}.md").read_text(encoding="utf-8")
        for match in HEADING.finditer(text):
            req_id, level, title = match.groups()
            if req_id in requirements:
                raise ValueError(f"requirement {req_id} is defined twice ({requirements[req_id].chapter}, {chapter})")
            requirements[req_id] = Requirement(req_id, level, title.strip(), chapter)
    return requirements
