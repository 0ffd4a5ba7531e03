"""Brands: how a VM runs. OS brands (joyent, joyent-minimal, lx) are containers; HVM brands
(kvm, bhyve) are QEMU guests. The verbs never branch on a brand's name: they call the
``Runtime`` its family gives.

A VM lives in its directory ``<VMADM_ROOT>/<uuid>/``: ``config.json`` (the VM object as
``vmadm get`` prints it, less the live fields) and ``run/`` (what a running VM leaves: its pid,
sockets); a runtime owns everything else in that directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

# brand -> family
FAMILIES = {"joyent": "container", "joyent-minimal": "container", "lx": "container",
            "kvm": "qemu", "bhyve": "qemu"}


class Runtime(Protocol):
    """What a brand family does with a VM. ``vm`` is the VM object (config.json's content)."""

    def install(self, vm: dict[str, Any], vmdir: Path) -> None:
        """Make the VM's storage (a container's root view, a guest's disks) from its images.
        Leaves nothing behind when it fails."""

    def start(self, vm: dict[str, Any], vmdir: Path) -> None:
        """Start the VM; returns once it runs, its process outliving vmadm. It may change ``vm``
        (what a start uses up: an HVM's ``boot`` loses its ``once=``): the caller saves it."""

    def state(self, vm: dict[str, Any], vmdir: Path) -> str:
        """``running``, ``stopped``, ``stopping`` or ``failed``, read from the real process."""

    def stop(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        """Stop it: a clean shut-down, SIGKILL after ``timeout`` seconds or at once if ``force``."""

    def kill(self, vm: dict[str, Any], vmdir: Path, signal: int) -> None:
        """Send ``signal`` to the VM's init (a container) or its QEMU process."""

    def update(self, vm: dict[str, Any], vmdir: Path, changed: dict[str, Any]) -> None:
        """Apply changed properties to a running VM where they can be (memory, cpu_cap, quota)."""

    def destroy(self, vm: dict[str, Any], vmdir: Path) -> None:
        """Remove the VM's storage; the VM is stopped."""

    def reboot(self, vm: dict[str, Any], vmdir: Path, timeout: float, force: bool) -> None:
        """Restart the running VM: a container's init is stopped (as ``stop``) and started
        again; a guest's machine is reset."""

    def console(self, vm: dict[str, Any], vmdir: Path) -> int:
        """Attach this terminal to the running VM (a guest's serial line, a login shell in a
        container) until it is left; ``vmadm console``'s exit status."""

    def info(self, vm: dict[str, Any], vmdir: Path, kinds: list[str]) -> dict[str, Any]:
        """A running VM's live information by kind (``vmadm info``; HVM VMs only: a
        container's runtime refuses)."""


def runtime(brand: str) -> Runtime:
    """The runtime of ``brand``'s family (the brand is valid: validation came first)."""
    if FAMILIES[brand] == "container":
        from liveforge.vm.brands.container import ContainerRuntime
        return ContainerRuntime()
    from liveforge.vm.brands.qemu import QemuRuntime
    return QemuRuntime()
