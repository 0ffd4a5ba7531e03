"""``vmadm delete UUID``: stop the VM, remove its storage, release its images, remove its
directory."""

from __future__ import annotations

import shutil

from liveforge.vm import images
from liveforge.vm.brands import runtime
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import say, state


def delete(store: VmStore, uuid: str) -> None:
    with store.locked(uuid):
        vm = store.load(uuid)
        vmdir = store.vmdir(uuid)
        status = store.status(uuid)
        if status != "configured":
            rt = runtime(vm["brand"])
            if state(store, vm) in ("running", "stopping"):
                rt.stop(vm, vmdir, 0, True)
            rt.destroy(vm, vmdir)
        images.release(vm)
        shutil.rmtree(vmdir)
    say(f"Successfully deleted VM {uuid}")
