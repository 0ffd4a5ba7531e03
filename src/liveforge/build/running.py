"""Which steps a liveforge run is building right now, for ``liveforge status``.

While a step builds, ``.liveforge/building/<step>`` holds the run's process id and that
process's start time (``/proc/<pid>/stat``). A record counts only while that very process
lives: one left by a killed run (or whose process id was reused since) is ignored, and
overwritten or removed by the next run.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from pathlib import Path

    from liveforge.build.workspace import Workspace


def _dir(ws: Workspace) -> Path:
    return ws.state_dir / "building"


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold anything, so split after its last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


def started(ws: Workspace, step: str) -> None:
    """Record that this process builds ``step``."""
    from liveforge.util.fileio import write_atomic

    pid = os.getpid()
    _dir(ws).mkdir(parents=True, exist_ok=True)
    write_atomic(_dir(ws) / step, f"{pid} {process_start(pid)}\n")


def finished(ws: Workspace, step: str) -> None:
    """Remove the record; one that cannot be (``.liveforge`` is not a directory, a full disk)
    is left: once this process ends it counts no more."""
    try:
        (_dir(ws) / step).unlink(missing_ok=True)
    except OSError:
        pass


def _records(ws: Workspace) -> dict[str, bool]:
    """Each record's step, and whether the process that wrote it still lives."""
    try:
        names = os.listdir(_dir(ws))
    except OSError:
        return {}
    records = {}
    for name in names:
        if name.startswith("."):
            continue
        try:
            with open(_dir(ws) / name) as handle:
                pid, start = handle.read().split()
        except (OSError, ValueError):
            pid = start = ""
        records[name] = pid.isascii() and pid.isdigit() and process_start(int(pid)) == start
    return records


def building(ws: Workspace) -> set[str]:
    """The steps a live liveforge process is building."""
    return {name for name, live in _records(ws).items() if live}


def forget_dead(ws: Workspace) -> None:
    """Remove the records of killed runs (a run starting holds the workspace lock)."""
    for name, live in _records(ws).items():
        if not live:
            finished(ws, name)
