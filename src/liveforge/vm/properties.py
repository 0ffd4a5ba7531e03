"""THE vmadm property table: one declaration per payload property.

Each row names a property's type, the brands that have it and, per brand, the actions it is
allowed in (``C`` create, ``U`` update, ``A`` an element added to an array: a ``nics``/
``disks``/``filesystems`` element of a create payload or of ``add_*``, ``R`` receive), the
brands and actions it is required for, its range, its default and the name of a further check.
Validation (``validate``), create's defaults (``defaults``), ``get``/``list`` and
``docs/vmadm-properties.md`` all read this table; ``python -m liveforge.vm.properties`` prints
that page.

The rows are the real tool's property table for the five brands liveforge runs, plus what the
notes add: create's defaults (``default``, per brand where they differ, and ``adjust``: a
default computed from other properties or a clamp, named in ``liveforge.vm.defaults``), the
checks of a few enumerations (``validator``), ``nics.*.nic_tag`` required in a NIC, and which
properties a running VM takes at once (``live``), and what this runtime does not do: a
property ``refused`` is a bad value on create and update (the reason is vmadm's error), one
``ignored`` is accepted and stored, and a start warns that it is not applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from liveforge.img.config import DEFAULT_POOL

BRANDS = ("bhyve", "joyent", "joyent-minimal", "kvm", "lx")
OS = ("joyent", "joyent-minimal", "lx")        # containers
HVM = ("bhyve", "kvm")                          # QEMU guests
ALL = BRANDS
BHYVE = ("bhyve",)
KVM = ("kvm",)
LX = ("lx",)
MINIMAL_LX = ("joyent-minimal", "lx")
NOT_BHYVE = ("joyent", "joyent-minimal", "kvm", "lx")

TYPES = ("boolean", "flat-object", "integer", "list", "object-array", "string", "uuid", "zpool")
ACTIONS = {"C": "create", "U": "update", "A": "add", "R": "receive"}
# an array property's elements are checked against the rows ``<array>.*.<key>``
ARRAYS = ("disks", "filesystems", "nics", "pci_devices")
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
# the image types a brand's VM is built from (its image_uuid; an HVM guest's disks)
IMAGE_TYPES = {"joyent": ("zone-dataset",), "joyent-minimal": ("zone-dataset",),
               "lx": ("lx-dataset",), "kvm": ("zvol",), "bhyve": ("zvol",)}

# what this runtime refuses or ignores, and why (the table's ``refused`` and ``ignored``)
QEMU_OPTS = ("it replaces QEMU's whole generated command line, with the QMP socket, pid file, "
             "console and disks vmadm runs the VM by; use qemu_extra_opts")
BHYVE_EXTRA_OPTS = ("its options are bhyve's, and bhyve VMs run as QEMU guests here; "
                    "there is no QEMU equivalent to pass them to")
PCI = "PCI passthrough is not available to guests here"


class _Unset:
    """The default of a property that has none (``None`` is a value: JSON's null)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True, slots=True)
class Prop:
    """One payload property."""

    name: str                                  # "alias", "nics.*.mtu"
    type: str                                  # one of TYPES
    allowed: Mapping[str, str]                 # brand -> actions ("CRU")
    required: Mapping[str, str] = field(default_factory=dict)  # brand -> actions
    min: int | None = None
    max: int | None = None
    default: Any = UNSET                       # a value, or {brand: value}
    adjust: str | None = None                  # a default computed or clamped: defaults.ADJUST
    validator: str | None = None               # a further check: validate.VALIDATORS
    check_as: str | None = None                # elements checked as this array's
    keep_zero: bool = False                    # 0 is a value, not "unset"
    live: bool = False                         # an update reaches a running VM at once
    refused: str = ""                          # why a value is refused here (a bad value)
    ignored: str = ""                          # why a value is accepted but not applied

    def allows(self, brand: str, action: str) -> bool:
        return action in self.allowed.get(brand, "")

    def requires(self, brand: str, action: str) -> bool:
        return action in self.required.get(brand, "")

    def default_for(self, brand: str) -> Any:
        if isinstance(self.default, dict):
            return self.default.get(brand, UNSET)
        return self.default


def P(name: str, type: str, allowed: Mapping[tuple[str, ...], str], *,
      required: Mapping[tuple[str, ...], str] | None = None, **kw: Any) -> Prop:
    """A row: ``allowed`` and ``required`` map groups of brands to action letters."""
    def per_brand(groups: Mapping[tuple[str, ...], str]) -> dict[str, str]:
        return {brand: actions for group, actions in groups.items() for brand in group}
    return Prop(name, type, per_brand(allowed), per_brand(required or {}), **kw)


TABLE: tuple[Prop, ...] = (
    P("add_disks", "object-array", {HVM: "U"}, check_as="disks"),
    P("add_filesystems", "object-array", {NOT_BHYVE: "U"}, check_as="filesystems"),
    P("add_nics", "object-array", {ALL: "U"}, check_as="nics"),
    P("add_pci_devices", "object-array", {BHYVE: "CUR"}, check_as="pci_devices"),
    P("alias", "string", {ALL: "CRU"}),
    P("archive_on_delete", "boolean", {ALL: "CRU"}, default=False),
    P("autoboot", "boolean", {ALL: "CRU"}, default=True),
    P("bhyve_extra_opts", "string", {BHYVE: "CRU"}, refused=BHYVE_EXTRA_OPTS),
    P("billing_id", "string", {ALL: "CRU"}, default=ZERO_UUID),
    P("boot", "string", {HVM: "CRU"}, default="order=cd", validator="boot"),
    P("bootrom", "string", {BHYVE: "CRU"}, default="bios", validator="bootrom"),
    P("brand", "string", {ALL: "CR"}, required={ALL: "CR"}),
    P("com1", "string", {BHYVE: "CRU"}, validator="com"),
    P("com2", "string", {BHYVE: "CRU"}, validator="com"),
    P("cpu_cap", "integer", {ALL: "CRU"}, min=0, live=True),
    P("cpu_shares", "integer", {ALL: "CRU"}, min=0, default=100, adjust="cpu_shares",
      live=True),
    P("cpu_type", "string", {KVM: "CRU"}, default="qemu64"),
    P("create_only", "boolean", {ALL: "R"}),
    P("create_timestamp", "string", {ALL: "R"}),
    P("customer_metadata", "flat-object", {ALL: "CR"}, live=True),
    P("dataset_uuid", "uuid", {OS: "CR"}),
    P("datasets", "list", {ALL: "R"}),
    P("delegate_dataset", "boolean", {OS: "CR"}),
    P("disk_driver", "string", {HVM: "CRU"}),
    P("disks", "object-array", {HVM: "CR"}),
    P("disks.*.block_size", "integer", {HVM: "A"}, min=0),
    P("disks.*.boot", "boolean", {HVM: "AU"}, default=False),
    P("disks.*.compression", "string", {HVM: "AU"}),
    P("disks.*.dangerous_allow_shrink", "boolean", {BHYVE: "U"}),
    P("disks.*.guest_block_size", "string", {BHYVE: "AU"}, validator="guest_block_size"),
    P("disks.*.image_name", "string", {KVM: "AU"}),
    P("disks.*.image_size", "integer", {HVM: "A"}, min=0),
    P("disks.*.image_uuid", "uuid", {HVM: "A"}),
    P("disks.*.media", "string", {HVM: "AU"}, default="disk", validator="media"),
    P("disks.*.model", "string", {HVM: "AU"}, default="virtio", validator="disk_model"),
    P("disks.*.nocreate", "boolean", {HVM: "A"}),
    P("disks.*.notrim", "boolean", {BHYVE: "AU"}),
    P("disks.*.path", "string", {HVM: "AU"}),
    P("disks.*.pci_slot", "string", {BHYVE: "AU"}),
    P("disks.*.refreservation", "integer", {HVM: "AU"}, min=0),
    P("disks.*.size", "integer", {BHYVE: "AU", KVM: "A"}, min=0),
    P("disks.*.uuid", "uuid", {BHYVE: "AU"}),
    P("disks.*.zfs_filesystem", "string", {HVM: "R"}),
    P("disks.*.zpool", "string", {HVM: "A"}),
    P("dns_domain", "string", {OS: "CRU"}, default="local"),
    P("do_not_inventory", "boolean", {ALL: "CRU"}, default=False),
    P("docker", "boolean", {MINIMAL_LX: "CRU"}, default=False),
    P("filesystems", "object-array", {OS: "CR"}),
    P("filesystems.*.options", "list", {OS: "AU"}),
    P("filesystems.*.raw", "string", {OS: "AU"}),
    P("filesystems.*.source", "string", {OS: "AU"}),
    P("filesystems.*.target", "string", {OS: "AU"}),
    P("filesystems.*.type", "string", {OS: "AU"}),
    P("firewall_enabled", "boolean", {ALL: "CRU"}, default=False),
    P("flexible_disk_size", "integer", {BHYVE: "CRU"}, min=0),
    P("fs_allowed", "list", {OS: "CRU"}),
    P("hostname", "string", {ALL: "CRU"}),
    P("image_uuid", "uuid", {ALL: "CR"}, required={OS: "CR"}, validator="image"),
    P("indestructible_delegated", "boolean", {ALL: "CRU"}, default=False),
    P("indestructible_zoneroot", "boolean", {ALL: "CRU"}, default=False),
    P("init_name", "string", {OS: "CRU"}),
    P("internal_metadata", "flat-object", {ALL: "CR"}),
    P("internal_metadata_namespaces", "list", {ALL: "CRU"}, validator="namespaces"),
    P("kernel_version", "string", {LX: "CRU"}, required={LX: "CR"}),
    P("limit_priv", "list", {ALL: "CRU"}),
    P("maintain_resolvers", "boolean", {OS: "CRU"}, default=False),
    P("max_locked_memory", "integer", {ALL: "CRU"}, min=0, adjust="max_locked_memory",
      live=True),
    P("max_lwps", "integer", {ALL: "CRU"}, min=0, default=2000, live=True),
    P("max_msg_ids", "integer", {ALL: "CRU"}, min=0),
    P("max_physical_memory", "integer", {ALL: "CRU"}, min=0, adjust="max_physical_memory",
      live=True),
    P("max_sem_ids", "integer", {ALL: "CRU"}, min=0),
    P("max_shm_ids", "integer", {ALL: "CRU"}, min=0),
    P("max_shm_memory", "integer", {ALL: "CRU"}, min=0),
    P("max_swap", "integer", {ALL: "CRU"}, min=256, adjust="max_swap", live=True),
    P("mdata_exec_timeout", "integer", {OS: "C"}, min=0),
    P("nic_driver", "string", {HVM: "CRU"}),
    P("nics", "object-array", {ALL: "CR"}),
    P("nics.*.allow_dhcp_spoofing", "boolean", {ALL: "AU"}, default=False),
    P("nics.*.allow_ip_spoofing", "boolean", {ALL: "AU"}, default=False),
    P("nics.*.allow_mac_spoofing", "boolean", {ALL: "AU"}, default=False),
    P("nics.*.allow_restricted_traffic", "boolean", {ALL: "AU"}, default=False),
    P("nics.*.allow_unfiltered_promisc", "boolean", {HVM: "AU"}, default=False),
    P("nics.*.allowed_dhcp_cids", "list", {NOT_BHYVE: "AU"}, validator="dhcp_cids"),
    P("nics.*.allowed_ips", "list", {ALL: "AU"}),
    P("nics.*.blocked_outgoing_ports", "list", {ALL: "AU"}),
    P("nics.*.dhcp_server", "boolean", {ALL: "AU"}, default=False),
    P("nics.*.gateway", "string", {ALL: "AU"}),
    P("nics.*.gateways", "list", {ALL: "AU"}),
    P("nics.*.interface", "string", {ALL: "AU"}),
    P("nics.*.ip", "string", {ALL: "AU"}),
    P("nics.*.ips", "list", {ALL: "AU"}),
    P("nics.*.mac", "string", {ALL: "AU"}, validator="mac", adjust="mac"),
    P("nics.*.model", "string", {HVM: "AU"}, default="virtio", validator="nic_model"),
    P("nics.*.mtu", "integer", {ALL: "AU"}, min=576, max=9000),
    P("nics.*.netmask", "string", {ALL: "AU"}),
    P("nics.*.network_uuid", "uuid", {ALL: "AU"}),
    P("nics.*.nic_tag", "string", {ALL: "AU"}, required={ALL: "A"}, validator="nic_tag"),
    P("nics.*.primary", "boolean", {ALL: "AU"}, default=False),
    P("nics.*.vlan_id", "integer", {ALL: "AU"}, min=0, max=4095),
    P("nics.*.vrrp_primary_ip", "string", {ALL: "AU"}),
    P("nics.*.vrrp_vrid", "integer", {ALL: "AU"}, min=0, max=255),
    P("nowait", "boolean", {OS: "CR"}),
    P("owner_uuid", "string", {ALL: "CRU"}, default=ZERO_UUID),
    P("package_name", "string", {NOT_BHYVE: "CRU"}),
    P("package_version", "string", {NOT_BHYVE: "CRU"}),
    P("pci_devices", "object-array", {BHYVE: "CRU"}, ignored=PCI),
    P("pci_devices.*.path", "string", {BHYVE: "AU"}),
    P("pci_devices.*.pci_slot", "string", {BHYVE: "AU"}),
    P("qemu_extra_opts", "string", {KVM: "CRU"}),
    P("qemu_opts", "string", {KVM: "CRU"}, refused=QEMU_OPTS),
    P("quota", "integer", {ALL: "CRU"}, min=0, default={b: 1 if b == "bhyve" else 10
                                                       for b in BRANDS}, live=True),
    P("ram", "integer", {ALL: "CRU"}, min=0, default=256, live=True),
    P("remove_customer_metadata", "list", {ALL: "U"}),
    P("remove_disks", "list", {HVM: "U"}),
    P("remove_filesystems", "list", {ALL: "U"}),
    P("remove_internal_metadata", "list", {ALL: "U"}),
    P("remove_nics", "list", {ALL: "U"}),
    P("remove_pci_devices", "list", {BHYVE: "U"}),
    P("remove_routes", "list", {ALL: "U"}),
    P("remove_tags", "list", {ALL: "U"}),
    P("resolvers", "list", {ALL: "CRU"}, validator="ips"),
    P("restart_init", "boolean", {OS: "CRU"}, default=True),
    P("routes", "flat-object", {ALL: "CR"}),
    P("set_customer_metadata", "flat-object", {ALL: "U"}),
    P("set_internal_metadata", "flat-object", {ALL: "U"}),
    P("set_routes", "flat-object", {ALL: "U"}),
    P("set_tags", "flat-object", {ALL: "U"}),
    P("spice_opts", "string", {KVM: "CRU"}),
    P("spice_password", "string", {KVM: "CRU"}, live=True),
    P("spice_port", "integer", {KVM: "CRU"}, min=-1, max=65535),
    P("tags", "flat-object", {ALL: "CR"}),
    P("tmpfs", "integer", {OS: "CRU"}, min=0, keep_zero=True, adjust="tmpfs"),
    P("transition", "flat-object", {ALL: "R"}),
    P("update_disks", "object-array", {HVM: "U"}, check_as="disks"),
    P("update_filesystems", "object-array", {NOT_BHYVE: "U"}, check_as="filesystems"),
    P("update_nics", "object-array", {ALL: "U"}, check_as="nics"),
    P("update_pci_devices", "object-array", {BHYVE: "U"}, check_as="pci_devices"),
    P("uuid", "uuid", {ALL: "CR"}),
    P("v", "integer", {ALL: "R"}, min=0),
    P("vcpus", "integer", {HVM: "CRU"}, min=1, default=1),
    P("vga", "string", {KVM: "CRU"}),
    P("virtio_txburst", "integer", {KVM: "CRU"}, min=0),
    P("virtio_txtimer", "integer", {KVM: "CRU"}, min=0),
    P("vnc_password", "string", {HVM: "CRU"}, live=True),
    P("vnc_port", "integer", {HVM: "CRU"}, min=-1),
    P("zfs_data_compression", "string", {OS: "CRU"}, default="off"),
    P("zfs_data_recsize", "integer", {OS: "CRU"}, min=0),
    P("zfs_filesystem", "string", {ALL: "R"}),
    P("zfs_filesystem_limit", "integer", {ALL: "CRU"}, min=0, default="none"),
    P("zfs_io_priority", "integer", {ALL: "CRU"}, min=0, default=100),
    P("zfs_root_compression", "string", {ALL: "CRU"}, default="off"),
    P("zfs_root_recsize", "integer", {ALL: "CRU"}, min=0, default=131072),
    P("zfs_snapshot_limit", "integer", {ALL: "CRU"}, min=0, default="none"),
    P("zfs_storage_pool_name", "zpool", {NOT_BHYVE: "CR"}),
    P("zlog_max_size", "integer", {OS: "CRU"}, min=0, max=9223372036854775807),
    P("zone_dataset_uuid", "uuid", {HVM: "CR"}),
    P("zonename", "string", {ALL: "CR"}, adjust="zonename"),
    P("zpool", "zpool", {ALL: "CR"}, default=DEFAULT_POOL),
)

BY_NAME: dict[str, Prop] = {p.name: p for p in TABLE}


def prop(name: str) -> Prop | None:
    """The row of a top-level name (``alias``) or an element's (``nics.*.mtu``)."""
    return BY_NAME.get(name)


def element(array: str, key: str) -> Prop | None:
    """The row of ``key`` in an element of the array property ``array`` (``add_nics`` is
    checked as ``nics``)."""
    row = BY_NAME.get(array)
    base = row.check_as if row is not None and row.check_as else array
    return BY_NAME.get(f"{base}.*.{key}")


def top_level() -> tuple[Prop, ...]:
    return tuple(p for p in TABLE if ".*." not in p.name)


def markdown() -> str:
    """The page ``docs/vmadm-properties.md``: the table, one line per property."""
    lines = [
        "# vmadm properties",
        "",
        "Generated from `liveforge.vm.properties` (`python -m liveforge.vm.properties`); "
        "do not edit.",
        "Actions: C create, U update, A an element added to an array (a create payload's "
        "`nics`, `disks`, `filesystems`, or `add_*`), R receive. *live*: an update reaches a "
        "running VM at once. *adjust*: a default computed from other properties or a clamp "
        "(`liveforge.vm.defaults`).",
        "",
        "| property | type | brands: actions | required | range | default | check | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in TABLE:
        lines.append("| " + " | ".join((
            f"`{p.name}`", p.type, _groups(p.allowed), _groups(p.required), _range(p),
            _default(p), p.validator or "", _notes(p))) + " |")
    return "\n".join(lines) + "\n"


def _groups(per_brand: Mapping[str, str]) -> str:
    by_actions: dict[str, list[str]] = {}
    for brand in BRANDS:
        if brand in per_brand:
            by_actions.setdefault(per_brand[brand], []).append(brand)
    return "; ".join(f"{'/'.join(brands)}: {','.join(actions)}"
                     for actions, brands in by_actions.items())


def _range(p: Prop) -> str:
    if p.min is None and p.max is None:
        return ""
    return f"{'' if p.min is None else p.min}..{'' if p.max is None else p.max}"


def _default(p: Prop) -> str:
    import json

    if isinstance(p.default, dict):
        values: dict[str, list[str]] = {}
        for brand, value in p.default.items():
            values.setdefault(json.dumps(value), []).append(brand)
        text = "; ".join(f"{'/'.join(b)}: {v}" for v, b in values.items())
    else:
        text = "" if p.default is UNSET else json.dumps(p.default)
    if p.adjust:
        text = f"{text} (adjust: {p.adjust})" if text else f"adjust: {p.adjust}"
    return text


def _notes(p: Prop) -> str:
    notes = []
    if p.check_as:
        notes.append(f"elements checked as `{p.check_as}`")
    if p.keep_zero:
        notes.append("0 is a value")
    if p.live:
        notes.append("live")
    if p.refused:
        notes.append(f"refused here: {p.refused}")
    if p.ignored:
        notes.append(f"accepted, not applied (a warning at start): {p.ignored}")
    return ", ".join(notes)


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown())
