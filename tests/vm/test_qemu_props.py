"""The HVM properties of the real tool that pass things to the hypervisor: ``qemu_extra_opts``
(appended to QEMU's command line), ``boot``'s ``once=``, ``com1``/``com2``, and the refused
``qemu_opts`` and ``bhyve_extra_opts``. The guests boot real boot sectors (tests.support.hvm:
a disk's MBR and a CD's El Torito image) that print which one booted to both serial ports."""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

import pytest

from liveforge.vm import qmp
from liveforge.vm.brands.qemu import QemuRuntime
from liveforge.vm.brands.qemu_argv import run_paths
from tests.support.hvm import boot_cd, boot_disk, install_zvol, qemu_pids, read_until, vm_object
from tests.vm.conftest import Run

TIMEOUT = 60.0


def wait_for_log(path: Path, text: bytes, timeout: float = TIMEOUT) -> bytes:
    """The file ``path`` once it holds ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if text in data:
            return data
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {path} within {timeout}s")


def test_boot_once_is_the_next_start_only_and_com2_is_a_socket(
        hvm_roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    vm_root, img_root = hvm_roots
    monkeypatch.setenv("IMGADM_ROOT", str(img_root))
    disk = install_zvol(img_root, boot_disk(img_root.parent / "disk.raw", "FROM-DISK"))
    cd = install_zvol(img_root, boot_cd(img_root.parent / "cd.iso", "FROM-CD"))
    vm = vm_object(disks=[{"image_uuid": disk, "boot": True},
                          {"image_uuid": cd, "media": "cdrom", "model": "ide"}],
                   boot="order=c,once=d", com2="/tmp/vm.ttyb")
    vmdir = vm_root / str(vm["uuid"])
    vmdir.mkdir()
    run = run_paths(vmdir)
    runtime = QemuRuntime(warn=pytest.fail)
    runtime.install(vm, vmdir)

    runtime.start(vm, vmdir)
    assert vm["boot"] == "order=c"  # used up: the caller saves it
    read_until(run.serial, b"COM1 FROM-CD", TIMEOUT)  # the console is COM1
    com2 = vmdir / "root" / "tmp" / "vm.ttyb"
    assert b"COM1" not in read_until(com2, b"COM2 FROM-CD", TIMEOUT)
    chardevs = {c["label"]: c["filename"] for c in qmp.ask(run.qmp, "query-chardev")}
    assert chardevs["com2"].endswith(f"unix:{com2},server=on")  # "disconnected:" when none is
    assert chardevs["serial0"].endswith(f"unix:{run.serial},server=on")

    # a reset in the same run boots by the order (QEMU's once): the disk
    runtime.reboot(vm, vmdir)
    read_until(run.serial, b"COM1 FROM-DISK", TIMEOUT)
    runtime.stop(vm, vmdir, timeout=0, force=True)

    # the next start: the order only
    runtime.start(vm, vmdir)
    log = wait_for_log(run.console_log, b"COM1 FROM-DISK")
    time.sleep(1)
    log = run.console_log.read_bytes()
    assert b"FROM-CD" not in log and b"COM2" not in log
    runtime.destroy(vm, vmdir)
    assert qemu_pids(vmdir) == [] and sorted(p.name for p in vmdir.iterdir()) == []


def test_qemu_extra_opts_are_appended_and_a_bad_one_is_a_clean_failed_start(
        hvm_vmadm: Run, hvm_roots: tuple[Path, Path]) -> None:
    vm_root, _ = hvm_roots
    payload = {"brand": "kvm", "ram": 128, "vnc_port": -1, "boot": "order=c,once=n",
               "disks": [{"size": 1}],
               "qemu_extra_opts": "-device virtio-rng-pci,id=extrarng "
                                  "-smbios 'type=1,product=Two Words'  -no-shutdown"}
    proc = hvm_vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr
    uuid = proc.stderr.split()[-1]
    vmdir = vm_root / uuid
    # create's start used boot's once= up and saved it
    assert json.loads(hvm_vmadm("get", uuid).stdout)["boot"] == "order=c"
    (pid,) = qemu_pids(vmdir)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    assert argv[-5:] == ["-device", "virtio-rng-pci,id=extrarng", "-smbios",
                         "type=1,product=Two Words", "-no-shutdown"]
    with qmp.Qmp(run_paths(vmdir).qmp) as monitor:
        peripherals = monitor.command("qom-list", path="/machine/peripheral")
        assert "extrarng" in {p["name"] for p in peripherals}
        assert monitor.command("qom-get", path="/machine/peripheral/extrarng",
                               property="type") == "virtio-rng-pci"

    assert hvm_vmadm("stop", uuid, "-F").returncode == 0
    proc = hvm_vmadm("update", uuid, "qemu_extra_opts=-device no-such-device")
    assert proc.returncode == 0, proc.stderr
    proc = hvm_vmadm("start", uuid)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"VM {uuid}: QEMU did not start: ")
    assert "'no-such-device' is not a valid device model name" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert qemu_pids(vmdir) == []
    assert hvm_vmadm("list", "-p", "-o", "state").stdout == "failed\n"

    proc = hvm_vmadm("update", uuid, "qemu_extra_opts=-name 'unclosed")
    assert proc.returncode == 0, proc.stderr
    proc = hvm_vmadm("start", uuid)
    assert proc.returncode == 1 and "No closing quotation" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and qemu_pids(vmdir) == []
    assert hvm_vmadm("delete", uuid).returncode == 0
    assert list(vm_root.iterdir()) == []


REFUSED = [("kvm", "qemu_opts", "-m 64 -hda /dev/sda"),
           ("bhyve", "bhyve_extra_opts", "-s 5,virtio-rnd")]


@pytest.mark.parametrize(("brand", "name", "value"), REFUSED)
def test_refused_properties_are_a_bad_value_naming_them(brand: str, name: str, value: str,
                                                        vmadm: Run, roots: tuple[Path, Path]
                                                        ) -> None:
    payload = {"brand": brand, "autoboot": False, "vnc_port": -1, name: value}
    proc = vmadm("validate", "create", input=json.dumps(payload))
    assert proc.returncode == 1
    assert json.loads(proc.stderr) == {"bad_values": [name], "bad_properties": [],
                                       "missing_properties": []}
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Invalid value(s) for: {name}: not supported here: ")
    assert len(proc.stderr.splitlines()) == 1
    assert list(roots[0].iterdir()) == []  # nothing created

    del payload[name]
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    uuid = proc.stderr.split()[-1]
    before = (roots[0] / uuid / "config.json").read_text()
    proc = vmadm("update", uuid, f"{name}={value}")
    assert proc.returncode == 1 and f"Invalid value(s) for: {name}: not supported" in proc.stderr
    assert (roots[0] / uuid / "config.json").read_text() == before
    proc = vmadm("update", uuid, f"{name}=")  # unsetting is fine
    assert proc.returncode == 0, proc.stderr
    assert vmadm("delete", uuid).returncode == 0


@pytest.mark.parametrize(("value", "good"), [
    ("/dev/zconsole", True), ("/tmp/vm.ttyb", True), ("tmp/vm.ttyb", False),
    ("/tmp/../etc/shadow", False), ("/tmp/", False)])
def test_com_values_are_validated(value: str, good: bool, vmadm: Run) -> None:
    proc = vmadm("validate", "create", input=json.dumps({"brand": "bhyve", "com2": value}))
    assert proc.returncode == (0 if good else 1), proc.stderr
    if not good:
        assert json.loads(proc.stderr)["bad_values"] == ["com2"]


def spice_link(port: int) -> tuple[bytes, int]:
    """A SPICE client's first step on 127.0.0.1:``port`` (a link message for the main
    channel): the reply's magic and its error code (0: go on, to the password)."""
    mess = struct.pack("<IBBIII", 0, 1, 0, 0, 0, 18)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(mess)) + mess)
        reply = b""
        while len(reply) < 20:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    return reply[:4], struct.unpack("<I", reply[16:20])[0]


def test_spice_listens_with_its_password_or_none(hvm_roots: tuple[Path, Path]) -> None:
    vm_root, _ = hvm_roots
    vm = vm_object(brand="kvm", disks=[{"size": 1}], spice_port=0, spice_password="s3cret",
                   spice_opts="image-compression=off")
    vmdir = vm_root / str(vm["uuid"])
    vmdir.mkdir()
    runtime = QemuRuntime(warn=pytest.fail)
    runtime.install(vm, vmdir)
    runtime.start(vm, vmdir)
    spice = runtime.info(vm, vmdir, ["spice"])["spice"]
    assert (spice["enabled"], spice["host"], spice["auth"]) == (True, "127.0.0.1", "spice")
    assert spice_link(spice["port"]) == (b"REDQ", 0)
    runtime.update(vm, vmdir, {"spice_password": "other"})  # live
    (pid,) = qemu_pids(vmdir)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert argv[argv.index("-spice") + 1] == (f"port={spice['port']},addr=127.0.0.1,"
                                              f"image-compression=off")
    assert "s3cret" not in " ".join(argv)  # given through QMP, not on the command line
    runtime.stop(vm, vmdir, timeout=0, force=True)

    vm.update(spice_password="", spice_port=-1)
    runtime.start(vm, vmdir)
    assert runtime.info(vm, vmdir, ["spice"])["spice"]["enabled"] is False
    runtime.stop(vm, vmdir, timeout=0, force=True)
    # what is not applied is named at start: ignored, or refused but in an older VM's object
    vm.update(spice_port=0, pci_devices=[{"path": "/dev/ppt0"}], qemu_opts="-m 64")
    warned: list[str] = []
    QemuRuntime(warn=warned.append).start(vm, vmdir)
    assert runtime.info(vm, vmdir, ["spice"])["spice"]["auth"] == "none"
    assert [w.split(" (")[0] for w in warned] == ["pci_devices is not applied here",
                                                   "qemu_opts is not applied here"]
    runtime.destroy(vm, vmdir)
