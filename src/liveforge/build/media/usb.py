"""The USB stick writer: ``platform-<STAMP>.usb.gz`` and ``partition.map``, without root.

The disk is an MBR with one bootable FAT32 partition labelled PLATFORM starting at 1 MiB:

* BIOS: GRUB's ``boot.img`` in the MBR's first 440 bytes loads ``core.img`` from the gap
  between the MBR and the partition (sector 1 on; grub-mkimage fills in its block list).
* UEFI: ``EFI/BOOT/BOOTX64.EFI`` on the FAT partition, the removable-media path.

Nothing is mounted: sfdisk writes the table into the image file, ``mkfs.vfat --offset`` makes the
file system inside it, mtools fills it. Reproducible: the MBR disk id and the FAT volume id derive
from the buildstamp, mtools dates come from SOURCE_DATE_EPOCH, files go in name order,
grub-mkimage output is deterministic and the gzip header has mtime 0 and no name.
"""

from __future__ import annotations

import os
from pathlib import Path

from liveforge.build.media import fat, grubimg
from liveforge.build.media.grubcfg import grub_cfg
from liveforge.build.media.hosttools import USB_TOOLS, run
from liveforge.build.media.job import media_job
from liveforge.build.media.layout import (
    EFI_LOADER,
    GRUB_CFG,
    MediaFile,
    marker_name,
)
from liveforge.util.archive import gzip_file
from liveforge.util.errors import BuildError
from liveforge.util.fileio import write_atomic

MIB = 1024 * 1024
PARTITION_START = 1 * MIB  # sector 2048; the gap before it holds GRUB's core.img
MIN_PARTITION = 64 * MIB  # comfortably above FAT32's minimum cluster count
HEADROOM = 16 * MIB
LABEL = "PLATFORM"
MBR_BOOT_CODE = 440  # boot.img bytes that fit before the disk id and partition table


def usb_name(stamp: str) -> str:
    return f"platform-{stamp}.usb.gz"


def disk_id(epoch: int) -> str:
    """The MBR disk identifier (sfdisk's label-id), derived from the stamp, never random."""
    return f"0x{(epoch ^ 0x4C46_5553) & 0xFFFFFFFF:08x}"


def partition_size(payload: int) -> int:
    """Bytes for the FAT32 partition holding ``payload`` bytes of files, rounded to MiB."""
    wanted = max(MIN_PARTITION, payload + payload // 8 + HEADROOM)
    return -(-wanted // MIB) * MIB


def build_usb(platform_dir: Path, stamp: str, out_dir: Path, *, arch: str,
              console: str = "ttya") -> Path:
    """Write ``platform-<stamp>.usb.gz`` and ``partition.map`` in ``out_dir``; return the image."""
    with media_job(platform_dir, stamp, out_dir, usb_name(stamp), arch=arch, console=console,
                   tools=USB_TOOLS) as job:
        tools, env, work, final = job.tools, job.env, job.work, job.final
        loaders = work / "loaders"
        loaders.mkdir()
        core = grubimg.bios_core(tools, loaders / "core.img", stamp, env)
        efi = grubimg.efi_loader(tools, loaders / "BOOTX64.EFI", stamp, env)
        menu = loaders / "grub.cfg"
        menu.write_text(grub_cfg(stamp, job.console, arch))
        marker = loaders / "marker"
        marker.write_bytes(b"")
        contents = [*job.files, MediaFile(menu, GRUB_CFG), MediaFile(efi, EFI_LOADER),
                    MediaFile(marker, marker_name(stamp))]
        size = partition_size(sum(f.source.stat().st_size for f in contents))
        image = work / "usb.img"
        try:  # allocated, not sparse: a full disk fails here, not inside mkfs or mcopy
            with open(image, "wb") as handle:
                os.posix_fallocate(handle.fileno(), 0, PARTITION_START + size)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(image)) from None
        partition_disk(tools, image, size, job.epoch, env)
        fat.mkfs(tools, image, label=LABEL, vol_id=fat.volume_id(job.epoch), env=env,
                 fat32=True, offset_sectors=PARTITION_START // fat.SECTOR,
                 size_sectors=size // fat.SECTOR)
        fat.populate(tools, image, contents, env, offset_bytes=PARTITION_START)
        install_bios_boot(image, core)
        packed = work / final.name
        gzip_file(image, packed)
        write_atomic(final.parent / "partition.map", partition_map(size))
        os.replace(packed, final)
    return final


def partition_disk(tools: dict[str, str], image: Path, size: int, epoch: int,
                   env: dict[str, str]) -> None:
    """An MBR with one bootable FAT32 (LBA) partition at 1 MiB."""
    script = (
        "label: dos\n"
        f"label-id: {disk_id(epoch)}\n"
        "unit: sectors\n"
        f"start={PARTITION_START // fat.SECTOR}, size={size // fat.SECTOR}, type=c, bootable\n"
    )
    run([tools["sfdisk"], "--quiet", "--no-reread", "--no-tell-kernel", str(image)], env=env,
        stdin=script.encode())


def install_bios_boot(image: Path, core: Path) -> None:
    """boot.img into the MBR (boot code only, the table stays), core.img into the gap."""
    core_bytes = core.read_bytes()
    gap = PARTITION_START - fat.SECTOR
    if len(core_bytes) > gap:
        raise BuildError(f"GRUB core.img is {len(core_bytes)} bytes; the gap holds {gap}")
    boot = grubimg.BOOT_IMG.read_bytes()[:MBR_BOOT_CODE]
    with open(image, "r+b") as handle:
        handle.write(boot)
        handle.seek(fat.SECTOR)
        handle.write(core_bytes)


def partition_map(size: int) -> str:
    """``partition.map``: ``<name> <type> <start_bytes> <size_bytes>`` per partition."""
    return f"{LABEL} fat32 {PARTITION_START} {size}\n"
