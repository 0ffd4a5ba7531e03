"""VM networking: nic tags name host bridges; a container's NIC is a veth pair whose host end
is on its tag's bridge and whose other end is in the container's network namespace.

The nic-tag file is JSON, ``{"admin": "br0", "external": "br1"}`` (tag -> bridge), at
``/etc/vmadm/nictags.json`` or where ``VMADM_NICTAGS`` says. A NIC whose tag it does not name is
an error. A named bridge that does not exist is created (up, no address): the file saying so is
the operator's intent, and VMs on one tag reach each other without more set-up. The host end of
NIC ``i`` of VM ``u`` is ``v<first 8 hex digits of u>i<i>``; inside, the NIC is its
``interface`` (``net<i>`` by default).

Per NIC: ``ips`` (CIDR addresses; ``dhcp`` and ``addrconf`` are not supported: a warning),
``gateways`` (the first becomes the default route), ``mtu`` (both ends), ``mac``, ``vlan_id``
(the host end's untagged VLAN on the bridge, when the bridge filters VLANs; a warning when it
does not)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from liveforge.util.errors import LiveforgeError
from liveforge.vm import linux

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any

DEFAULT_NICTAGS = "/etc/vmadm/nictags.json"
SYS_NET = Path("/sys/class/net")


class NetworkError(LiveforgeError):
    """A NIC cannot be set up (its tag, its bridge, ``ip``)."""


@dataclass(frozen=True, slots=True)
class Nic:
    index: int
    host: str  # the host end's name
    inside: str  # the name in the VM
    bridge: str
    ips: tuple[str, ...]
    gateway: str | None
    mtu: int | None
    mac: str | None
    vlan_id: int | None


def nictags_file() -> Path:
    return Path(os.environ.get("VMADM_NICTAGS") or DEFAULT_NICTAGS)


def nictags() -> dict[str, str]:
    """The tag -> bridge mapping ({} when the file does not exist)."""
    path = nictags_file()
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise NetworkError(f"{path}: not a JSON object of nic tag -> bridge: {exc}") from None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()):
        raise NetworkError(f"{path}: not a JSON object of nic tag -> bridge name")
    return data


def host_prefix(uuid: str) -> str:
    return "v" + uuid.replace("-", "")[:8]


def plan(vm: dict[str, Any]) -> tuple[list[Nic], list[str]]:
    """The VM's NICs as they will be set up, and the warnings (unsupported settings)."""
    nics: list[Nic] = []
    warnings: list[str] = []
    raw = vm.get("nics") or []
    if not raw:
        return nics, warnings
    tags = nictags()
    prefix = host_prefix(vm["uuid"])
    for i, nic in enumerate(raw):
        tag = nic.get("nic_tag")
        if tag not in tags:
            raise NetworkError(f"nics.{i}.nic_tag: {tag!r} is not a nic tag of {nictags_file()}")
        ips = nic.get("ips")
        if ips is None:
            ips = [nic["ip"]] if nic.get("ip") else []
            if ips and nic.get("netmask") and "/" not in ips[0]:
                bits = sum(bin(int(b)).count("1") for b in str(nic["netmask"]).split("."))
                ips = [f"{ips[0]}/{bits}"]
        if isinstance(ips, str):
            ips = [s for s in ips.split(",") if s]
        static = []
        for ip in ips:
            if ip in ("dhcp", "addrconf"):
                warnings.append(f"nics.{i}.ips: {ip} is not supported by containers; "
                                f"the NIC has no address from it")
            else:
                static.append(ip if "/" in ip else f"{ip}/32")
        gateways = nic.get("gateways")
        if gateways is None:
            gateways = [nic["gateway"]] if nic.get("gateway") else []
        if isinstance(gateways, str):
            gateways = [s for s in gateways.split(",") if s]
        vlan = int(nic["vlan_id"]) if nic.get("vlan_id") else None
        nics.append(Nic(index=i, host=f"{prefix}i{i}", inside=nic.get("interface") or f"net{i}",
                        bridge=tags[tag], ips=tuple(static),
                        gateway=gateways[0] if gateways else None,
                        mtu=int(nic["mtu"]) if nic.get("mtu") else None,
                        mac=nic.get("mac"), vlan_id=vlan))
    return nics, warnings


def _ip_batch(commands: list[str], netns_pid: int | None = None) -> None:
    """``ip -batch`` of ``commands``, in the network namespace of ``netns_pid`` if given (the
    child joins it between fork and exec)."""
    if netns_pid is None:
        proc = subprocess.run(["ip", "-batch", "-"], input="\n".join(commands) + "\n",
                              capture_output=True, text=True)
    else:
        try:
            fd = os.open(f"/proc/{netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetworkError(f"the VM's network namespace is gone: {exc.strerror}") from None
        try:
            proc = subprocess.run(["ip", "-batch", "-"], input="\n".join(commands) + "\n",
                                  capture_output=True, text=True, pass_fds=(fd,),
                                  preexec_fn=lambda: linux.setns(fd, linux.CLONE_NEWNET))
        finally:
            os.close(fd)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise NetworkError(f"ip: {lines[-1] if lines else f'exit status {proc.returncode}'}")


def _vlan_filtering(bridge: str) -> bool:
    try:
        return (SYS_NET / bridge / "bridge" / "vlan_filtering").read_text().strip() == "1"
    except OSError:
        return False


def attach(vm: dict[str, Any], pid: int) -> list[str]:
    """Give the network namespace of process ``pid`` the VM's NICs; the warnings."""
    nics, warnings = plan(vm)
    if not nics:
        return warnings
    host: list[str] = []
    inside: list[str] = []
    made: set[str] = set()
    for nic in nics:
        if not (SYS_NET / nic.bridge).exists() and nic.bridge not in made:
            host += [f"link add {nic.bridge} type bridge", f"link set {nic.bridge} up"]
            made.add(nic.bridge)
        peer = f"{nic.host}p"
        mtu = f" mtu {nic.mtu}" if nic.mtu else ""
        host += [f"link add {nic.host}{mtu} type veth peer name {peer}{mtu}",
                 f"link set {peer} netns {pid}",
                 f"link set {nic.host} master {nic.bridge} up"]
        mac = f" address {nic.mac}" if nic.mac else ""
        inside += [f"link set {peer} name {nic.inside}{mac}"]
        inside += [f"addr add {ip} dev {nic.inside}" for ip in nic.ips]
        inside += [f"link set {nic.inside} up"]
        if nic.gateway:
            inside += [f"route add default via {nic.gateway} dev {nic.inside}"]
    _ip_batch(host)
    bridge_cmds = []
    for nic in nics:
        if nic.vlan_id:
            if _vlan_filtering(nic.bridge):
                bridge_cmds += [f"vlan del dev {nic.host} vid 1",
                                f"vlan add dev {nic.host} vid {nic.vlan_id} pvid untagged"]
            else:
                warnings.append(f"nics.{nic.index}.vlan_id: bridge {nic.bridge} does not filter "
                                f"VLANs (vlan_filtering 0); vlan_id {nic.vlan_id} is not "
                                f"enforced")
    if bridge_cmds:
        proc = subprocess.run(["bridge", "-batch", "-"], input="\n".join(bridge_cmds) + "\n",
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise NetworkError(f"bridge: {proc.stderr.strip()}")
    _ip_batch(inside, pid)
    return warnings


def host_ends(uuid: str) -> list[str]:
    """The host ends of the VM's NICs that exist now."""
    prefix = host_prefix(uuid) + "i"
    try:
        return sorted(n for n in os.listdir(SYS_NET) if n.startswith(prefix))
    except OSError:
        return []


def detach(uuid: str) -> None:
    """Remove what is left of the VM's veth pairs on the host (none once its namespace is
    gone: a veth pair goes with either end)."""
    ends = host_ends(uuid)
    if ends:
        subprocess.run(["ip", "-force", "-batch", "-"],
                       input="".join(f"link del {n}\n" for n in ends), capture_output=True,
                       text=True)
