"""vmadm on VMs in the store, through the real command line: create's refusals (leaving
nothing), list/lookup/get/update/delete of VMs that are configured (as a create stopped
before its install leaves them: no runtime involved), UUID errors on every verb, and two
updates at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from liveforge.vm.store import VmStore
from liveforge.vm.verbs.create import prepare
from tests.vm.conftest import ZONE_IMAGE, ZVOL_IMAGE, Run, nic_tags_file

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"
UNKNOWN = "dddddddd-0000-4000-8000-000000000004"


@pytest.fixture
def vms(roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> VmStore:
    """Three configured VMs, made by create's own preparation and the store."""
    monkeypatch.setenv("IMGADM_ROOT", str(roots[1]))
    monkeypatch.setenv("VMADM_NICTAGS", str(nic_tags_file(roots)))
    store = VmStore(roots[0])
    payloads: list[dict[str, Any]] = [
        {"uuid": A, "brand": "joyent", "image_uuid": ZONE_IMAGE, "alias": "web",
         "max_physical_memory": 1024, "tags": {"role": "web"},
         "nics": [{"nic_tag": "admin", "ip": "10.0.0.5", "netmask": "255.255.255.0"}]},
        {"uuid": B, "brand": "kvm", "alias": "database-server-1", "ram": 2048,
         "customer_metadata": {"user-script": "true"},
         "disks": [{"image_uuid": ZVOL_IMAGE, "boot": True}],
         "nics": [{"nic_tag": "admin", "ip": "10.0.0.6"}, {"nic_tag": "ext", "ip": "1.2.3.4"}]},
        {"uuid": C, "brand": "bhyve", "tags": {"role": "db"}},
    ]
    for payload in payloads:
        store.make(prepare(payload))
    return store


def test_create_refusals_leave_nothing_behind(vmadm: Run, roots: tuple[Path, Path]) -> None:
    cases = [
        ({"brand": "joyent", "image_uuid": ZONE_IMAGE, "ram": "lots", "autoboot": "maybe"},
         "Invalid value(s) for: autoboot,ram"),
        ({"brand": "lx", "image_uuid": ZONE_IMAGE.replace("1", "2")},
         "Missing required properties: kernel_version"),
        ({"brand": "gorilla"}, "Invalid brand: 'gorilla'"),
        ({"brand": "kvm", "nics": [{"nic_tag": "a", "primary": True},
                                   {"nic_tag": "b", "primary": True}]},
         "Invalid value(s) for: nics.*.primary (more than one primary NIC)"),
    ]
    for payload, message in cases:
        proc = vmadm("create", input=json.dumps(payload))
        assert (proc.returncode, proc.stderr, proc.stdout) == (1, message + "\n", ""), payload
    assert os.listdir(roots[0]) == []


def test_create_payload_errors(vmadm: Run, tmp_path: Path) -> None:
    proc = vmadm("create", "-f", str(tmp_path / "nope.json"))
    assert (proc.returncode, proc.stderr) == (1, f"File: {tmp_path / 'nope.json'} does not "
                                                 "exist.\n")
    proc = vmadm("create", input='{"brand": "joyent",\n "ram": 1 2}')
    assert (proc.returncode, proc.stderr) == (
        1, "Invalid JSON payload: Expected ',' instead of '2' at line 2, column 11\n")
    assert vmadm("create", input="[1]").stderr == "Invalid JSON payload: not a JSON object\n"
    assert vmadm("create", input="").stderr == "Invalid JSON payload: empty input\n"


def test_list_default_columns_widths_and_sort(vmadm: Run, vms: VmStore) -> None:
    proc = vmadm("list", check=True)
    assert proc.stdout == (
        "UUID                                  TYPE  RAM      STATE             ALIAS\n"
        f"{C}  BHYV  256      configured        -\n"
        f"{A}  OS    1024     configured        web\n"
        f"{B}  KVM   2048     configured        database-server-1\n")


def test_list_options(vmadm: Run, vms: VmStore) -> None:
    assert vmadm("list", "-H", "-o", "uuid,alias", "-s", "-ram").stdout == (
        f"{B}  database-server-1\n{A}  web\n{C}  -\n")
    assert vmadm("list", "-p", "-o", "alias,brand,nics.*.ip", "-s", "alias").stdout == (
        "database-server-1:kvm:10.0.0.6,1.2.3.4\nweb:joyent:10.0.0.5\n-:bhyve:\n")
    assert vmadm("list", "-H", "-o", "uuid", "tags.role=~^D").stdout == f"{C}\n"
    assert vmadm("list", "-H", "-o", "uuid", "type=OS").stdout == f"{A}\n"
    proc = vmadm("list", "colour=red")
    assert (proc.returncode, proc.stderr) == (1, 'Invalid filter key: "colour"\n')


def test_lookup_filters(vmadm: Run, vms: VmStore) -> None:
    assert vmadm("lookup", "nics.*.ip=1.2.3.4").stdout == f"{B}\n"
    assert vmadm("lookup", "brand=~VM").stdout == f"{B}\n"
    assert vmadm("lookup", "customer_metadata.user-script=true").stdout == f"{B}\n"
    assert vmadm("lookup", "tags.role=web", "alias=web").stdout == f"{A}\n"
    assert vmadm("lookup", "tags.role=web", "alias=db").stdout == ""
    assert vmadm("lookup", "-o", "alias,ram", "uuid=" + A).stdout == "web 1024\n"
    one = json.loads(vmadm("lookup", "-j", "-1", "alias=web", check=True).stdout)
    assert one["uuid"] == A and one["state"] == "configured"
    many = json.loads(vmadm("lookup", "-j", "-o", "uuid,type", "tags.role=~.").stdout)
    assert many == [{"uuid": A, "type": "OS"}, {"uuid": C, "type": "BHYV"}]
    proc = vmadm("lookup", "-1", "tags.role=~.")
    assert (proc.returncode, proc.stderr) == (
        1, "Requested unique lookup but found 2 results.\n")
    assert vmadm("lookup", "nics.*.colour=x").stderr == 'Invalid filter key: "nics.*.colour"\n'


def test_get_prints_the_object_with_its_defaults(vmadm: Run, vms: VmStore) -> None:
    proc = vmadm("get", B, check=True)
    vm = json.loads(proc.stdout)
    assert proc.stdout.startswith('{\n  "alias": "database-server-1",\n')
    assert (vm["brand"], vm["ram"], vm["max_physical_memory"], vm["vcpus"], vm["state"]) == (
        "kvm", 2048, 3072, 1, "configured")
    assert vm["disks"] == [{"boot": True, "image_uuid": ZVOL_IMAGE, "media": "disk",
                            "model": "virtio"}]
    assert [n["primary"] for n in vm["nics"]] == [True, False]
    assert vm["zonepath"] == str(vms.vmdir(B)) and vm["zonename"] == B


def test_update_persists_and_validates(vmadm: Run, vms: VmStore, tmp_path: Path) -> None:
    proc = vmadm("update", A, "alias=www", "max_physical_memory=2048", "cpu_cap=50")
    assert (proc.returncode, proc.stderr) == (0, f"Successfully updated VM {A}\n")
    vm = vms.load(A)
    assert (vm["alias"], vm["ram"], vm["max_physical_memory"], vm["max_swap"],
            vm["cpu_cap"]) == ("www", 2048, 2048, 2048, 50)
    payload = tmp_path / "u.json"
    payload.write_text(json.dumps({
        "set_tags": {"tier": 1}, "remove_tags": ["role"], "cpu_cap": None,
        "add_nics": [{"nic_tag": "ext", "ip": "5.6.7.8"}],
        "update_nics": [{"mac": vm["nics"][0]["mac"], "mtu": 9000}], "uuid": B}))
    proc = vmadm("update", A, "-f", str(payload))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ('Warning: ignoring property "uuid": not updatable for joyent VMs\n'
                           f"Successfully updated VM {A}\n")
    vm = vms.load(A)
    assert vm["tags"] == {"tier": 1} and "cpu_cap" not in vm and vm["uuid"] == A
    assert [(n["interface"], n.get("mtu"), n["primary"]) for n in vm["nics"]] == [
        ("net0", 9000, True), ("net1", None, False)]
    before = vms.load(A)
    proc = vmadm("update", A, "ram=-1", "vcpus=2")
    assert (proc.returncode, proc.stderr) == (
        1, 'Warning: ignoring property "vcpus": not updatable for joyent VMs\n'
           "Invalid value(s) for: ram\n")
    assert vms.load(A) == before


def test_two_updates_at_once_both_land(vms: VmStore, roots: tuple[Path, Path]) -> None:
    env = dict(os.environ, VMADM_ROOT=str(roots[0]), IMGADM_ROOT=str(roots[1]))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "liveforge.vm.cli", "update", C, "-f", "-"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    for i, proc in enumerate(procs):
        proc.communicate(json.dumps({"set_tags": {f"k{i}": i}}), timeout=60)
        assert proc.returncode == 0
    assert vms.load(C)["tags"] == {"role": "db", **{f"k{i}": i for i in range(6)}}


def test_delete_removes_the_vm_and_its_image_hold(vmadm: Run, vms: VmStore) -> None:
    proc = vmadm("delete", A)
    assert (proc.returncode, proc.stderr) == (0, f"Successfully deleted VM {A}\n")
    assert not vms.vmdir(A).exists() and vms.uuids() == [B, C]
    proc = vmadm("get", A)
    assert (proc.returncode, proc.stderr) == (1, f"No such VM {A}\n")


def test_state_rules_of_a_configured_vm(vmadm: Run, vms: VmStore) -> None:
    proc = vmadm("stop", A)
    assert (proc.returncode, proc.stderr) == (
        0, f"VM {A} is already not 'running' (currently: configured)\n")
    proc = vmadm("start", A)
    assert (proc.returncode, proc.stderr) == (
        1, f"Cannot start VM {A}: its state is 'configured'\n")


VERBS = ["get", "start", "stop", "reboot", "kill", "update", "delete", "console", "info"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_refuses_a_bad_uuid_and_an_unknown_vm(vmadm: Run, verb: str) -> None:
    for bad in ([], ["not-a-uuid"], [UNKNOWN[:-1]], [UNKNOWN + "0"]):
        proc = vmadm(verb, *bad)
        assert proc.returncode == 2, (verb, bad)
        assert proc.stderr.startswith(f"Invalid or missing UUID for {verb}\nusage: vmadm")
    proc = vmadm(verb, UNKNOWN, *(["alias=x"] if verb == "update" else []))
    assert (proc.returncode, proc.stderr) == (1, f"No such VM {UNKNOWN}\n")


def test_hostile_payloads_and_store(vmadm: Run, vms: VmStore, tmp_path: Path) -> None:
    proc = vmadm("create", "-f", str(tmp_path))
    assert (proc.returncode, proc.stderr) == (
        1, f"File: {tmp_path} cannot be read: Is a directory\n")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"alias": "caf\xe9"}')
    proc = vmadm("validate", "create", "-f", str(latin))
    assert (proc.returncode, proc.stderr) == (1, "Invalid JSON payload: not UTF-8 (byte 14)\n")
    proc = vmadm("validate", "create", input='{"brand": "joyent"}{}')
    assert proc.stderr == "Invalid JSON payload: Syntax error at line 1, column 20\n"
    # a uuid that is taken: refused, the VM there untouched
    before = vms.load(A)
    proc = vmadm("create", input=json.dumps({"uuid": A, "brand": "bhyve"}))
    assert (proc.returncode, proc.stderr) == (1, f"VM {A} already exists\n")
    assert vms.load(A) == before
    # a torn config.json: one line naming it, no traceback
    (vms.vmdir(C) / "config.json").write_text('{"uuid": ')
    proc = vmadm("list")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{vms.vmdir(C) / 'config.json'}: unreadable VM "
                                  "configuration: ")
    # directories that are no VM's (an image pool's layers share the root) are not listed
    (vms.root / ZONE_IMAGE).mkdir()
    (vms.root / "notes").mkdir()
    (vms.vmdir(C) / "config.json").unlink()
    assert vmadm("list", "-H", "-o", "uuid", "-s", "uuid").stdout == f"{A}\n{B}\n"


def test_usage_errors_exit_2(vmadm: Run) -> None:
    assert vmadm().returncode == 2
    proc = vmadm("validate", "update")
    assert proc.returncode == 2 and proc.stderr.startswith(
        "validate update: a BRAND is required\nusage: vmadm")
    assert vmadm("kill", A, "-s", "NOPE").returncode == 2
