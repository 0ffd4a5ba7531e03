"""``console`` and ``info`` of a running VM: its runtime's (a guest's serial line or a
container's shell; a guest's QMP answers, which a container's runtime refuses)."""

from __future__ import annotations

import json
import sys
from typing import Any

from liveforge.vm.brands import Runtime, runtime
from liveforge.vm.errors import VmadmError
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import state


def _running(store: VmStore, uuid: str, verb: str) -> tuple[dict[str, Any], Runtime]:
    vm = store.load(uuid)
    now = state(store, vm)
    if now != "running":
        raise VmadmError(f"Cannot {verb} VM {uuid}: it is not 'running' (currently: {now})")
    return vm, runtime(vm["brand"])


def console(store: VmStore, uuid: str) -> int:
    vm, rt = _running(store, uuid, "console")
    return int(rt.console(vm, store.vmdir(uuid)))


def info(store: VmStore, uuid: str, types: list[str]) -> None:
    vm, rt = _running(store, uuid, "info")
    sys.stdout.write(json.dumps(rt.info(vm, store.vmdir(uuid), types), indent=2,
                                sort_keys=True) + "\n")
