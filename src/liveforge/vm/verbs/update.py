"""``vmadm update UUID [-f FILE | key=value...]``: validate as an update of the VM's brand,
persist, and hand the live properties that changed to a running VM's runtime. Changed disks
(``add_disks``, ``update_disks``, ``remove_disks``) reach an installed VM's runtime, running or
not, before the new object is saved: the paths it fills in are saved with it, and a change it
refuses is not saved at all."""

from __future__ import annotations

import time
from typing import Any

from liveforge.vm import changes
from liveforge.vm.brands import runtime
from liveforge.vm.errors import VmadmError
from liveforge.vm.properties import prop
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import say, state
from liveforge.vm.verbs.validate import checked, refuse


def update(store: VmStore, uuid: str, payload: dict[str, Any]) -> None:
    with store.locked(uuid):
        vm = store.load(uuid)
        result = checked(payload, vm["brand"], "update")
        for name in result.bad_properties:
            say(f'Warning: ignoring property "{name}": not updatable for {vm["brand"]} VMs')
        refuse(result)
        if result.bad_values:
            raise VmadmError(f"Invalid value(s) for: {','.join(result.bad_values)}")
        new = changes.apply(vm, result.payload)
        changed = {k: new.get(k) for k in set(vm) | set(new) if vm.get(k) != new.get(k)}
        installed = store.status(uuid) is None
        if "disks" in changed and installed:  # before saving: a refusal changes nothing
            runtime(new["brand"]).update(new, store.vmdir(uuid), {"disks": new["disks"]})
        if changed:
            new["last_modified"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            store.save(new)
        live = {k: v for k, v in changed.items() if (p := prop(k)) is not None and p.live}
        if live and installed and state(store, new) == "running":
            runtime(new["brand"]).update(new, store.vmdir(uuid), live)
    say(f"Successfully updated VM {uuid}")
