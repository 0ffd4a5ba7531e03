"""The images a VM is built from, in imgadm's store: looked up by validation, held while a VM
uses them (imgadm refuses to delete a held image), released when the VM goes."""

from __future__ import annotations

from typing import Any

from liveforge.img.config import DEFAULT_POOL
from liveforge.img.manifest import Manifest


def used_by(vm: dict[str, Any]) -> list[str]:
    """The image uuids a VM is built on: its ``image_uuid`` and its disks'."""
    found = [vm["image_uuid"]] if vm.get("image_uuid") else []
    found += [d["image_uuid"] for d in vm.get("disks", []) if d.get("image_uuid")]
    return sorted(set(found))


def lookup(pool: str = DEFAULT_POOL):  # type: ignore[no-untyped-def]
    """A function: an image uuid -> its manifest when it is installed in ``pool``, else None
    (the store is opened at the first look-up: a payload naming no image needs none)."""
    def installed(uuid: str) -> Manifest | None:
        from liveforge.img.errors import ImgadmError
        from liveforge.img.store import ImageStore

        try:
            got = ImageStore.from_env().get(uuid, pool=pool)
        except ImgadmError as exc:
            if exc.code != "ConfigError":   # a pool imgadm does not know holds no image
                raise
            return None
        return got.manifest if got is not None else None
    return installed


def hold(vm: dict[str, Any]) -> None:
    """Hold every image ``vm`` is built on (``imgadm delete`` refuses them)."""
    _holds(vm, release=False)


def release(vm: dict[str, Any]) -> None:
    """Drop ``vm``'s holds on its images."""
    _holds(vm, release=True)


def _holds(vm: dict[str, Any], *, release: bool) -> None:
    uuids = used_by(vm)
    if not uuids:
        return
    from liveforge.img.store import ImageStore

    store = ImageStore.from_env()
    change = store.release if release else store.hold
    for uuid in uuids:
        change(uuid, vm.get("zpool", DEFAULT_POOL), vm["uuid"])
