"""zlogin UUID [CMD...]: run a command (or a login shell) inside a running container.

The process joins the VM's cgroup, then its IPC, UTS, network, cgroup, PID and mount
namespaces (the last makes the VM's ``/`` its root), leaves the capabilities a container does
not keep, and forks the command: ``/bin/sh -c "CMD..."`` (the words joined by spaces, as the
original does) or ``/bin/sh -l``. Its exit status is zlogin's (128 + N for a signal N)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

from liveforge.util.errors import LiveforgeError
from liveforge.vm import cgroups, linux
from liveforge.vm.brands import FAMILIES
from liveforge.vm.brands.container import init_pid

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAMESPACES = ("ipc", "uts", "net", "cgroup", "pid", "mnt")  # mnt last: it changes the root
USAGE = "usage: zlogin UUID [CMD...]"
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ZloginError(LiveforgeError):
    pass


def vm_root() -> Path:
    return Path(os.environ.get("VMADM_ROOT") or "/zones")


def _enter(uuid: str) -> None:
    vmdir = vm_root() / uuid
    try:
        import json

        brand = json.loads((vmdir / "config.json").read_bytes()).get("brand")
    except (OSError, ValueError):
        raise ZloginError(f"VM {uuid} unknown") from None
    if FAMILIES.get(brand) != "container":
        raise ZloginError(f"VM {uuid} is not a container (brand {brand}): use vmadm console")
    pid = init_pid(vmdir)
    if pid is None:
        raise ZloginError(f"login allowed only to running VMs ({uuid} is 'stopped')")
    try:
        fds = [os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in NAMESPACES]
    except OSError:
        raise ZloginError(f"VM {uuid} stopped") from None
    if init_pid(vmdir) != pid:  # it stopped and the pid was reused meanwhile
        raise ZloginError(f"VM {uuid} stopped")
    try:
        cgroups.Cgroup(uuid).join(os.getpid())
        for fd in fds:
            linux.setns(fd)
            os.close(fd)
    except OSError as exc:
        raise ZloginError(f"cannot enter VM {uuid}: {exc.strerror}") from None


def _run(words: list[str]) -> int:
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
            os.write(2, f"zlogin: /bin/sh: {exc.strerror}\n".encode())
        os._exit(127)
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)  # the terminal's signals are the command's
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) \
        else 128 + os.WTERMSIG(status)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE + "\n")
        return 2
    uuid, words = args[0], args[1:]
    if not UUID.match(uuid):
        sys.stderr.write(f"zlogin: invalid VM UUID '{uuid}'\n{USAGE}\n")
        return 2
    try:
        _enter(uuid)
    except ZloginError as exc:
        sys.stderr.write(f"zlogin: {exc}\n")
        return 1
    return _run(words)


if __name__ == "__main__":
    sys.exit(main())
