"""``vmadm create [-f FILE]``: validate, strip unknown properties with a warning, apply the
table's defaults, make the VM's directory and storage, start it if ``autoboot``. A failed
create leaves nothing behind: no directory, no image hold."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from liveforge.vm import defaults, images
from liveforge.vm.brands import runtime
from liveforge.vm.errors import VmadmError
from liveforge.vm.net import nictags_file
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import say
from liveforge.vm.verbs.validate import brand_of, checked, refuse, unknown_nic_tags


def prepare(payload: dict[str, Any]) -> dict[str, Any]:
    """The VM object of a create payload (create's rules: warnings, then one-line errors)."""
    brand = brand_of(payload, None)
    result = checked(payload, brand, "create")
    for name in result.bad_properties:
        say(f'Warning: ignoring property "{name}": not a property of {brand} VMs on create')
    if "nics.*.nic_tag" in result.bad_values:
        tags = unknown_nic_tags(payload)
        if tags:
            raise VmadmError(f'Invalid nic tag "{tags[0]}" (the nic tags are those of '
                             f'{nictags_file()})')
    refuse(result)
    if result.bad_values:
        raise VmadmError(f"Invalid value(s) for: {','.join(result.bad_values)}")
    if result.missing_properties:
        raise VmadmError(f"Missing required properties: {','.join(result.missing_properties)}")
    vm = defaults.apply(result.payload, brand)
    if sum(1 for nic in vm.get("nics", []) if nic.get("primary")) > 1:
        raise VmadmError("Invalid value(s) for: nics.*.primary (more than one primary NIC)")
    vm["create_timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return vm


def create(store: VmStore, payload: dict[str, Any]) -> str:
    vm = prepare(payload)
    uuid = vm["uuid"]
    vmdir = store.make(vm, "provisioning")
    rt = runtime(vm["brand"])
    held = installed = False
    try:
        with store.locked(uuid):
            images.hold(vm)
            held = True
            before = json.dumps(vm, sort_keys=True)
            rt.install(vm, vmdir)
            installed = True
            if json.dumps(vm, sort_keys=True) != before:  # what install filled in (disk paths)
                store.save(vm)
            store.set_status(uuid, None)
            if vm["autoboot"]:
                config = dict(vm)
                rt.start(vm, vmdir)
                if vm != config:  # what the start used up (boot's once=)
                    store.save(vm)
    except BaseException:
        try:
            if installed:
                rt.destroy(vm, vmdir)
        finally:
            if held:
                images.release(vm)
            shutil.rmtree(vmdir, ignore_errors=True)
        raise
    say(f"Successfully created VM {uuid}")
    return uuid
