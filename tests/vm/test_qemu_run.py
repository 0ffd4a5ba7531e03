"""HVM VMs under a real QEMU (TCG): the daemon, its state, QMP, devices, and failed starts.

These guests boot nothing (blank disks): what is tested is QEMU's side. The boots are in
test_qemu_boot.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveforge.vm import qmp
from liveforge.vm.brands.qemu import QemuRuntime, qemu_pid
from liveforge.vm.brands.qemu_argv import accelerator, kvm_works, probe, run_paths
from liveforge.vm.brands.qemu_disks import QemuError
from tests.support.hvm import MIB, qemu_pids, vm_object


@pytest.fixture
def vmdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A VM directory with a short path; any QEMU left running there is killed afterwards."""
    monkeypatch.setenv("VMADM_NICTAGS", "/nonexistent/nictags.json")
    base = Path(tempfile.mkdtemp(prefix="lfvm.", dir="/tmp"))
    try:
        yield base
    finally:
        for pid in qemu_pids(base):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


class Warnings(list[str]):
    def __call__(self, text: str) -> None:
        self.append(text)


def started(vm: dict[str, object], vmdir: Path) -> QemuRuntime:
    runtime = QemuRuntime(warn=Warnings())
    runtime.install(vm, vmdir)
    runtime.start(vm, vmdir)
    return runtime


def test_qemu_outlives_its_starter_in_a_session_of_its_own(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 8, "boot": True}])
    runtime = started(vm, vmdir)
    (pid,) = qemu_pids(vmdir)
    assert int(run_paths(vmdir).pid.read_text()) == pid
    assert os.getsid(pid) != os.getsid(0) and os.getpgid(pid) != os.getpgid(0)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[1]) != os.getpid()  # not our child: a daemon
    assert runtime.state(vm, vmdir) == "running"
    assert qmp.ask(run_paths(vmdir).qmp, "query-status")["status"] == "running"
    # a second vmadm process sees the same state
    code = ("import json,sys; from pathlib import Path; "
            "from liveforge.vm.brands.qemu import QemuRuntime; "
            "print(QemuRuntime().state(json.loads(sys.argv[1]), Path(sys.argv[2])))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(vm), str(vmdir)],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "running"
    runtime.stop(vm, vmdir, timeout=0, force=True)
    assert runtime.state(vm, vmdir) == "stopped"
    assert qemu_pids(vmdir) == []
    assert sorted(p.name for p in run_paths(vmdir).dir.iterdir()) == ["console.log"]


def test_two_starts_at_once_start_one_qemu(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}])
    QemuRuntime().install(vm, vmdir)
    code = ("import json, sys; from pathlib import Path; "
            "from liveforge.vm.brands.qemu import QemuRuntime; "
            "QemuRuntime().start(json.loads(sys.argv[1]), Path(sys.argv[2]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(vm), str(vmdir)],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert len(qemu_pids(vmdir)) == 1
    runtime = QemuRuntime()
    assert runtime.state(vm, vmdir) == "running"
    runtime.destroy(vm, vmdir)
    assert qemu_pids(vmdir) == [] and list(vmdir.iterdir()) == []


def test_a_start_killed_half_way_shows_failed_and_starts_again(vmdir: Path) -> None:
    """vmadm killed (-9) after QEMU is up but before the guest is set going: the paused QEMU
    is a failed VM, and the next start replaces it."""
    vm = vm_object(disks=[{"size": 1}])
    runtime = QemuRuntime()
    runtime.install(vm, vmdir)
    code = ("import json, sys, time; from pathlib import Path; "
            "import liveforge.vm.qmp as q; "
            "q.Qmp.__init__ = lambda *a, **k: time.sleep(600); "
            "from liveforge.vm.brands.qemu import QemuRuntime; "
            "QemuRuntime().start(json.loads(sys.argv[1]), Path(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(vm), str(vmdir)])
    deadline = time.monotonic() + 30
    while (qemu_pid(run_paths(vmdir)) is None or len(qemu_pids(vmdir)) != 1) \
            and time.monotonic() < deadline:
        time.sleep(0.05)  # until QEMU has daemonized
    assert runtime.state(vm, vmdir) == "running"  # a start is under way (its lock is held)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (stale,) = qemu_pids(vmdir)
    assert qmp.ask(run_paths(vmdir).qmp, "query-status")["status"] == "prelaunch"
    assert runtime.state(vm, vmdir) == "failed"
    runtime.start(vm, vmdir)
    (pid,) = qemu_pids(vmdir)
    assert pid != stale
    assert runtime.state(vm, vmdir) == "running"
    runtime.stop(vm, vmdir, timeout=0, force=True)


def test_every_disk_model_and_the_boot_order(vmdir: Path) -> None:
    disks: list[dict[str, object]] = [{"size": 4, "model": m} for m in
                                      ("virtio", "ide", "scsi", "ahci", "nvme")]
    disks[3]["boot"] = True
    disks.append({"size": 2, "model": "ide", "media": "cdrom"})
    vm = vm_object(disks=disks, boot="order=dc")
    runtime = started(vm, vmdir)
    blocks = runtime.info(vm, vmdir, ["block"])["block"]
    sizes = {b["device"]: b["inserted"]["image"]["virtual-size"] for b in blocks
             if "inserted" in b}
    assert sizes == {"disk0": 4 * MIB, "disk1": 4 * MIB, "disk2": 4 * MIB, "disk3": 4 * MIB,
                     "disk4": 4 * MIB, "disk5": 2 * MIB}
    (pid,) = qemu_pids(vmdir)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert [d.split(",")[0] for d in devices] == [
        "virtio-scsi-pci", "ahci", "virtio-blk-pci", "ide-hd", "scsi-hd", "ide-hd", "nvme",
        "ide-cd"]
    boot = {d.split("drive=")[1].split(",")[0]: d.split("bootindex=")[1]
            for d in devices if "bootindex=" in d}
    # order=dc: the cdrom, then the boot: true disk, then the others by index
    assert boot == {"disk5": "0", "disk3": "1", "disk0": "2", "disk1": "3", "disk2": "4",
                    "disk4": "5"}
    pci = runtime.info(vm, vmdir, ["pci"])["pci"][0]["devices"]
    classes = sorted(d["class_info"]["class"] for d in pci)
    # IDE, SATA (ahci), NVM (nvme), SCSI (virtio-scsi), and virtio-blk's
    assert {0x0101, 0x0106, 0x0108, 0x0100} <= set(classes)
    runtime.stop(vm, vmdir, timeout=0, force=True)


def test_vnc_port_any_none_and_info(vmdir: Path) -> None:
    vm = vm_object(uuid=str(uuidlib.uuid4()), disks=[{"size": 1}], vnc_port=0)
    runtime = started(vm, vmdir)
    vnc = runtime.info(vm, vmdir, ["vnc"])["vnc"]
    assert vnc["host"] == "127.0.0.1" and 5900 <= vnc["port"] < 6000
    assert vnc["display"] == vnc["port"] - 5900
    with socket.create_connection(("127.0.0.1", vnc["port"]), timeout=5) as conn:
        assert conn.recv(12).startswith(b"RFB 003.")
    everything = runtime.info(vm, vmdir, [])
    assert {"block", "status", "version", "vnc", "cpus", "kvm"} <= set(everything)
    assert everything["status"]["status"] == "running"
    with pytest.raises(QemuError, match="unknown info type"):
        runtime.info(vm, vmdir, ["floppies"])
    runtime.stop(vm, vmdir, timeout=0, force=True)
    vm2 = vm_object(disks=[{"size": 1}], vnc_port=-1)
    runtime.destroy(vm, vmdir)
    runtime = started(vm2, vmdir)
    assert runtime.info(vm2, vmdir, ["vnc"]) == {"vnc": {}}
    runtime.stop(vm2, vmdir, timeout=0, force=True)


def vnc_security_types(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        assert conn.recv(12) == b"RFB 003.008\n"
        conn.sendall(b"RFB 003.008\n")
        count = conn.recv(1)[0]
        return conn.recv(count)


def test_a_vnc_password_is_asked_for(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}], vnc_port=0, vnc_password="s3cret")
    runtime = started(vm, vmdir)
    port = runtime.info(vm, vmdir, ["vnc"])["vnc"]["port"]
    assert vnc_security_types(port) == b"\x02"  # VNC authentication only
    runtime.update(vm, vmdir, {"vnc_password": "other"})  # live: no error, still asked for
    assert vnc_security_types(port) == b"\x02"
    runtime.stop(vm, vmdir, timeout=0, force=True)
    vm2 = vm_object(disks=[{"size": 1}], vnc_port=0)
    runtime.destroy(vm, vmdir)
    runtime = started(vm2, vmdir)
    port = runtime.info(vm2, vmdir, ["vnc"])["vnc"]["port"]
    assert vnc_security_types(port) == b"\x01"  # none
    runtime.stop(vm2, vmdir, timeout=0, force=True)


def test_a_clean_stop_times_out_then_quits_and_reboot_resets(vmdir: Path) -> None:
    """A guest that ignores the ACPI power button (here: no OS at all) is ended after the
    timeout; while waiting the VM is stopping."""
    vm = vm_object(disks=[{"size": 1}])
    runtime = started(vm, vmdir)
    runtime.reboot(vm, vmdir)
    assert runtime.state(vm, vmdir) == "running"
    seen: list[str] = []
    from threading import Thread

    def watch() -> None:
        time.sleep(0.5)
        seen.append(runtime.state(vm, vmdir))

    watcher = Thread(target=watch)
    watcher.start()
    began = time.monotonic()
    runtime.stop(vm, vmdir, timeout=1.5, force=False)
    took = time.monotonic() - began
    watcher.join()
    assert seen == ["stopping"]
    assert 1.5 <= took < 8
    assert runtime.state(vm, vmdir) == "stopped"
    runtime.stop(vm, vmdir, timeout=1, force=False)  # stopping a stopped VM: nothing to do


def test_a_killed_qemu_shows_stopped_and_a_foreign_pid_is_not_trusted(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}])
    runtime = started(vm, vmdir)
    runtime.kill(vm, vmdir, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while qemu_pids(vmdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.state(vm, vmdir) == "stopped"  # its pid file is still there
    run_paths(vmdir).pid.write_text(f"{os.getpid()}\n")  # a live process, not this VM's QEMU
    assert runtime.state(vm, vmdir) == "stopped"
    with pytest.raises(QemuError, match="is not running"):
        runtime.kill(vm, vmdir, signal.SIGTERM)
    runtime.start(vm, vmdir)  # starts again over what the dead one left
    assert runtime.state(vm, vmdir) == "running"
    runtime.kill(vm, vmdir, signal.SIGTERM)  # QEMU ends cleanly on SIGTERM
    deadline = time.monotonic() + 10
    while runtime.state(vm, vmdir) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.state(vm, vmdir) == "stopped"


@pytest.mark.slow
def test_a_frozen_qemu_is_killed_by_a_forced_stop(vmdir: Path) -> None:
    """QEMU stopped by SIGSTOP answers no QMP: the stop gives up on ``quit`` and SIGKILLs it."""
    vm = vm_object(disks=[{"size": 1}])
    runtime = started(vm, vmdir)
    (pid,) = qemu_pids(vmdir)
    os.kill(pid, signal.SIGSTOP)
    assert runtime.state(vm, vmdir) == "running"  # the process is there; QMP is silent
    began = time.monotonic()
    runtime.stop(vm, vmdir, timeout=0, force=True)
    assert time.monotonic() - began < 20
    assert qemu_pids(vmdir) == []
    assert runtime.state(vm, vmdir) == "stopped"


def test_update_grows_a_disk_live_and_stopped_and_adds_one(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 4}])
    runtime = started(vm, vmdir)
    vm["disks"][0]["size"] = 6  # type: ignore[index]
    runtime.update(vm, vmdir, {"disks": vm["disks"]})
    blocks = runtime.info(vm, vmdir, ["block"])["block"]
    assert blocks[0]["inserted"]["image"]["virtual-size"] == 6 * MIB
    runtime.stop(vm, vmdir, timeout=0, force=True)
    vm["disks"][0]["size"] = 9  # type: ignore[index]
    vm["disks"].append({"size": 3})  # type: ignore[union-attr]
    runtime.update(vm, vmdir, {"disks": vm["disks"]})
    sizes = [json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(p)],
                                       capture_output=True, check=True).stdout)["virtual-size"]
             for p in sorted((vmdir / "disks").iterdir())]
    assert sizes == [9 * MIB, 3 * MIB]
    assert vm["disks"][1]["path"] == str(vmdir / "disks/disk1.qcow2")  # type: ignore[index]
    vm["disks"][0]["size"] = 2  # type: ignore[index]
    with pytest.raises(QemuError, match=r"disks\.0\.size: 2 MiB would shrink the disk"):
        runtime.update(vm, vmdir, {"disks": vm["disks"]})


def test_a_nic_whose_tag_names_no_bridge_fails_the_start(vmdir: Path) -> None:
    """As a container's: validation refuses such a tag, so only a nic-tag file changed since
    gets here."""
    vm = vm_object(disks=[{"size": 1}], nics=[{"nic_tag": "admin", "mac": "52:54:00:aa:bb:cc"}],
                   qemu_extra_opts="-usb")
    runtime = QemuRuntime(warn=Warnings())
    runtime.install(vm, vmdir)
    with pytest.raises(QemuError, match=r"nics\.0\.nic_tag: 'admin' is not a nic tag of "
                                        r"/nonexistent/nictags\.json"):
        runtime.start(vm, vmdir)
    assert runtime.state(vm, vmdir) == "failed"
    assert qemu_pids(vmdir) == []


def test_a_nic_is_a_tap_on_its_tags_bridge(vmdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = f"lfq{os.getpid() % 100000}"
    tags = vmdir / "nictags.json"
    tags.write_text(json.dumps({"admin": bridge}))
    monkeypatch.setenv("VMADM_NICTAGS", str(tags))
    vm = vm_object(disks=[{"size": 1}], nics=[{"nic_tag": "admin", "mac": "52:54:00:aa:bb:cd",
                                               "model": "e1000"}])
    try:
        runtime = started(vm, vmdir)
        tap = "t" + str(vm["uuid"]).replace("-", "")[:8] + "i0"
        master = Path(f"/sys/class/net/{tap}/master").resolve().name
        assert master == bridge
        assert Path(f"/sys/class/net/{tap}/operstate").read_text().strip() in ("up", "unknown")
        pci = json.dumps(runtime.info(vm, vmdir, ["pci"]))
        assert "Ethernet controller" in pci
        runtime.stop(vm, vmdir, timeout=0, force=True)
        assert not Path(f"/sys/class/net/{tap}").exists()  # the tap went with QEMU
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


# -- failures --------------------------------------------------------------------------------

def test_qemu_dying_at_start_fails_the_vm_with_its_reason(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}])
    runtime = QemuRuntime(warn=Warnings())
    runtime.install(vm, vmdir)
    (vmdir / "disks/disk0.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 100)  # a broken qcow2
    with pytest.raises(QemuError, match=rf"VM {vm['uuid']}: QEMU did not start: .*disk0"):
        runtime.start(vm, vmdir)
    assert runtime.state(vm, vmdir) == "failed"
    assert "QEMU did not start" in run_paths(vmdir).failed.read_text()
    assert qemu_pids(vmdir) == []
    assert sorted(p.name for p in run_paths(vmdir).dir.iterdir()) == ["console.log", "failed"]


def test_a_taken_vnc_port_fails_the_start(vmdir: Path) -> None:
    with socket.socket() as taken:
        for port in range(5950, 6000):
            try:
                taken.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        taken.listen()
        vm = vm_object(disks=[{"size": 1}], vnc_port=port)
        runtime = QemuRuntime(warn=Warnings())
        runtime.install(vm, vmdir)
        with pytest.raises(QemuError, match="QEMU did not start: .*(in use|vnc)"):
            runtime.start(vm, vmdir)
        assert runtime.state(vm, vmdir) == "failed"
        assert qemu_pids(vmdir) == []


def test_uefi_without_ovmf_fails_clearly(vmdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMADM_OVMF_DIR", str(vmdir / "no-ovmf"))
    vm = vm_object(disks=[{"size": 1}], bootrom="uefi")
    runtime = QemuRuntime(warn=Warnings())
    runtime.install(vm, vmdir)
    with pytest.raises(QemuError, match=r"bootrom uefi: no OVMF firmware in .*no-ovmf .*"
                                        r"apt-get install ovmf"):
        runtime.start(vm, vmdir)
    assert runtime.state(vm, vmdir) == "failed"
    assert qemu_pids(vmdir) == []
    assert not (vmdir / "firmware").exists()


def test_uefi_gets_a_private_variable_store(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}], bootrom="uefi")
    runtime = started(vm, vmdir)
    (vars_file,) = (vmdir / "firmware").iterdir()
    assert vars_file.read_bytes() == Path("/usr/share/OVMF", vars_file.name).read_bytes()
    (pid,) = qemu_pids(vmdir)
    assert f"file={vars_file}" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    runtime.stop(vm, vmdir, timeout=0, force=True)
    runtime.destroy(vm, vmdir)
    assert sorted(p.name for p in vmdir.iterdir()) == []


@pytest.mark.parametrize(("props", "message"), [
    ({"vnc_port": 80}, r"vnc_port: 80 is not -1 \(none\), 0 \(any free port\) or a port from"),
    ({"boot": "order=cx"}, r"boot: 'order=cx': the order is letters c"),
    ({"boot": "menu=on"}, r"boot: 'menu=on': 'menu' is not order= or once="),
    ({"boot": "order=c,once=dd"}, r"boot: 'order=c,once=dd': once= is letters c"),
    ({"boot": "order=c,order=d"}, r"'order' is not order= or once= \(each at most once\)"),
    ({"qemu_extra_opts": "-name 'x"}, r"qemu_extra_opts: \"-name 'x\": No closing quotation"),
    ({"com1": "tty"}, r"com1: 'tty' is not /dev/zconsole or an absolute path"),
    ({"com2": "/tmp/../../etc/x"}, r"com2: '/tmp/../../etc/x' is not /dev/zconsole or an"),
    ({"com2": "/dev/zconsole"}, r"com2: '/dev/zconsole' is com1's too"),
    ({"bootrom": "coreboot"}, r"bootrom: 'coreboot' is not bios or uefi"),
    ({"ram": 0}, r"ram: 0 is not a positive integer"),
    ({"vga": "hercules"}, r"vga: 'hercules' is not one of std, cirrus"),
    ({"nics": [{"nic_tag": "x", "model": "ne2k"}]}, r"nics\.0\.model: 'ne2k' is not one of"),
])
def test_bad_properties_fail_the_start_before_qemu_runs(props: dict[str, object], message: str,
                                                       vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}], **props)
    runtime = QemuRuntime(warn=Warnings())
    runtime.install(vm, vmdir)
    with pytest.raises(QemuError, match=message):
        runtime.start(vm, vmdir)
    assert runtime.state(vm, vmdir) == "failed"
    assert qemu_pids(vmdir) == []


def test_a_socket_path_too_long_is_refused(vmdir: Path) -> None:
    deep = vmdir / ("d" * 100)
    deep.mkdir()
    vm = vm_object(disks=[{"size": 1}])
    runtime = QemuRuntime(warn=Warnings())
    runtime.install(vm, deep)
    with pytest.raises(QemuError, match="longer than a unix socket's path may be"):
        runtime.start(vm, deep)


def test_a_start_of_an_uninstalled_vm_names_the_missing_disk(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}])
    with pytest.raises(QemuError, match=r"disks\.0: .*disk0\.qcow2 is missing"):
        QemuRuntime().start(vm, vmdir)


# -- the accelerator and QMP -----------------------------------------------------------------

def test_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe firmware runs under TCG; on a PVM host (this machine's) KVM is not used."""
    assert probe("tcg") is True
    if Path("/sys/module/kvm_pvm").exists():
        assert kvm_works() is False
        assert accelerator() == "tcg"
    monkeypatch.setenv("VMADM_QEMU_ACCEL", "tcg")
    assert accelerator() == "tcg"
    monkeypatch.setenv("VMADM_QEMU_ACCEL", "fast")
    with pytest.raises(QemuError, match="VMADM_QEMU_ACCEL='fast': not kvm, tcg or auto"):
        accelerator()


def test_qmp_errors(vmdir: Path) -> None:
    vm = vm_object(disks=[{"size": 1}])
    started(vm, vmdir)
    with qmp.Qmp(run_paths(vmdir).qmp) as monitor:
        with pytest.raises(qmp.QmpError) as caught:
            monitor.command("no-such-command")
        assert caught.value.error_class == "CommandNotFound"
        assert monitor.command("query-name") == {"name": vm["uuid"]}
    not_qmp = vmdir / "not-qmp.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(not_qmp))
        server.listen()
        with pytest.raises(qmp.QmpError, match="no answer from QMP"):
            qmp.Qmp(not_qmp, timeout=0.5)
    with pytest.raises(qmp.QmpError, match="cannot talk to QMP"):
        qmp.Qmp(vmdir / "absent.sock")


def test_the_cpu_type_host_needs_kvm(vmdir: Path) -> None:
    from liveforge.vm.brands.qemu_argv import argv

    vm = vm_object(brand="kvm", cpu_type="host", vcpus=2, ram=300)
    tcg = argv(vm, vmdir, [], [], "tcg")
    assert tcg[tcg.index("-cpu") + 1] == "max"
    assert tcg[tcg.index("-machine") + 1] == "pc,accel=tcg"
    assert (tcg[tcg.index("-m") + 1], tcg[tcg.index("-smp") + 1]) == ("300", "2")
    kvm = argv(vm, vmdir, [], [], "kvm")
    assert kvm[kvm.index("-cpu") + 1] == "host"
    assert argv(vm_object(), vmdir, [], [], "tcg")[tcg.index("-cpu") + 1] == "qemu64"
    assert tcg[tcg.index("-vga") + 1] == "std"
    cirrus = argv(vm_object(vga="cirrus"), vmdir, [], [], "tcg")
    assert cirrus[cirrus.index("-vga") + 1] == "cirrus"


def test_a_comma_in_the_vm_directory(vmdir: Path) -> None:
    """QEMU's options are comma-separated: a path's comma is doubled, not a new option."""
    odd = vmdir / "a,file=x"
    odd.mkdir()
    vm = vm_object(disks=[{"size": 1}])
    runtime = started(vm, odd)
    assert runtime.state(vm, odd) == "running"
    assert runtime.info(vm, odd, ["block"])["block"][0]["inserted"]["file"] == \
        str(odd / "disks/disk0.qcow2")
    runtime.stop(vm, odd, timeout=0, force=True)
    assert runtime.state(vm, odd) == "stopped"
