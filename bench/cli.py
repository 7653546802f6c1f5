"""``loaderspec bench``: benchmarks of the post-loading path, two implementations side by side.

Usage::

    loaderspec bench [--impl X] [--vs Y] [--rounds N] [--quick] [--json PATH]
                     [--targets auto|cpu,sim,cuda] [--dense-scale S] [--only SUBSTRING ...]
                     [--threads N] [--malloc-default] [--no-host-memory] [--save NAME]
    loaderspec bench compare RUN [RUN ...] [--dir DIR] [--markdown]

X and Y are adapter names (``reference``, ``vllm``) or modules defining ``ADAPTER``, as
for the conformance suites. Both run in this process, round after round, with the floor
of each figure measured in the same rounds. The table prints, per workload: median of X
and its spread, median of Y and its spread, X/Y, the floor and its spread, X/floor and
Y/floor. Times are reported, never judged: the exit status is 0 unless an option cannot
work or an implementation cannot be loaded (2), or a case failed to run or a contender was
incorrect on the work it was about to be timed on (1). ``compare`` renders runs saved with
``--save`` (in any environment) side by side.

The benchmark code lives in the ``loaderspec_bench`` package (``bench/`` in the source tree).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from loaderspec.adapter import DEFAULT_IMPL, ENV_VAR, import_from_the_current_folder
from loaderspec.support.paths import cannot_write


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``loaderspec bench``."""
    parser = argparse.ArgumentParser(
        prog="loaderspec bench",
        usage="%(prog)s [options]\n       %(prog)s compare RUN [RUN ...] [--dir DIR] [--markdown]",
        description="Benchmark process_weights_after_loading and device_loading_context, "
        "each figure next to its floor, optionally against a second implementation.",
    )
    parser.add_argument(
        "--impl", default=None, help="implementation X: reference (default, or $LOADERSPEC_IMPL), vllm, or a module"
    )
    parser.add_argument("--vs", default=None, help="implementation Y to compare X with (same forms as --impl)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per figure (default 9, 5 with --quick)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds, smaller dense model, no 100k-module traversal"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--junit-xml",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write a JUnit XML report: a testcase per workload (incorrect or not measured: a failure)",
    )
    parser.add_argument(
        "--targets",
        default="auto",
        help="auto (cpu + cuda, else cpu + the simulated device when it builds) or a comma list of cpu,sim,cuda",
    )
    parser.add_argument(
        "--dense-scale",
        type=int,
        default=None,
        help="divide Llama-3-8B's widths by this (a divisor of 128; default 8, 16 with --quick)",
    )
    parser.add_argument(
        "--only", nargs="*", default=[], metavar="SUBSTRING", help="run only workloads whose name contains one"
    )
    parser.add_argument("--no-host-memory", action="store_true", help="skip the host-memory figure")
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="keep glibc's adaptive malloc thresholds (default: fixed, so freed memory is reused "
        "and figures do not depend on which contender ran before)",
    )
    parser.add_argument(
        "--save",
        default=None,
        metavar="NAME",
        help="save the run as NAME (with its floors, versions and machine facts) for `loaderspec bench compare`",
    )
    parser.add_argument(
        "--save-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where --save writes (default $LOADERSPEC_BENCH_DIR or ./.loaderspec-bench)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's); 1 keeps figures stable on a shared machine",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``loaderspec bench`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    ``loaderspec bench compare RUN [RUN ...]`` renders saved runs side by side instead.
    """
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        from loaderspec_bench.saved import compare_main

        return compare_main(argv[1:], sys.stdout, sys.stderr)
    args = build_parser().parse_args(argv)
    import_from_the_current_folder()
    return _run(args)


def _problem(args: argparse.Namespace) -> str | None:
    """The first option that cannot work, checked before anything is loaded or timed (exit 2)."""
    from loaderspec_bench import saved, workloads
    from loaderspec_bench.cases import default_cases
    from loaderspec_bench.targets import parse_targets

    for option, value in (("--impl", args.impl), ("--vs", args.vs)):
        if value is not None and not value.strip():
            return f"{option} is empty; give an adapter name or module (or leave {option} out)"
    if args.dense_scale is not None and args.dense_scale < 1:
        return f"--dense-scale must be a positive divisor of 128, got {args.dense_scale}"
    if args.rounds is not None and args.rounds < 1:
        return f"--rounds must be at least 1, got {args.rounds}"
    if args.threads is not None and args.threads < 1:
        return f"--threads must be at least 1, got {args.threads}"
    scale = args.dense_scale or (16 if args.quick else 8)
    try:
        workloads.dense_shape(scale)
    except ValueError as error:
        return f"--dense-scale {scale}: {error}"
    try:
        target_list, _ = parse_targets(args.targets)
    except ValueError as error:
        return f"--targets {args.targets!r}: {error}"
    if args.only:
        names = [case.name for case in default_cases(target_list, quick=args.quick, scale=scale)] + ["host-memory"]
        unknown = [key for key in args.only if not any(key in name for name in names)]
        if unknown:
            return f"--only {' '.join(unknown)}: matches no workload (workloads: {', '.join(names)})"
    if args.json is not None and not _writable(args.json):
        return f"--json {args.json}: cannot write there"
    if args.junit_xml is not None and not _writable(args.junit_xml):
        return f"--junit-xml {args.junit_xml}: cannot write there"
    if args.save is not None:
        try:
            saved.check_name(args.save)
        except saved.SavedRunError as error:
            return str(error)
        if not _writable(saved.storage_dir(args.save_dir) / f"{args.save}.json"):
            return f"--save {args.save}: cannot write into {saved.storage_dir(args.save_dir)}"
    return None


def _writable(path: Path) -> bool:
    """Whether a file can be created at ``path`` (its folder is created if missing), tried now."""
    import os

    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if path.is_dir() or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return False
    # A folder made at the end has only its permissions to go by; an existing one is tried.
    return existing != folder or cannot_write(path) is None


def _run(args: argparse.Namespace) -> int:
    """Check the options, then run the benchmarks (exit 2 when an option cannot work)."""
    import os
    import sys

    try:
        from loaderspec_bench.runner import Options, run
    except ImportError as error:
        print(f"loaderspec bench: the benchmark package loaderspec_bench cannot be imported ({error})", file=sys.stderr)
        return 2
    problem = _problem(args)
    if problem is not None:
        print(f"loaderspec bench: {problem}", file=sys.stderr)
        return 2
    options = Options(
        impl=args.impl or os.environ.get(ENV_VAR) or DEFAULT_IMPL,
        vs=args.vs,
        rounds=args.rounds,
        quick=args.quick,
        json_path=args.json,
        junit_path=args.junit_xml,
        targets=args.targets,
        dense_scale=args.dense_scale,
        only=list(args.only or []),
        host_memory=not args.no_host_memory,
        threads=args.threads,
        malloc_default=args.malloc_default,
        save=args.save,
        save_dir=args.save_dir,
    )
    return run(options)


if __name__ == "__main__":
    raise SystemExit(main())
