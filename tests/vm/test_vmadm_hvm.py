"""A bhyve VM's life through the vmadm command line (QEMU, TCG): create (autoboot) -> list ->
info -> reboot -> stop -F -> start -> delete, its image held while it exists; its disks' paths
in its config, disks added, grown and removed by update; a start that fails (no OVMF) retried
once fixed. The guest's disk boots nothing here; test_qemu_boot.py boots one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from liveforge.img.store import ImageStore
from tests.support.hvm import MIB, install_zvol, qemu_pids
from tests.vm.conftest import HVM_BRIDGE

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def vmadm(hvm_vmadm: Run) -> Run:
    return hvm_vmadm


def test_a_bhyve_vm_from_create_to_delete(vmadm: Run, hvm_roots: tuple[Path, Path]) -> None:
    vm_root, img_root = hvm_roots
    disk = img_root.parent / "disk.raw"
    with open(disk, "wb") as handle:
        handle.truncate(8 * MIB)
    image = install_zvol(img_root, disk)
    payload = {"brand": "bhyve", "alias": "hvm1", "ram": 128, "vnc_port": 0,
               "disks": [{"image_uuid": image, "boot": True, "model": "virtio"},
                         {"size": 16, "model": "nvme"}],
               "nics": [{"nic_tag": "admin", "ips": ["10.0.0.5/24"]}]}
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"^Successfully created VM ([0-9a-f-]{36})$", proc.stderr, re.M)
    assert found is not None, proc.stderr
    uuid = found.group(1)
    assert vmadm("list", "-p", "-o", "uuid,type,ram,state,alias").stdout == \
        f"{uuid}:BHYV:128:running:hvm1\n"
    assert ImageStore(img_root).holders(image) == [uuid]
    assert len(qemu_pids(vm_root / uuid)) == 1

    info = json.loads(vmadm("info", uuid, "status", "vnc").stdout)
    assert info["status"]["status"] == "running"
    assert info["vnc"]["host"] == "127.0.0.1" and 5900 <= info["vnc"]["port"] < 6000
    tap = "t" + uuid.replace("-", "")[:8] + "i0"
    assert Path(f"/sys/class/net/{tap}/master").resolve().name == HVM_BRIDGE

    saved = json.loads((vm_root / uuid / "config.json").read_text())
    assert [d["path"] for d in saved["disks"]] == [
        str(vm_root / uuid / "disks" / f"disk{i}.qcow2") for i in range(2)]

    pid = qemu_pids(vm_root / uuid)
    proc = vmadm("reboot", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully completed reboot for VM {uuid}\n")
    assert qemu_pids(vm_root / uuid) == pid  # a reset machine, the same QEMU
    assert vmadm("list", "-p", "-o", "state").stdout == "running\n"

    proc = vmadm("stop", uuid, "-F")
    assert (proc.returncode, proc.stderr) == (0, f"Successfully completed stop for VM {uuid}\n")
    assert vmadm("list", "-p", "-o", "state").stdout == "stopped\n"
    assert qemu_pids(vm_root / uuid) == []
    proc = vmadm("info", uuid)
    assert proc.returncode == 1 and "not 'running' (currently: stopped)" in proc.stderr

    proc = vmadm("start", uuid)
    assert proc.returncode == 0 and f"Successfully started VM {uuid}" in proc.stderr
    assert vmadm("list", "-p", "-o", "state").stdout == "running\n"

    proc = vmadm("delete", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully deleted VM {uuid}\n")
    assert qemu_pids(vm_root / uuid) == []
    assert list(vm_root.iterdir()) == []
    assert ImageStore(img_root).holders(image) == []


def test_a_create_whose_start_fails_leaves_nothing(hvm_roots: tuple[Path, Path]) -> None:
    vm_root, img_root = hvm_roots
    disk = img_root.parent / "disk.raw"
    with open(disk, "wb") as handle:
        handle.truncate(MIB)
    image = install_zvol(img_root, disk)
    payload = {"brand": "bhyve", "ram": 128, "bootrom": "uefi", "disks": [{"image_uuid": image}]}
    env_dir = vm_root.parent / "no-ovmf"
    proc = subprocess.run([sys.executable, "-m", "liveforge.vm.cli", "create"],
                          input=json.dumps(payload), capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, VMADM_ROOT=str(vm_root),
                                   IMGADM_ROOT=str(img_root), VMADM_OVMF_DIR=str(env_dir)))
    assert proc.returncode == 1
    assert "bootrom uefi: no OVMF firmware in" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert list(vm_root.iterdir()) == []
    assert ImageStore(img_root).holders(image) == []


def disk_sizes(vmdir: Path) -> dict[str, int]:
    return {p.name: json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(p)], capture_output=True,
        check=True).stdout)["virtual-size"] // MIB for p in sorted((vmdir / "disks").iterdir())}


def test_update_adds_grows_and_removes_disks(vmadm: Run, hvm_roots: tuple[Path, Path]) -> None:
    vm_root, _ = hvm_roots
    payload = {"brand": "bhyve", "ram": 128, "autoboot": False,
               "disks": [{"size": 4}, {"size": 5}, {"size": 6}]}
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    uuid = proc.stderr.split()[-1]
    vmdir = vm_root / uuid

    def paths() -> list[str]:
        return [d["path"] for d in json.loads((vmdir / "config.json").read_text())["disks"]]

    assert paths() == [str(vmdir / f"disks/disk{i}.qcow2") for i in range(3)]
    grown = {"update_disks": [{"path": paths()[0], "size": 8}],
             "remove_disks": [paths()[1]], "add_disks": [{"size": 3, "model": "nvme"}]}
    proc = vmadm("update", uuid, input=json.dumps(grown))
    assert (proc.returncode, proc.stderr) == (0, f"Successfully updated VM {uuid}\n")
    assert paths() == [str(vmdir / f"disks/disk{i}.qcow2") for i in range(3)]
    # disk 2 (6 MiB) is disk 1 now, its file renamed with it
    assert disk_sizes(vmdir) == {"disk0.qcow2": 8, "disk1.qcow2": 6, "disk2.qcow2": 3}
    disks = json.loads(vmadm("get", uuid).stdout)["disks"]
    assert [(d.get("size"), d.get("model")) for d in disks] == [(8, "virtio"), (6, "virtio"),
                                                                (3, "nvme")]

    assert vmadm("start", uuid).returncode == 0
    proc = vmadm("update", uuid, input=json.dumps({"remove_disks": [paths()[2]]}))
    assert proc.returncode == 1
    assert "disks are removed while the VM is stopped" in proc.stderr
    assert len(paths()) == 3 and len(disk_sizes(vmdir)) == 3  # refused: nothing changed
    proc = vmadm("update", uuid, input=json.dumps({"update_disks": [{"path": paths()[2],
                                                                     "size": 2}]}))
    assert proc.returncode == 1 and "would shrink the disk" in proc.stderr
    assert json.loads((vmdir / "config.json").read_text())["disks"][2]["size"] == 3
    proc = vmadm("update", uuid, input=json.dumps({"update_disks": [{"path": paths()[1],
                                                                     "size": 9}]}))
    assert proc.returncode == 0, proc.stderr  # a virtio disk grows live (QEMU's nvme cannot)
    blocks = json.loads(vmadm("info", uuid, "block").stdout)["block"]
    assert blocks[1]["inserted"]["image"]["virtual-size"] == 9 * MIB
    assert vmadm("delete", uuid).returncode == 0
    assert list(vm_root.iterdir()) == []


def test_a_failed_start_is_retried_once_fixed(vmadm: Run, hvm_roots: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    vm_root, _ = hvm_roots
    payload = {"brand": "bhyve", "ram": 128, "bootrom": "uefi", "autoboot": False,
               "disks": [{"size": 1}]}
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    uuid = proc.stderr.split()[-1]
    monkeypatch.setenv("VMADM_OVMF_DIR", str(vm_root.parent / "no-ovmf"))
    proc = vmadm("start", uuid)
    assert proc.returncode == 1 and "bootrom uefi: no OVMF firmware in" in proc.stderr
    assert vmadm("list", "-p", "-o", "state").stdout == "failed\n"
    proc = vmadm("stop", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully completed stop for VM {uuid}\n")
    assert vmadm("list", "-p", "-o", "state").stdout == "stopped\n"
    assert vmadm("start", uuid).returncode == 1
    assert vmadm("list", "-p", "-o", "state").stdout == "failed\n"
    monkeypatch.delenv("VMADM_OVMF_DIR")  # the firmware is there again
    proc = vmadm("start", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully started VM {uuid}\n")
    assert vmadm("list", "-p", "-o", "state").stdout == "running\n"
    assert len(qemu_pids(vm_root / uuid)) == 1
    assert vmadm("delete", uuid).returncode == 0
    assert qemu_pids(vm_root / uuid) == [] and list(vm_root.iterdir()) == []


def test_an_unknown_nic_tag_is_refused_for_hvm_too(vmadm: Run,
                                                   hvm_roots: tuple[Path, Path]) -> None:
    payload = {"brand": "kvm", "disks": [{"size": 1}], "nics": [{"nic_tag": "external"}]}
    proc = vmadm("validate", "create", input=json.dumps(payload))
    assert proc.returncode == 1 and json.loads(proc.stderr)["bad_values"] == ["nics.*.nic_tag"]
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 1
    assert proc.stderr.startswith('Invalid nic tag "external" (the nic tags are those of ')
    assert list(hvm_roots[0].iterdir()) == []
