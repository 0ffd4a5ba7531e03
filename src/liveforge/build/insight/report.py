"""``report.html``: one self-contained page about a platform, written into its directory.

It holds the components table (kind, version, licence, size, build time, state), the
dependency graph (Graphviz), the timeline and the size breakdown (matplotlib, SVG), the size
difference from the previous platform, and links to the SBOM files beside it. Every chart is
inline SVG and the style is inline: the page fetches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from liveforge.build.insight.bom import Bom
from liveforge.build.insight.size import Sizes, human


@dataclass(frozen=True, slots=True)
class Page:
    """What the page shows, gathered by the ``report`` verb."""

    bom: Bom
    sizes: Sizes
    rows: list[dict[str, Any]]             # ``status`` rows
    durations: dict[str, float]            # step -> seconds it took when last built
    graph_svg: str
    timeline_svg: str
    size_svg: str
    previous: str | None                   # the previous platform's name
    diff: list[dict[str, Any]]             # size_diff rows against it
    sbom_files: tuple[str, ...]


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
.note { color: #666; font-size: 0.85em; }
.chart svg { max-width: 100%; height: auto; }
.stale { background: #ffd27f; } .never { background: #ff9f9f; } .ok { background: #d9f2d9; }
"""


def _table(head: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f"<td class=\"n\">{cell}</td>" if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def html(page: Page) -> str:
    bom = page.bom
    by_component: dict[str, Any] = {str(r["name"]): r for r in page.sizes.rows("component")}
    states = {r["component"]: r for r in page.rows}
    rows = []
    for component in bom.components:
        size = by_component.get(component.name, {})
        steps = [s for s in states if s == component.name or s.startswith(f"{component.name}:")]
        took = sum(page.durations.get(s, 0.0) for s in steps)
        state = "; ".join(f"{s}: {states[s]['state']}" for s in steps) or \
            "(delivered as it is)"
        css = "ok" if all(states[s]["state"] == "up to date" for s in steps) else \
            "never" if any(states[s]["state"] == "never built" for s in steps) else "stale"
        if component.name == page.sizes.kernel_owner and not size:
            # it ships the kernel, which boots beside the boot archive: its bytes, no share
            shipped = [str(sum(f.component == component.name for f in bom.files)),
                       f"{human(page.sizes.kernel_bytes)} <span class=\"note\">(the kernel, "
                       "beside the boot archive)</span>", "", ""]
        else:
            shipped = [str(size.get("files", 0)), human(int(size.get("bytes", 0))),
                       human(int(size.get("compressed", 0))), f"{size.get('share', 0.0)}%"]
        rows.append([escape(component.name), escape(component.kind),
                     escape(component.version), escape(component.license), *shipped,
                     f"{took:.1f}s" if steps else "",
                     f"<span class=\"{css}\">{escape(state)}</span>"])
    table = _table(["component", "kind", "version", "licence", "files", "bytes",
                    "compressed", "share", "build time", "state"], rows, {4, 5, 6, 7, 8})
    if page.previous is None:
        diff = "<p>No previous platform in this output directory.</p>"
    elif not page.diff:
        diff = f"<p>Same sizes as {escape(page.previous)}.</p>"
    else:
        diff = f"<p>Against {escape(page.previous)}:</p>" + _table(
            ["component", "bytes before", "bytes now", "change", "compressed change"],
            [[escape(str(d["name"])), human(d["bytes_a"]), human(d["bytes_b"]),
              human(d["delta"]), human(d["compressed_delta"])] for d in page.diff],
            {1, 2, 3, 4})
    links = "".join(f"<li><a href=\"{escape(name)}\">{escape(name)}</a></li>"
                    for name in page.sbom_files)
    title = f"{bom.platform} {bom.stamp}"
    total = page.sizes
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>liveforge report: {escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>Platform {escape(title)}</h1>
<p>Boot archive: {human(total.archive_bytes)} compressed, {human(total.content_bytes)} of
cpio; kernel beside it: {human(total.kernel_bytes)}. {len(bom.files)} regular files from
{len(bom.components)} components.</p>
<h2 id="components">Components</h2>
{table}
<h2 id="graph">Dependency graph</h2>
<div class="chart" id="chart-graph">{page.graph_svg}</div>
<h2 id="timeline">Timeline</h2>
<div class="chart" id="chart-timeline">{page.timeline_svg}</div>
<h2 id="size">Size</h2>
<div class="chart" id="chart-size">{page.size_svg}</div>
<h2 id="diff">Difference from the previous platform</h2>
{diff}
<h2 id="sbom">SBOM</h2>
<ul>{links}</ul>
</body></html>
"""
