"""Entering a running container: what ``zlogin`` and ``vmadm console`` do.

The process joins the VM's cgroup, then its IPC, UTS, network, cgroup, PID and mount
namespaces (the last makes the VM's ``/`` its root), leaves the capabilities a container does
not keep, and forks the command: ``/bin/sh -c "CMD..."`` (the words joined by spaces, as the
original zlogin does) or a login shell. The command's exit status is returned (128 + N for a
signal N)."""

from __future__ import annotations

import os
import signal
import sys

from liveforge.util.errors import LiveforgeError
from liveforge.vm import cgroups, linux
from liveforge.vm.brands.pidfile import init_pid

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from pathlib import Path

NAMESPACES = ("ipc", "uts", "net", "cgroup", "pid", "mnt")  # mnt last: it changes the root
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LoginError(LiveforgeError):
    """The VM cannot be entered: not running, or gone while entering."""


def enter(uuid: str, vmdir: Path) -> None:
    """Move this process into the running VM (its cgroup and namespaces)."""
    pid = init_pid(vmdir)
    if pid is None:
        raise LoginError(f"login allowed only to running VMs ({uuid} is 'stopped')")
    try:
        fds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
    except OSError:
        raise LoginError(f"VM {uuid} stopped") from None
    if init_pid(vmdir) != pid:  # it stopped and the pid was reused meanwhile
        raise LoginError(f"VM {uuid} stopped")
    try:
        cgroups.Cgroup(uuid).join(os.getpid())
        for fd in fds:
            linux.setns(fd)
            os.close(fd)
    except OSError as exc:
        raise LoginError(f"cannot enter VM {uuid}: {exc.strerror}") from None


def run(words: list[str]) -> int:
    """In the VM (after :func:`enter`): run the command, or a login shell; its status."""
    env = {"PATH": ENV_PATH, "HOME": "/root", "LOGNAME": "root", "USER": "root",
           "SHELL": "/bin/sh", "TERM": os.environ.get("TERM", "vt100")}
    argv = ["/bin/sh", "-c", " ".join(words)] if words else ["-sh", "-l"]
    linux.drop_capabilities()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        try:
            os.chdir("/root" if os.path.isdir("/root") else "/")
            os.execve("/bin/sh", argv, env)
        except OSError as exc:
            os.write(2, f"/bin/sh: {exc.strerror}\n".encode())
        os._exit(127)
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)  # the terminal's signals are the command's
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) \
        else 128 + os.WTERMSIG(status)


def shell(uuid: str, vmdir: Path) -> int:
    """A login shell in the VM, from a child process (the caller stays where it is)."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            enter(uuid, vmdir)
            code = run([])
        except LoginError as exc:
            os.write(2, f"{exc}\n".encode())
        finally:
            os._exit(code)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, status = os.waitpid(child, 0)
    finally:
        signal.signal(signal.SIGINT, previous)
    return os.waitstatus_to_exitcode(status)
