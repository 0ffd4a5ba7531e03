"""``list`` and ``lookup``: a VM's fields (the table's, and the computed ``type``, ``ram``,
``state``), filters (``k=v``, ``k=~regex``, ``nics.*.ip=...``, ``tags.X=...``) and the list
table (columns, widths, sort)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from liveforge.util.cells import cell_text
from liveforge.vm.errors import VmadmError
from liveforge.vm.properties import ARRAYS, HVM, prop

TYPE_NAMES = {"joyent": "OS", "joyent-minimal": "OS", "lx": "LX", "kvm": "KVM", "bhyve": "BHYV"}
DEFAULT_COLUMNS = ("uuid", "type", "ram", "state", "alias")
DEFAULT_SORT = ("ram", "uuid")
MIN_WIDTHS = {"uuid": 36, "type": 4, "ram": 7, "state": 16, "alias": 10}
# the maps whose keys a filter or column may name: tags.role
MAPS = ("tags", "customer_metadata", "internal_metadata", "routes")
# fields a VM object has that are no payload property (vmadm writes them)
WRITTEN = ("state", "type", "zonepath", "create_timestamp", "last_modified", "zone_state")


def field(vm: dict[str, Any], key: str) -> Any:
    """The value of ``key`` in a VM object: a property, ``type``, ``ram`` (an OS VM's is its
    max_physical_memory), ``tags.X``; ``nics.*.ip`` gives the list of every NIC's."""
    if key == "type":
        return TYPE_NAMES.get(vm.get("brand", ""), "-")
    if key == "ram" and vm.get("brand") not in HVM:
        return vm.get("max_physical_memory", vm.get("ram"))
    head, _, rest = key.partition(".")
    if rest and head in ARRAYS:
        index, _, sub = rest.partition(".")
        items = vm.get(head) or []
        if index == "*":
            return [item.get(sub) for item in items if isinstance(item, dict)]
        if index.isdigit() and int(index) < len(items):
            return items[int(index)].get(sub)
        return None
    if rest and head in MAPS:
        return (vm.get(head) or {}).get(rest)
    return vm.get(key)


def valid_key(key: str) -> bool:
    """Whether a filter, column or sort key names something a VM can have."""
    head, _, rest = key.partition(".")
    if rest and head in ARRAYS:
        index, _, sub = rest.partition(".")
        return (index == "*" or index.isdigit()) and prop(f"{head}.*.{sub}") is not None
    if rest and head in MAPS:
        return True
    return key in WRITTEN or (prop(key) is not None and "." not in key)


@dataclass(frozen=True, slots=True)
class Filter:
    key: str
    value: str
    regex: re.Pattern[str] | None

    def matches(self, vm: dict[str, Any]) -> bool:
        got = field(vm, self.key)
        values = got if self.key.split(".")[1:2] == ["*"] else [got]
        for one in values or []:
            if one is None:
                continue
            shown = cell_text(one)
            if self.regex is not None and self.regex.search(shown):
                return True
            if self.regex is None and shown == self.value:
                return True
        return False


def parse_filters(args: Sequence[str]) -> list[Filter]:
    """``k=v`` (exact, on the value's text) and ``k=~regex`` (case-insensitive)."""
    filters = []
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or not valid_key(key):
            raise VmadmError(f'Invalid filter key: "{key}"')
        regex = None
        if value.startswith("~"):
            try:
                regex = re.compile(value[1:], re.IGNORECASE)
            except re.error as exc:
                raise VmadmError(f'Invalid filter regex for "{key}": {exc}') from None
        filters.append(Filter(key, value, regex))
    return filters


def select(vms: list[dict[str, Any]], filters: list[Filter]) -> list[dict[str, Any]]:
    return [vm for vm in vms if all(f.matches(vm) for f in filters)]


def columns(spec: str | None, default: Sequence[str] = DEFAULT_COLUMNS) -> list[str]:
    keys = spec.split(",") if spec else list(default)
    for key in keys:
        if not valid_key(key):
            raise VmadmError(f'Invalid field: "{key}"')
    return keys


def sort_vms(vms: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    """Sorted by the ``-s`` keys (``-key`` descending), numbers as numbers."""
    keys = spec.split(",") if spec else list(DEFAULT_SORT)
    out = list(vms)
    for key in reversed(keys):
        descending = key.startswith("-")
        name = key.lstrip("-")
        if not valid_key(name):
            raise VmadmError(f'Invalid sort key: "{name}"')
        out.sort(key=_sort_key(name), reverse=descending)
    return out


def _sort_key(name: str) -> Callable[[dict[str, Any]], tuple[int, float, str]]:
    def key(vm: dict[str, Any]) -> tuple[int, float, str]:
        value = field(vm, name)
        if value is None:
            return (1, 0.0, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, float(value), "")
        return (0, 0.0, cell_text(value))
    return key


def table(vms: list[dict[str, Any]], keys: list[str], header: bool = True,
          parsable: bool = False) -> str:
    """The list output: columns two spaces apart, as wide as their minimum, header or widest
    cell, lines right-trimmed; ``parsable``: ``:``-separated (``\\:`` inside a value), no
    header."""
    rows = [[cell_text(field(vm, key)) for key in keys] for vm in vms]
    if parsable:
        return "".join(":".join(c.replace(":", "\\:") for c in row) + "\n" for row in rows)
    heads = [key.upper() for key in keys]
    widths = [max([MIN_WIDTHS.get(key, 0), len(head)] + [len(row[i]) for row in rows])
              for i, (key, head) in enumerate(zip(keys, heads, strict=True))]
    lines = ([heads] if header else []) + rows
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                   + "\n" for line in lines)
