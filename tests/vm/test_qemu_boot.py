"""A bhyve-brand VM boots the test platform's USB image from an installed zvol image (TCG).

The disk is the project's own medium: the bootable test platform (tests.support.kernel: Debian's
kernel and a busybox initramfs printing ``PLATFORM-READY <stamp>``) written by the USB writer,
installed as a zvol image; the VM's disk is a qcow2 overlay on it. GRUB's menu waits its 5 s,
then boots the normal entry on the serial console."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveforge.vm import qmp
from liveforge.vm.brands.qemu import QemuRuntime
from liveforge.vm.brands.qemu_argv import run_paths
from tests.support.hvm import install_zvol, qemu_pids, read_until, vm_object
from tests.support.kernel import STAMP, Bootable

BOOT_TIMEOUT = 90.0
READY = f"PLATFORM-READY {STAMP}".encode()


@pytest.fixture(scope="module")
def usb_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test platform's USB image, raw."""
    root = tmp_path_factory.mktemp("bootable")
    raw = root / "usb.img"
    raw.write_bytes(gzip.decompress(Bootable(root).media("usb").read_bytes()))
    return raw


@pytest.fixture
def roots(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    base = Path(tempfile.mkdtemp(prefix="lfvm.", dir="/tmp"))
    monkeypatch.setenv("IMGADM_ROOT", str(base / "img"))
    monkeypatch.setenv("VMADM_NICTAGS", str(base / "nictags.json"))
    bridge = f"lfboot{os.getpid() % 10000}"
    (base / "nictags.json").write_text(json.dumps({"admin": bridge}))
    (base / "vm").mkdir()
    try:
        yield base / "img", base / "vm"
    finally:
        for pid in qemu_pids(base / "vm"):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def through_console(vm: dict[str, object], vmdir: Path, command: str) -> str:
    """Type ``command`` on the guest's serial console through ``QemuRuntime.console`` (another
    process, as ``vmadm console`` runs it), then ^]; what came back."""
    code = ("import json, sys; from pathlib import Path; "
            "from liveforge.vm.brands.qemu import QemuRuntime; "
            "QemuRuntime().console(json.loads(sys.argv[1]), Path(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(vm), str(vmdir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    proc.stdin.write(command.encode() + b"\n")
    proc.stdin.flush()
    seen = b""
    deadline = time.monotonic() + 30
    while b"LF-" not in seen.replace(command.encode(), b"") and time.monotonic() < deadline:
        time.sleep(0.1)
        seen += proc.stdout.read() or b""
    proc.stdin.write(b"\x1d")
    proc.stdin.flush()
    assert proc.wait(timeout=10) == 0
    assert proc.stderr is not None
    assert "serial console (^] to leave)" in proc.stderr.read().decode()
    return seen.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("bootrom", ["bios", "uefi"])
def test_a_bhyve_vm_boots_the_platform_from_its_image(bootrom: str, usb_image: Path,
                                                      roots: tuple[Path, Path]) -> None:
    img, vmdir = roots
    uuid = install_zvol(img, usb_image)
    image_file = img / "zones" / f"{uuid}.img"
    before = image_file.read_bytes()
    vm = vm_object(ram=512, bootrom=bootrom, disks=[{"image_uuid": uuid, "boot": True}],
                   nics=[{"nic_tag": "admin"}])
    warnings: list[str] = []
    runtime = QemuRuntime(warn=warnings.append)
    runtime.install(vm, vmdir)
    began = time.monotonic()
    runtime.start(vm, vmdir)
    console = read_until(run_paths(vmdir).serial, READY, BOOT_TIMEOUT)
    booted = time.monotonic() - began
    print(f"\n{bootrom}: start to {READY.decode()} in {booted:.1f}s")
    assert b"Linux version" in console or b"liveforge test platform" in console
    assert qmp.ask(run_paths(vmdir).qmp, "query-status")["status"] == "running"
    assert runtime.state(vm, vmdir) == "running"
    assert READY in run_paths(vmdir).console_log.read_bytes()
    assert warnings == []
    assert "LF-42" in through_console(vm, vmdir, "echo LF-$((6*7))")
    # the busybox init ignores the ACPI power button: the stop ends QEMU after its timeout
    runtime.stop(vm, vmdir, timeout=2, force=False)
    assert runtime.state(vm, vmdir) == "stopped"
    assert qemu_pids(vmdir) == []
    runtime.destroy(vm, vmdir)
    assert list(vmdir.iterdir()) == []
    assert image_file.read_bytes() == before  # the guest wrote only its overlay
