"""How ``loaderspec bench`` prints its results: the table row by row, host memory, the traversal summary."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TextIO

import torch

from .measure import Series, format_seconds

if TYPE_CHECKING:
    from .runner import Row


def spread(series: Series | None) -> str:
    if series is None or not series.times:
        return ""
    return f"±{series.spread:.0%}" + (" noisy" if series.noisy else "")


def cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None or math.isnan(value) else fmt.format(value)


WHO = {"impl": "X", "vs": "Y", "floor": "floor"}


class Table:
    """Fixed-width rows printed as they are measured."""

    COLUMNS = (
        ("workload", 46),
        ("X median", 10),
        ("spread", 11),
        ("Y median", 10),
        ("spread", 11),
        ("X/Y", 6),
        ("floor", 10),
        ("spread", 11),
        ("X/floor", 8),
        ("Y/floor", 8),
    )

    Y_COLUMNS = (3, 4, 5, 9)
    """The columns about implementation Y, shown only when there is one (``--vs``)."""

    def __init__(self, out: TextIO, with_vs: bool = True) -> None:
        self.out = out
        self.shown = [i for i in range(len(self.COLUMNS)) if with_vs or i not in self.Y_COLUMNS]

    def header(self) -> None:
        line = " ".join(self.COLUMNS[i][0].ljust(self.COLUMNS[i][1]) for i in self.shown) + " note"
        print(line, file=self.out)
        print("-" * len(line), file=self.out)
        print(
            "times: lower is better; X/floor: how far X is from the fastest the work can be done here "
            "(1.00x at the floor)",
            file=self.out,
        )

    def starting(self, name: str) -> None:
        """Say which workload is being measured (a large one takes tens of seconds)."""
        if getattr(self.out, "isatty", lambda: False)():  # overwritten by the row when it is done
            print(f"{name} ...", end="\r", file=self.out, flush=True)
        else:  # a log keeps every line: say it on a line of its own
            print(f"measuring {name} ...", file=self.out, flush=True)

    def row(self, row: Row) -> None:
        impl, vs, floor = (row.series.get(k) for k in ("impl", "vs", "floor"))
        cells = [
            row.case.name,
            format_seconds(impl.median) if impl else "n/a",
            spread(impl),
            format_seconds(vs.median) if vs else ("n/a" if "vs" in row.problems else "-"),
            spread(vs),
            cell(row.ratio("impl", "vs")),
            format_seconds(floor.median) if floor else "-",
            spread(floor),
            cell(row.ratio("impl", "floor")),
            cell(row.ratio("vs", "floor")),
        ]
        notes = []
        if row.nbytes:
            rates = [f"{WHO[who]} {row.nbytes / s.median / 1e9:.2f} GB/s" for who, s in row.series.items() if s.times]
            notes.append(", ".join(rates))
        if "modules" in row.info:
            notes.append(f"{row.info['modules']:,} modules")
        notes.extend(f"{WHO.get(who, who)}: {why}" for who, why in row.problems.items())
        if floor is not None and floor.noisy:
            notes.append(f"the floor varies ±{floor.spread:.0%} between rounds: its ratios mean nothing here")
        text = " ".join(str(cells[i]).ljust(self.COLUMNS[i][1]) for i in self.shown)
        print(text + " " + "; ".join(notes), file=self.out, flush=True)


def print_host_memory(target: torch.device, results: dict[str, dict[str, Any]], out: TextIO) -> None:
    for who, r in results.items():
        name = WHO[who]
        if "problem" in r:
            print(f"  {name} on {target}: {r['problem']}", file=out)
            continue
        trim = "" if r["ratio_after_trim"] is None else f", {r['ratio_after_trim']:.2f}x after malloc_trim"
        if r.get("ratio_active_after") is not None:
            trim += f", {r['ratio_active_after']:.2f}x in use (the rest is cached free blocks)"
        print(
            f"  {name} on {target}: params {r['param_bytes'] / 2**20:.1f} MiB; host bytes held "
            f"before the pass {r['ratio_before']:.2f}x, after the restore {r['ratio_after']:.2f}x{trim} "
            f"(floor 1.00x; counted by {r['source']}); a power-of-two pinned allocator "
            f"(CUDA, vLLM #56410) would hold {r['predicted_pow2_ratio']:.2f}x per copy",
            file=out,
        )


def traversal_points(rows: list[Row]) -> list[dict[str, Any]]:
    """The traversal ratio at each size, with the floor per module and X's excess per quantized module."""
    points = []
    for row in rows:
        if not row.case.name.startswith("traversal/") or row.ratio("impl", "floor") is None:
            continue
        quantized = row.info.get("quantized_modules") or 0
        impl, floor = row.median("impl"), row.median("floor")
        assert impl is not None and floor is not None
        points.append(
            {
                "modules": row.info.get("modules"),
                "ratio_impl_floor": impl / floor,
                "ratio_vs_floor": row.ratio("vs", "floor"),
                "floor_per_module_us": floor / row.info["modules"] * 1e6,
                "excess_per_quantized_module_us": (impl - floor) / quantized * 1e6 if quantized else None,
            }
        )
    return points


def print_traversal(points: list[dict[str, Any]], out: TextIO) -> None:
    if not points:
        return
    print("\ntraversal (process_weights_after_loading, no-op methods, CPU target) vs its floor:", file=out)
    for p in points:
        excess = p["excess_per_quantized_module_us"]
        vs = "" if p["ratio_vs_floor"] is None else f", Y {p['ratio_vs_floor']:.2f}x"
        print(
            f"  {p['modules']:>7,} modules: X {p['ratio_impl_floor']:.2f}x floor{vs}; floor "
            f"{p['floor_per_module_us']:.2f} us/module; X's excess "
            + ("-" if excess is None else f"{excess:.2f} us per quantized module"),
            file=out,
        )
    if len(points) > 1:
        growth = points[-1]["ratio_impl_floor"] / points[0]["ratio_impl_floor"]
        print(
            f"  growth of X/floor from {points[0]['modules']:,} to {points[-1]['modules']:,} modules: "
            f"{growth:.2f}x (1.00 = the excess scales linearly, like the floor)",
            file=out,
        )


def print_breakdown(series: dict[str, Series], modules: int, rounds: int, out: TextIO) -> None:
    floor = series["floor"].median
    print(f"  where X's time goes at {modules:,} modules (interleaved, {rounds} rounds):", file=out)
    for name, s in series.items():
        print(f"    {name:<26} {format_seconds(s.median):>9} {spread(s):<11} {s.median / floor:.2f}x floor", file=out)


def floor_legend(rows: list[Row]) -> str:
    kinds: dict[str, list[str]] = {}
    for row in rows:
        found = kinds.setdefault(row.case.name.split("/", 1)[0], [])
        if row.case.floor_kind not in found:
            found.append(row.case.floor_kind)
    return "; ".join(f"{prefix}: {' | '.join(found)}" for prefix, found in kinds.items())


def render_junit(rows: list[Row], elapsed: float) -> str:
    """A JUnit XML report of a run: one testsuite per chapter, one testcase per workload (time:
    X's median). A contender that was incorrect or could not be measured is a ``failure`` (the
    run exits 1 on it); "not provided" is a ``skipped`` case; each figure, and a noisy spread,
    is a property of the suite (JUnit has no place for numbers on a case), so a regression job
    shows in the same report view as the conformance job."""
    from xml.etree import ElementTree

    root = ElementTree.Element("testsuites", name="loaderspec bench", time=f"{elapsed:.3f}")
    chapters: dict[str, list[Row]] = {}
    for row in rows:
        chapters.setdefault(row.case.chapter, []).append(row)
    for chapter, members in chapters.items():
        failing = [r for r in members if any(not why.startswith("not provided") for why in r.problems.values())]
        skipped = [r for r in members if r not in failing and r.problems]
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            {"name": chapter, "tests": str(len(members)), "failures": str(len(failing)), "errors": "0"}
            | {"skipped": str(len(skipped))},
        )
        properties = ElementTree.SubElement(suite, "properties")
        for row in members:
            for who, series in row.series.items():
                if series.times:
                    value = f"{series.median:.6g} s (spread ±{series.spread:.0%}{', noisy' if series.noisy else ''})"
                    ElementTree.SubElement(properties, "property", name=f"{row.case.name} {WHO[who]}", value=value)
            ratio = row.ratio("impl", "floor")
            if ratio is not None:
                ElementTree.SubElement(properties, "property", name=f"{row.case.name} X/floor", value=f"{ratio:.3f}")
        for row in members:
            impl = row.series.get("impl")
            time = f"{impl.median:.3f}" if impl is not None and impl.times else "0.000"
            case = ElementTree.SubElement(suite, "testcase", name=row.case.name, classname=chapter, time=time)
            problems = "; ".join(f"{WHO.get(who, who)}: {why}" for who, why in row.problems.items())
            if row in failing:
                ElementTree.SubElement(case, "failure", type="incorrect or not measured", message=problems)
            elif row in skipped:
                ElementTree.SubElement(case, "skipped", type="not provided", message=problems)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
