"""The ``loaderspec`` command: ``conform`` (the conformance run), ``matrix`` and ``bench``."""

from __future__ import annotations

import sys

USAGE = """usage: loaderspec {conform,matrix,history,bench} [options] | loaderspec --version

  conform   run the property suites against an implementation; a verdict per requirement
  matrix    render conform JSON reports of several targets into one page (docs/conformance.md)
  history   build and render the conformance history of vLLM releases (docs/history.md)
  bench     benchmark the post-loading path, side by side with another implementation
            (loaderspec bench compare RUN...: saved runs side by side)

'loaderspec COMMAND --help' describes each command's options.
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        from loaderspec.conform.runner import version_line

        print(version_line())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "conform":
        from loaderspec.conform.runner import conform

        return conform(rest)
    if command == "matrix":
        from loaderspec.conform.matrix import matrix

        return matrix(rest)
    if command == "history":
        from loaderspec.history.__main__ import main as history

        return history(rest)
    if command == "bench":
        from loaderspec_bench.cli import main as bench

        return bench(rest)
    print(f"loaderspec: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
