"""The whole way, for real as root, each tool in its own process: the project's ``imgapi`` on
loopback serves a busybox image; ``imgadm sources -a`` and ``imgadm import`` install it;
``vmadm validate create -f`` and ``vmadm create -f`` make a joyent VM of it, which runs; inside,
through ``zlogin``: its hostname, a process table of its own, its resolv.conf, its metadata; then
``vmadm stop`` and ``vmadm delete``, and the image stays installed, held by nobody."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveforge.img.store import ImageStore
from liveforge.vm import cgroups, net
from tests.support.containers import busybox_root
from tests.support.images import write_image
from tests.support.imgapi import imgapi, put_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

IMAGE = "e2e0b0b0-5e1f-4a11-8d0e-00000000e2e0"


def mounts_under(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of the three commands: an image store, a VM root and a nic-tag file
    of their own (its bridge removed afterwards)."""
    bridge = f"lfe2e{os.getpid() % 10000}"
    (tmp_path / "nictags.json").write_text(json.dumps({"admin": bridge}))
    (tmp_path / "zones").mkdir()
    env = dict(os.environ, IMGADM_ROOT=str(tmp_path / "img"), VMADM_ROOT=str(tmp_path / "zones"),
               VMADM_NICTAGS=str(tmp_path / "nictags.json"))
    try:
        yield env
    finally:
        for uuid in os.listdir(tmp_path / "zones"):
            subprocess.run([sys.executable, "-m", "liveforge.vm.cli", "delete", uuid],
                           env=env, capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        assert mounts_under(tmp_path) == []


def run(env: dict[str, str], module: str, *args: str,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], input=input, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_create_login_stop_delete(host: dict[str, str], tmp_path: Path) -> None:
    tree = busybox_root(tmp_path / "tree")
    (tree / "etc" / "motd").write_text("served by imgapi\n")
    _, file, manifest = write_image(tmp_path / "built", tree, "busybox", uuid=IMAGE)
    put_image(tmp_path / "served", manifest, file, "gzip")

    with imgapi(tmp_path / "served") as server:
        proc = run(host, "liveforge.img.cli", "sources", "-a", server.url)
        assert proc.returncode == 0, proc.stderr
        proc = run(host, "liveforge.img.cli", "import", "-q", IMAGE)
        assert proc.returncode == 0, proc.stderr
        assert f"Imported image {IMAGE} (busybox@1.0.0)" in proc.stdout + proc.stderr
    # the server is gone: what follows uses the installed image only

    payload = tmp_path / "web.json"
    payload.write_text(json.dumps({
        "brand": "joyent", "image_uuid": IMAGE, "alias": "web", "hostname": "web01",
        "max_physical_memory": 128, "resolvers": ["192.0.2.53"],
        "customer_metadata": {"role": "e2e"},
        "nics": [{"nic_tag": "admin", "ips": ["10.86.0.5/24"]}]}))
    proc = run(host, "liveforge.vm.cli", "validate", "create", "-f", str(payload))
    assert (proc.returncode, proc.stderr) == (
        0, "VALID 'create' payload for joyent brand VMs.\n")
    proc = run(host, "liveforge.vm.cli", "create", "-f", str(payload))
    assert proc.returncode == 0, proc.stderr
    found = re.fullmatch(r"Successfully created VM ([0-9a-f-]{36})\n", proc.stderr)
    assert found is not None, proc.stderr
    uuid = found.group(1)
    assert run(host, "liveforge.vm.cli", "list", "-p").stdout == f"{uuid}:OS:128:running:web\n"
    store = ImageStore(Path(host["IMGADM_ROOT"]))
    assert store.holders(IMAGE) == [uuid]

    def inside(*words: str) -> str:
        done = run(host, "liveforge.vm.zlogin", uuid, *words)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert inside("hostname") == "web01\n"
    table = inside("ps", "-o", "pid,comm").splitlines()
    assert table[0].split() == ["PID", "COMMAND"]
    rows = [row.split() for row in table[1:]]
    assert rows[0] == ["1", "init"]  # the image's init is PID 1 of the VM's own PID space
    assert len(rows) <= 4 and all(int(pid) < 100 for pid, _ in rows)  # nothing of the host
    assert inside("cat", "/etc/resolv.conf") == "nameserver 192.0.2.53\n"
    assert inside("mdata-get", "role") == "e2e\n"
    assert inside("cat", "/etc/motd") == "served by imgapi\n"  # the served image's own file
    assert "10.86.0.5/24" in inside("ip", "-4", "-o", "addr", "show", "net0")

    proc = run(host, "liveforge.vm.cli", "stop", uuid)
    assert (proc.returncode, proc.stderr) == (
        0, f"Successfully completed stop for VM {uuid}\n")
    proc = run(host, "liveforge.vm.cli", "delete", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully deleted VM {uuid}\n")
    assert run(host, "liveforge.vm.cli", "list", "-p").stdout == ""
    assert not any(p.exists() for p in cgroups.Cgroup(uuid).paths())
    assert net.host_ends(uuid) == []
    listed = run(host, "liveforge.img.cli", "list", "-H", "-o", "uuid,name")
    assert listed.stdout.split() == [IMAGE, "busybox"]  # the image stays installed
    assert store.holders(IMAGE) == []
