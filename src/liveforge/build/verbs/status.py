"""``liveforge status``: every step, up to date / stale and why / never built, or building
(a running liveforge is building it now)."""

from __future__ import annotations

import sys
from typing import Any

from liveforge.build.graph import Plan, plan
from liveforge.build.running import building
from liveforge.build.stamps import read_stamp
from liveforge.build.workspace import Workspace


def status(ws: Workspace) -> list[dict[str, Any]]:
    p = plan(ws)
    now = building(ws)
    restorable = cached(ws, p)
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
                     "built": stamp.get("built") if stamp else None,
                     "restorable": restorable.get(name) if state != "building" else None})
    return rows


def cached(ws: Workspace, p: Plan) -> dict[str, str]:
    """Which store of the build cache holds each stale step (none when the cache is off)."""
    stale = p.stale()
    if not stale:
        return {}
    from liveforge.build.stepcache import open_cache
    from liveforge.util.events import Reporter

    cache = open_cache(ws, Reporter(verbose=-1))
    if cache is None:
        return {}
    keys = cache.keys(p)
    found = {name: cache.lookup(keys[name]) for name in stale
             if cache.cacheable(p.steps[name])}
    return {name: store for name, store in found.items() if store is not None}


def state_text(row: dict[str, Any]) -> str:
    """The state as printed: "stale (restorable from cache)" when an entry exists."""
    if row.get("restorable"):
        return f"{row['state']} (restorable from cache)"
    return str(row["state"])


def print_status(rows: list[dict[str, Any]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("component", "kind", "state", "why", "built")
        colour = {"up to date": "green", "stale": "yellow", "never built": "red",
                  "building": "cyan"}
        for r in rows:
            table.add_row(r["component"], r["kind"],
                          f"[{colour[r['state']]}]{state_text(r)}[/]", "; ".join(r["why"]),
                          r["built"] or "")
        Console().print(table)
        return
    width = max([len(r["component"]) for r in rows] + [9])
    states = max([len(state_text(r)) for r in rows] + [11])
    print(f"{'COMPONENT':<{width}}  {'KIND':<5}  {'STATE':<{states}}  WHY")
    for r in rows:
        print(f"{r['component']:<{width}}  {r['kind']:<5}  {state_text(r):<{states}}  "
              f"{'; '.join(r['why'])}".rstrip())
