"""Container VMs through the vmadm command line, for real: create from a payload on a really
installed busybox image, zlogin inside, update live, stop, start, console's refusal without a
terminal, delete; the image held while VMs are built on it, and intact when one of two goes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from liveforge.img.errors import ImgadmError
from liveforge.img.store import ImageStore
from liveforge.vm import cgroups
from tests.support.containers import install_image as install_tree_image
from tests.vm.conftest import IMAGE_UUID, zlogin
from tests.vm.conftest import create_vm as create
from tests.vm.conftest import run_vmadm as vmadm
from tests.vm.conftest import vm_state as state


def test_a_container_vm_through_vmadm(vm_env, created):
    uuid = create(created, alias="e2e", hostname="e2e-host", resolvers=["192.0.2.9"],
                  max_physical_memory=128, max_lwps=300, quota=2,
                  customer_metadata={"role": "web"},
                  nics=[{"nic_tag": "test", "ips": ["10.79.0.5/24"], "primary": True}])
    vm_env["uuids"].append(uuid)
    assert state(uuid) == "running"
    listed = vmadm("list", "-H", "-o", "uuid,alias,state").stdout
    assert re.search(rf"{uuid}\s+e2e\s+running", listed)
    inside = zlogin(uuid, "hostname; cat /etc/resolv.conf; mdata-get role; ip -o -4 addr")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.startswith("e2e-host\nnameserver 192.0.2.9\nweb\n")
    assert "10.79.0.5/24" in inside.stdout
    cg = cgroups.Cgroup(uuid)
    assert int((cg.dirs["pids"] / "pids.max").read_text()) == 300
    update = vmadm("update", uuid, "max_physical_memory=96", "max_lwps=150")
    assert update.returncode == 0, update.stderr
    assert int((cg.dirs["pids"] / "pids.max").read_text()) == 150
    memory = cg.dirs["memory"]
    limit = "memory.limit_in_bytes" if cg.version == 1 else "memory.max"
    assert int((memory / limit).read_text()) == 96 << 20
    meta = vmadm("update", uuid, payload={"set_customer_metadata": {"role": "db"}})
    assert meta.returncode == 0, meta.stderr
    assert zlogin(uuid, "mdata-get role").stdout == "db\n"  # at once, while it runs
    assert vmadm("stop", uuid).returncode == 0
    assert state(uuid) == "stopped"
    assert zlogin(uuid, "true").returncode == 1
    assert vmadm("start", uuid).returncode == 0
    assert state(uuid) == "running"
    assert zlogin(uuid, "mdata-get role").stdout == "db\n"
    console = subprocess.run([sys.executable, "-m", "liveforge.vm.cli", "console", uuid],
                             input="hostname\nexit 4\n", capture_output=True, text=True,
                             timeout=60)
    assert "e2e-host" in console.stdout and console.returncode == 4
    assert vmadm("delete", uuid).returncode == 0
    assert not (Path(vm_env["vmroot"]) / uuid).exists()


def test_an_image_stays_while_a_vm_is_built_on_it(vm_env, created):
    first = create(created, alias="one")
    second = create(created, alias="two")
    vm_env["uuids"] += [first, second]
    store = ImageStore.from_env()
    assert store.holders(IMAGE_UUID, "zones") == sorted([first, second])
    with pytest.raises(ImgadmError) as refused:
        store.delete(IMAGE_UUID, "zones")
    assert refused.value.code == "ImageHasDependentClones"
    assert vmadm("delete", first).returncode == 0
    assert store.holders(IMAGE_UUID, "zones") == [second]
    assert store.get(IMAGE_UUID, "zones") is not None
    assert zlogin(second, "cat /etc/issue").stdout == "Busybox base image\n"
    assert os.path.isdir(store.lower_dirs(IMAGE_UUID, "zones")[0])


def test_an_lx_vm_is_a_container_too(vm_env, created, tmp_path):
    image = "1c0ffee0-0000-4000-8000-00000000001c"
    install_tree_image(vm_env["imgroot"], vm_env["tree"], image, tmp_path / "files",
                       type_="lx-dataset")
    uuid = create(created, brand="lx", image_uuid=image, kernel_version="4.3.0",
                  alias="lx1", max_lwps=64)
    vm_env["uuids"].append(uuid)
    assert state(uuid) == "running"
    out = zlogin(uuid, "hostname; ps -o pid,comm | tail -n +2 | wc -l")
    assert out.stdout.split()[0] == "lx1"
    assert int(out.stdout.split()[1]) <= 6  # init, the shell, ps and its pipe: no host process
    assert vmadm("delete", uuid).returncode == 0
    ImageStore.from_env().delete(image, "zones")  # nothing holds it any more
