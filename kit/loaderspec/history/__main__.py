"""``python -m loaderspec.history`` (also ``loaderspec history``): build or render the history.

    python -m loaderspec.history build [VERSION...] [--force] [--retry-failed] [--keep-venv]
    python -m loaderspec.history render [--check]
    python -m loaderspec.history sources [VERSION...]

build: install each named release (all when none is named) in its own venv, run
``loaderspec conform --impl vllm --profile ci --allow-inconclusive`` there and write
docs/reports/history/vllm-X.Y.Z.json; a release whose report exists is skipped unless
--force; one that failed before is skipped unless named or --retry-failed.
render: write docs/history.md and docs/history.svg from those reports; --check writes
nothing and exits 1 when either differs from what the reports give.
sources: extract each release's model-loader files from its wheel into
build/history/sources/X.Y.Z/ (no install), to diff releases at a change point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loaderspec history",
        description=__doc__.replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="install releases and write their reports")
    build.add_argument("versions", nargs="*", help="releases, e.g. 0.8.5 0.20.2 (default: all)")
    build.add_argument("--force", action="store_true", help="rebuild releases whose report exists")
    build.add_argument("--retry-failed", action="store_true", help="retry releases that failed before")
    build.add_argument("--keep-venv", action="store_true", help="keep each release's venv")
    build.add_argument("--reports", type=Path, default=REPO / "docs/reports/history")
    build.add_argument("--work", type=Path, default=REPO / "build/history", help="venvs, logs, pip cache")
    sources = commands.add_parser("sources", help="extract releases' model-loader files from their wheels")
    sources.add_argument("versions", nargs="*", help="releases (default: all)")
    sources.add_argument("--work", type=Path, default=REPO / "build/history")
    render = commands.add_parser("render", help="write docs/history.md and its picture")
    render.add_argument("--reports", type=Path, default=Path("docs/reports/history"))
    render.add_argument("--output", type=Path, default=Path("docs/history.md"))
    render.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "build":
        from loaderspec.history.build import build

        try:
            return build(
                args.versions,
                REPO,
                args.reports.resolve(),
                args.work.resolve(),
                force=args.force,
                keep_venv=args.keep_venv,
                retry_failed=args.retry_failed,
            )
        except KeyError as error:
            print(f"loaderspec history: {error.args[0]}", file=sys.stderr)
            return 2
    if args.command == "sources":
        from loaderspec.history.sources import sources

        return sources(args.versions, args.work.resolve())
    from loaderspec.history.render import render_command

    return render_command(args.reports, args.output, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
