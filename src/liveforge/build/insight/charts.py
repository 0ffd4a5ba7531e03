"""matplotlib, set up once for charts as SVG text: no pyplot (no global figures, no GUI), the
SVG backend, fixed element ids and no date, so the same data gives the same bytes."""

from __future__ import annotations

import io
from typing import Any

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def figure(width: float, height: float) -> Any:
    """A new matplotlib Figure (inches), drawn by the SVG backend."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "liveforge"   # fixed ids
    matplotlib.rcParams["svg.fonttype"] = "path"        # no font is needed to show it
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def to_svg(fig: Any) -> str:
    """The figure as an SVG element (no XML declaration or DOCTYPE: it goes inline in HTML
    as well as into a file of its own)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def stacked_bars(title: str, bars: list[tuple[str, dict[str, int]]], unit: str) -> str:
    """Horizontal stacked bars: each bar (its label) split into named parts, one colour per
    part name across bars, labelled in a legend."""
    names: list[str] = []
    for _, parts in bars:
        names += [n for n in parts if n not in names]
    fig = figure(8.0, max(1.2 + 0.6 * len(bars), 0.5 + 0.22 * len(names)))
    ax = fig.add_subplot()
    for y, (_, parts) in enumerate(bars):
        left = 0
        for index, name in enumerate(names):
            value = parts.get(name, 0)
            ax.barh(y, value, left=left, color=PALETTE[index % len(PALETTE)],
                    label=name if y == 0 else None, edgecolor="white", linewidth=0.5)
            left += value
    ax.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    ax.set_xlabel(unit, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return to_svg(fig)
