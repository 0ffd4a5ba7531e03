"""HVM brands (kvm, bhyve) as QEMU guests: the ``Runtime`` of the qemu family.

A VM's directory holds, besides ``config.json``: ``disks/disk<N>.qcow2`` (qemu_disks),
``firmware/`` (a UEFI VM's variable store), ``qemu.lock`` (held while the VM is started,
stopped, updated or destroyed: two vmadm processes starting one VM start one QEMU) and, while
QEMU runs, ``run/`` (qemu_argv.RunPaths: pid file, QMP and serial sockets, the console log;
``failed`` after a failed start).

QEMU runs as a daemon in a session of its own, outliving vmadm. Its state is read from the
process the pid file names (it must still be this VM's QEMU: its command line names this VM's
QMP socket) and from QMP's ``query-status``; a VM whose QEMU is gone is ``stopped``, or
``failed`` when its last start failed. ``stop`` asks the guest to power off (ACPI, QMP
``system_powerdown``), then, after the timeout or at once when forced, ends QEMU (QMP ``quit``,
then SIGKILL). ``reboot`` resets the machine (QMP ``system_reset``).

``update`` applies live what QEMU can change while running: a disk's ``size`` grows (QMP
``block_resize``; ``qemu-img resize`` when stopped), a new disk is created, ``vnc_password`` is
set, and so is ``spice_password`` (where SPICE runs). ``ram``, ``vcpus``, ``cpu_type``,
``bootrom``, ``boot``, ``nics``, ``vnc_port``, ``spice_port``, ``spice_opts``, ``com1``/``com2``
and ``qemu_extra_opts`` are read at the next start.

``console`` relays the serial console to this terminal; ``info`` answers QMP queries by kind.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liveforge.img.lock import file_lock
from liveforge.util.errors import LiveforgeError
from liveforge.util.fileio import write_atomic
from liveforge.util.proc import wait_pid_exit
from liveforge.util.scratch import remove_tree
from liveforge.vm import qmp
from liveforge.vm.brands import qemu_argv, qemu_disks, qemu_net
from liveforge.vm.brands.qemu_argv import RunPaths, run_paths
from liveforge.vm.brands.qemu_disks import Disk, QemuError

START_TIMEOUT = 60.0  # seconds QEMU may take to set up and daemonize
QUIT_GRACE = 5.0  # seconds for QMP quit, then as many for QEMU to end before SIGKILL
STATUS_TIMEOUT = 2.0  # seconds for query-status when reading the state
FAILED_STATUSES = frozenset({"internal-error", "io-error", "guest-panicked"})
ESCAPE = b"\x1d"  # ^] leaves the console
LOCK = "qemu.lock"  # held while a VM is started, stopped, updated or destroyed

# vmadm info kinds -> QMP queries
INFO = {"block": "query-block", "blockstats": "query-blockstats", "chardev": "query-chardev",
        "cpus": "query-cpus-fast", "kvm": "query-kvm", "pci": "query-pci",
        "spice": "query-spice", "status": "query-status", "version": "query-version",
        "vnc": "query-vnc"}


def stderr_warning(text: str) -> None:
    print(f"Warning: {text}", file=sys.stderr, flush=True)


class QemuRuntime:
    """kvm and bhyve VMs (see the module's documentation)."""

    def __init__(self, warn: Callable[[str], None] = stderr_warning):
        self.warn = warn

    # -- the protocol ----------------------------------------------------------------------

    def install(self, vm: dict[str, Any], vmdir: Path) -> None:
        qemu_disks.install(vm, vmdir)

    def start(self, vm: dict[str, Any], vmdir: Path) -> None:
        with file_lock(vmdir / LOCK):
            self.start_locked(vm, vmdir)

    def start_locked(self, vm: dict[str, Any], vmdir: Path) -> None:
        run = run_paths(vmdir)
        if qemu_pid(run) is not None:
            if not half_started(run):
                return
            end_qemu(run)  # a start killed before the guest was set going
        remove_tree(run.dir)
        try:
            self.launch(vm, vmdir, run)
        except LiveforgeError as exc:
            end_qemu(run)
            clean_run(run)
            run.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(run.failed, f"{exc}\n")  # the state is failed until the next start
            raise QemuError(f"VM {vm['uuid']}: {exc}") from None
        except BaseException:
            end_qemu(run)
            clean_run(run)
            raise

    def launch(self, vm: dict[str, Any], vmdir: Path, run: RunPaths) -> None:
        """QEMU started (paused), its NICs attached, the guest set going."""
        for name, why in qemu_argv.UNSUPPORTED.items():
            if vm.get(name) not in (None, "", [], -1):
                self.warn(f"{name} is not applied here ({why}): ignored")
        disks = installed_disks(vm, vmdir)
        taps = qemu_net.taps(vm)
        argv = qemu_argv.argv(vm, vmdir, disks, taps, qemu_argv.accelerator())
        run.dir.mkdir(parents=True)
        for _, sock in qemu_argv.com_ports(vm, vmdir):
            if sock is not None:
                sock.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                                  stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise QemuError(f"QEMU did not start within {START_TIMEOUT:g}s") from None
        if proc.returncode != 0 or qemu_pid(run) is None:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            why = lines[-1] if lines else f"it exited with status {proc.returncode}"
            raise QemuError(f"QEMU did not start: {why}")
        for tap in taps:
            qemu_net.attach(tap)
        with qmp.Qmp(run.qmp) as monitor:
            if vm.get("vnc_password"):
                monitor.command("set_password", protocol="vnc", password=str(vm["vnc_password"]))
            if vm.get("spice_password") and qemu_argv.spice_on(vm):
                monitor.command("set_password", protocol="spice",
                                password=str(vm["spice_password"]))
            monitor.command("cont")
            if qemu_argv.boot_orders(vm)[1] is not None:
                boot_once_used(vm, disks, taps, monitor)

    def state(self, vm: dict[str, Any], vmdir: Path) -> str:
        run = run_paths(vmdir)
        if qemu_pid(run) is None:
            return "failed" if run.failed.exists() else "stopped"
        if stopping(run):
            return "stopping"
        try:
            status = qmp.ask(run.qmp, "query-status", timeout=STATUS_TIMEOUT)["status"]
        except (qmp.QmpError, KeyError, TypeError):
            return "running"  # QEMU runs; its monitor is busy with another client
        if status in FAILED_STATUSES:
            return "failed"
        if status == "prelaunch" and not starting(vmdir):
            return "failed"  # its start was killed before the guest was set going
        return "stopping" if status == "shutdown" else "running"

    def stop(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        with file_lock(vmdir / LOCK):
            self.stop_locked(vm, vmdir, timeout, force)

    def stop_locked(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        run = run_paths(vmdir)
        pid = qemu_pid(run)
        if pid is None:
            clean_run(run)
            return
        write_atomic(run.stopping, f"{time.time() + timeout + 2 * QUIT_GRACE:.0f}\n")
        try:
            if not force:
                try:
                    qmp.ask(run.qmp, "system_powerdown")
                except qmp.QmpError:
                    pass
                if wait_pid_exit(pid, timeout):
                    return
            end_qemu(run)
        finally:
            clean_run(run)

    def kill(self, vm: dict[str, Any], vmdir: Path, signal: int) -> None:
        pid = qemu_pid(run_paths(vmdir))
        if pid is None:
            raise QemuError(f"VM {vm['uuid']} is not running")
        os.kill(pid, signal)

    def update(self, vm: dict[str, Any], vmdir: Path, changed: dict[str, Any]) -> None:
        run = run_paths(vmdir)
        with file_lock(vmdir / LOCK):
            running = qemu_pid(run) is not None
            if "disks" in changed or any(k.endswith("_disks") for k in changed):
                update_disks(vm, vmdir, run if running else None)
            if running and "vnc_password" in changed and changed["vnc_password"]:
                qmp.ask(run.qmp, "set_password", protocol="vnc",
                        password=str(changed["vnc_password"]))
            if running and changed.get("spice_password") and qemu_argv.spice_on(vm):
                qmp.ask(run.qmp, "set_password", protocol="spice",
                        password=str(changed["spice_password"]))

    def destroy(self, vm: dict[str, Any], vmdir: Path) -> None:
        with file_lock(vmdir / LOCK):
            self.destroy_locked(vm, vmdir)
        (vmdir / LOCK).unlink(missing_ok=True)

    def destroy_locked(self, vm: dict[str, Any], vmdir: Path) -> None:
        if qemu_pid(run_paths(vmdir)) is not None:
            self.stop_locked(vm, vmdir, 0, force=True)
        for name in (qemu_disks.DISKS_DIR, qemu_argv.FIRMWARE_DIR, qemu_argv.COM_ROOT, "run"):
            remove_tree(vmdir / name)

    def reboot(self, vm: dict[str, Any], vmdir: Path, timeout: float = 0,
               force: bool = False) -> None:
        """Reset the machine (the guest gets no say, so no timeout: HVM guests have no reboot
        request)."""
        run = run_paths(vmdir)
        if qemu_pid(run) is None:
            raise QemuError(f"VM {vm['uuid']} is not running")
        qmp.ask(run.qmp, "system_reset")

    def info(self, vm: dict[str, Any], vmdir: Path, kinds: list[str]) -> dict[str, Any]:
        """QMP's answers for ``kinds`` (``all`` or none: every kind QEMU offers)."""
        run = run_paths(vmdir)
        if qemu_pid(run) is None:
            raise QemuError(f"VM {vm['uuid']} is not running")
        wanted = sorted(INFO) if not kinds or "all" in kinds else list(dict.fromkeys(kinds))
        unknown = [k for k in wanted if k not in INFO]
        if unknown:
            raise QemuError(f"unknown info type(s): {', '.join(unknown)} "
                            f"(one of all, {', '.join(sorted(INFO))})")
        found: dict[str, Any] = {}
        with qmp.Qmp(run.qmp) as monitor:
            for kind in wanted:
                try:
                    answer = monitor.command(INFO[kind])
                except qmp.QmpError as exc:
                    if exc.error_class == "CommandNotFound" and (not kinds or "all" in kinds):
                        continue
                    raise QemuError(f"info {kind}: {exc}") from None
                found[kind] = vnc_info(answer) if kind == "vnc" else answer
        return found

    def console(self, vm: dict[str, Any], vmdir: Path) -> int:
        """Connect this terminal to the guest's serial console until ^] or its end; the exit
        status of ``vmadm console`` (0)."""
        run = run_paths(vmdir)
        if qemu_pid(run) is None:
            raise QemuError(f"VM {vm['uuid']} is not running")
        if not qemu_argv.has_console(vm):
            raise QemuError(f"VM {vm['uuid']} has no console: neither com1 nor com2 is "
                            f"{qemu_argv.ZCONSOLE}")
        relay_console(run.serial, f"VM {vm['uuid']} serial console (^] to leave)")
        return 0


# -- the QEMU process ------------------------------------------------------------------------

def qemu_pid(run: RunPaths) -> int | None:
    """The pid of this VM's running QEMU, None when there is none."""
    try:
        pid = int(run.pid.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    if status in ("Z", "X") or not os.path.basename(argv[0]).startswith(b"qemu-system"):
        return None
    if not any(os.fsencode(qemu_argv.opt(run.qmp)) in arg for arg in argv):
        return None  # the pid of another process now
    return pid


def end_qemu(run: RunPaths) -> None:
    """End this VM's QEMU, if any: QMP ``quit`` (the disks closed cleanly), then SIGKILL."""
    pid = qemu_pid(run)
    if pid is None:
        return
    try:
        qmp.ask(run.qmp, "quit", timeout=QUIT_GRACE)
    except qmp.QmpError:
        pass
    if not wait_pid_exit(pid, QUIT_GRACE):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_pid_exit(pid, QUIT_GRACE)


def half_started(run: RunPaths) -> bool:
    """Whether the running QEMU never got its ``cont`` (QMP says ``prelaunch``)."""
    try:
        return bool(qmp.ask(run.qmp, "query-status", timeout=STATUS_TIMEOUT)["status"]
                    == "prelaunch")
    except (qmp.QmpError, KeyError, TypeError):
        return False


def starting(vmdir: Path) -> bool:
    """Whether another process holds the VM's lock (a start under way)."""
    with file_lock(vmdir / LOCK, blocking=False) as got:
        return not got


def stopping(run: RunPaths) -> bool:
    """Whether a stop is under way (its marker's deadline has not passed)."""
    try:
        return time.time() < float(run.stopping.read_text())
    except (OSError, ValueError):
        return False


def clean_run(run: RunPaths) -> None:
    """What a stopped QEMU leaves: its sockets, pid file, the stop marker and the mark of a
    failed start go; the console log stays until the next start."""
    for path in (run.stopping, run.pid, run.qmp, run.serial, run.failed):
        path.unlink(missing_ok=True)


def boot_once_used(vm: dict[str, Any], disks: list[qemu_disks.Disk], taps: list[qemu_argv.Tap],
                   monitor: qmp.Qmp) -> None:
    """After the first boot of a start with ``boot``'s ``once=`` began: the devices get the
    order's boot indexes (read at the machine's next reset: a reboot boots by the order), and
    the VM object loses its ``once=`` (the caller saves it)."""
    first = qemu_argv.first_boot_indexes(vm, disks, taps)
    then = qemu_argv.boot_indexes(qemu_argv.boot_order(vm), disks, taps)
    changed = [key for key in first.keys() | then.keys() if first.get(key) != then.get(key)]
    for key in sorted(changed):  # first unset (an index is used once at a time), then set
        if key in first:
            monitor.command("qom-set", path=f"/machine/peripheral/{qemu_argv.device_id(key)}",
                            property="bootindex", value=-1)
    for key in sorted(changed):
        if key in then:
            monitor.command("qom-set", path=f"/machine/peripheral/{qemu_argv.device_id(key)}",
                            property="bootindex", value=then[key])
    vm["boot"] = qemu_argv.without_once(vm)


# -- disks -----------------------------------------------------------------------------------

def installed_disks(vm: dict[str, Any], vmdir: Path) -> list[Disk]:
    disks = qemu_disks.plan(vm, vmdir, None)
    for disk in disks:
        if not disk.file.is_file():
            raise QemuError(f"disks.{disk.index}: {disk.file} is missing (the VM's disks were "
                            f"not installed)")
    return disks


def update_disks(vm: dict[str, Any], vmdir: Path, run: RunPaths | None) -> None:
    """Make the disks the VM has gained, grow those whose size grew (live when running), and,
    stopped, remove the files of the disks it lost, renumbering the rest (``disk<N>.qcow2`` is
    ``disks[N]``); each ``disks.*.path`` is filled in."""
    entries = vm.get("disks") or []
    kept = {str(e["path"]) for e in entries if isinstance(e, dict) and e.get("path")}
    folder = vmdir / qemu_disks.DISKS_DIR
    lost = sorted(p for p in folder.glob("disk*.qcow2") if str(p) not in kept) \
        if folder.is_dir() else []
    if lost and run is not None:
        raise QemuError(f"remove_disks: {', '.join(p.name for p in lost)} of running VM "
                        f"{vm['uuid']}: disks are removed while the VM is stopped")
    for gone in lost:
        gone.unlink()
    for index, entry in enumerate(entries):
        at = qemu_disks.disk_file(vmdir, index)
        named = entry.get("path") if isinstance(entry, dict) else None
        path = Path(str(named)) if named else None
        if path is not None and path != at and path.parent == folder \
                and path.name.startswith("disk"):
            os.rename(path, at)  # down only: the files below it are gone
            entry["path"] = str(at)
    lookup = qemu_disks.installed_image
    for disk in qemu_disks.plan(vm, vmdir, None):
        if not disk.file.exists():
            entry = vm["disks"][disk.index]
            made = qemu_disks.plan_disk(vm, vmdir, disk.index, entry, lookup)
            disk.file.parent.mkdir(exist_ok=True)
            qemu_disks.create(made, disk.file)
            entry["path"] = str(disk.file)
            continue
        size = disk.size_mib
        if size is None:
            continue
        info = qemu_disks.qemu_img_info(disk.file, f"disks.{disk.index}")
        if size * qemu_disks.MIB == int(info["virtual-size"]):
            continue
        if run is None:
            qemu_disks.grow(disk, size)
        elif size * qemu_disks.MIB < int(info["virtual-size"]):
            raise QemuError(f"disks.{disk.index}.size: {size} MiB would shrink the disk")
        else:
            qmp.ask(run.qmp, "block_resize", device=f"disk{disk.index}",
                    size=size * qemu_disks.MIB)


# -- info and console ------------------------------------------------------------------------

def vnc_info(answer: dict[str, Any]) -> dict[str, Any]:
    """``query-vnc``'s answer as vmadm shows it: host, port and display, or {} without VNC."""
    if not answer.get("enabled") or "service" not in answer:
        return {}
    port = int(answer["service"])
    return {"host": answer.get("host"), "port": port, "display": port - qemu_argv.VNC_BASE}


def relay_console(path: Path, banner: str) -> None:
    """Copy this terminal's input to the unix socket ``path`` and its output back, the
    terminal raw, until ^] is typed or either side ends."""
    import socket
    import termios
    import tty

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise QemuError(f"{path}: cannot connect to the console: {exc.strerror}") from None
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    print(banner, file=sys.stderr, flush=True)
    try:
        if saved is not None:
            tty.setraw(stdin)
        while True:
            ready, _, _ = select.select([stdin, sock], [], [])
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    break
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if not data or ESCAPE in data:
                    sock.sendall(data.split(ESCAPE, 1)[0])
                    break
                sock.sendall(data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        sock.close()
