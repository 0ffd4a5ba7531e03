"""Fixtures of the vmadm tests: vmadm and json in a subprocess, on a VM root and an image
store of their own (installed images written as the store's records and layers); and
container VMs for real, as root: a busybox image really installed, VMs made and torn down by
the runtime, and a check after the whole run that nothing is left (mounts, cgroups, veths,
bridges, processes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from liveforge.vm import cgroups, net
from liveforge.vm.brands.container import ContainerRuntime
from liveforge.vm.brands.pidfile import init_pid
from liveforge.vm.store import VmStore
from tests.support.containers import busybox_root
from tests.support.containers import install_image as install_tree_image

ZONE_IMAGE = "11111111-1111-4111-8111-111111111111"
LX_IMAGE = "22222222-2222-4222-8222-222222222222"
ZVOL_IMAGE = "33333333-3333-4333-8333-333333333333"
ZVOL_SIZE = 10240

Run = Callable[..., subprocess.CompletedProcess[str]]


def install_image(img_root: Path, uuid: str, type: str, **extra: Any) -> None:
    """An installed image as imgadm's store keeps it: its record and its layer (a tree
    image's directory, a zvol's disk file)."""
    manifest = {"v": 2, "uuid": uuid, "name": f"test-{type}", "version": "1.0", "type": type,
                "os": "linux", "state": "active", **extra,
                "files": [{"sha1": "0" * 40, "size": 1, "compression": "none"}]}
    db = img_root / "var" / "imgadm" / "images"
    db.mkdir(parents=True, exist_ok=True)
    (db / f"zones-{uuid}.json").write_text(json.dumps(
        {"manifest": manifest, "zpool": "zones", "source": None}))
    pool = img_root / "zones"
    pool.mkdir(parents=True, exist_ok=True)
    if type == "zvol":
        (pool / f"{uuid}.img").write_bytes(b"\0" * 512)
    else:
        (pool / uuid / "etc").mkdir(parents=True, exist_ok=True)


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """(VMADM_ROOT, IMGADM_ROOT) with three images installed: a zone-dataset, an lx-dataset
    and a zvol."""
    vm_root, img_root = tmp_path / "zones", tmp_path / "img"
    vm_root.mkdir()
    install_image(img_root, ZONE_IMAGE, "zone-dataset")
    install_image(img_root, LX_IMAGE, "lx-dataset")
    install_image(img_root, ZVOL_IMAGE, "zvol", image_size=ZVOL_SIZE)
    return vm_root, img_root


def _runner(module: str, env: dict[str, str]) -> Run:
    def run(*args: str, input: str | None = None, check: bool = False
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", module, *args], input=input,
                              capture_output=True, text=True, env=env, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc
    return run


# the nic tags of the ``vmadm`` fixture's host (bridges no test of it starts a VM on)
NIC_TAGS = {"admin": "lfadmin0", "ext": "lfext0", "a": "lfa0", "b": "lfb0"}


def nic_tags_file(roots: tuple[Path, Path]) -> Path:
    """The nic-tag file of NIC_TAGS beside the roots."""
    nictags = roots[0].parent / "nictags.json"
    nictags.write_text(json.dumps(NIC_TAGS))
    return nictags


@pytest.fixture
def vmadm(roots: tuple[Path, Path]) -> Run:
    """``vmadm ARGS`` (``python -m liveforge.vm.cli``) on the test's roots, with the nic tags
    NIC_TAGS."""
    nictags = nic_tags_file(roots)
    env = dict(os.environ, VMADM_ROOT=str(roots[0]), IMGADM_ROOT=str(roots[1]),
               VMADM_NICTAGS=str(nictags))
    return _runner("liveforge.vm.cli", env)


# the nic tag of the ``hvm_vmadm`` fixture's host: a bridge of this run
HVM_BRIDGE = f"lfh{os.getpid() % 100000}"


@pytest.fixture
def hvm_roots() -> Iterator[tuple[Path, Path]]:
    """(VMADM_ROOT, IMGADM_ROOT) for HVM VMs: short paths (a VM's unix sockets live under the
    first), a nic-tag file beside them naming HVM_BRIDGE as ``admin``; afterwards any QEMU
    left there is killed, and the bridge removed."""
    import shutil
    import tempfile

    from tests.support.hvm import qemu_pids

    base = Path(tempfile.mkdtemp(prefix="lfvm.", dir="/tmp"))
    (base / "zones").mkdir()
    (base / "nictags.json").write_text(json.dumps({"admin": HVM_BRIDGE}))
    try:
        yield base / "zones", base / "img"
    finally:
        for pid in qemu_pids(base / "zones"):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["ip", "link", "del", HVM_BRIDGE], capture_output=True)


@pytest.fixture
def hvm_vmadm(hvm_roots: tuple[Path, Path]) -> Run:
    """``vmadm ARGS`` on the ``hvm_roots``, in the environment of the moment of the call (a
    test may change it between calls)."""
    def run(*args: str, input: str | None = None, check: bool = False
            ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, VMADM_ROOT=str(hvm_roots[0]), IMGADM_ROOT=str(hvm_roots[1]),
                   VMADM_NICTAGS=str(hvm_roots[0].parent / "nictags.json"))
        return _runner("liveforge.vm.cli", env)(*args, input=input, check=check)
    return run


@pytest.fixture
def jsoncheck() -> Run:
    """``json ARGS`` (``python -m liveforge.vm.jsoncheck``)."""
    return _runner("liveforge.vm.jsoncheck", dict(os.environ))


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
    install_tree_image(imgroot, tree, IMAGE_UUID, base / "files")
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


def run_vmadm(*args: str, payload: dict[str, Any] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """``vmadm ARGS`` (the payload on stdin) in the environment of :func:`vm_env`."""
    return subprocess.run([sys.executable, "-m", "liveforge.vm.cli", *args],
                          input=json.dumps(payload) if payload is not None else None,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def created(vm_env: dict[str, Any]) -> Iterator[list[str]]:
    """The uuids a test's ``vmadm create`` made; whatever is left of them goes afterwards,
    leaving nothing (directory, cgroups, host veth ends)."""
    uuids: list[str] = []
    yield uuids
    store = VmStore(Path(vm_env["vmroot"]))
    for uuid in uuids:
        if store.exists(uuid):
            run_vmadm("delete", uuid)
        if store.vmdir(uuid).exists():  # delete failed: the runtime's destroy at least
            ContainerRuntime().destroy({"uuid": uuid}, store.vmdir(uuid))
        assert not store.vmdir(uuid).exists()
        assert not any(p.exists() for p in cgroups.Cgroup(uuid).paths())
        assert net.host_ends(uuid) == []


def create_vm(created: list[str], **props: Any) -> str:
    """``vmadm create`` of a joyent VM on the busybox image (``props`` added); its uuid."""
    proc = run_vmadm("create", payload={"brand": "joyent", "image_uuid": IMAGE_UUID, **props})
    found = re.search(r"Successfully created VM ([0-9a-f-]{36})", proc.stderr)
    assert proc.returncode == 0 and found, proc.stderr
    created.append(found.group(1))
    return found.group(1)


def vm_state(uuid: str) -> str:
    """The VM's ``state`` as ``vmadm get`` shows it."""
    return str(json.loads(run_vmadm("get", uuid).stdout)["state"])
