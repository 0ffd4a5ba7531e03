"""``start``, ``stop``, ``reboot``, ``kill``: the VM's runtime does it, under the VM's lock.

A ``failed`` VM (its last start failed, or its guest crashed) can be started again, as the real
tool lets one retry, and stopped: its process, if any, ends and it is ``stopped``."""

from __future__ import annotations

from liveforge.vm.brands import runtime
from liveforge.vm.errors import VmadmError
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import say, state, stop_timeout


def start(store: VmStore, uuid: str) -> None:
    with store.locked(uuid):
        vm = store.load(uuid)
        now = state(store, vm)
        if now == "running":
            say(f"VM {uuid} is already 'running'")
            return
        if store.status(uuid) is not None:  # not installed: nothing to start
            raise VmadmError(f"Cannot start VM {uuid}: its state is '{now}'")
        before = dict(vm)
        runtime(vm["brand"]).start(vm, store.vmdir(uuid))
        if vm != before:  # what the start used up (boot's once=)
            store.save(vm)
    say(f"Successfully started VM {uuid}")


def stop(store: VmStore, uuid: str, force: bool, timeout: float | None) -> None:
    with store.locked(uuid):
        vm = store.load(uuid)
        now = state(store, vm)
        if now not in ("running", "stopping", "failed") or store.status(uuid) is not None:
            say(f"VM {uuid} is already not 'running' (currently: {now})")
            return
        wait = stop_timeout(vm) if timeout is None else timeout
        runtime(vm["brand"]).stop(vm, store.vmdir(uuid), wait, force)
    say(f"Successfully completed stop for VM {uuid}")


def reboot(store: VmStore, uuid: str, force: bool) -> None:
    with store.locked(uuid):
        vm = store.load(uuid)
        now = state(store, vm)
        if now != "running":
            raise VmadmError(f"Cannot reboot VM {uuid}: it is not 'running' (currently: {now})")
        runtime(vm["brand"]).reboot(vm, store.vmdir(uuid), stop_timeout(vm), force)
    say(f"Successfully completed reboot for VM {uuid}")


def kill(store: VmStore, uuid: str, signal: int) -> None:
    with store.locked(uuid):
        vm = store.load(uuid)
        now = state(store, vm)
        if now not in ("running", "stopping"):
            raise VmadmError(f"Cannot kill VM {uuid}: it is not 'running' (currently: {now})")
        runtime(vm["brand"]).kill(vm, store.vmdir(uuid), signal)
    say(f"Successfully sent signal {signal} to VM {uuid}")
