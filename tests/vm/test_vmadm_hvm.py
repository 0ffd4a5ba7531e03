"""A bhyve VM's life through the vmadm command line (QEMU, TCG): create (autoboot) -> list ->
info -> stop -F -> start -> delete, its image held while it exists. The guest's disk boots
nothing here; test_qemu_boot.py boots one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from liveforge.img.store import ImageStore
from tests.support.hvm import MIB, install_zvol, qemu_pids

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def hvm_roots() -> Iterator[tuple[Path, Path]]:
    """(VMADM_ROOT, IMGADM_ROOT), short paths: a VM's unix sockets live under the first."""
    base = Path(tempfile.mkdtemp(prefix="lfvm.", dir="/tmp"))
    (base / "zones").mkdir()
    try:
        yield base / "zones", base / "img"
    finally:
        for pid in qemu_pids(base / "zones"):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def vmadm(hvm_roots: tuple[Path, Path]) -> Run:
    env = dict(os.environ, VMADM_ROOT=str(hvm_roots[0]), IMGADM_ROOT=str(hvm_roots[1]),
               VMADM_NICTAGS=str(hvm_roots[0].parent / "nictags.json"))

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "liveforge.vm.cli", *args], input=input,
                              capture_output=True, text=True, env=env, timeout=120)
    return run


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
    assert "nics.0: nic tag 'admin' names no bridge" in proc.stderr
    assert vmadm("list", "-p", "-o", "uuid,type,ram,state,alias").stdout == \
        f"{uuid}:BHYV:128:running:hvm1\n"
    assert ImageStore(img_root).holders(image) == [uuid]
    assert len(qemu_pids(vm_root / uuid)) == 1

    info = json.loads(vmadm("info", uuid, "status", "vnc").stdout)
    assert info["status"]["status"] == "running"
    assert info["vnc"]["host"] == "127.0.0.1" and 5900 <= info["vnc"]["port"] < 6000

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
