"""The Linux system calls a container needs that Python 3.11's ``os`` lacks: mount, umount2,
pivot_root, unshare, setns; and the capability bounding set.

Called through libc (ctypes) rather than util-linux's tools: a container's start is one
sequence in one process (join the cgroups, unshare, fork, mount, pivot_root, wait for the
network, exec init) and every tool exec'd on the way would cost milliseconds and split the
error reporting."""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_CAPBSET_DROP = 24

# What root in a container keeps (the rest leave the bounding set before init runs): no
# CAP_SYS_ADMIN (mount, ...), CAP_MKNOD, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_DAC_READ_SEARCH
# (open_by_handle_at reaches outside the root), CAP_SYS_TIME, CAP_SYS_PTRACE...
# CAP_SYS_BOOT stays: reboot() in a PID namespace ends its init, which is how init shuts down.
KEPT_CAPS = frozenset({
    0,   # CAP_CHOWN
    1,   # CAP_DAC_OVERRIDE
    3,   # CAP_FOWNER
    4,   # CAP_FSETID
    5,   # CAP_KILL
    6,   # CAP_SETGID
    7,   # CAP_SETUID
    8,   # CAP_SETPCAP
    10,  # CAP_NET_BIND_SERVICE
    12,  # CAP_NET_ADMIN (its own network namespace only)
    13,  # CAP_NET_RAW
    18,  # CAP_SYS_CHROOT
    22,  # CAP_SYS_BOOT
    29,  # CAP_AUDIT_WRITE
    31,  # CAP_SETFCAP
})

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
# pivot_root has no libc wrapper: its number per architecture (the newer calls share one table)
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine, 155)
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value: str | os.PathLike[str] | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str | os.PathLike[str], fstype: str | None,
          flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {fstype or ''} on {os.fspath(target)}")


def umount(target: str | os.PathLike[str], flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {os.fspath(target)}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def clone_tree(fd: int) -> int:
    """A detached copy of the mount at the directory ``fd`` (a bind mount that can be attached
    with :func:`attach_tree` after the root has changed); its fd."""
    result = _libc.syscall(SYS_OPEN_TREE, fd, b"", OPEN_TREE_CLONE | AT_EMPTY_PATH | os.O_CLOEXEC)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree: {os.strerror(err)}")
    return int(result)


def attach_tree(fd: int, target: str) -> None:
    """Attach the detached mount ``fd`` at ``target``."""
    _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, os.fsencode(target),
                         MOVE_MOUNT_F_EMPTY_PATH), f"move_mount on {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def drop_capabilities() -> None:
    """Take every capability but :data:`KEPT_CAPS` out of the bounding set: what this process
    execs next runs without them, root or not."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last = int(handle.read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        if cap not in KEPT_CAPS:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
