"""The verbs that look inside a platform: ``sbom``, ``size``, ``timeline``, ``graph`` and
``report``. Each reads what the platform's build left (its SBOM, boot archive and event log)
and the workspace's plan; only ``report`` writes, into the platform directory."""

from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path

from liveforge.build.graph import dependencies, make_steps
from liveforge.build.image.platform import latest_platform
from liveforge.build.insight import graph as graphs
from liveforge.build.insight import size as sizes
from liveforge.build.insight import timeline as timelines
from liveforge.build.insight.bom import Bom
from liveforge.build.insight.sbom import CYCLONEDX_FILE, SPDX_FILE, cyclonedx_of, read_spdx
from liveforge.build.verbs.status import status
from liveforge.build.workspace import Workspace
from liveforge.util.errors import LiveforgeError, UsageError
from liveforge.util.fileio import write_atomic

REPORT_FILE = "report.html"   # image/layout's VIEWS: in neither the tarball nor the media
PLATFORM_RE = re.compile(r"platform-(\d{8}T\d{6}Z)\Z")


def find_platform(ws: Workspace, name: str | None) -> Path:
    """The platform directory ``name`` names (a path, or a name under output/), else the
    latest."""
    if name is None:
        return latest_platform(ws.output_dir)[0]
    for candidate in (Path(name), ws.output_dir / name):
        if candidate.is_dir():
            return candidate.resolve()
    raise UsageError(f"no platform {name!r} (a platform directory, or a name under "
                     f"{ws.output_dir})")


def load_bom(platform: Path) -> Bom:
    return read_spdx(platform / SPDX_FILE)


def sbom_text(platform: Path, fmt: str) -> str:
    if fmt == "spdx":
        load_bom(platform)  # a missing or broken SBOM is an error here
        return (platform / SPDX_FILE).read_text()
    return cyclonedx_of(platform, keep=False)


def measure(ws: Workspace, platform: Path) -> sizes.Sizes:
    return sizes.measure(platform, load_bom(platform), ws.platform.arch)


def step_deps(ws: Workspace) -> dict[str, tuple[str, ...]]:
    return dependencies(make_steps(ws))


def build_timeline(ws: Workspace, stamp: str) -> timelines.Timeline:
    """The timeline of the build of ``stamp``. A run that built nothing (a ``live`` of a new
    stamp whose steps were all up to date) records no events: the error names the latest
    build recorded before it."""
    from liveforge.build.buildstamp import STAMP_RE

    log = ws.log_dir / f"build.{stamp}.jsonl"
    if not log.is_file():
        earlier = sorted(s for p in ws.log_dir.glob("build.*.jsonl")
                         if STAMP_RE.match(s := p.name[len("build."):-len(".jsonl")])
                         and s < stamp)
        if earlier:
            raise LiveforgeError(
                f"no event log {log}: nothing was built for {stamp} (its steps were up to "
                f"date); the latest build recorded before it is {earlier[-1]}: "
                f"'liveforge timeline {earlier[-1]}'")
    events = timelines.read_events(log)
    return timelines.timeline(events, step_deps(ws), stamp)


def latest_stamp(ws: Workspace) -> str:
    return latest_platform(ws.output_dir)[1]


def graph_dot(ws: Workspace, component: str | None) -> str:
    rows = status(ws)
    title = f"{ws.platform.name}" + (f": {component}" if component else "")
    return graphs.dot(rows, step_deps(ws), component, title)


def durations(ws: Workspace, rows: list[dict[str, object]]) -> dict[str, float]:
    """How long each step took when it was last built (its stamp's build, that build's
    event log); a step whose log is gone is left out."""
    logs: dict[str, dict[str, float]] = {}
    took: dict[str, float] = {}
    for row in rows:
        built = row.get("built")
        if not isinstance(built, str):
            continue
        if built not in logs:
            logs[built] = {}
            path = ws.log_dir / f"build.{built}.jsonl"
            if path.is_file():
                try:
                    events = timelines.read_events(path)
                except LiveforgeError:
                    events = []
                for event in events:
                    if event["event"] == "finish" and "duration" in event:
                        logs[built][str(event.get("component"))] = float(
                            event["duration"])  # type: ignore[arg-type]
        name = str(row["component"])
        if name in logs[built]:
            took[name] = logs[built][name]
    return took


def previous_platform(platform: Path, output_dir: Path) -> Path | None:
    """The platform built before ``platform`` in ``output_dir`` (by stamp) that has an SBOM."""
    match = PLATFORM_RE.match(platform.name)
    stamps = sorted(m.group(1) for p in output_dir.glob("platform-*")
                    if (m := PLATFORM_RE.match(p.name)) and (p / SPDX_FILE).is_file())
    earlier = [s for s in stamps if match is None or s < match.group(1)]
    return (output_dir / f"platform-{earlier[-1]}").resolve() if earlier else None


def report(ws: Workspace, platform: Path) -> Path:
    """Write ``report.html`` (and ``sbom.cdx.json``) into ``platform``; return its path."""
    from liveforge.build.insight.charts import stacked_bars
    from liveforge.build.insight.report import Page, html

    bom = load_bom(platform)
    measured = sizes.measure(platform, bom, ws.platform.arch)
    rows = status(ws)
    try:
        line = build_timeline(ws, bom.stamp)
        timeline_svg = timelines.svg(line)
    except LiveforgeError as exc:
        timeline_svg = f"<p>{html_escape(str(exc))}</p>"
    parts = {str(r["name"]): r for r in measured.rows("component")}
    size_svg = stacked_bars(
        "the boot archive by component", [
            ("cpio (uncompressed)", {n: int(r["bytes"]) for n, r in parts.items()}),  # type: ignore[call-overload]
            ("compressed", {n: int(r["compressed"]) for n, r in parts.items()}),  # type: ignore[call-overload]
        ], "bytes")
    previous = previous_platform(platform, ws.output_dir)
    diff = []
    if previous is not None:
        diff = sizes.size_diff(sizes.measure(previous, load_bom(previous), ws.platform.arch),
                               measured, "component")
    cyclonedx_of(platform, keep=True)
    page = Page(bom=bom, sizes=measured, rows=rows, durations=durations(ws, rows),
                graph_svg=graphs.render(graph_dot(ws, None)), timeline_svg=timeline_svg,
                size_svg=size_svg, previous=previous.name if previous else None, diff=diff,
                sbom_files=(SPDX_FILE, CYCLONEDX_FILE))
    write_atomic(platform / REPORT_FILE, html(page))
    named = ws.output_dir / ws.platform_dirname(bom.stamp)
    shown = named if named.is_dir() and named.resolve() == platform.resolve() else platform
    return shown / REPORT_FILE


# -- text output --------------------------------------------------------------------------------

def format_size(measured: sizes.Sizes, by: str, top: int | None, as_json: bool) -> str:
    rows = measured.rows(by)[:top] if top else measured.rows(by)
    if as_json:
        return json.dumps({"archive_bytes": measured.archive_bytes,
                           "content_bytes": measured.content_bytes,
                           "kernel_bytes": measured.kernel_bytes,
                           "kernel_component": measured.kernel_owner or None, "by": by,
                           "rows": rows},
                          indent=1) + "\n"
    width = max([len(str(r["name"])) for r in rows] + [len(by)])
    lines = [f"{by.upper():<{width}}  {'FILES':>5}  {'BYTES':>10}  {'COMPRESSED':>10}  SHARE"]
    for r in rows:
        lines.append(f"{str(r['name']):<{width}}  {r['files']:>5}  {sizes.human(r['bytes']):>10}"  # type: ignore[arg-type]
                     f"  {sizes.human(r['compressed']):>10}  {r['share']:>5.1f}%")  # type: ignore[arg-type]
    lines.append(f"boot archive {sizes.human(measured.archive_bytes)} "
                 f"({sizes.human(measured.content_bytes)} of cpio); kernel beside it "
                 f"{sizes.human(measured.kernel_bytes)}" +
                 (f" (from {measured.kernel_owner})" if measured.kernel_owner else ""))
    return "\n".join(lines) + "\n"


def format_size_diff(a: Path, b: Path, rows: list[dict[str, object]], as_json: bool) -> str:
    if as_json:
        return json.dumps({"a": str(a), "b": str(b), "rows": rows}, indent=1) + "\n"
    if not rows:
        return f"{a.name} and {b.name} ship the same sizes\n"
    width = max([len(str(r["name"])) for r in rows] + [4])
    lines = [f"{'NAME':<{width}}  {a.name[-16:]:>16}  {b.name[-16:]:>16}  {'CHANGE':>10}  "
             f"{'COMPRESSED':>10}"]
    for r in rows:
        lines.append(f"{str(r['name']):<{width}}  {sizes.human(r['bytes_a']):>16}  "  # type: ignore[arg-type]
                     f"{sizes.human(r['bytes_b']):>16}  {sizes.human(r['delta']):>10}  "  # type: ignore[arg-type]
                     f"{sizes.human(r['compressed_delta']):>10}")  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"

