"""A container's ``run/init.pid``: its init's pid and start time (``/proc/<pid>/stat``'s 22nd
field). The VM runs while that process does: a dead, zombie or reused pid is a stopped VM."""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from pathlib import Path


def write_pid(vmdir: Path, pid: int, started: int) -> None:
    (vmdir / "run" / "init.pid").write_text(f"{pid} {started}\n")


def process_stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and start time, None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[19])


def init_pid(vmdir: Path) -> int | None:
    """The pid of the VM's running init, None when it is not running."""
    try:
        pid, started = (int(f) for f in (vmdir / "run" / "init.pid").read_text().split())
    except (OSError, ValueError):
        return None
    now = process_stat(pid)
    if now is None or now[0] in "ZX" or now[1] != started:
        return None
    return pid
