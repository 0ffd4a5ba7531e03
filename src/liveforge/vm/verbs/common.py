"""What the verbs share: the state of a VM (the store's while it is not installed, else its
runtime's), the VM object as ``get`` prints it, the messages on stderr."""

from __future__ import annotations

import sys
from typing import Any

from liveforge.vm.brands import FAMILIES, runtime
from liveforge.vm.store import VmStore

# seconds a stop waits for a clean shut-down before SIGKILL, per brand family
STOP_TIMEOUT = {"container": 60.0, "qemu": 180.0}


def say(message: str) -> None:
    """vmadm's success and warning lines go to stderr."""
    print(message, file=sys.stderr, flush=True)


def state(store: VmStore, vm: dict[str, Any]) -> str:
    status = store.status(vm["uuid"])
    if status is not None:
        return status
    return runtime(vm["brand"]).state(vm, store.vmdir(vm["uuid"]))


def shown(store: VmStore, vm: dict[str, Any]) -> dict[str, Any]:
    """The VM object with its live fields: ``state`` and ``zonepath``."""
    return dict(vm, state=state(store, vm), zonepath=str(store.vmdir(vm["uuid"])))


def stop_timeout(vm: dict[str, Any]) -> float:
    return STOP_TIMEOUT[FAMILIES[vm["brand"]]]
