"""Create's defaults: the table's constant defaults, then its ``adjust`` rules (a default
computed from other properties, or a clamp), in the order ``ADJUST`` lists them.

``vm`` is a payload whose values validation has normalised; ``given`` the keys the payload
named (a default never overrides them, a clamp may)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from liveforge.vm.properties import OS, TABLE, UNSET

# the extra memory (MiB) an HVM guest's QEMU needs beyond its guest's RAM
HVM_OVERHEAD = {"kvm": 1024, "bhyve": 1280}
MIN_SWAP = 256
MAX_CPU_SHARES = 65535
# the locally administered, unicast MAC prefix of generated NIC addresses
MAC_PREFIX = (0x02, 0x08, 0x20)


def random_uuid() -> str:
    """A version 4 (random) UUID, as ``uuid.uuid4()`` makes (whose module imports ``platform``,
    a few milliseconds of every create's start)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _max_physical_memory(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    if "max_physical_memory" in given:
        if brand in OS and "ram" not in given:
            vm["ram"] = vm["max_physical_memory"]
        return
    vm["max_physical_memory"] = vm["ram"] + HVM_OVERHEAD.get(brand, 0)


def _max_locked_memory(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    vm["max_locked_memory"] = min(vm.get("max_locked_memory", vm["max_physical_memory"]),
                                  vm["max_physical_memory"])


def _max_swap(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    floor = max(vm["max_physical_memory"], MIN_SWAP)
    vm["max_swap"] = max(vm.get("max_swap", floor), floor)


def _tmpfs(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    vm.setdefault("tmpfs", vm["max_physical_memory"])


def _cpu_shares(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    vm["cpu_shares"] = min(vm["cpu_shares"], MAX_CPU_SHARES)


def _zonename(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    vm.setdefault("zonename", vm["uuid"])


def new_mac() -> str:
    """A random locally administered unicast MAC address."""
    return ":".join(f"{b:02x}" for b in MAC_PREFIX + tuple(os.urandom(3)))


def _mac(nic: dict[str, Any], brand: str, given: set[str]) -> None:
    nic.setdefault("mac", new_mac())


ADJUST: dict[str, Callable[[dict[str, Any], str, set[str]], None]] = {
    "max_physical_memory": _max_physical_memory,
    "max_locked_memory": _max_locked_memory,
    "max_swap": _max_swap,
    "tmpfs": _tmpfs,
    "cpu_shares": _cpu_shares,
    "zonename": _zonename,
    "mac": _mac,
}


def apply(vm: dict[str, Any], brand: str) -> dict[str, Any]:
    """The VM object of a valid, normalised create payload: a uuid, the table's defaults and
    adjustments, NIC defaults (a MAC, an interface name, exactly one primary)."""
    out = {k: v for k, v in vm.items() if v is not None}
    given = set(out)
    if "uuid" not in out:
        out["uuid"] = random_uuid()
    rows = [p for p in TABLE if ".*." not in p.name and p.allows(brand, "C")]
    for p in rows:
        default = p.default_for(brand)
        if default is not UNSET and p.name not in out:
            out[p.name] = default
    adjusted = {p.adjust for p in rows if p.adjust}
    for name, rule in ADJUST.items():
        if name in adjusted:
            rule(out, brand, given)
    for array in ("nics", "disks"):
        if any(p.name.startswith(f"{array}.*.") and p.allows(brand, "A") for p in TABLE):
            out[array] = elements(array, out.get(array, []), brand)
    if out.get("nics") and not any(nic.get("primary") for nic in out["nics"]):
        out["nics"][0]["primary"] = True
    return out


MEMORY = ("ram", "max_physical_memory", "max_locked_memory", "max_swap")


def readjust(vm: dict[str, Any], brand: str, given: set[str]) -> None:
    """After an update of ``given`` properties: the memory properties follow each other as
    on create (an OS VM's ram and max_physical_memory are one; the clamps hold)."""
    if given & {"ram", "max_physical_memory"}:
        ADJUST["max_physical_memory"](vm, brand, given)
    if given & set(MEMORY):
        ADJUST["max_locked_memory"](vm, brand, given)
        ADJUST["max_swap"](vm, brand, given)


def elements(array: str, items: list[dict[str, Any]], brand: str,
             start: int = 0) -> list[dict[str, Any]]:
    """Elements added to ``array`` with their defaults; a NIC is named ``net<index>``."""
    out = [_element(array, item, brand) for item in items]
    if array == "nics":
        for index, nic in enumerate(out, start):
            nic.setdefault("interface", f"net{index}")
    return out


def _element(array: str, item: dict[str, Any], brand: str) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if v is not None}
    for p in TABLE:
        if not p.name.startswith(f"{array}.*.") or not p.allows(brand, "A"):
            continue
        key = p.name.split(".*.", 1)[1]
        default = p.default_for(brand)
        if default is not UNSET and key not in out:
            out[key] = default
        if p.adjust:
            ADJUST[p.adjust](out, brand, set(out))
    return out

