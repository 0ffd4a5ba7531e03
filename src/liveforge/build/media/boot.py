"""The QEMU runner: boot a platform, or its ISO or USB image, and watch the serial console.

``boot()`` starts qemu-system-x86_64 under TCG (``-accel tcg``: on hosts whose KVM is PVM,
guests hang under KVM, so it is used only when a caller asks for it), copies the serial console
to the log as it arrives and decides from it:

* ``PLATFORM-READY <STAMP>`` -> success;
* ``PLATFORM-FAILED <test>`` -> failure, naming the test;
* ``Kernel panic`` -> failure with the kernel's message (a corrupt boot archive ends here);
* no verdict within ``timeout`` seconds, or QEMU exiting without one -> failure.

Failures carry the console's last 30 lines. QEMU runs in its own process group, which is killed
and reaped on every path, so no process outlives ``boot()``; should the runner itself be killed,
the kernel kills QEMU too (parent-death signal).

How each medium is attached (chosen for speed under emulation; the firmware and GRUB see a
CD-ROM and a removable disk, as on a real machine):

* ``direct``: ``-kernel``/``-initrd`` from the platform directory, with
  ``console=<dev> panic=-1 liveforge.test=1`` (no test argument when interactive);
* ``iso``: a CD-ROM on a virtio-scsi controller, booted first (El Torito, as from a real CD);
* ``usb``: a removable SCSI disk on a virtio-scsi controller, booted first (a ``.usb.gz`` is
  unpacked to a private file first; any raw image works, e.g. an ISO used as a stick);
* ``pxe``: a virtio-net NIC, booted first, whose option ROM is iPXE (``ipxe-qemu``'s, QEMU's
  default; naming the same file with ``romfile=`` makes SeaBIOS boot nothing), on QEMU's
  user-mode network: its DHCP server names the netboot script
  (media/pxe.py) as the boot file and its TFTP server serves the script's directory, so iPXE
  loads the kernel and boot archive through the script's relative paths, as from a boot server;
  nothing leaves QEMU's process. Before starting QEMU, the runner checks that every file the
  script loads is there and that the script boots onto the console it watches: iPXE under
  SeaBIOS prints to the screen only, so its failures would otherwise be a silent timeout;
  iPXE itself costs about 5 s whatever the platform: its banner waits 2 s for Ctrl-B, and its
  DHCP takes about 3 s, 2 of them waiting for a ProxyDHCP offer (iPXE's compiled-in
  DHCP_DISC_PROXY_TIMEOUT_SEC; QEMU's DHCP server cannot send the option that skips it);
  fetching the kernel and boot archive by TFTP takes a fraction of a second (timed under OVMF,
  where iPXE's messages reach the serial console);
* ``uefi=True``: OVMF's code read-only plus a private copy of its variables file. A boot test
  attaches the copy read-only: every test boot starts from the pristine variable store and
  leaves it so (and OVMF skips writing its boot options through emulated flash, about 1.5 s
  under TCG); an interactive boot may change it.

A serial console needs no display adapter, so a machine booting onto one has none (``-vga
none``): under TCG, OVMF drawing its console on a framebuffer costs about half a second. The IDE
and USB (xHCI) controllers cost 1-3 s more per boot than virtio-scsi (bench/boot.py measures the
media; the figures are in the issue notes).

The media's GRUB menu (and the netboot script) defaults to the normal entry; a boot test selects
the ``liveforge.test=1`` entry by setting an SMBIOS OEM string (see media/grubcfg.py and
media/pxe.py), so the medium tested is the medium shipped, and an interactive boot leaves the
string out.
"""

from __future__ import annotations

import gzip
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from liveforge.build.image.layout import PlatformLayout
from liveforge.build.media.console import Console, get_console
from liveforge.build.media.grubcfg import SMBIOS_TEST_OPTION, kernel_args
from liveforge.build.media.hosttools import (
    OVMF_CODE,
    OVMF_VARS,
    PXE_TOOLS,
    QEMU_TOOLS,
    UEFI_TOOLS,
    require,
)
from liveforge.build.media.iso import iso_name
from liveforge.build.media.layout import check_stamp, platform_files
from liveforge.build.media.pxe import check_script, script_name
from liveforge.build.media.usb import usb_name
from liveforge.util.errors import LiveforgeError, UsageError
from liveforge.util.events import Reporter
from liveforge.util.proc import TAIL_LINES, die_with_parent, text_tail

MEDIA = ("direct", "iso", "usb", "pxe")
DEFAULT_TIMEOUT = 180.0
MEMORY_MB = 512
EXIT_GRACE = 10.0  # seconds a guest gets to power off after its verdict
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL

READY_RE = re.compile(r"PLATFORM-READY (\S+)")
FAILED_RE = re.compile(r"PLATFORM-FAILED ?(.*)")
PANIC_RE = re.compile(r"Kernel panic.*")
# Kernel lines worth quoting when a boot fails: they say why the root never came up.
KERNEL_HINT_RE = re.compile(r"(Initramfs unpacking failed.*|VFS: Unable to mount root.*"
                            r"|Failed to execute /init.*|No working init found.*)")
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


@dataclass(frozen=True, slots=True)
class BootResult:
    """What a boot came to. ``status`` is ready, failed, panic, timeout, exited or interactive."""

    ok: bool
    status: str
    message: str
    elapsed: float  # seconds from starting QEMU to the verdict
    log_path: Path
    tail: str  # the console's last lines (empty when interactive)
    pid: int  # QEMU's process id; it has been reaped when boot() returns

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def log_name(stamp: str, media: str, uefi: bool = False) -> str:
    """The console log's conventional name under the workspace's ``log/``."""
    return f"boot.{stamp}.{media}{'-uefi' if uefi else ''}.log"


def boot(target: Path, stamp: str, *, arch: str, media: str = "direct", uefi: bool = False,
         console: str = "ttya", timeout: float = DEFAULT_TIMEOUT, interactive: bool = False,
         log_path: Path, reporter: Reporter | None = None, accel: str = "tcg",
         memory_mb: int = MEMORY_MB) -> BootResult:
    """Boot ``target`` (a platform directory for ``direct``; an image, or the directory holding
    ``platform-<stamp>.iso``/``.usb.gz``, for ``iso``/``usb``; a netboot script, or the
    directory holding ``platform-<stamp>.ipxe``, for ``pxe``) of a platform for ``arch`` and
    return the verdict."""
    check_stamp(stamp)
    if media not in MEDIA:
        raise UsageError(f"unknown boot media {media!r}: choose one of {', '.join(MEDIA)}")
    term = get_console(console)
    if not term.is_serial and not interactive:
        raise UsageError(f"console {console!r} has no serial port to watch; a boot test needs "
                         "one of ttya, ttyb, ttyc, ttyd (or use --interactive)")
    if timeout <= 0:
        raise UsageError(f"boot timeout must be positive, not {timeout}")
    tools = require([*QEMU_TOOLS, *(UEFI_TOOLS if uefi else ()),
                     *(PXE_TOOLS if media == "pxe" else ())])
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="liveforge-boot.") as tmp:
        work = Path(tmp)
        argv = qemu_command(tools["qemu-system-x86_64"], Path(target), stamp, arch=arch,
                            media=media, uefi=uefi, term=term, interactive=interactive,
                            log_path=log_path, work=work, accel=accel, memory_mb=memory_mb)
        what = f"{media}{' (UEFI)' if uefi else ''}"
        if reporter is not None:
            reporter.step(f"booting {what} under QEMU ({accel}); console log {log_path}")
        if interactive:
            result = run_interactive(argv, log_path)
        else:
            result = watch(argv, stamp, timeout, log_path, work / "qemu.stderr")
            if media == "pxe" and not result.ok and not result.tail.strip():
                result = replace(result, message=f"{result.message} (nothing on the console: "
                                 "under BIOS, iPXE prints to the screen only; with --uefi "
                                 "its messages are on the serial console too)")
    if reporter is not None:
        if result.ok:
            reporter.info(f"{what}: {result.message} after {result.elapsed:.1f}s")
        elif result.status != "interactive":
            reporter.emit("fail", component=f"boot {what}", error=result.message,
                          tail=result.tail, log=str(log_path))
    return result


def qemu_command(qemu: str, target: Path, stamp: str, *, arch: str, media: str, uefi: bool,
                 term: Console, interactive: bool, log_path: Path, work: Path,
                 accel: str = "tcg", memory_mb: int = MEMORY_MB) -> list[str]:
    """QEMU's command line; ``work`` is a private directory (OVMF variables, unpacked USB)."""
    argv = [qemu, "-name", f"liveforge-{stamp}", *machine_args(accel, memory_mb, term)]
    if uefi:
        vars_copy = work / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, vars_copy)
        writable = "" if interactive else "readonly=on,"
        argv += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,{writable}file={vars_copy}"]
    argv += MEDIA_ARGS[media](target, stamp, arch, term, interactive, work)
    if media != "direct" and not interactive:
        argv += ["-smbios", SMBIOS_TEST_OPTION]
    return argv + serial_args(term, interactive, log_path)


def machine_args(accel: str, memory_mb: int, term: Console) -> list[str]:
    """The machine every boot runs on (bench/boot.py boots its baseline on it too)."""
    argv = ["-accel", accel, "-m", str(memory_mb), "-smp", "1", "-no-reboot", "-nic", "none",
            "-display", "none", "-monitor", "none"]
    return argv + ["-vga", "none"] if term.is_serial else argv


# -- media -----------------------------------------------------------------------------------

def direct_args(target: Path, stamp: str, arch: str, term: Console, interactive: bool,
                work: Path) -> list[str]:
    # a clear message when the platform is missing or incomplete
    platform_files(target, stamp, arch)
    layout = PlatformLayout(arch)
    append = kernel_args(term, test=not interactive)
    return ["-kernel", str(target / layout.kernel),
            "-initrd", str(target / layout.boot_archive), "-append", append]


def iso_args(target: Path, stamp: str, arch: str, term: Console, interactive: bool,
             work: Path) -> list[str]:
    image = find_image(target, iso_name(stamp), "iso")
    return ["-device", "virtio-scsi-pci,id=scsi", "-drive",
            f"if=none,id=cd,file={image},media=cdrom,readonly=on,format=raw",
            "-device", "scsi-cd,drive=cd,bootindex=0"]


def usb_args(target: Path, stamp: str, arch: str, term: Console, interactive: bool,
             work: Path) -> list[str]:
    image = find_image(target, usb_name(stamp), "usb")
    if image.name.endswith(".gz"):
        raw = work / "usb.img"
        with gzip.open(image, "rb") as src, open(raw, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        image = raw
    return ["-device", "virtio-scsi-pci,id=scsi", "-drive",
            f"if=none,id=stick,file={image},format=raw",
            "-device", "scsi-hd,drive=stick,removable=on,bootindex=0"]


def pxe_args(target: Path, stamp: str, arch: str, term: Console, interactive: bool,
             work: Path) -> list[str]:
    script = target / script_name(f"platform-{stamp}") if target.is_dir() else target
    if not script.is_file():
        raise LiveforgeError(f"no netboot script at {script}: make one first with "
                             "'liveforge netboot'")
    check_script(script, term)
    return ["-netdev", f"user,id=net0,tftp={qemu_value(script.parent)},"
                       f"bootfile={qemu_value(script.name)}",
            "-device", "virtio-net-pci,netdev=net0,bootindex=0"]


# each medium's arguments: (target, stamp, arch, console, interactive, private directory)
MEDIA_ARGS: dict[str, Callable[[Path, str, str, Console, bool, Path], list[str]]] = {
    "direct": direct_args, "iso": iso_args, "usb": usb_args, "pxe": pxe_args,
}


def qemu_value(value: object) -> str:
    """A value inside one of QEMU's ``key=value,...`` options (a comma is written twice)."""
    return str(value).replace(",", ",,")


def find_image(target: Path, name: str, verb: str) -> Path:
    image = target / name if target.is_dir() else target
    if not image.is_file():
        raise LiveforgeError(f"no {verb} image at {image}: make one first with 'liveforge {verb}'")
    return image


def serial_args(term: Console, interactive: bool, log_path: Path) -> list[str]:
    """Serial ports up to the console's, the console's one on stdio (logged when interactive)."""
    unit = term.serial_unit
    if unit is None:  # the text console: a window, no serial capture
        return ["-display", "default"]
    args: list[str] = []
    for _ in range(unit):
        args += ["-serial", "null"]
    if interactive:
        return [*args, "-chardev", f"stdio,id=con,mux=on,logfile={log_path},logappend=off",
                "-serial", "chardev:con", "-mon", "chardev=con"]
    return [*args, "-serial", "stdio"]


# -- running ---------------------------------------------------------------------------------

def run_interactive(argv: list[str], log_path: Path) -> BootResult:
    started = time.monotonic()
    proc = subprocess.Popen(argv, preexec_fn=die_with_parent)
    try:
        code = proc.wait()
    finally:
        stop(proc)
    return BootResult(code == 0, "interactive", f"QEMU exited with status {code}",
                      time.monotonic() - started, log_path, "", proc.pid)


class Verdict:
    """Reads console lines and remembers the first verdict they carry."""

    def __init__(self, stamp: str):
        self.stamp = stamp
        self.status: str | None = None
        self.message = ""
        self.hints: list[str] = []

    def feed(self, line: str) -> None:
        hint = KERNEL_HINT_RE.search(line)
        if hint and hint.group(0) not in self.hints:
            self.hints.append(hint.group(0).strip())
        if self.status is not None:
            return
        if ready := READY_RE.search(line):
            if ready.group(1) == self.stamp:
                self.status, self.message = "ready", f"PLATFORM-READY {self.stamp}"
            else:
                self.status = "failed"
                self.message = f"booted platform {ready.group(1)}, expected {self.stamp}"
        elif failed := FAILED_RE.search(line):
            self.status, self.message = "failed", f"PLATFORM-FAILED {failed.group(1).strip()}"
        elif panic := PANIC_RE.search(line):
            self.status, self.message = "panic", panic.group(0).strip()


def watch(argv: list[str], stamp: str, timeout: float, log_path: Path, stderr_path: Path,
          grace: float = EXIT_GRACE) -> BootResult:
    """Run QEMU with the console on a pipe until a verdict, its exit or the timeout; after a
    verdict the guest gets ``grace`` seconds to power off before it is killed."""
    verdict = Verdict(stamp)
    lines: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    decided_at: float | None = None
    partial = b""
    with open(log_path, "wb") as log, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True,
                                preexec_fn=die_with_parent)
        try:
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            selector = selectors.DefaultSelector()
            selector.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                limit = started + timeout if decided_at is None else decided_at + grace
                if now >= limit:
                    break
                if not selector.select(min(limit - now, 0.5)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:  # QEMU closed the console: it has exited
                    break
                log.write(chunk)
                log.flush()
                *complete, partial = (partial + chunk).split(b"\n")
                for raw in complete:
                    line = clean(raw)
                    lines.append(line)
                    verdict.feed(line)
                if verdict.status is not None and decided_at is None:
                    decided_at = time.monotonic()
            selector.close()
        finally:
            stop(proc)
    if partial:
        lines.append(clean(partial))
        verdict.feed(clean(partial))
        decided_at = decided_at or time.monotonic()
    elapsed = (decided_at or time.monotonic()) - started
    tail = "\n".join(lines) + ("\n" if lines else "")
    status, message = verdict.status, verdict.message
    if status is None:
        if time.monotonic() - started >= timeout:
            status, message = "timeout", f"no verdict within {timeout:g}s; QEMU killed"
        else:
            status = "exited"
            message = f"QEMU exited (status {proc.returncode}) before PLATFORM-READY"
            qemu_err = stderr_path.read_text(errors="replace").strip()
            if qemu_err:
                message += f": {text_tail(qemu_err, 1)}"
    if status != "ready" and verdict.hints:
        message += " (" + "; ".join(verdict.hints) + ")"
    return BootResult(status == "ready", status, message, elapsed, log_path, tail, proc.pid)


def clean(raw: bytes) -> str:
    return ANSI_RE.sub("", raw.decode(errors="replace")).rstrip()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End QEMU's whole process group (TERM, then KILL) and reap it."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
