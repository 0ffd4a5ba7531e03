"""``liveforge status``: every step, up to date / stale and why / never built, or building
(a running liveforge is building it now)."""

from __future__ import annotations

import sys
from typing import Any

from liveforge.build.graph import plan
from liveforge.build.running import building
from liveforge.build.stamps import read_stamp
from liveforge.build.workspace import Workspace


def status(ws: Workspace) -> list[dict[str, Any]]:
    p = plan(ws)
    now = building(ws)
    rows = []
    for name in p.order:
        step = p.steps[name]
        reasons = p.reasons[name]
        stamp = read_stamp(ws.stamp_path(step.stamp_name))
        state = "up to date" if not reasons else (
            "never built" if reasons == ["never built"] else "stale")
        if name in now:
            state = "building"
        rows.append({"component": name, "kind": step.spec.kind, "state": state,
                     "why": [] if state != "stale" else reasons,
                     "built": stamp.get("built") if stamp else None})
    return rows


def print_status(rows: list[dict[str, Any]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("component", "kind", "state", "why", "built")
        colour = {"up to date": "green", "stale": "yellow", "never built": "red",
                  "building": "cyan"}
        for r in rows:
            table.add_row(r["component"], r["kind"],
                          f"[{colour[r['state']]}]{r['state']}[/]", "; ".join(r["why"]),
                          r["built"] or "")
        Console().print(table)
        return
    width = max([len(r["component"]) for r in rows] + [9])
    print(f"{'COMPONENT':<{width}}  {'KIND':<5}  {'STATE':<11}  WHY")
    for r in rows:
        print(f"{r['component']:<{width}}  {r['kind']:<5}  {r['state']:<11}  "
              f"{'; '.join(r['why'])}".rstrip())
