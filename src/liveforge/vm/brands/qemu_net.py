"""An HVM guest's NICs: one tap device each, on the bridge its ``nic_tag`` names.

The nic-tag file (JSON, tag -> bridge: ``{"admin": "br0"}``) is ``/etc/vmadm/nictags.json`` or
what ``VMADM_NICTAGS`` names; a bridge it names that does not exist is created (up, no address).
A NIC whose tag names no bridge (no file, or a tag it does not list) fails the start, as a
container's does (create and update refuse such a tag: validation checks it). QEMU creates NIC
``i``'s tap ``t<first 8 hex digits of the uuid>i<i>`` when it starts (as root) and it goes when
QEMU ends; the runtime puts it on its bridge while the guest is still paused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from liveforge.vm import net
from liveforge.vm.brands.qemu_argv import NIC_MODELS, Tap
from liveforge.vm.brands.qemu_disks import QemuError

SYS_NET = Path("/sys/class/net")


def nictags() -> tuple[Path, dict[str, str]]:
    """The nic-tag file and its tag -> bridge mapping ({} when there is no file): vm/net's."""
    return net.nictags_file(), net.nictags()


def taps(vm: dict[str, Any]) -> list[Tap]:
    """The VM's NICs as taps."""
    nics = vm.get("nics") or []
    if not nics:
        return []
    path, tags = nictags()
    prefix = "t" + str(vm["uuid"]).replace("-", "")[:8]
    found = []
    for i, nic in enumerate(nics):
        model = str(nic.get("model") or vm.get("nic_driver") or "virtio")
        if model not in NIC_MODELS:
            raise QemuError(f"nics.{i}.model: {model!r} is not one of "
                            f"{', '.join(sorted(NIC_MODELS))}")
        tag = nic.get("nic_tag")
        if tag not in tags:
            raise QemuError(f"nics.{i}.nic_tag: {tag!r} is not a nic tag of {path}")
        found.append(Tap(index=i, name=f"{prefix}i{i}", bridge=tags[tag],
                         mac=nic.get("mac"), model=model))
    return found


def attach(tap: Tap) -> None:
    """Put the (existing) tap on its bridge, making the bridge if need be, and bring it up."""
    commands = []
    if not (SYS_NET / tap.bridge).exists():
        commands += [f"link add name {tap.bridge} type bridge", f"link set {tap.bridge} up"]
    commands += [f"link set {tap.name} master {tap.bridge}", f"link set {tap.name} up"]
    proc = subprocess.run(["ip", "-batch", "-"], input="\n".join(commands) + "\n",
                          capture_output=True, text=True)
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or [f"status {proc.returncode}"]
        raise QemuError(f"nics.{tap.index}: tap {tap.name} on bridge {tap.bridge}: {detail[0]}")
