"""The timeline of a build, from its event log ``log/build.<stamp>.jsonl``: one bar per step
on a time axis (each component step from its ``start`` to its ``finish`` or ``fail`` event;
each assembly step from its ``step`` event to the next), how many steps ran at once, and the
critical path: the chain of steps each of which waited for the one before it (from the step
that ended last, back through the dependency that ended last), then the assembly.

Drawn with matplotlib's SVG backend, with fixed ids and no date: the same events give the
same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from liveforge.util.errors import LiveforgeError

ASSEMBLY = "assembly"
STEP = "step"


@dataclass(frozen=True, slots=True)
class Bar:
    name: str
    start: float       # seconds from the first event
    end: float
    kind: str          # STEP (a component's build step) or ASSEMBLY
    ok: bool = True
    critical: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Timeline:
    stamp: str
    bars: tuple[Bar, ...]            # in start order
    parallel: tuple[tuple[float, int], ...]  # (time, steps running from then on)

    @property
    def total(self) -> float:
        return max((b.end for b in self.bars), default=0.0)

    def critical_path(self) -> list[str]:
        return [b.name for b in self.bars if b.critical]


def read_events(path: Path) -> list[dict[str, object]]:
    """The events of a build log (a line that is not a JSON object is an error naming it)."""
    if not path.is_file():
        raise LiveforgeError(f"no event log {path}: build with 'liveforge live' (or world) "
                             "to record one")
    events = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or "event" not in event or "time" not in event:
            raise LiveforgeError(f"{path}:{number}: not an event (a JSON object with "
                                 "'event' and 'time')")
        events.append(event)
    return events


def timeline(events: list[dict[str, object]], deps: dict[str, tuple[str, ...]],
             stamp: str = "") -> Timeline:
    """The bars of ``events``; ``deps``: each step's dependencies (the plan's), for the
    critical path."""
    if not events:
        return Timeline(stamp, (), ())
    t0 = min(float(e["time"]) for e in events)  # type: ignore[arg-type]
    last = max(float(e["time"]) for e in events)  # type: ignore[arg-type]
    open_steps: dict[str, float] = {}
    bars: list[Bar] = []
    assembly: tuple[str, float] | None = None
    for event in events:
        kind, when = event["event"], float(event["time"]) - t0  # type: ignore[arg-type]
        name = str(event.get("component", ""))
        if kind in ("step", "platform") and assembly is not None:
            bars.append(Bar(assembly[0], assembly[1], when, ASSEMBLY))
            assembly = None
        if kind == "start":
            open_steps[name] = when
        elif kind in ("finish", "fail") and name in open_steps:
            bars.append(Bar(name, open_steps.pop(name), when, STEP, ok=kind == "finish"))
        elif kind == "step":
            assembly = (str(event.get("text", "")), when)
    if assembly is not None:
        bars.append(Bar(assembly[0], assembly[1], last - t0, ASSEMBLY))
    for name, began in open_steps.items():     # a run cut short
        bars.append(Bar(name, began, last - t0, STEP, ok=False))
    critical = _critical(bars, deps)
    bars = [Bar(b.name, b.start, b.end, b.kind, b.ok, b.name in critical and
                (b.kind == STEP or b.start >= _steps_end(bars))) for b in bars]
    bars.sort(key=lambda b: (b.start, b.end, b.name))
    return Timeline(stamp, tuple(bars), _parallel(bars))


def _steps_end(bars: list[Bar]) -> float:
    return max((b.end for b in bars if b.kind == STEP), default=0.0)


def _critical(bars: list[Bar], deps: dict[str, tuple[str, ...]]) -> set[str]:
    steps = {b.name: b for b in bars if b.kind == STEP}
    chain: set[str] = {b.name for b in bars if b.kind == ASSEMBLY}
    current = max(steps.values(), key=lambda b: (b.end, b.name), default=None)
    while current is not None:
        chain.add(current.name)
        ran = [steps[d] for d in deps.get(current.name, ()) if d in steps]
        current = max(ran, key=lambda b: (b.end, b.name), default=None)
    return chain


def _parallel(bars: list[Bar]) -> tuple[tuple[float, int], ...]:
    changes: dict[float, int] = {}
    for bar in bars:
        if bar.kind == STEP:
            changes[bar.start] = changes.get(bar.start, 0) + 1
            changes[bar.end] = changes.get(bar.end, 0) - 1
    running, points = 0, []
    for when in sorted(changes):
        running += changes[when]
        points.append((round(when, 3), running))
    return tuple(points)


def svg(line: Timeline) -> str:
    """The timeline as an SVG chart: the bars (critical path in red, failed steps hatched),
    and below them the number of steps running at once."""
    from liveforge.build.insight.charts import figure, to_svg

    rows = list(reversed(line.bars))
    fig = figure(8.0, 1.2 + 0.32 * len(rows) + 1.2)
    # the constrained layout spaces the panels itself (a gridspec's hspace on top of it left
    # an empty band between them); the bars share the lower panel's time axis and labels
    grid = fig.add_gridspec(2, 1, height_ratios=[max(len(rows), 1) * 0.32, 1.0])
    bars_ax = fig.add_subplot(grid[0])
    par_ax = fig.add_subplot(grid[1], sharex=bars_ax)
    bars_ax.tick_params(labelbottom=False)
    for y, bar in enumerate(rows):
        color = "#d62728" if bar.critical else ("#1f77b4" if bar.kind == STEP else "#7f7f7f")
        bars_ax.barh(y, max(bar.duration, line.total / 500 or 0.001), left=bar.start,
                     color=color, hatch=None if bar.ok else "//", edgecolor="black",
                     linewidth=0.4)
        bars_ax.text(bar.end + line.total / 100, y, f"{bar.duration:.1f}s", va="center",
                     fontsize=7)
    bars_ax.set_yticks(range(len(rows)), [b.name for b in rows], fontsize=8)
    bars_ax.set_title(f"build {line.stamp}: {line.total:.1f}s; critical path in red",
                      fontsize=9)
    bars_ax.grid(axis="x", linewidth=0.3)
    if line.parallel:
        times = [t for t, _ in line.parallel] + [line.total]
        counts = [c for _, c in line.parallel] + [0]
        par_ax.step(times, counts, where="post", color="#2ca02c")
        par_ax.fill_between(times, counts, step="post", alpha=0.3, color="#2ca02c")
    par_ax.set_ylabel("running", fontsize=8)
    par_ax.set_xlabel("seconds", fontsize=8)
    par_ax.set_ylim(bottom=0)
    par_ax.yaxis.get_major_locator().set_params(integer=True)
    return to_svg(fig)


def text(line: Timeline) -> str:
    """The timeline as lines of text: start, end, duration, name (``*`` on the critical
    path)."""
    out = [f"{'start':>8} {'end':>8} {'took':>8}  step"]
    for bar in line.bars:
        mark = "*" if bar.critical else " "
        state = "" if bar.ok else "  (failed)"
        out.append(f"{bar.start:8.2f} {bar.end:8.2f} {bar.duration:8.2f} {mark}{bar.name}"
                   f"{state}")
    out.append(f"total {line.total:.2f}s; * the critical path: "
               f"{' -> '.join(line.critical_path())}")
    return "\n".join(out) + "\n"


def to_json(line: Timeline) -> str:
    return json.dumps({"stamp": line.stamp, "total": round(line.total, 3),
                       "bars": [{"name": b.name, "start": round(b.start, 3),
                                 "end": round(b.end, 3), "kind": b.kind, "ok": b.ok,
                                 "critical": b.critical} for b in line.bars],
                       "parallel": line.parallel}, indent=1) + "\n"

