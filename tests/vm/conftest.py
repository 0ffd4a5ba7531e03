"""Container VMs for real, as root: a busybox image, VMs made and torn down by the runtime,
and a check after the whole run that nothing is left (mounts, cgroups, veths, bridges,
processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from liveforge.vm import cgroups, net
from liveforge.vm.brands.container import ContainerRuntime, init_pid
from tests.support.containers import busybox_root, install_image

IMAGE_UUID = "0b1e5a1e-0000-4000-8000-00000000b0b0"

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def _mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


@pytest.fixture(scope="session")
def vm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """IMGADM_ROOT with the busybox image installed, VMADM_ROOT, a nic-tag file naming a
    bridge of this run; afterwards: nothing of the run is left anywhere."""
    if os.geteuid() != 0:
        pytest.skip("containers need root")
    base = tmp_path_factory.mktemp("vmenv")
    imgroot, vmroot = base / "img", base / "zones"
    tree = busybox_root(base / "tree")
    install_image(imgroot, tree, IMAGE_UUID, base / "files")
    vmroot.mkdir()
    bridge = f"lfbr{os.getpid() % 100000}"
    nictags = base / "nictags.json"
    nictags.write_text(json.dumps({"test": bridge, "other": bridge + "x"}))
    saved = {k: os.environ.get(k) for k in ("IMGADM_ROOT", "VMADM_ROOT", "VMADM_NICTAGS")}
    os.environ.update(IMGADM_ROOT=str(imgroot), VMADM_ROOT=str(vmroot),
                      VMADM_NICTAGS=str(nictags))
    env = {"imgroot": imgroot, "vmroot": vmroot, "bridge": bridge, "uuids": [], "tree": tree,
           "base": base}
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for name in (bridge, bridge + "x"):
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    assert _mounts_under(base) == []
    cg = [p for u in env["uuids"] for p in cgroups.Cgroup(u).paths() if p.exists()]
    assert cg == []
    assert [n for u in env["uuids"] for n in net.host_ends(u)] == []
    assert not any((net.SYS_NET / n).exists() for n in (bridge, bridge + "x"))


class Vms:
    """Makes VMs (config.json, install, start) and destroys every one it made."""

    def __init__(self, env: dict[str, Any]):
        self.env = env
        self.rt = ContainerRuntime()
        self.made: list[tuple[dict[str, Any], Path]] = []

    def vmdir(self, vm: dict[str, Any]) -> Path:
        return Path(self.env["vmroot"]) / vm["uuid"]

    def create(self, start: bool = True, **props: Any) -> dict[str, Any]:
        vm = {"uuid": str(uuidlib.uuid4()), "brand": "joyent", "image_uuid": IMAGE_UUID,
              "zpool": "zones", **props}
        vmdir = self.vmdir(vm)
        vmdir.mkdir()
        (vmdir / "config.json").write_text(json.dumps(vm))
        self.env["uuids"].append(vm["uuid"])
        self.made.append((vm, vmdir))
        self.rt.install(vm, vmdir)
        if start:
            self.rt.start(vm, vmdir)
        return vm

    def pid(self, vm: dict[str, Any]) -> int:
        pid = init_pid(self.vmdir(vm))
        assert pid is not None
        return pid

    def destroy_all(self) -> None:
        for vm, vmdir in self.made:
            pid = init_pid(vmdir)
            try:
                self.rt.destroy(vm, vmdir)
            finally:
                if pid is not None and init_pid(vmdir) == pid:
                    os.kill(pid, signal.SIGKILL)
            assert _mounts_under(vmdir) == []
            assert not any(p.exists() for p in cgroups.Cgroup(vm["uuid"]).paths())
            assert net.host_ends(vm["uuid"]) == []


@pytest.fixture
def vms(vm_env: dict[str, Any]) -> Iterator[Vms]:
    made = Vms(vm_env)
    yield made
    made.destroy_all()


def zlogin(vm: dict[str, Any] | str, *words: str,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    uuid = vm if isinstance(vm, str) else vm["uuid"]
    return subprocess.run([sys.executable, "-m", "liveforge.vm.zlogin", uuid, *words],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def login() -> Callable[..., subprocess.CompletedProcess[str]]:
    return zlogin
