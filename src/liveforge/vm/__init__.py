"""vmadm, zlogin and json: VMs from JSON payloads (containers and QEMU guests).

Imports ``liveforge.util`` and ``liveforge.img`` (a VM's root is an installed image)."""
