"""A container VM's whole life through the vmadm command line, as root: create (started by
autoboot) -> list -> start again -> update -> stop -> stop again -> start -> kill -> delete,
the image held while the VM exists; a create whose start fails leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("liveforge.vm.brands.container")  # the container runtime
containers = pytest.importorskip("tests.support.containers")

from liveforge.img.store import ImageStore  # noqa: E402
from tests.vm.conftest import ZONE_IMAGE, Run  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


@pytest.fixture
def busybox(roots: tuple[Path, Path]) -> ImageStore:
    """The zone-dataset image's layer is a busybox root."""
    containers.busybox_root(roots[1] / "zones" / ZONE_IMAGE)
    return ImageStore(roots[1])


def created(proc_stderr: str) -> str:
    m = re.fullmatch(r"Successfully created VM ([0-9a-f-]{36})\n", proc_stderr)
    assert m is not None, proc_stderr
    return m.group(1)


def states(vmadm: Run) -> str:
    return vmadm("list", "-p", "-o", "uuid,state,alias", check=True).stdout


def test_a_container_vm_from_create_to_delete(vmadm: Run, roots: tuple[Path, Path],
                                              busybox: ImageStore) -> None:
    payload = {"brand": "joyent", "image_uuid": ZONE_IMAGE, "alias": "bb",
               "hostname": "bb1", "max_physical_memory": 128, "unknown_thing": 1}
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith('Warning: ignoring property "unknown_thing"')
    uuid = created(proc.stderr.split("\n", 1)[1])
    try:
        assert states(vmadm) == f"{uuid}:running:bb\n"
        assert busybox.holders(ZONE_IMAGE) == [uuid]
        vm = json.loads(vmadm("get", uuid, check=True).stdout)
        assert (vm["state"], vm["max_physical_memory"], vm["tmpfs"]) == ("running", 128, 128)
        assert "unknown_thing" not in vm
        proc = vmadm("start", uuid)
        assert (proc.returncode, proc.stderr) == (0, f"VM {uuid} is already 'running'\n")
        proc = vmadm("update", uuid, "max_physical_memory=192", "alias=bb2")
        assert (proc.returncode, proc.stderr) == (0, f"Successfully updated VM {uuid}\n")
        proc = vmadm("stop", uuid, "-t", "5")
        assert (proc.returncode, proc.stderr) == (
            0, f"Successfully completed stop for VM {uuid}\n")
        assert states(vmadm) == f"{uuid}:stopped:bb2\n"
        proc = vmadm("stop", uuid)
        assert (proc.returncode, proc.stderr) == (
            0, f"VM {uuid} is already not 'running' (currently: stopped)\n")
        proc = vmadm("start", uuid)
        assert (proc.returncode, proc.stderr) == (0, f"Successfully started VM {uuid}\n")
        proc = vmadm("kill", uuid, "-s", "KILL")
        assert (proc.returncode, proc.stderr) == (0, f"Successfully sent signal 9 to VM {uuid}\n")
        deadline = time.monotonic() + 10
        while "stopped" not in states(vmadm) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert states(vmadm) == f"{uuid}:stopped:bb2\n"
        assert vmadm("start", uuid).returncode == 0
    finally:
        proc = vmadm("delete", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully deleted VM {uuid}\n")
    assert states(vmadm) == "" and not (roots[0] / uuid).exists()
    assert busybox.holders(ZONE_IMAGE) == []


def test_a_create_whose_start_fails_leaves_nothing(vmadm: Run, roots: tuple[Path, Path],
                                                   busybox: ImageStore) -> None:
    payload = {"brand": "joyent", "image_uuid": ZONE_IMAGE,
               "nics": [{"nic_tag": "no-such-tag", "ip": "10.9.9.9"}]}
    proc = vmadm("create", input=json.dumps(payload))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "Successfully" not in proc.stderr
    assert os.listdir(roots[0]) == []
    assert busybox.holders(ZONE_IMAGE) == []
