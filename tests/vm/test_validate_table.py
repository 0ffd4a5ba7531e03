"""The conformance table: validate payloads through the real vmadm command line, each against
its exact error object (or VALID) on stderr and its exit status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vm.conftest import LX_IMAGE, ZONE_IMAGE, ZVOL_IMAGE, ZVOL_SIZE, Run

OTHER = "44444444-4444-4444-8444-444444444444"   # a well-formed uuid no image has
NIC = {"nic_tag": "admin", "ip": "10.0.0.2", "netmask": "255.255.255.0"}
JOYENT = {"brand": "joyent", "image_uuid": ZONE_IMAGE}


def bad(values: list[str] = [], properties: list[str] = [],  # noqa: B006 (never mutated)
        missing: list[str] = []) -> dict[str, list[str]]:  # noqa: B006
    return {"bad_values": values, "bad_properties": properties, "missing_properties": missing}


# (id, "create" or "update BRAND", payload, expected error object or None for VALID)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
    # brands and required properties
    ("joyent-minimal-valid", "create", JOYENT, None),
    ("joyent-minimal-brand", "create", {**JOYENT, "brand": "joyent-minimal"}, None),
    ("lx-valid", "create", {"brand": "lx", "image_uuid": LX_IMAGE, "kernel_version": "5.10"},
     None),
    ("bhyve-nothing-else", "create", {"brand": "bhyve"}, None),
    ("kvm-nothing-else", "create", {"brand": "kvm"}, None),
    ("os-needs-image", "create", {"brand": "joyent"}, bad(missing=["image_uuid"])),
    ("lx-needs-kernel-and-lx-image", "create", {"brand": "lx", "image_uuid": ZONE_IMAGE},
     bad(values=["image_uuid"], missing=["kernel_version"])),
    ("image-not-installed", "create", {**JOYENT, "image_uuid": OTHER},
     bad(values=["image_uuid"])),
    ("image-of-another-type", "create", {**JOYENT, "image_uuid": ZVOL_IMAGE},
     bad(values=["image_uuid"])),
    ("image-uuid-not-a-uuid", "create", {**JOYENT, "image_uuid": "ubuntu"},
     bad(values=["image_uuid"])),
    # uuid
    ("uuid-good", "create", {**JOYENT, "uuid": OTHER}, None),
    ("uuid-upper-case", "create", {**JOYENT, "uuid": OTHER.upper()}, None),
    ("uuid-short", "create", {**JOYENT, "uuid": OTHER[:-1]}, bad(values=["uuid"])),
    ("uuid-number", "create", {**JOYENT, "uuid": 7}, bad(values=["uuid"])),
    # boolean
    ("boolean-true-false-strings", "create",
     {**JOYENT, "autoboot": "false", "firewall_enabled": "true",
      "do_not_inventory": False}, None),
    ("boolean-yes-and-one", "create", {**JOYENT, "autoboot": "yes", "firewall_enabled": 1},
     bad(values=["autoboot", "firewall_enabled"])),
    ("boolean-null", "create", {**JOYENT, "autoboot": None}, bad(values=["autoboot"])),
    # integer
    ("integer-forms", "create", {**JOYENT, "ram": "1024", "max_lwps": 300.0, "cpu_cap": "",
                                 "quota": None}, None),
    ("integer-fraction-bool-word", "create",
     {**JOYENT, "ram": 1.5, "max_lwps": True, "cpu_cap": "lots"},
     bad(values=["cpu_cap", "max_lwps", "ram"])),
    ("integer-below-min", "create", {**JOYENT, "ram": -1, "max_swap": 255},
     bad(values=["max_swap", "ram"])),
    ("integer-at-min", "create", {**JOYENT, "ram": 0, "max_swap": 256}, None),
    ("vcpus-min-1", "create", {"brand": "bhyve", "vcpus": 0}, bad(values=["vcpus"])),
    ("port-minus-one", "create", {"brand": "kvm", "vnc_port": -1, "spice_port": -2},
     bad(values=["spice_port"])),
    # string, zpool
    ("string-not-a-number", "create", {**JOYENT, "alias": 5, "hostname": ["a"]},
     bad(values=["alias", "hostname"])),
    ("zpool-name", "create", {**JOYENT, "zpool": "1-bad"}, bad(values=["zpool"])),
    ("zpool-unknown-has-no-images", "create", {**JOYENT, "zpool": "data"},
     bad(values=["image_uuid"])),
    # list
    ("list-array-and-comma-string", "create",
     {**JOYENT, "resolvers": "8.8.8.8,1.1.1.1", "fs_allowed": ["ufs", "pcfs"]}, None),
    ("list-comma-inside-value", "create", {**JOYENT, "fs_allowed": ["ufs,pcfs"]},
     bad(values=["fs_allowed"])),
    ("list-wrong-types", "create", {**JOYENT, "fs_allowed": 5, "limit_priv": [True]},
     bad(values=["fs_allowed", "limit_priv"])),
    ("resolvers-not-ips", "create", {**JOYENT, "resolvers": ["8.8.8.8", "dns.example"]},
     bad(values=["resolvers"])),
    # flat-object
    ("flat-object-scalars", "create",
     {**JOYENT, "tags": {"a": 1, "b": "x", "c": True}, "customer_metadata": {"k": "v"}}, None),
    ("flat-object-nested", "create",
     {**JOYENT, "tags": {"a": {"b": 1}}, "customer_metadata": {"k": [1]},
      "internal_metadata": "x", "routes": {"10.0.0.0/8": None}},
     bad(values=["customer_metadata", "internal_metadata", "routes", "tags"])),
    # brand and action rules
    ("hvm-property-on-os", "create", {**JOYENT, "cpu_type": "host", "disks": [], "vcpus": 2},
     bad(properties=["cpu_type", "disks", "vcpus"])),
    ("kvm-only-on-bhyve", "create", {"brand": "bhyve", "cpu_type": "host", "bootrom": "uefi"},
     bad(properties=["cpu_type"])),
    ("bootrom-choice", "create", {"brand": "bhyve", "bootrom": "floppy"},
     bad(values=["bootrom"])),
    ("receive-only-on-create", "create",
     {**JOYENT, "create_timestamp": "x", "v": 1, "zfs_filesystem": "zones/x"},
     bad(properties=["create_timestamp", "v", "zfs_filesystem"])),
    ("update-only-on-create", "create", {**JOYENT, "set_tags": {"a": "b"}},
     bad(properties=["set_tags"])),
    ("unknown-properties", "create", {**JOYENT, "foo": 1, "bar": None},
     bad(properties=["bar", "foo"])),
    # nics
    ("nic-good", "create", {**JOYENT, "nics": [dict(NIC, mtu=1500, vlan_id=0,
                                                     primary="true")]}, None),
    ("nic-mtu-range", "create",
     {**JOYENT, "nics": [dict(NIC, mtu=575), dict(NIC, mtu=9000), dict(NIC, mtu=9001)]},
     bad(values=["nics.*.mtu"])),
    ("nic-ranges", "create", {**JOYENT, "nics": [dict(NIC, vlan_id=4096, vrrp_vrid=256)]},
     bad(values=["nics.*.vlan_id", "nics.*.vrrp_vrid"])),
    ("nic-needs-tag", "create", {**JOYENT, "nics": [{"ip": "10.0.0.3"}]},
     bad(missing=["nics.*.nic_tag"])),
    ("nic-mac-and-model", "create",
     {**JOYENT, "nics": [dict(NIC, mac="02:08:20:zz:00:01", model="virtio", foo=1)]},
     bad(values=["nics.*.mac"], properties=["nics.*.foo", "nics.*.model"])),
    ("nics-not-an-array", "create", {**JOYENT, "nics": {"nic_tag": "admin"}},
     bad(values=["nics"])),
    ("nics-of-numbers", "create", {**JOYENT, "nics": [1, 2]}, bad(values=["nics"])),
    # disks, with their index
    ("disk-from-image", "create",
     {"brand": "kvm", "disks": [{"image_uuid": ZVOL_IMAGE, "boot": True, "model": "virtio"}]},
     None),
    ("disk-image-size-mismatch", "create",
     {"brand": "bhyve", "disks": [{"image_uuid": ZVOL_IMAGE, "image_size": ZVOL_SIZE + 1},
                                  {"image_uuid": ZVOL_IMAGE, "image_size": ZVOL_SIZE,
                                   "size": ZVOL_SIZE - 1}]},
     bad(values=["disks.0.image_size", "disks.1.size"])),
    ("disk-image-not-a-zvol", "create", {"brand": "kvm", "disks": [{"size": 10},
                                                                   {"image_uuid": LX_IMAGE}]},
     bad(values=["disks.1.image_uuid"])),
    ("disk-blank-needs-size", "create",
     {"brand": "bhyve", "disks": [{"model": "nvme"}, {"media": "cdrom", "path": "/x.iso"},
                                  {"image_size": 5, "size": 5}]},
     bad(values=["disks.2.image_size"], missing=["disks.0.size"])),
    ("disk-choices", "create", {"brand": "kvm", "disks": [{"size": 1, "model": "floppy",
                                                          "media": "tape"}]},
     bad(values=["disks.*.media", "disks.*.model"])),
    ("disk-bhyve-only-keys-on-kvm", "create",
     {"brand": "kvm", "disks": [{"size": 1, "notrim": True, "guest_block_size": "512"}]},
     bad(properties=["disks.*.guest_block_size", "disks.*.notrim"])),
    # update
    ("update-good", "update joyent",
     {"ram": "2048", "alias": "web", "set_tags": {"role": "db"}, "remove_tags": "a,b",
      "update_nics": [{"mac": "02:08:20:00:00:01", "mtu": 9000}]}, None),
    ("update-create-only", "update joyent",
     {"uuid": OTHER, "brand": "lx", "tags": {}, "image_uuid": ZONE_IMAGE,
      "mdata_exec_timeout": 5},
     bad(properties=["brand", "image_uuid", "mdata_exec_timeout", "tags", "uuid"])),
    ("update-add-nic-needs-tag", "update kvm",
     {"add_nics": [{"ip": "10.0.0.9", "model": "e1000"}], "remove_nics": ["02:08:20:00:00:01"]},
     bad(missing=["add_nics.*.nic_tag"])),
    ("update-disk-size-kvm-add-only", "update kvm",
     {"update_disks": [{"path": "/x", "size": 10}], "add_disks": [{"size": 10}]},
     bad(properties=["update_disks.*.size"])),
    ("update-values", "update bhyve", {"vcpus": 0, "update_nics": [{"mtu": 1}]},
     bad(values=["update_nics.*.mtu", "vcpus"])),
    # everything wrong at once
    ("everything-wrong", "create",
     {"brand": "lx", "image_uuid": OTHER, "uuid": "nope", "autoboot": "maybe", "ram": -5,
      "resolvers": ["x"], "tags": {"a": {}}, "disks": [], "cpu_type": "host", "foo": 1,
      "nics": [{"mtu": 1, "vlan_id": "x", "bogus": True}]},
     bad(values=["autoboot", "image_uuid", "nics.*.mtu", "nics.*.vlan_id", "ram", "resolvers",
                 "tags", "uuid"],
         properties=["cpu_type", "disks", "foo", "nics.*.bogus"],
         missing=["kernel_version", "nics.*.nic_tag"])),
    # the brand
    ("bad-brand", "create", {"brand": "gorilla", "foo": 1}, {"bad_brand": "gorilla"}),
    ("no-brand", "create", {"image_uuid": ZONE_IMAGE}, {"bad_brand": None}),
    ("brand-not-a-string", "create", {"brand": ["joyent"]}, {"bad_brand": ["joyent"]}),
    ("update-bad-brand", "update gorilla", {"ram": 1}, {"bad_brand": "gorilla"}),
]


@pytest.mark.parametrize("action,payload,expected", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_validate(vmadm: Run, action: str, payload: dict[str, Any],
                  expected: dict[str, Any] | None) -> None:
    proc = vmadm("validate", *action.split(), input=json.dumps(payload))
    assert proc.stdout == ""
    if expected is None:
        brand = action.split()[1] if action.startswith("update") else payload["brand"]
        assert proc.stderr == f"VALID '{action.split()[0]}' payload for {brand} brand VMs.\n"
        assert proc.returncode == 0
    else:
        assert proc.stderr == json.dumps(expected, indent=2) + "\n", proc.stderr
        assert proc.returncode == 1


def test_the_error_object_keeps_its_key_order_and_two_space_indent(vmadm: Run) -> None:
    proc = vmadm("validate", "create", input=json.dumps({**JOYENT, "foo": 1}))
    assert proc.stderr == ('{\n  "bad_values": [],\n  "bad_properties": [\n    "foo"\n  ],\n'
                           '  "missing_properties": []\n}\n')
