"""Entering a running container: what ``zlogin`` and ``vmadm console`` do.

The process joins the VM's cgroup, then its IPC, UTS, network, cgroup, PID and mount
namespaces (the last makes the VM's ``/`` its root), leaves the capabilities a container does
not keep, and forks the command: ``/bin/sh -c "CMD..."`` (the words joined by spaces, as the
original zlogin does) or a login shell. The command's exit status is returned (128 + N for a
signal N)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import sys
import termios
import tty

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
    """In the VM (after :func:`enter`): run the command, or a login shell; its status.

    On a terminal the command gets a pseudo-terminal of the VM's own devpts, and this process
    relays between it and the terminal: the VM never holds the host's terminal (whose
    TIOCSTI would type commands into the host's shell once zlogin ends)."""
    env = {"PATH": ENV_PATH, "HOME": "/root", "LOGNAME": "root", "USER": "root",
           "SHELL": "/bin/sh", "TERM": os.environ.get("TERM", "vt100")}
    argv = ["/bin/sh", "-c", " ".join(words)] if words else ["-sh", "-l"]
    linux.drop_capabilities()
    terminal = os.isatty(0)
    master, slave = os.openpty() if terminal else (-1, -1)  # the VM's /dev/ptmx
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        try:
            if terminal:
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                os.close(slave)
                os.close(master)
            os.chdir("/root" if os.path.isdir("/root") else "/")
            os.execve("/bin/sh", argv, env)
        except OSError as exc:
            os.write(2, f"/bin/sh: {exc.strerror}\n".encode())
        os._exit(127)
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)  # the terminal's signals are the command's
    if terminal:
        os.close(slave)
        status = _relay(master, child)
    else:
        _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) \
        else 128 + os.WTERMSIG(status)


def _relay(master: int, child: int) -> int:
    """Copy the terminal to the VM's pseudo-terminal and back (raw mode, window size kept)
    until ``child`` has exited and its output is drained; its wait status."""
    saved = termios.tcgetattr(0)

    def resize(*_: object) -> None:
        try:
            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass

    resize()
    previous = signal.signal(signal.SIGWINCH, resize)
    tty.setraw(0)
    status = None
    inputs = [0, master]
    try:
        while True:
            if status is None:
                done, waited = os.waitpid(child, os.WNOHANG)
                status = waited if done else None
            ready, _, _ = select.select(inputs if status is None else [master], [], [],
                                        0.1 if status is None else 0)
            if not ready and status is not None:
                return status
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the VM's end closed it
                    data = b""
                if not data:
                    if status is None:
                        _, status = os.waitpid(child, 0)
                    return status
                _write_all(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    _write_all(master, data)
                else:  # the terminal is gone: the command keeps its pseudo-terminal
                    inputs = [master]
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        os.close(master)


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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
