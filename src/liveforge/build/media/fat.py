"""FAT file systems written into image files with dosfstools and mtools: no root, no mounts.

Reproducible: the volume id is given, ``mkfs.vfat --invariant`` pins what it would take from the
clock, and mtools dates every entry it writes from SOURCE_DATE_EPOCH (see hosttools.repro_env).
Directories and files are written in name order, so the allocation is the same every time.
"""

from __future__ import annotations

from pathlib import Path

from liveforge.build.media.hosttools import run
from liveforge.build.media.layout import MediaFile, directories_of

SECTOR = 512


def volume_id(epoch: int) -> str:
    """A FAT volume id derived from the build's epoch (what mkfs would take from the clock)."""
    return f"{epoch & 0xFFFFFFFF:08x}"


def mkfs(tools: dict[str, str], image: Path, *, label: str, vol_id: str, env: dict[str, str],
         offset_sectors: int = 0, size_sectors: int | None = None, fat32: bool = False) -> None:
    """Make a FAT file system in ``image`` (which must exist), optionally at an offset."""
    argv = [tools["mkfs.vfat"], "--invariant", "-i", vol_id, "-n", label]
    if fat32:
        argv += ["-F", "32"]
    if offset_sectors:
        argv += ["--offset", str(offset_sectors), "-h", str(offset_sectors)]
    argv.append(str(image))
    if size_sectors is not None:
        argv.append(str(size_sectors * SECTOR // 1024))  # mkfs.vfat counts 1 KiB blocks
    run(argv, env=env)


def populate(tools: dict[str, str], image: Path, files: list[MediaFile], env: dict[str, str],
             offset_bytes: int = 0) -> None:
    """Copy ``files`` into the FAT file system in ``image``: directories first, all sorted."""
    target = f"{image}@@{offset_bytes}" if offset_bytes else str(image)
    files = sorted(files, key=lambda f: f.dest)
    dirs = directories_of([f.dest for f in files])
    if dirs:
        run([tools["mmd"], "-i", target, *[f"::/{d}" for d in dirs]], env=env)
    for item in files:
        run([tools["mcopy"], "-i", target, str(item.source), f"::/{item.dest}"], env=env)
