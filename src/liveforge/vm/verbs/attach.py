"""``console`` and ``info``: what a running VM's runtime offers beyond the lifecycle. A
runtime that has a console (a guest's serial line, a container's shell) or live information
(a guest's QMP answers) implements ``console(vm, vmdir) -> exit status`` or
``info(vm, vmdir, types) -> dict``; for one that does not, the verb says so."""

from __future__ import annotations

import json
import sys

from liveforge.vm.brands import runtime
from liveforge.vm.errors import VmadmError
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import state


def _running(store: VmStore, uuid: str, verb: str):  # type: ignore[no-untyped-def]
    vm = store.load(uuid)
    now = state(store, vm)
    if now != "running":
        raise VmadmError(f"Cannot {verb} VM {uuid}: it is not 'running' (currently: {now})")
    rt = runtime(vm["brand"])
    if not hasattr(rt, verb):
        raise VmadmError(f"{verb} is not available for {vm['brand']} VMs")
    return vm, rt


def console(store: VmStore, uuid: str) -> int:
    vm, rt = _running(store, uuid, "console")
    return int(rt.console(vm, store.vmdir(uuid)))


def info(store: VmStore, uuid: str, types: list[str]) -> None:
    vm, rt = _running(store, uuid, "info")
    sys.stdout.write(json.dumps(rt.info(vm, store.vmdir(uuid), types), indent=2,
                                sort_keys=True) + "\n")
