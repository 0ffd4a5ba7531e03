"""Payload validation against the property table: every problem of a payload at once.

``check`` sorts each key of a create or update payload into ``bad_properties`` (unknown, or
not allowed for this brand and action), ``bad_values`` (wrong type or range, a failed check:
an element's property named with a wildcard, ``nics.*.mtu``, a disk's source rule with its
index, ``disks.0.image_size``, a value of a property this runtime refuses: ``refused``) and
``missing_properties`` (the brand's required list), and
gives the payload with its good values normalised (``"true"`` -> true, ``"1024"`` -> 1024, a
comma string -> a list, ``''``/null for an integer -> None: unset)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from liveforge.img.manifest import Manifest, is_uuid
from liveforge.vm.properties import BRANDS, BY_NAME, IMAGE_TYPES, TABLE, Prop, element, prop

# an image lookup: the installed image's manifest, or None
Images = Callable[[str], Manifest | None]
# the host's nic tags (read when a payload has a NIC)
NicTags = Callable[[], Collection[str]]


class _Bad:
    def __repr__(self) -> str:
        return "BAD"


BAD: Any = _Bad()

INTEGER_RE = re.compile(r"-?\d+\Z")
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z", re.I)
ZPOOL_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*\Z")
BOOT_RE = re.compile(r"order=[a-z]+(,once=[a-z]+)?\Z")
CID_RE = re.compile(r"(0x)?([0-9a-f]{2}){2,255}\Z", re.I)
BLOCK_SIZES = {512 << n for n in range(6)}  # 512 .. 16384


def _ips(value: list[str]) -> bool:
    try:
        for item in value:
            ipaddress.ip_address(item)
    except ValueError:
        return False
    return True


def _guest_block_size(value: str) -> bool:
    parts = value.split("/")
    return len(parts) <= 2 and all(p.isdigit() and int(p) in BLOCK_SIZES for p in parts)


def _com(value: str) -> bool:
    """A serial port: the console, or an absolute path (without ``..``) in the VM's root."""
    parts = value.split("/")
    return value == "/dev/zconsole" or (
        value.startswith("/") and ".." not in parts and bool(parts[-1]) and "\0" not in value)


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda value: value in choices


# the table's ``validator`` names -> a check of a value of the right type (image_uuid's,
# "image", needs the image store and nic_tag's the host's nic tags: ``check`` does those)
VALIDATORS: dict[str, Callable[[Any], bool]] = {
    "boot": lambda value: BOOT_RE.match(value) is not None,
    "bootrom": _one_of("bios", "uefi"),
    "com": _com,
    "media": _one_of("disk", "cdrom"),
    "disk_model": _one_of("virtio", "ide", "scsi", "ahci", "nvme"),
    "nic_model": _one_of("virtio", "e1000", "rtl8139"),
    "guest_block_size": _guest_block_size,
    "mac": lambda value: MAC_RE.match(value) is not None,
    "ips": _ips,
    "dhcp_cids": lambda value: all(CID_RE.match(v) for v in value),
    "namespaces": lambda value: all(v and ":" not in v for v in value),
    "image": lambda value: True,
    "nic_tag": lambda value: True,
}


def value_of(p: Prop, value: Any) -> Any:
    """``value`` normalised for the property ``p``; ``BAD`` when it is not a value of its
    type and range (object arrays are checked element by element elsewhere); None: unset."""
    t = p.type
    if t == "integer":
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return BAD
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and INTEGER_RE.match(value.strip()):
            value = int(value)
        if not isinstance(value, int):
            return BAD
        if (p.min is not None and value < p.min) or (p.max is not None and value > p.max):
            return BAD
    elif t == "boolean":
        value = {"true": True, "false": False}.get(value, value) \
            if isinstance(value, str) else value
        if not isinstance(value, bool):
            return BAD
    elif t == "uuid":
        if not (isinstance(value, str) and is_uuid(value.lower())):
            return BAD
        value = value.lower()
    elif t == "string":
        if not isinstance(value, str):
            return BAD
    elif t == "zpool":
        if not (isinstance(value, str) and ZPOOL_RE.match(value)):
            return BAD
    elif t == "list":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v] if value else []
        elif isinstance(value, list) and all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool)
                and "," not in str(v) for v in value):
            value = [str(v) for v in value]
        else:
            return BAD
    elif t == "flat-object":
        if not (isinstance(value, dict) and all(
                isinstance(v, (str, int, float, bool)) for v in value.values())):
            return BAD
    elif t == "object-array":
        if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return BAD
    if p.validator and not VALIDATORS[p.validator](value):
        return BAD
    return value


@dataclass(frozen=True, slots=True)
class Result:
    """What ``check`` found: the three lists (sorted) and the payload's good part,
    normalised."""

    payload: dict[str, Any]
    bad_values: tuple[str, ...]
    bad_properties: tuple[str, ...]
    missing_properties: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.bad_values or self.bad_properties or self.missing_properties)

    def errors(self) -> dict[str, list[str]]:
        """The error object ``validate`` prints: all three keys, in this order."""
        return {"bad_values": list(self.bad_values),
                "bad_properties": list(self.bad_properties),
                "missing_properties": list(self.missing_properties)}


class _Found:
    __slots__ = ("values", "properties", "missing", "nic_tags", "_tags")

    def __init__(self, nic_tags: NicTags) -> None:
        self.values: set[str] = set()
        self.properties: set[str] = set()
        self.missing: set[str] = set()
        self.nic_tags = nic_tags
        self._tags: Collection[str] | None = None

    def is_nic_tag(self, tag: str) -> bool:
        if self._tags is None:
            self._tags = self.nic_tags()
        return tag in self._tags


def check(payload: dict[str, Any], brand: str, action: str, images: Images,
          nic_tags: NicTags) -> Result:
    """Check a ``create`` or ``update`` payload of a ``brand`` VM (a brand of BRANDS); a NIC's
    ``nic_tag`` must be one of ``nic_tags()``."""
    assert brand in BRANDS and action in ("create", "update")
    letter = "C" if action == "create" else "U"
    found = _Found(nic_tags)
    out: dict[str, Any] = {}
    for key, raw in payload.items():
        p = prop(key)
        if p is None or ".*." in key or not p.allows(brand, letter):
            found.properties.add(key)
            continue
        value = value_of(p, raw)
        if value is BAD or (p.refused and value not in (None, "")):
            found.values.add(key)
            continue
        if p.type == "object-array":
            value = _elements(key, value, brand, found)
        elif p.validator == "image" and value is not None \
                and not _image_ok(images(value), IMAGE_TYPES[brand]):
            found.values.add(key)
            continue
        out[key] = value
    for p in TABLE:
        if ".*." not in p.name and p.requires(brand, letter) and out.get(p.name) is None \
                and p.name not in found.values:
            found.missing.add(p.name)
    for key in ("disks", "add_disks"):
        if isinstance(out.get(key), list):
            _disk_sources(key, out[key], brand, images, found)
    return Result(out, tuple(sorted(found.values)), tuple(sorted(found.properties)),
                  tuple(sorted(found.missing)))


def _elements(array: str, items: list[dict[str, Any]], brand: str,
              found: _Found) -> list[dict[str, Any]]:
    """The elements of an array property, each key checked against ``<array>.*.<key>``: in
    a create payload and ``add_*`` an element is added (``A``), in ``update_*`` updated."""
    letter = "U" if array.startswith("update_") else "A"
    base = BY_NAME[array].check_as or array
    out = []
    for item in items:
        good: dict[str, Any] = {}
        for key, raw in item.items():
            p = element(array, key)
            name = f"{array}.*.{key}"
            if p is None or not p.allows(brand, letter):
                found.properties.add(name)
                continue
            value = value_of(p, raw)
            if value is BAD or (p.validator == "nic_tag" and not found.is_nic_tag(value)):
                found.values.add(name)
                continue
            good[key] = value
        for p in TABLE:
            if not (p.name.startswith(f"{base}.*.") and p.requires(brand, letter)):
                continue
            sub = p.name.split(".*.", 1)[1]
            if good.get(sub) is None and f"{array}.*.{sub}" not in found.values:
                found.missing.add(f"{array}.*.{sub}")
        out.append(good)
    return out


def _image_ok(manifest: Manifest | None, types: tuple[str, ...]) -> bool:
    return manifest is not None and manifest.type in types


def _disk_sources(array: str, disks: list[dict[str, Any]], brand: str, images: Images,
                  found: _Found) -> None:
    """A disk's source, named with its index: an image (installed, a zvol; ``image_size``,
    if given, the image's; ``size`` not below it) or a blank disk of ``size`` (a CD-ROM, a
    ``nocreate`` disk or one with a ``path`` needs none)."""
    for index, disk in enumerate(disks):
        at = f"{array}.{index}."
        image_uuid = disk.get("image_uuid")
        if image_uuid is not None:
            manifest = images(image_uuid)
            if not _image_ok(manifest, IMAGE_TYPES[brand]):
                found.values.add(at + "image_uuid")
                continue
            assert manifest is not None
            image_size = manifest.data.get("image_size")
            if disk.get("image_size") is not None and disk["image_size"] != image_size:
                found.values.add(at + "image_size")
            if disk.get("size") is not None and isinstance(image_size, int) \
                    and disk["size"] < image_size:
                found.values.add(at + "size")
        else:
            if disk.get("image_size") is not None:
                found.values.add(at + "image_size")
            blank_ok = disk.get("media") == "cdrom" or disk.get("nocreate") or disk.get("path")
            if disk.get("size") is None and not blank_ok:
                found.missing.add(at + "size")

