"""The component graph as Graphviz: one node per build step (its kind and state), an edge from
each step to the steps that depend on it; stale and never-built steps are marked (filled, and
their reason in the node's tooltip). With a component, only its dependencies and dependents.
Rendered by Graphviz's ``dot``."""

from __future__ import annotations

import subprocess
from typing import Any

from liveforge.util.depgraph import closure
from liveforge.util.errors import LiveforgeError, UsageError

COLOURS = {"up to date": "#d9f2d9", "stale": "#ffd27f", "never built": "#ff9f9f",
           "building": "#9fd3ff"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def neighbourhood(deps: dict[str, tuple[str, ...]], component: str) -> set[str]:
    """The steps of ``component`` (and its other phases), with everything they depend on and
    everything depending on them."""
    own = [s for s in deps if s == component or s.startswith(f"{component}:")]
    if not own:
        raise UsageError(f"no component {component!r} (components: "
                         f"{', '.join(sorted({s.split(':')[0] for s in deps}))})")
    dependents: dict[str, tuple[str, ...]] = {s: () for s in deps}
    for step, needs in deps.items():
        for need in needs:
            dependents[need] = (*dependents[need], step)
    return set(closure(deps, own)) | set(closure(dependents, own))


def dot(rows: list[dict[str, Any]], deps: dict[str, tuple[str, ...]],
        component: str | None = None, title: str = "") -> str:
    """The graph as DOT text; ``rows``: ``status`` rows (component, kind, state, why)."""
    keep = neighbourhood(deps, component) if component else set(deps)
    lines = ["digraph components {", "  rankdir=LR;",
             f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; fontsize=12;",
             "  node [shape=box, style=\"rounded,filled\", fontname=Helvetica, fontsize=10];",
             "  edge [color=\"#555555\"];"]
    for row in rows:
        name = row["component"]
        if name not in keep:
            continue
        state = row["state"]
        why = "; ".join(row.get("why") or [])
        label = f"{name}\n{row['kind']}" + ("" if state == "up to date" else f"\n{state}")
        pen = ", penwidth=2.5" if name == component else ""
        lines.append(f"  {_quote(name)} [label={_quote(label)}, fillcolor="
                     f"{_quote(COLOURS.get(state, '#eeeeee'))}, tooltip="
                     f"{_quote(f'{name}: {state}' + (f' ({why})' if why else ''))}{pen}];")
    for step in sorted(keep):
        for need in deps.get(step, ()):
            if need in keep:
                lines.append(f"  {_quote(need)} -> {_quote(step)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(text: str, fmt: str = "svg") -> str:
    """DOT text rendered by Graphviz's ``dot`` (SVG: the ``<svg>`` element alone)."""
    try:
        proc = subprocess.run(["dot", f"-T{fmt}"], input=text, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise LiveforgeError("Graphviz's dot is not installed (apt-get install graphviz)") \
            from None
    if proc.returncode != 0:
        raise LiveforgeError(f"dot failed: {proc.stderr.strip()}")
    out = proc.stdout
    return out[out.index("<svg"):] if fmt == "svg" and "<svg" in out else out
