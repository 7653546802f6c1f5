"""Saved runs: ``loaderspec bench --save NAME`` in any environment, ``loaderspec bench compare A B ...``.

vLLM releases cannot share one Python environment, so a comparison across releases is a
comparison of runs made in different venvs. Each saved run holds its own floors (measured in
the same rounds as its figures), so the ratio to the floor compares across venvs on one
machine even when the machine's speed drifted between runs; raw figures are shown beside it.
A saved run is the ``--json`` document plus ``format``, ``name`` and ``saved_at``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .measure import format_seconds

FORMAT = "loaderspec-bench-run/1"
DIR_ENV = "LOADERSPEC_BENCH_DIR"
DEFAULT_DIR = Path(".loaderspec-bench")
NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+")


class SavedRunError(ValueError):
    """A saved run that cannot be found or read; the message names the problem."""


def storage_dir(folder: Path | None = None) -> Path:
    """Where names are saved and looked up: ``folder``, else ``$LOADERSPEC_BENCH_DIR``, else ``./.loaderspec-bench``."""
    return folder or Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


def check_name(name: str) -> str:
    """``name`` if it can name a saved run (letters, digits, ``. _ - +``), else SavedRunError."""
    if not name or not set(name) <= NAME_CHARACTERS or name.startswith("."):
        raise SavedRunError(
            f"--save {name!r}: a run name may hold only letters, digits and . _ - + (and not start with a dot)"
        )
    return name


def save(document: dict[str, Any], name: str, folder: Path | None = None) -> Path:
    """Write ``document`` as ``<dir>/<name>.json`` (replacing a run of that name); return the path."""
    path = storage_dir(folder) / f"{check_name(name)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "name": name, "saved_at": datetime.now(UTC).isoformat(), **document}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    temporary.replace(path)
    return path


def resolve(reference: str, folder: Path | None = None) -> Path:
    """A saved run's file: ``reference`` itself when it is a path to a file, else ``<dir>/<reference>.json``."""
    given = Path(reference)
    if given.suffix == ".json" or given.is_file():
        if not given.is_file():
            raise SavedRunError(f"{reference}: no such file")
        return given
    path = storage_dir(folder) / f"{reference}.json"
    if not path.is_file():
        known = sorted(p.stem for p in storage_dir(folder).glob("*.json"))
        raise SavedRunError(
            f"{reference!r}: no saved run of that name in {storage_dir(folder)}"
            + (f" (saved: {', '.join(known)})" if known else " (none saved there)")
        )
    return path


@dataclass
class SavedRun:
    """One saved run, read back."""

    name: str
    path: Path
    document: dict[str, Any]

    @property
    def cases(self) -> dict[str, dict[str, Any]]:
        return {case["name"]: case for case in self.document["cases"]}


def _require(condition: bool, path: Path, what: str) -> None:
    if not condition:
        raise SavedRunError(f"{path}: not a saved bench run ({what})")


def load(reference: str, folder: Path | None = None) -> SavedRun:
    """Read and check a saved run (by name or path); SavedRunError names what is wrong."""
    path = resolve(reference, folder)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise SavedRunError(f"{path}: not UTF-8 text ({error.reason})") from error
    except json.JSONDecodeError as error:
        raise SavedRunError(
            f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error
    _require(isinstance(document, dict), path, "the top level is not an object")
    # Runs written with --json before --save existed carry no format tag; their shape is the same.
    _require(document.get("format", FORMAT) == FORMAT, path, f"format {document.get('format')!r}, expected {FORMAT}")
    _require(isinstance(document.get("cases"), list), path, "no 'cases' list")
    for index, case in enumerate(document["cases"]):
        _require(isinstance(case, dict) and isinstance(case.get("name"), str), path, f"case {index} has no name")
        _require(isinstance(case.get("series", {}), dict), path, f"case {case['name']!r}: 'series' is not an object")
    _require(isinstance(document.get("impl"), str), path, "no 'impl' label")
    return SavedRun(str(document.get("name") or path.stem), path, document)


def _median(case: dict[str, Any], who: str) -> float | None:
    series = case.get("series", {}).get(who)
    value = series.get("median_s") if isinstance(series, dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass(frozen=True)
class Column:
    """One implementation of one run: X (``impl``) or Y (``vs``)."""

    run: SavedRun
    who: str

    @property
    def title(self) -> str:
        return self.run.name if self.who == "impl" else f"{self.run.name}:Y"

    @property
    def label(self) -> str:
        return str(self.run.document.get(self.who))


def columns(runs: Iterable[SavedRun]) -> list[Column]:
    """X of every run, and Y of the runs that had one."""
    found = []
    for run in runs:
        found.append(Column(run, "impl"))
        if run.document.get("vs"):
            found.append(Column(run, "vs"))
    return found


def _figure(column: Column, case: dict[str, Any] | None) -> tuple[str, str, str]:
    """(figure, floor, figure / floor) cells of ``column`` for one workload."""
    if case is None:
        return "", "", ""
    value, floor = _median(case, column.who), _median(case, "floor")
    if value is None:
        why = str(case.get("problems", {}).get(column.who, "n/a"))
        return ("incorrect" if why.startswith("incorrect") else "n/a"), "", ""
    ratio = f"{value / floor:.2f}" if floor else "-"
    if _noisy(case, column.who) or _noisy(case, "floor"):
        ratio += " noisy"
    return format_seconds(value), format_seconds(floor) if floor else "-", ratio


def _noisy(case: dict[str, Any], who: str) -> bool:
    series = case.get("series", {}).get(who)
    return bool(series.get("noisy")) if isinstance(series, dict) else False


def _host_memory_cells(column: Column) -> dict[str, str]:
    cells = {}
    for target, results in (column.run.document.get("host_memory") or {}).items():
        result = results.get(column.who) if isinstance(results, dict) else None
        if isinstance(result, dict) and isinstance(result.get("ratio_after"), (int, float)):
            cells[f"host-memory/{target}"] = f"{result['ratio_after']:.2f}x"
    return cells


def render(runs: list[SavedRun], out: TextIO, *, markdown: bool = False) -> None:
    """Saved runs side by side: per workload each implementation's median, its run's floor, and the ratio."""
    cols = columns(runs)
    print("runs:", file=out)
    for run in runs:
        d = run.document
        print(
            f"  {run.name}: X = {d.get('impl')}"
            + (f", Y = {d['vs']}" if d.get("vs") else "")
            + f"; {d.get('machine', '?')}; {d.get('rounds', '?')} rounds"
            + (", quick" if d.get("quick") else "")
            + f"; saved {d.get('saved_at', '?')}"
            + f"; load at the end {_load(d.get('load_average_end'))}",
            file=out,
        )
    names: list[str] = []
    for run in runs:
        names.extend(n for n in run.cases if n not in names)
    header = ["workload"] + [f"{c.title} {part}" for c in cols for part in ("median", "floor", "x floor")]
    rows = [[name, *[cell for c in cols for cell in _figure(c, c.run.cases.get(name))]] for name in names]
    memory = [_host_memory_cells(c) for c in cols]
    for key in sorted({k for cells in memory for k in cells}):
        rows.append([f"{key} (x param bytes)", *[cell for cells in memory for cell in ("", "", cells.get(key, ""))]])
    _print_table(header, rows, out, markdown)
    print(
        "x floor: the median over that run's own floor, measured in the same rounds (compare these across runs); "
        "noisy: figure or floor spread (IQR/median) above 10%",
        file=out,
    )


def _load(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "?"


def _print_table(header: list[str], rows: list[list[str]], out: TextIO, markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |", file=out)
        print("|" + "---|" * len(header), file=out)
        for row in rows:
            print("| " + " | ".join(row) + " |", file=out)
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def compare_main(argv: list[str], out: TextIO, err: TextIO) -> int:
    """``loaderspec bench compare RUN [RUN ...] [--dir DIR] [--markdown]``: exit 0, or 2 with one line on bad input."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="loaderspec bench compare", description="Render saved runs side by side (raw figures and x floor)."
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="a name saved with --save, or a path to a JSON file")
    parser.add_argument(
        "--dir", type=Path, default=None, help=f"where names are looked up (default ${DIR_ENV} or ./{DEFAULT_DIR})"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    try:
        runs = [load(reference, args.dir) for reference in args.runs]
    except SavedRunError as error:
        print(f"loaderspec bench compare: {error}", file=err)
        return 2
    render(runs, out, markdown=args.markdown)
    return 0
