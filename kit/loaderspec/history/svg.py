"""The history as a picture: the requirement x release grid, one coloured cell per verdict.

Hand-written SVG (no plotting dependency; text, so it diffs): releases left to right in
order, requirements top to bottom grouped by spec chapter, a legend below. Each cell's
``<title>`` names the requirement, the release and the verdict (a tooltip in a browser).
The same history gives the same bytes.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from loaderspec.history.verdicts import ORDER, History

COLOURS = {
    "passed": "#2da44e",
    "failed": "#cf222e",
    "inconclusive": "#d4a72c",
    "not provided": "#afb8c1",
    "adapter error": "#8250df",
    "unchecked": "#57606a",
    "not run": "#ffffff",
}
OTHER = "#24292f"
CELL_W, CELL_H = 18, 11
LEFT, TOP = 64, 58
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def colour(verdict: str) -> str:
    return COLOURS.get(verdict, OTHER)


def render_svg(history: History, chapters: dict[str, str]) -> str:
    """The grid; ``chapters`` maps each requirement to its spec chapter (grouped in that order)."""
    releases = [r.version for r in history.releases]
    groups: dict[str, list[str]] = {}
    for requirement in history.requirements:
        groups.setdefault(chapters.get(requirement, "other"), []).append(requirement)
    rows: list[tuple[str, str]] = []  # ("chapter", name) or ("requirement", id)
    for chapter, requirements in groups.items():
        rows.append(("chapter", chapter))
        rows += [("requirement", requirement) for requirement in requirements]
    width = LEFT + CELL_W * len(releases) + 10
    grid_bottom = TOP + CELL_H * len(rows)
    legend = [v for v in ORDER if any(v in by_release.values() for by_release in history.verdicts.values())]
    legend += sorted({v for d in history.verdicts.values() for v in d.values()} - set(ORDER))
    height = grid_bottom + 14 + 14 * len(legend) + 6
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="9">',
        "<title>loaderspec conformance history: requirement x vLLM release</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for column, release in enumerate(releases):
        x = LEFT + CELL_W * column + CELL_W // 2 + 3
        out.append(f'<text x="{x}" y="{TOP - 4}" transform="rotate(-60 {x} {TOP - 4})">{escape(release)}</text>')
    for number, (kind, name) in enumerate(rows):
        y = TOP + CELL_H * number
        if kind == "chapter":
            out.append(f'<text x="2" y="{y + CELL_H - 2}" font-weight="bold">{escape(name)}</text>')
            continue
        out.append(f'<text x="2" y="{y + CELL_H - 2}">{escape(name)}</text>')
        for column, release in enumerate(releases):
            verdict = history.verdicts[name].get(release, "not run")
            x = LEFT + CELL_W * column
            out.append(
                f'<rect x="{x}" y="{y}" width="{CELL_W - 1}" height="{CELL_H - 1}" fill="{colour(verdict)}" '
                f'stroke="#d0d7de" stroke-width="0.5"><title>{escape(f"{name} {release}: {verdict}")}</title></rect>'
            )
    for number, verdict in enumerate(legend):
        y = grid_bottom + 14 + 14 * number
        out.append(
            f'<rect x="{LEFT}" y="{y - 9}" width="{CELL_W - 1}" height="{CELL_H - 1}" fill="{colour(verdict)}" '
            'stroke="#d0d7de" stroke-width="0.5"/>'
        )
        out.append(f'<text x="{LEFT + CELL_W + 4}" y="{y}">{escape(verdict)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
