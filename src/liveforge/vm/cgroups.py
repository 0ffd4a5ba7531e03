"""A container's resource controls: one cgroup per VM, ``vmadm/<uuid>``, in cgroup v2 where
the memory, pids and cpu controllers are enabled there, else in the v1 hierarchies of those
controllers; chosen by what ``/proc/self/mounts`` shows.

Properties (MiB for memory, a percent of one CPU for ``cpu_cap``):

=====================  =================================  ==================================
property               v2                                 v1
=====================  =================================  ==================================
max_physical_memory    memory.max                         memory.limit_in_bytes
max_swap (RAM + swap)  memory.swap.max (= swap - RAM)     memory.memsw.limit_in_bytes
max_lwps               pids.max                           pids.max
cpu_cap (0: none)      cpu.max ``cap*1000 100000``        cpu.cfs_quota_us / cfs_period_us
cpu_shares             cpu.weight (1..10000)              cpu.shares (>= 2)
=====================  =================================  ==================================

A limit whose controller is not mounted is not enforced: :meth:`Cgroup.apply` returns a warning
naming it."""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any

PARENT = "vmadm"
CONTROLLERS = ("memory", "pids", "cpu")
PERIOD_US = 100_000
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    memory: int | None = None  # MiB
    swap: int | None = None  # MiB, RAM + swap
    lwps: int | None = None
    cpu_cap: int | None = None  # percent of one CPU, 0 = none
    cpu_shares: int | None = None


def limits(vm: dict[str, Any]) -> Limits:
    def num(key: str) -> int | None:
        value = vm.get(key)
        return int(value) if value is not None else None

    return Limits(memory=num("max_physical_memory"), swap=num("max_swap"),
                  lwps=num("max_lwps"), cpu_cap=num("cpu_cap"), cpu_shares=num("cpu_shares"))


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, type, options) of the cgroup file systems."""
    found = []
    with open("/proc/self/mounts") as handle:
        for line in handle:
            _dev, point, fstype, options, *_ = line.split()
            if fstype in ("cgroup", "cgroup2"):
                found.append((point.replace("\\040", " "), fstype, options.split(",")))
    return found


def hierarchies() -> tuple[int, dict[str, Path]]:
    """The cgroup version in use and, per controller, the directory its VM cgroups go under."""
    mounts = _mounts()
    for point, fstype, _ in mounts:
        if fstype == "cgroup2":
            try:
                enabled = (Path(point) / "cgroup.controllers").read_text().split()
            except OSError:
                continue
            if all(c in enabled for c in CONTROLLERS):
                return 2, {c: Path(point) / PARENT for c in CONTROLLERS}
    found: dict[str, Path] = {}
    for point, fstype, options in mounts:
        if fstype == "cgroup":
            for c in CONTROLLERS:
                if c in options and c not in found:
                    found[c] = Path(point) / PARENT
    return 1, found


class Cgroup:
    """The cgroup of the VM ``uuid`` (it need not exist yet)."""

    def __init__(self, uuid: str, found: tuple[int, dict[str, Path]] | None = None):
        self.version, parents = found or hierarchies()
        self.dirs = {c: p / uuid for c, p in parents.items()}

    def paths(self) -> list[Path]:
        """Its directories, one per hierarchy (one in v2)."""
        return sorted(set(self.dirs.values()))

    def exists(self) -> bool:
        return any(p.is_dir() for p in self.paths())

    def create(self) -> None:
        for path in self.paths():
            if self.version == 2 and not path.parent.is_dir():
                path.parent.mkdir(exist_ok=True)
                _write(path.parent.parent / "cgroup.subtree_control",
                       " ".join(f"+{c}" for c in CONTROLLERS))
                _write(path.parent / "cgroup.subtree_control",
                       " ".join(f"+{c}" for c in CONTROLLERS))
            path.mkdir(parents=True, exist_ok=True)

    def apply(self, lim: Limits) -> list[str]:
        """Write the limits that are set; the warnings for those that cannot be enforced."""
        warnings = []
        wanted = {"memory": (lim.memory, lim.swap), "pids": (lim.lwps,),
                  "cpu": (lim.cpu_cap, lim.cpu_shares)}
        for controller, values in wanted.items():
            if any(v is not None for v in values) and controller not in self.dirs:
                warnings.append(f"no {controller} cgroup controller mounted: "
                                f"{controller} limits are not enforced")
        if "memory" in self.dirs and lim.memory is not None:
            warnings += self._memory(self.dirs["memory"], lim.memory, lim.swap)
        if "pids" in self.dirs and lim.lwps is not None:
            _write(self.dirs["pids"] / "pids.max", str(lim.lwps) if lim.lwps > 0 else "max")
        if "cpu" in self.dirs:
            cpu = self.dirs["cpu"]
            if lim.cpu_cap is not None:
                quota = lim.cpu_cap * PERIOD_US // 100 if lim.cpu_cap > 0 else None
                if self.version == 2:
                    _write(cpu / "cpu.max", f"{quota or 'max'} {PERIOD_US}")
                else:
                    _write(cpu / "cpu.cfs_period_us", str(PERIOD_US))
                    _write(cpu / "cpu.cfs_quota_us", str(quota or -1))
            if lim.cpu_shares is not None:
                if self.version == 2:
                    _write(cpu / "cpu.weight", str(min(10_000, max(1, lim.cpu_shares))))
                else:
                    _write(cpu / "cpu.shares", str(max(2, lim.cpu_shares)))
        return warnings

    def _memory(self, path: Path, memory: int, swap: int | None) -> list[str]:
        if self.version == 2:
            _write(path / "memory.max", str(memory * MIB))
            if swap is not None:
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", str(max(0, swap - memory) * MIB))
                else:
                    return ["no memory.swap.max (swap accounting off): max_swap is not enforced"]
            return []
        limit, memsw = path / "memory.limit_in_bytes", path / "memory.memsw.limit_in_bytes"
        if swap is None or not memsw.exists():
            _write(limit, str(memory * MIB))
            return [] if swap is None else \
                ["no memory.memsw (swap accounting off): max_swap is not enforced"]
        total = max(swap, memory)
        try:  # lowering: RAM first (memsw may not go below it); raising: memsw first
            _write(limit, str(memory * MIB))
            _write(memsw, str(total * MIB))
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            _write(memsw, str(total * MIB))
            _write(limit, str(memory * MIB))
        return []

    def join(self, pid: int) -> None:
        """Move the process ``pid`` (and its threads) into every directory of this cgroup."""
        for path in self.paths():
            _write(path / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.paths():
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def peak_memory(self) -> int | None:
        """The most memory the VM has used, in bytes (None when not known)."""
        path = self.dirs.get("memory")
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((path / name).read_text()) if path else None
            except (OSError, ValueError):
                continue
        return None

    def remove(self, timeout: float = 5.0) -> None:
        """Remove its directories; waits up to ``timeout`` seconds for exiting processes."""
        deadline = time.monotonic() + timeout
        for path in self.paths():
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise OSError(exc.errno, f"cannot remove cgroup {path}: "
                                                 f"{exc.strerror}") from None
                    time.sleep(0.01)


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
