"""Where things go on the boot media, and which platform files are copied there.

Both media carry the same tree (``/`` of the ISO filesystem, ``/`` of the USB FAT partition)::

    boot/grub/grub.cfg              the menu (see grubcfg.py)
    platform/<arch>/vmlinuz         the platform directory (image/layout.py), copied whole and
    platform/<arch>/boot_archive    in name order
    platform/etc/version/platform
    platform-<STAMP>                an empty marker; GRUB's embedded config searches for it to
                                    find its own medium even with other disks attached
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from liveforge.build.buildstamp import STAMP_RE
from liveforge.build.image.layout import VIEWS, PlatformLayout
from liveforge.util.errors import LiveforgeError, UsageError

PLATFORM_DIR = "platform"
GRUB_DIR = "boot/grub"
GRUB_CFG = f"{GRUB_DIR}/grub.cfg"
EFI_LOADER = "EFI/BOOT/BOOTX64.EFI"


def on_media(name: str) -> str:
    """Where the platform file ``name`` (relative to the platform directory, as
    :class:`PlatformLayout` names it) is on a medium, relative to its root."""
    return f"{PLATFORM_DIR}/{name}"


def marker_name(stamp: str) -> str:
    """The marker file GRUB searches for: unique to one platform build."""
    return f"platform-{stamp}"


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One regular file to put on a medium: ``dest`` is relative to the medium's root."""

    source: Path
    dest: str


def check_stamp(stamp: str) -> None:
    if not STAMP_RE.match(stamp):
        raise UsageError(f"bad buildstamp {stamp!r}: expected YYYYMMDDTHHMMSSZ")


def platform_files(platform_dir: Path, stamp: str, arch: str) -> list[MediaFile]:
    """The platform's files in name order, checked to be a complete platform for ``stamp`` with
    its kernel and boot archive under ``arch/``."""
    check_stamp(stamp)
    platform_dir = Path(platform_dir)
    if not platform_dir.is_dir():
        raise LiveforgeError(
            f"no platform at {platform_dir}: build one first with 'liveforge live'")
    layout = PlatformLayout(arch)
    for needed in layout.needed:
        if not (platform_dir / needed).is_file():
            raise LiveforgeError(
                f"{platform_dir} has no {needed}: not a complete platform; "
                "rebuild it with 'liveforge live'")
    recorded = (platform_dir / layout.version).read_text().strip()
    if recorded != stamp:
        raise LiveforgeError(
            f"{platform_dir}/{layout.version} says {recorded!r}, expected {stamp!r}")
    files: list[MediaFile] = []
    for path in sorted(platform_dir.rglob("*")):
        if path.is_file() and path.relative_to(platform_dir).as_posix() not in VIEWS:
            files.append(MediaFile(path, on_media(path.relative_to(platform_dir).as_posix())))
    return files


def directories_of(dests: list[str]) -> list[str]:
    """Every directory the ``dests`` need, parents first, in name order."""
    dirs: set[str] = set()
    for dest in dests:
        parts = dest.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))
