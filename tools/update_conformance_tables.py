"""Regenerate docs/conformance.md's conformance tables from real runs (never edit them by hand).

    python tools/update_conformance_tables.py [--venv VERSION=PATH ...]

Runs `loaderspec conform --markdown` for the reference (this environment) and for each
vLLM venv made by `.ci/install-vllm.sh` (default: .venv-vllm-0.9.2 and .venv-vllm-0.32.0
in the repository), and splices the tables between the page's markers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- conformance-tables:begin -->", "<!-- conformance-tables:end -->"


def run(python: Path, impl: str, title: str) -> str:
    with tempfile.TemporaryDirectory() as work:
        markdown, report = Path(work) / "table.md", Path(work) / "report.json"
        command = [str(python), "-m", "loaderspec.cli", "conform", "--impl", impl, "--markdown", str(markdown)]
        subprocess.run([*command, "--json", str(report)], cwd=REPO, check=False)
        if not report.exists():
            raise SystemExit(f"{title}: the conformance run wrote no report")
        header = json.loads(report.read_text())["header"]
        summary = json.loads(report.read_text())["summary"]
        counts = ", ".join(f"{n} {verdict}" for verdict, n in summary["requirements"].items())
        intro = (
            f"### {title}\n\n`{header['target']}` {header['target_version']}, torch {header['torch']}, "
            f"transformers {header['transformers']}, profile `{header['profile']}`: {counts} "
            f"(exit status {summary['exit_status']}, {header['elapsed_s']} s).\n\n"
        )
        return intro + markdown.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", action="append", default=[], help="VERSION=PATH of a vLLM venv")
    args = parser.parse_args(argv)
    venvs = dict(v.split("=", 1) for v in args.venv) or {v: str(REPO / f".venv-vllm-{v}") for v in ("0.9.2", "0.32.0")}
    sections = [run(Path(sys.executable), "reference", "Reference implementation")]
    for version, path in venvs.items():
        python = Path(path) / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"no venv for vLLM {version} at {path}: bash .ci/install-vllm.sh {version} {path}")
        sections.append(run(python, "vllm", f"vLLM {version}"))
    readme = REPO / "docs" / "conformance.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + "\n".join(sections) + text[end:])
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
