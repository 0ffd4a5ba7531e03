"""The QEMU command line of an HVM VM, read from its properties; the accelerator and firmware.

Properties: ``ram`` (MiB), ``vcpus``, ``cpu_type`` (kvm; ``host`` needs KVM), ``bootrom``
(``bios``: SeaBIOS; ``uefi``: OVMF with a private copy of its variable store in
``<vmdir>/firmware/``), ``disks`` (qemu_disks), ``boot`` (``order=cd[,once=d]``: ``c`` the hard
disks, the ``boot: true`` one first, ``d`` the CD-ROMs, ``n`` the NICs; the order becomes the
devices' ``bootindex``; ``once`` is the order of the first boot of the next start only: its
letters first, then the order's others; once the guest runs, the devices get the order's
indexes back, so a reset boots by the order, and the VM's ``boot`` loses its ``once=``),
``nics`` (taps, qemu_net), ``vga`` (kvm: std, cirrus, vmware, qxl, none), ``vnc_port`` (-1: no
VNC; 0 or absent: the first free port from 5900; N >= 5900: that port; on 127.0.0.1, with
``vnc_password`` if set), ``spice_port`` (kvm: -1 or absent: no SPICE; 0: a free port; N:
that port; on 127.0.0.1, with ``spice_password`` if set, else without a password, and
``spice_opts`` added to QEMU's ``-spice`` options), ``uuid`` (the guest's SMBIOS uuid),
``com1``/``com2`` (bhyve: the guest's serial ports COM1 and COM2: ``/dev/zconsole`` is the VM's
console, the default of COM1; any other absolute path P is a unix socket QEMU listens on at
``<vmdir>/root/P``, as a bhyve zone's path is in the zone's root; COM2 exists only when set),
``qemu_extra_opts`` (kvm: QEMU arguments appended to the command line, split as a POSIX shell
splits words, no shell run). Refused or accepted but not applied: the property table's
``refused`` and ``ignored``.

Every VM also gets: its console (the port that is ``/dev/zconsole``, COM1 by default) on the
unix socket ``run/serial.sock``, also written to ``run/console.log``; QMP on ``run/qmp.sock``; a
pid file ``run/qemu.pid``. QEMU starts paused (``-S``) and daemonizes (its own session) once its
devices and sockets are set up; the runtime attaches the NICs and then lets the guest run.

The accelerator: ``VMADM_QEMU_ACCEL`` = ``kvm``, ``tcg`` or ``auto`` (the default). ``auto`` uses
KVM only when it really runs ordinary guests: the host's KVM is hardware KVM (``kvm_intel`` or
``kvm_amd``; a PVM host's ``kvm_pvm`` runs only guests built for PVM, others hang), /dev/kvm is
usable, and a 64 KiB probe firmware run under it writes to its serial port and exits. Otherwise
TCG (emulation).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveforge.util.errors import MissingToolError
from liveforge.vm.brands.qemu_disks import MODELS, Disk, QemuError
from liveforge.vm.properties import TABLE

QEMU = "qemu-system-x86_64"
ACCEL_ENV = "VMADM_QEMU_ACCEL"
OVMF_ENV = "VMADM_OVMF_DIR"
OVMF_DIR = "/usr/share/OVMF"
# (code, variable store template) pairs, the first present is used
OVMF_PAIRS = (("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.fd", "OVMF_VARS.fd"))
FIRMWARE_DIR = "firmware"
VNC_HOST = "127.0.0.1"
VNC_BASE = 5900
VNC_AUTO_RANGE = 99  # an automatic VNC port is one of 5900..5999
UNIX_PATH_MAX = 107  # bytes in a unix socket's path (sun_path less its NUL)
# properties of the real tool this runtime does not apply: name -> why (a warning at start
# when set: accepted but ignored, or refused now but kept in an older VM's object)
UNSUPPORTED = {p.name: p.ignored or p.refused for p in TABLE if p.ignored or p.refused}
ZCONSOLE = "/dev/zconsole"  # a serial port that is the VM's console
COM_PORTS = ("com1", "com2")
COM_DEFAULTS = {"com1": ZCONSOLE}
COM_ROOT = "root"  # a serial port's socket path P is <vmdir>/root/P
VGA_CARDS = ("std", "cirrus", "vmware", "qxl", "none")
NIC_MODELS = {"virtio": "virtio-net-pci", "e1000": "e1000", "rtl8139": "rtl8139"}
DEFAULT_RAM = 256
DEFAULT_BOOT = "order=cd"


@dataclass(frozen=True, slots=True)
class RunPaths:
    """What a running VM leaves in ``<vmdir>/run/``."""

    dir: Path

    @property
    def pid(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def qmp(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def serial(self) -> Path:
        return self.dir / "serial.sock"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def failed(self) -> Path:
        """Present when the last start failed: its message."""
        return self.dir / "failed"

    @property
    def stopping(self) -> Path:
        """Present while a stop is under way: its deadline (seconds since the epoch)."""
        return self.dir / "stopping"


def run_paths(vmdir: Path) -> RunPaths:
    return RunPaths(vmdir / "run")


@dataclass(frozen=True, slots=True)
class Tap:
    """A NIC of the guest: ``nics[index]`` as the tap ``name`` on ``bridge``."""

    index: int
    name: str
    bridge: str
    mac: str | None
    model: str


# -- the accelerator -------------------------------------------------------------------------

def accelerator() -> str:
    choice = os.environ.get(ACCEL_ENV) or "auto"
    if choice in ("kvm", "tcg"):
        return choice
    if choice != "auto":
        raise QemuError(f"{ACCEL_ENV}={choice!r}: not kvm, tcg or auto")
    return "kvm" if kvm_works() else "tcg"


@functools.cache
def kvm_works() -> bool:
    """Whether KVM runs ordinary guests here (see the module's documentation)."""
    modules = Path("/sys/module")
    if (modules / "kvm_pvm").exists():
        return False
    if not ((modules / "kvm_intel").exists() or (modules / "kvm_amd").exists()):
        return False
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    return probe("kvm")


# Real-mode code at the reset vector (the ROM's last 16 bytes): write "K" to COM1, then ask the
# isa-debug-exit device at port 0xf4 to end QEMU.
PROBE_CODE = bytes([0xBA, 0xF8, 0x03, 0xB0, 0x4B, 0xEE,   # mov dx,0x3f8; mov al,'K'; out dx,al
                    0xB0, 0x00, 0xE6, 0xF4,               # mov al,0; out 0xf4,al
                    0xF4, 0xEB, 0xFD])                    # hlt; jmp back to hlt
PROBE_TIMEOUT = 10.0


def probe(accel: str) -> bool:
    """Run the probe firmware under ``accel``: True when it printed and exited in time."""
    import tempfile

    rom = bytearray(64 * 1024)
    rom[-16:-16 + len(PROBE_CODE)] = PROBE_CODE
    with tempfile.NamedTemporaryFile(prefix="vmadm-probe.", suffix=".rom") as handle:
        handle.write(rom)
        handle.flush()
        try:
            proc = subprocess.run(
                [QEMU, "-accel", accel, "-machine", "pc", "-nodefaults", "-no-user-config",
                 "-display", "none", "-m", "16", "-bios", handle.name, "-serial", "stdio",
                 "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
                capture_output=True, timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return proc.returncode == 1 and proc.stdout == b"K"


# -- firmware --------------------------------------------------------------------------------

def ovmf() -> tuple[Path, Path]:
    """OVMF's code and its variable store template."""
    base = Path(os.environ.get(OVMF_ENV) or OVMF_DIR)
    for code, template in OVMF_PAIRS:
        if (base / code).is_file() and (base / template).is_file():
            return base / code, base / template
    wanted = " or ".join(f"{c} + {t}" for c, t in OVMF_PAIRS)
    raise MissingToolError(f"bootrom uefi: no OVMF firmware in {base} ({wanted}); "
                           f"apt-get install ovmf")


def private_vars(vmdir: Path, template: Path) -> Path:
    """The VM's own copy of OVMF's variable store, made on its first UEFI start."""
    from liveforge.util.fileio import write_atomic

    target = vmdir / FIRMWARE_DIR / template.name
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        write_atomic(target, template.read_bytes())
    return target


# -- the command line ------------------------------------------------------------------------

def boot_orders(vm: dict[str, Any]) -> tuple[str, str | None]:
    """The device classes in boot order, e.g. ``cd``, and those of the next start's first boot
    (None: the same), from ``boot`` (``order=cd[,once=d]``)."""
    text = vm.get("boot") or DEFAULT_BOOT
    found: dict[str, str] = {}
    for item in str(text).split(","):
        key, _, value = item.partition("=")
        if key not in ("order", "once") or key in found:
            raise QemuError(f"boot: {text!r}: {key!r} is not order= or once= (each at most "
                            f"once)")
        found[key] = value
    for key in ("order", "once"):
        letters = found.get(key)
        if (key == "order" or letters is not None) and (
                not letters or any(c not in "cdn" for c in letters)
                or len(set(letters)) != len(letters)):
            what = "the order" if key == "order" else "once="
            raise QemuError(f"boot: {text!r}: {what} is letters c (disk), d (cdrom), n (net), "
                            f"each at most once")
    order, once = found["order"], found.get("once")
    if once is None:
        return order, None
    return order, once + "".join(c for c in order if c not in once)


def boot_order(vm: dict[str, Any]) -> str:
    """The device classes in boot order, e.g. ``cd``, from ``boot``."""
    return boot_orders(vm)[0]


def without_once(vm: dict[str, Any]) -> str:
    """``boot`` once its ``once=`` is used up: ``order=...``."""
    return f"order={boot_order(vm)}"


def boot_indexes(order: str, disks: list[Disk], taps: list[Tap]) -> dict[tuple[str, int], int]:
    """``bootindex`` of each bootable device in ``order``, ``("disk", i)`` or ``("nic", i)``."""
    ranked: list[tuple[str, int]] = []
    for letter in order:
        if letter == "n":
            ranked += [("nic", t.index) for t in taps]
        else:
            chosen = [d for d in disks if d.cdrom == (letter == "d")]
            chosen.sort(key=lambda d: (not d.boot, d.index))
            ranked += [("disk", d.index) for d in chosen]
    return {key: i for i, key in enumerate(ranked)}


def first_boot_indexes(vm: dict[str, Any], disks: list[Disk],
                       taps: list[Tap]) -> dict[tuple[str, int], int]:
    """``bootindex`` of each bootable device at the next start's first boot (``once`` if any)."""
    order, once = boot_orders(vm)
    return boot_indexes(once or order, disks, taps)


def device_id(key: tuple[str, int]) -> str:
    """The qdev id of a bootable device, ``dev-disk0``, ``dev-nic1``: its QOM path is
    ``/machine/peripheral/<id>``."""
    return f"dev-{key[0]}{key[1]}"


# -- serial ports ----------------------------------------------------------------------------

def com_ports(vm: dict[str, Any], vmdir: Path) -> list[tuple[str, Path | None]]:
    """The guest's serial ports in order (COM1, COM2): each port's property and its socket
    path, None for the console; COM1 is the console unless set, COM2 is left out unless set."""
    ports: list[tuple[str, Path | None]] = []
    seen: dict[str, str] = {}
    for name in COM_PORTS:
        value = vm.get(name) or COM_DEFAULTS.get(name)
        if value is None:
            continue
        value = str(value)
        if value in seen:
            raise QemuError(f"{name}: {value!r} is {seen[value]}'s too")
        seen[value] = name
        if value == ZCONSOLE:
            ports.append((name, None))
            continue
        parts = value.split("/")
        if not value.startswith("/") or ".." in parts or not parts[-1] or "\0" in value:
            raise QemuError(f"{name}: {value!r} is not {ZCONSOLE} or an absolute path "
                            f"(without ..) of a socket in the VM's root")
        ports.append((name, vmdir / COM_ROOT / value.lstrip("/")))
    return ports


def has_console(vm: dict[str, Any]) -> bool:
    """Whether one of the guest's serial ports is the VM's console."""
    return any((vm.get(n) or COM_DEFAULTS.get(n)) == ZCONSOLE for n in COM_PORTS)


def serial_options(ports: list[tuple[str, Path | None]], run: RunPaths) -> list[str]:
    args: list[str] = []
    for name, path in ports:
        if path is None:
            args += ["-chardev", f"socket,id=serial0,path={opt(run.serial)},server=on,"
                                 f"wait=off,logfile={opt(run.console_log)},logappend=off",
                     "-serial", "chardev:serial0"]
        else:
            args += ["-chardev", f"socket,id={name},path={opt(path)},server=on,wait=off",
                     "-serial", f"chardev:{name}"]
    return args


def extra_options(vm: dict[str, Any]) -> list[str]:
    """``qemu_extra_opts`` as arguments, split as a POSIX shell splits words (no shell run)."""
    text = vm.get("qemu_extra_opts")
    if not text:
        return []
    try:
        return shlex.split(str(text))
    except ValueError as exc:
        raise QemuError(f"qemu_extra_opts: {text!r}: {exc}") from None


def vnc_option(vm: dict[str, Any]) -> str | None:
    port = vm.get("vnc_port", 0)
    if port == -1:
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not (
            port == 0 or VNC_BASE <= port <= 65535):
        raise QemuError(f"vnc_port: {port!r} is not -1 (none), 0 (any free port) or a port "
                        f"from {VNC_BASE}")
    option = (f"{VNC_HOST}:0,to={VNC_AUTO_RANGE}" if port == 0
              else f"{VNC_HOST}:{port - VNC_BASE}")
    return option + (",password=on" if vm.get("vnc_password") else "")


def spice_on(vm: dict[str, Any]) -> bool:
    """Whether the VM has SPICE (``spice_port`` neither -1 nor absent)."""
    return vm.get("spice_port") not in (None, -1)


def spice_option(vm: dict[str, Any]) -> str | None:
    """``-spice``'s options, None without SPICE."""
    if not spice_on(vm):
        return None
    port = vm.get("spice_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise QemuError(f"spice_port: {port!r} is not -1 (none), 0 (any free port) or a port")
    option = f"port={port or free_port()},addr={VNC_HOST}"
    if not vm.get("spice_password"):
        option += ",disable-ticketing=on"  # else the password is set through QMP
    if vm.get("spice_opts"):
        option += f",{vm['spice_opts']}"
    return option


def free_port() -> int:
    """A TCP port free on VNC_HOST now."""
    import socket

    with socket.socket() as sock:
        sock.bind((VNC_HOST, 0))
        return int(sock.getsockname()[1])


def vga(vm: dict[str, Any]) -> str:
    card = str(vm.get("vga") or "std")
    if card not in VGA_CARDS:
        raise QemuError(f"vga: {card!r} is not one of {', '.join(VGA_CARDS)}")
    return card


def cpu_model(vm: dict[str, Any], accel: str) -> str:
    cpu = str(vm.get("cpu_type") or "qemu64")
    if cpu == "host" and accel != "kvm":
        return "max"  # what TCG can offer of the host's features
    return cpu


def opt(path: Path) -> str:
    """A path as the value of a QEMU option (a comma is doubled)."""
    return str(path).replace(",", ",,")


def disk_options(disk: Disk, bootindex: int | None, units: dict[str, int]) -> list[str]:
    model = MODELS[disk.model]
    drive = (f"file={opt(disk.file)},format=qcow2,if=none,id=disk{disk.index},"
             f"discard={'unmap' if disk.discard else 'ignore'}")
    if disk.cdrom:
        drive += ",readonly=on"
    unit = units.get(disk.model, 0)
    units[disk.model] = unit + 1
    device = (f"{model.cd if disk.cdrom else model.hd},drive=disk{disk.index},"
              f"id={device_id(('disk', disk.index))}")
    if model.bus is not None:
        device += ",bus=" + model.bus.format(n=unit, half=unit // 2, odd=unit % 2)
    if not disk.cdrom:
        device += f",serial={disk.serial}"
    if bootindex is not None:
        device += f",bootindex={bootindex}"
    return ["-drive", drive, "-device", device]


def argv(vm: dict[str, Any], vmdir: Path, disks: list[Disk], taps: list[Tap],
         accel: str) -> list[str]:
    """QEMU's command line for ``vm`` (its checks raise before anything runs)."""
    run = run_paths(vmdir)
    ports = com_ports(vm, vmdir)
    for sock in (run.qmp, run.serial, *(p for _, p in ports if p is not None)):
        if len(os.fsencode(sock)) > UNIX_PATH_MAX:
            raise QemuError(f"{sock}: longer than a unix socket's path may be "
                            f"({UNIX_PATH_MAX} bytes): use a shorter VMADM_ROOT")
    if shutil.which(QEMU) is None:
        raise MissingToolError(f"{QEMU} is missing: apt-get install qemu-system-x86")
    ram = vm.get("ram", DEFAULT_RAM)
    vcpus = vm.get("vcpus", 1)
    for name, value in (("ram", ram), ("vcpus", vcpus)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise QemuError(f"{name}: {value!r} is not a positive integer")
    name = str(vm.get("alias") or vm["uuid"]).replace(",", ",,")
    args = [QEMU, "-name", f"guest={name}", "-uuid", str(vm["uuid"]),
            "-machine", f"pc,accel={accel}", "-cpu", cpu_model(vm, accel),
            "-m", str(ram), "-smp", str(vcpus),
            "-nodefaults", "-no-user-config", "-rtc", "base=utc", "-vga", vga(vm)]
    bootrom = vm.get("bootrom") or "bios"
    if bootrom == "uefi":
        code, template = ovmf()
        args += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={opt(code)}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={opt(private_vars(vmdir, template))}"]
    elif bootrom != "bios":
        raise QemuError(f"bootrom: {bootrom!r} is not bios or uefi")
    indexes = first_boot_indexes(vm, disks, taps)
    extra = extra_options(vm)
    for controller in dict.fromkeys(MODELS[d.model].controller for d in disks):
        if controller is not None:
            args += ["-device", controller]
    units: dict[str, int] = {}
    for disk in disks:
        args += disk_options(disk, indexes.get(("disk", disk.index)), units)
    for tap in taps:
        args += ["-netdev", f"tap,id=net{tap.index},ifname={tap.name},script=no,downscript=no"]
        device = (f"{NIC_MODELS[tap.model]},netdev=net{tap.index},"
                  f"id={device_id(('nic', tap.index))}")
        if tap.mac:
            device += f",mac={tap.mac}"
        if ("nic", tap.index) in indexes:
            device += f",bootindex={indexes[('nic', tap.index)]}"
        args += ["-device", device]
    vnc = vnc_option(vm)
    spice = spice_option(vm)
    args += ["-display", "none"] + (["-vnc", vnc] if vnc else []) + (
        ["-spice", spice] if spice else [])
    args += serial_options(ports, run)
    args += ["-chardev", f"socket,id=qmp,path={opt(run.qmp)},server=on,wait=off",
             "-mon", "chardev=qmp,mode=control",
             "-pidfile", str(run.pid), "-daemonize", "-S"]
    return args + extra
