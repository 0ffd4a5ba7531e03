"""What runs in a container's namespaces before its init: the process that becomes PID 1 turns
the VM's root view into its ``/`` (``pivot_root``, the old root detached), mounts ``/proc``,
a read-only ``/sys``, a minimal ``/dev``, ``/tmp``, the metadata directory (on the mount
points of the VM's runtime layer, rtlayer.py, which also holds the files vmadm owns:
``/etc/hostname``, ``/etc/resolv.conf``, ``/usr/sbin/mdata-get``; cinit writes nothing in the
VM's own layer), sets the host name, waits for
vmadm's go (the network is set up from outside meanwhile), drops the capabilities a container
does not keep and execs the init.

Paths inside the VM are resolved after ``pivot_root``: a symlink in the image cannot send a
mount or a write to the host."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import stat
import struct
from dataclasses import dataclass

from liveforge.vm import linux

METADATA_DIR = "/.liveforge/metadata"  # customer_metadata, one file per key (hex of its name)
# where cinit mounts (the runtime layer, rtlayer.py, has them where the image lacks them)
MOUNT_POINTS = ("/proc", "/sys", "/dev", "/tmp", METADATA_DIR)
INIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# (name, major, minor) of the character devices a container gets, all mode 0666
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")
PROC_MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list")


@dataclass(frozen=True, slots=True)
class Spec:
    root: str  # the VM's root view, a host path
    init: str  # inside the VM
    hostname: str
    resolvers: tuple[str, ...]
    tmpfs_mib: int  # 0: no tmpfs on /tmp
    console: str  # host path of the log init's output goes to
    metadata: str  # host path of the metadata directory


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

NOSUID_NODEV_NOEXEC = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC


def _read_only_bind(path: str) -> None:
    linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    linux.mount(None, path, None,
                linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | NOSUID_NODEV_NOEXEC)


def _make_mount_point(path: str) -> None:
    """A mount point the VM removed (as a whiteout in its own layer): made again there, 0755."""
    parts = path.strip("/").split("/")
    for n in range(1, len(parts) + 1):
        sub = "/" + "/".join(parts[:n])
        if not os.path.isdir(sub):
            os.mkdir(sub, 0o755)


def _mount_dev() -> None:
    linux.mount("tmpfs", "/dev", "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC,
                "mode=755,size=64k")
    for name, major, minor in DEVICES:
        os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
    for name in ("pts", "shm"):
        os.mkdir(f"/dev/{name}", 0o755)
    linux.mount("devpts", "/dev/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5")
    linux.mount("shm", "/dev/shm", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV,
                "mode=1777,size=65536k")
    for name, target in DEV_LINKS:
        os.symlink(target, f"/dev/{name}")


def _loopback_up() -> None:
    """``ip link set lo up`` in the new network namespace, without running ip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def setup(spec: Spec) -> int:
    """In the new namespaces, as their PID 1: make the VM's ``/``; returns the console's fd."""
    os.umask(0)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    console = os.open(spec.console, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                      0o600)
    source = os.open(spec.metadata, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    metadata = linux.clone_tree(source)
    os.close(source)
    os.chdir(spec.root)
    linux.pivot_root(".", ".")
    linux.umount(".", linux.MNT_DETACH)
    os.chdir("/")
    # no device node in the image or the VM's own layer opens a device: only /dev's do
    linux.mount(None, "/", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_NODEV)
    for path in MOUNT_POINTS:
        if not os.path.isdir(path):
            _make_mount_point(path)
    linux.mount("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC)
    linux.mount("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC | linux.MS_RDONLY)
    _mount_dev()
    for path in PROC_READ_ONLY:
        if os.path.exists(path):
            _read_only_bind(path)
    for path in PROC_MASKED:
        if os.path.exists(path):
            linux.mount("/dev/null", path, None, linux.MS_BIND)
    if spec.tmpfs_mib > 0:
        linux.mount("tmpfs", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV,
                    f"mode=1777,size={spec.tmpfs_mib}m")
    linux.attach_tree(metadata, METADATA_DIR)
    os.close(metadata)
    linux.mount(None, METADATA_DIR, None,
                linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | NOSUID_NODEV_NOEXEC)
    os.umask(0o022)
    socket.sethostname(spec.hostname)
    _loopback_up()
    return console


def exec_init(spec: Spec, console: int) -> None:
    """Become the VM's init: stdio on the console log, signals as a fresh process has them,
    only the kept capabilities."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(console, 1)
    os.dup2(console, 2)
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    linux.drop_capabilities()
    env = {"PATH": INIT_PATH, "HOME": "/", "TERM": "vt100", "container": "liveforge"}
    os.execve(spec.init, [spec.init], env)
