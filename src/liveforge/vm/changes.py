"""An update payload applied to a VM object: plain properties replaced (None removes one),
``set_X``/``remove_X`` on the maps, ``add_X``/``update_X``/``remove_X`` on the arrays (an
element is named by its identifying key: a NIC by its ``mac``, a disk by its ``path``, a
file system by its ``target``, a PCI device by its ``path``)."""

from __future__ import annotations

from typing import Any

from liveforge.vm import defaults
from liveforge.vm.errors import VmadmError

MAPS = {"customer_metadata", "internal_metadata", "tags", "routes"}
ARRAY_KEYS = {"nics": "mac", "disks": "path", "filesystems": "target", "pci_devices": "path"}


def apply(vm: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The VM object after a valid, normalised update payload."""
    out = dict(vm)
    brand = vm["brand"]
    plain = set()
    for key, value in update.items():
        verb, _, target = key.partition("_")
        if verb == "set" and target in MAPS:
            out[target] = {**out.get(target, {}), **value}
        elif verb == "remove" and target in MAPS:
            out[target] = {k: v for k, v in out.get(target, {}).items() if k not in value}
        elif verb in ("add", "update", "remove") and target in ARRAY_KEYS:
            out[target] = _array(verb, target, list(out.get(target, [])), value, brand)
        elif value is None:
            out.pop(key, None)
            plain.add(key)
        else:
            out[key] = value
            plain.add(key)
    defaults.readjust(out, brand, plain)
    return out


def _array(verb: str, array: str, items: list[dict[str, Any]], value: list[Any],
           brand: str) -> list[dict[str, Any]]:
    ident = ARRAY_KEYS[array]
    if verb == "remove":
        return [item for item in items if item.get(ident) not in value]
    if verb == "add":
        added = defaults.elements(array, value, brand, start=len(items))
        if array == "nics" and not any(n.get("primary") for n in items + added) and added:
            added[0]["primary"] = True
        return items + added
    out = []
    by_id = {u.get(ident): u for u in value}
    unknown = set(by_id) - {item.get(ident) for item in items}
    if unknown:
        raise VmadmError(f"update_{array}: no {array[:-1]} with {ident} "
                         f"{', '.join(sorted(str(u) for u in unknown))}")
    for item in items:
        out.append({**item, **by_id.get(item.get(ident), {})})
    return out
