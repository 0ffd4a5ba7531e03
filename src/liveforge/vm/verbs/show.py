"""``list``, ``lookup``, ``get``: VM objects read from the store, states from the runtimes."""

from __future__ import annotations

import json
import sys
from typing import Any

from liveforge.util.cells import cell_text
from liveforge.vm import query
from liveforge.vm.errors import VmadmError
from liveforge.vm.store import VmStore
from liveforge.vm.verbs.common import shown


def _all(store: VmStore) -> list[dict[str, Any]]:
    return [shown(store, store.load(uuid)) for uuid in store.uuids()]


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def list_vms(store: VmStore, filters: list[str], fields: str | None, sort: str | None,
             header: bool, parsable: bool) -> None:
    keys = query.columns(fields)
    chosen = query.select(_all(store), query.parse_filters(filters))
    sys.stdout.write(query.table(query.sort_vms(chosen, sort), keys, header=header and
                                 not parsable, parsable=parsable))


def lookup(store: VmStore, filters: list[str], as_json: bool, unique: bool,
           fields: str | None) -> None:
    chosen = query.select(_all(store), query.parse_filters(filters))
    if unique and len(chosen) != 1:
        raise VmadmError(f"Requested unique lookup but found {len(chosen)} results.")
    keys = query.columns(fields) if fields else None
    if as_json:
        objects = [{k: query.field(vm, k) for k in keys} if keys else vm for vm in chosen]
        _json(objects[0] if unique else objects)
        return
    for vm in chosen:
        line = " ".join(cell_text(query.field(vm, k)) for k in keys) if keys else vm["uuid"]
        sys.stdout.write(line + "\n")


def get(store: VmStore, uuid: str) -> None:
    _json(shown(store, store.load(uuid)))
