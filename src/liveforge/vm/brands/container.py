"""OS brands (joyent, joyent-minimal, lx) as containers: the image's init as PID 1 in new
mount, PID, UTS, IPC, network and cgroup namespaces, on the VM's root view (rootfs.py), in the
VM's cgroup (vm/cgroups.py), with veth NICs on nic-tag bridges (vm/net.py).

Start forks twice: the first child (a new session) joins the VM's cgroup, unshares the
namespaces and forks the VM's PID 1, reports its pid and exits, so the VM outlives vmadm. PID 1
builds the VM's ``/`` (cinit.py) and waits while vmadm gives its network namespace the NICs,
then execs the init. Errors on the way come back on a close-on-exec pipe: start returns once
the init runs, or raises what went wrong.

A VM runs while the process its ``run/init.pid`` names does (pidfile.py). A start that fails
leaves ``run/failed`` (why): the VM is ``failed`` until it is started again or stopped."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import sys
from pathlib import Path

from liveforge.util.errors import LiveforgeError
from liveforge.util.fileio import write_atomic
from liveforge.vm import cgroups, linux, net
from liveforge.vm.brands import cinit, rootfs
from liveforge.vm.brands.pidfile import init_pid, process_stat, write_pid

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

NAMESPACES = (linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET
              | linux.CLONE_NEWPID | linux.CLONE_NEWCGROUP)
KILL_WAIT = 10.0  # seconds for a SIGKILLed init to be gone
# A clean stop asks the init in the two dialects PID 1s speak: SIGTERM (busybox init: reboot,
# which in a PID namespace ends it) and SIGRTMIN+4 (systemd: poweroff). An init ignores the
# one it has no handler for (PID 1 of a namespace does not die of a signal it does not catch).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGRTMIN + 4)
FAILED = "failed"  # run/failed: the last start failed (its message); gone at the next start or stop


class ContainerError(LiveforgeError):
    """A container cannot be started, stopped or signalled."""


def warn(text: str) -> None:
    """A limit or setting the host cannot enforce (vmadm's warning lines, on stderr)."""
    sys.stderr.write(f"Warning: {text}\n")


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; whether it has."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(vmdir: Path) -> Iterator[None]:
    """One start, stop or destroy of a VM at a time (``run/lock``, released when the holder
    ends however it ends)."""
    (vmdir / "run").mkdir(exist_ok=True)
    fd = os.open(vmdir / "run" / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_metadata(vm: dict[str, Any], directory: Path) -> None:
    """``customer_metadata`` as mdata-get reads it: a file per key named by the key's bytes in
    hex, holding the value (a non-string value as JSON)."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {}
    for key, value in sorted((vm.get("customer_metadata") or {}).items()):
        name = key.encode().hex()
        if not name or len(name) > 255:
            warn(f"customer_metadata.{key}: a key of more than 127 bytes is not readable "
                 f"with mdata-get")
            continue
        wanted[name] = value if isinstance(value, str) else json.dumps(value)
    for old in os.listdir(directory):
        if old not in wanted:
            os.unlink(directory / old)
    for name, value in wanted.items():
        tmp = directory / f".{name}.tmp"
        tmp.write_text(value)
        os.replace(tmp, directory / name)


def _spec(vm: dict[str, Any], vmdir: Path) -> cinit.Spec:
    hostname = str(vm.get("hostname") or vm.get("alias") or vm["uuid"])[:63]
    resolvers = vm.get("resolvers") or []
    if isinstance(resolvers, str):
        resolvers = [r for r in resolvers.split(",") if r]
    return cinit.Spec(root=os.fspath(vmdir / "root"), init=vm.get("init_name") or "/sbin/init",
                      hostname=hostname, resolvers=tuple(resolvers),
                      tmpfs_mib=int(vm.get("tmpfs") or 0),
                      console=os.fspath(vmdir / "run" / "console.log"),
                      metadata=os.fspath(vmdir / "run" / "metadata"))


def _report(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode(errors="replace"))
    except OSError:
        pass


def _vm_pid1(spec: cinit.Spec, report: int, go: int) -> None:
    """PID 1 of the new namespaces (never returns)."""
    try:
        console = cinit.setup(spec)
        if os.read(go, 1) != b"g":  # vmadm is gone: no VM
            os._exit(1)
        os.close(go)
        low = 3  # what vmadm had open does not reach the VM
        for keep in sorted((report, console)):
            os.closerange(low, keep)
            low = keep + 1
        os.closerange(low, os.sysconf("SC_OPEN_MAX"))
        cinit.exec_init(spec, console)
    except BaseException as exc:  # noqa: BLE001 - reported to vmadm, then gone
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.filename:
            detail = f"{exc.filename}: {detail}"
        _report(report, f"error: {detail}\n")
    os._exit(1)


def _first_child(cg: cgroups.Cgroup, spec: cinit.Spec, report: int, go: int) -> None:
    """The child that starts the VM's PID 1 and leaves it (never returns)."""
    try:
        os.setsid()
        cg.join(os.getpid())
        linux.unshare(NAMESPACES)
        pid = os.fork()
        if pid == 0:
            _vm_pid1(spec, report, go)
        _report(report, f"{pid}\n")
        os._exit(0)
    except BaseException as exc:  # noqa: BLE001
        _report(report, f"error: {exc}\n")
    os._exit(1)


class ContainerRuntime:
    """The Runtime of the container brands (see ``liveforge.vm.brands``)."""

    def install(self, vm: dict[str, Any], vmdir: Path) -> None:
        for text in rootfs.install(vm, vmdir):
            warn(text)

    def state(self, vm: dict[str, Any], vmdir: Path) -> str:
        if init_pid(vmdir) is None:
            return "failed" if (vmdir / "run" / FAILED).exists() else "stopped"
        return "stopping" if (vmdir / "run" / "stopping").exists() else "running"

    def start(self, vm: dict[str, Any], vmdir: Path) -> None:
        with _locked(vmdir):
            if init_pid(vmdir) is None:
                self._start_marked(vm, vmdir)

    def _start_marked(self, vm: dict[str, Any], vmdir: Path) -> None:
        try:
            self._start(vm, vmdir)
        except Exception as exc:  # the state is failed until the next start or stop
            write_atomic(vmdir / "run" / FAILED, f"{exc}\n")
            raise

    def _start(self, vm: dict[str, Any], vmdir: Path) -> None:
        self._clean(vm, vmdir)
        rootfs.mount(vm, vmdir)
        run = vmdir / "run"
        run.mkdir(exist_ok=True)
        spec = _spec(vm, vmdir)
        rootfs.mount_runtime(vm, vmdir, spec.hostname, spec.resolvers)
        write_metadata(vm, run / "metadata")
        net.plan(vm)  # a bad nic tag fails here, before any process exists
        cg = cgroups.Cgroup(vm["uuid"])
        cg.create()
        try:
            for text in cg.apply(cgroups.limits(vm)):
                warn(text)
            self._spawn(vm, vmdir, cg, spec)
        except BaseException:
            self._clean(vm, vmdir)
            raise

    def _spawn(self, vm: dict[str, Any], vmdir: Path, cg: cgroups.Cgroup,
               spec: cinit.Spec) -> None:
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        first = os.fork()
        if first == 0:
            os.close(report_r)
            os.close(go_w)
            _first_child(cg, spec, report_w, go_r)
        os.close(report_w)
        os.close(go_r)
        pid = 0
        with os.fdopen(report_r, "rb") as report:
            try:
                line = report.readline().decode(errors="replace").strip()
                os.waitpid(first, 0)
                if not line.isdigit():
                    raise ContainerError(f"VM {vm['uuid']}: cannot start: "
                                         f"{line.removeprefix('error: ') or 'no init'}")
                pid = int(line)
                stat = process_stat(pid)
                if stat is None:
                    raise ContainerError(f"VM {vm['uuid']}: cannot start: "
                                         f"{_error(report) or 'its init is gone'}")
                write_pid(vmdir, pid, stat[1])
                try:
                    for text in net.attach(vm, pid):
                        warn(text)
                except net.NetworkError as exc:
                    os.kill(pid, signal.SIGKILL)
                    raise ContainerError(f"VM {vm['uuid']}: cannot start: "
                                         f"{_error(report) or exc}") from None
                try:
                    os.write(go_w, b"g")
                except BrokenPipeError:  # it failed before: its report says why
                    pass
                failure = _error(report)  # end of file once init was exec'd
                if failure or init_pid(vmdir) is None:
                    raise ContainerError(f"VM {vm['uuid']}: cannot start {spec.init}: "
                                         f"{failure or 'it exited at once'}")
            except BaseException:
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _wait_gone(pid, KILL_WAIT)
                raise
            finally:
                os.close(go_w)

    def stop(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        with _locked(vmdir):
            self._stop(vm, vmdir, timeout, force)

    def _stop(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        pid = init_pid(vmdir)
        if pid is not None:
            (vmdir / "run" / "stopping").touch()
            if not force:
                for sig in STOP_SIGNALS:
                    os.kill(pid, sig)
            if force or not _wait_gone(pid, timeout):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if not _wait_gone(pid, KILL_WAIT):
                    raise ContainerError(f"VM {vm['uuid']}: init {pid} survives SIGKILL")
        self._clean(vm, vmdir)

    def kill(self, vm: dict[str, Any], vmdir: Path, signal: int) -> None:
        pid = init_pid(vmdir)
        if pid is None:
            raise ContainerError(f"VM {vm['uuid']} is not running")
        os.kill(pid, signal)

    def update(self, vm: dict[str, Any], vmdir: Path, changed: dict[str, Any]) -> None:
        merged = {**vm, **changed}
        if init_pid(vmdir) is not None:
            limits = {"max_physical_memory", "max_swap", "max_lwps", "cpu_cap", "cpu_shares"}
            if limits & changed.keys():
                for text in cgroups.Cgroup(vm["uuid"]).apply(cgroups.limits(merged)):
                    warn(text)
            if "customer_metadata" in changed:
                write_metadata(merged, vmdir / "run" / "metadata")
        if "quota" in changed and int(changed["quota"] or 0) > 0:
            for text in rootfs.resize(vmdir, int(changed["quota"])):
                warn(text)

    def reboot(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        """Stop the init (as ``stop``) and start the VM again, under one hold of its lock."""
        with _locked(vmdir):
            if init_pid(vmdir) is None:
                raise ContainerError(f"VM {vm['uuid']} is not running")
            self._stop(vm, vmdir, timeout, force)
            self._start_marked(vm, vmdir)

    def info(self, vm: dict[str, Any], vmdir: Path, kinds: list[str]) -> dict[str, Any]:
        raise ContainerError(f"info is only supported for HVM VMs (kvm, bhyve), not "
                             f"{vm['brand']}")

    def console(self, vm: dict[str, Any], vmdir: Path) -> int:
        """``vmadm console``: a login shell in the running VM; its exit status."""
        from liveforge.vm.brands.login import shell

        return shell(vm["uuid"], vmdir)

    def destroy(self, vm: dict[str, Any], vmdir: Path) -> None:
        with _locked(vmdir):
            self._stop(vm, vmdir, 0, True)
            rootfs.remove(vmdir)
        shutil.rmtree(vmdir / "run", ignore_errors=True)

    def _clean(self, vm: dict[str, Any], vmdir: Path) -> None:
        """Remove what a VM that is not running left: its pid file, veths, cgroup."""
        for name in ("init.pid", "stopping", FAILED):
            (vmdir / "run" / name).unlink(missing_ok=True)
        net.detach(vm["uuid"])
        cg = cgroups.Cgroup(vm["uuid"])
        for pid in cg.pids():  # a zlogin process that outlived its init's namespace
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cg.remove()


def _error(report: Any) -> str:
    """What the VM's PID 1 reported before it exec'd its init or died ("" for nothing)."""
    return str(report.read().decode(errors="replace")).strip().removeprefix("error: ")
