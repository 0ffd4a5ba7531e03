"""``vmadm validate create|update [BRAND] [-f FILE]``: the error object or ``VALID``."""

from __future__ import annotations

from typing import Any

from liveforge.img.config import DEFAULT_POOL
from liveforge.vm import images
from liveforge.vm.errors import InvalidPayload, VmadmError
from liveforge.vm.properties import BRANDS, prop
from liveforge.vm.validate import ZPOOL_RE, Result, check
from liveforge.vm.verbs.common import say


def brand_of(payload: dict[str, Any], brand: str | None) -> str:
    """The brand a payload is checked for; ``{"bad_brand": X}`` when it is none of ours."""
    if brand is None:
        brand = payload.get("brand")
    if not isinstance(brand, str) or brand not in BRANDS:
        raise InvalidPayload(f"Invalid brand: {brand!r}", {"bad_brand": brand})
    return brand


def checked(payload: dict[str, Any], brand: str, action: str) -> Result:
    """``check`` with the images of the payload's pool (``zones`` when it names none or a
    bad one: that is reported as zpool's bad value) and the host's nic tags."""
    pool = payload.get("zpool")
    if not (isinstance(pool, str) and ZPOOL_RE.match(pool)):
        pool = DEFAULT_POOL
    return check(payload, brand, action, images.lookup(pool), nic_tags)


def nic_tags() -> list[str]:
    """The tags of the host's nic-tag file (vm/net)."""
    from liveforge.vm.net import nictags

    return list(nictags())


def unknown_nic_tags(payload: dict[str, Any]) -> list[str]:
    """The nic tags of a payload's NICs that the host does not have, in order."""
    known = set(nic_tags())
    tags = [nic.get("nic_tag") for key in ("nics", "add_nics", "update_nics")
            for nic in (payload.get(key) or []) if isinstance(nic, dict)]
    return [t for t in dict.fromkeys(tags) if isinstance(t, str) and t not in known]


def validate(action: str, payload: dict[str, Any], brand: str | None) -> None:
    """Raise ``InvalidPayload`` carrying the error object; else say VALID."""
    brand = brand_of(payload, brand if action == "update" else None)
    result = checked(payload, brand, action)
    if not result.ok:
        raise InvalidPayload("invalid payload", result.errors())
    say(f"VALID '{action}' payload for {brand} brand VMs.")


def refuse(result: Result) -> None:
    """Raise the error of the first property of a payload that this runtime refuses (the
    table's ``refused``: its reason), if any."""
    for name in result.bad_values:
        row = prop(name)
        if row is not None and row.refused:
            raise VmadmError(f"Invalid value(s) for: {name}: not supported here: {row.refused}")
