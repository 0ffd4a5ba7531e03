"""Container VMs through vmadm, for real as root: a start that fails leaves a ``failed`` VM that
can be started again once fixed, stopped and deleted; ``reboot`` is a new init in a new PID
namespace; ``info`` is for HVM VMs only; an unknown nic tag is refused at validate and create,
and at start when the nic-tag file lost it since."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liveforge.vm import cgroups, net
from liveforge.vm.brands.container import ContainerRuntime
from liveforge.vm.brands.pidfile import init_pid
from liveforge.vm.store import VmStore
from tests.vm.conftest import IMAGE_UUID, zlogin


def vmadm(*args: str, payload: dict[str, Any] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liveforge.vm.cli", *args],
                          input=json.dumps(payload) if payload is not None else None,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def made(vm_env: dict[str, Any]) -> Iterator[list[str]]:
    """The uuids a test created; deleted afterwards, leaving nothing."""
    uuids: list[str] = []
    yield uuids
    store = VmStore(Path(vm_env["vmroot"]))
    for uuid in uuids:
        if store.exists(uuid):
            vmadm("delete", uuid)
        if store.vmdir(uuid).exists():
            ContainerRuntime().destroy({"uuid": uuid}, store.vmdir(uuid))
        assert not store.vmdir(uuid).exists()
        assert not any(p.exists() for p in cgroups.Cgroup(uuid).paths())
        assert net.host_ends(uuid) == []


def create(made: list[str], **props: Any) -> str:
    proc = vmadm("create", payload={"brand": "joyent", "image_uuid": IMAGE_UUID, **props})
    found = re.search(r"Successfully created VM ([0-9a-f-]{36})", proc.stderr)
    assert proc.returncode == 0 and found, proc.stderr
    made.append(found.group(1))
    return found.group(1)


def state(uuid: str) -> str:
    return str(json.loads(vmadm("get", uuid).stdout)["state"])


def test_a_failed_start_can_be_retried_once_fixed(vm_env, made):
    uuid = create(made, autoboot=False, init_name="/sbin/no-such-init")
    vmdir = Path(vm_env["vmroot"]) / uuid
    proc = vmadm("start", uuid)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"VM {uuid}: cannot start /sbin/no-such-init: ")
    assert state(uuid) == "failed"
    assert "/sbin/no-such-init" in (vmdir / "run" / "failed").read_text()
    assert vmadm("list", "-p", "-o", "uuid,state", f"uuid={uuid}").stdout == f"{uuid}:failed\n"
    assert init_pid(vmdir) is None and not any(
        p.exists() for p in cgroups.Cgroup(uuid).paths())

    proc = vmadm("update", uuid, "init_name=/sbin/init")
    assert proc.returncode == 0, proc.stderr
    proc = vmadm("start", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully started VM {uuid}\n")
    assert state(uuid) == "running"
    assert not (vmdir / "run" / "failed").exists()
    assert zlogin(uuid, "hostname").stdout == f"{uuid[:63]}\n"


def test_a_failed_vm_can_be_stopped_and_deleted(vm_env, made):
    uuid = create(made, autoboot=False, init_name="/nonexistent")
    assert vmadm("start", uuid).returncode == 1
    assert state(uuid) == "failed"
    proc = vmadm("stop", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully completed stop for VM {uuid}\n")
    assert state(uuid) == "stopped"
    assert vmadm("start", uuid).returncode == 1  # still no such init: failed again
    proc = vmadm("delete", uuid)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully deleted VM {uuid}\n")
    assert not (Path(vm_env["vmroot"]) / uuid).exists()


def test_reboot_runs_a_new_init_and_keeps_the_vm(vm_env, made):
    uuid = create(made, hostname="rb1", nics=[{"nic_tag": "test", "ips": ["10.81.0.2/24"]}])
    vmdir = Path(vm_env["vmroot"]) / uuid
    before = init_pid(vmdir)
    zlogin(uuid, "touch", "/root-was-here")
    proc = vmadm("reboot", uuid, "-F")
    assert (proc.returncode, proc.stderr) == (0, f"Successfully completed reboot for VM {uuid}\n")
    after = init_pid(vmdir)
    assert after is not None and after != before
    assert state(uuid) == "running"
    inside = zlogin(uuid, "sh", "-c", "hostname; ls /root-was-here; ip -o -4 addr show net0")
    assert inside.returncode == 0, inside.stderr
    lines = inside.stdout.splitlines()
    assert lines[:2] == ["rb1", "/root-was-here"]  # the VM's own files survive a reboot
    assert "10.81.0.2/24" in lines[2]
    vmadm("stop", uuid, "-F")
    proc = vmadm("reboot", uuid)
    assert proc.returncode == 1
    assert proc.stderr == (f"Cannot reboot VM {uuid}: it is not 'running' "
                           f"(currently: stopped)\n")


def test_info_is_for_hvm_vms_only(vm_env, made):
    uuid = create(made)
    proc = vmadm("info", uuid)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "info is only supported for HVM VMs (kvm, bhyve), not joyent\n"


def test_an_unknown_nic_tag_is_refused_at_validate_and_create(vm_env, made):
    payload = {"brand": "joyent", "image_uuid": IMAGE_UUID,
               "nics": [{"nic_tag": "test", "ips": ["10.82.0.2/24"]},
                        {"nic_tag": "nope", "ips": ["10.82.1.2/24"]}]}
    proc = vmadm("validate", "create", payload=payload)
    assert proc.returncode == 1
    assert json.loads(proc.stderr) == {"bad_values": ["nics.*.nic_tag"], "bad_properties": [],
                                       "missing_properties": []}
    before = sorted(os.listdir(vm_env["vmroot"]))
    proc = vmadm("create", payload=payload)
    assert proc.returncode == 1
    assert proc.stderr == (f'Invalid nic tag "nope" (the nic tags are those of '
                           f'{os.environ["VMADM_NICTAGS"]})\n')
    assert sorted(os.listdir(vm_env["vmroot"])) == before
    uuid = create(made, autoboot=False)
    proc = vmadm("update", uuid, "-f", "-", payload={"add_nics": [{"nic_tag": "gone"}]})
    assert (proc.returncode, proc.stderr) == (1, "Invalid value(s) for: add_nics.*.nic_tag\n")
    assert json.loads(vmadm("get", uuid).stdout).get("nics", []) == []


def test_a_tag_gone_from_the_file_since_create_fails_the_start(vm_env, made, tmp_path,
                                                                monkeypatch):
    uuid = create(made, autoboot=False, nics=[{"nic_tag": "other", "ips": ["10.83.0.2/24"]}])
    fewer = tmp_path / "nictags.json"
    fewer.write_text(json.dumps({"test": vm_env["bridge"]}))
    monkeypatch.setenv("VMADM_NICTAGS", str(fewer))
    proc = vmadm("start", uuid)
    assert proc.returncode == 1
    assert f"nics.0.nic_tag: 'other' is not a nic tag of {fewer}" in proc.stderr
    assert state(uuid) == "failed"
