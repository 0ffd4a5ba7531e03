"""The ISO writer: ``platform-<STAMP>.iso``, bootable by BIOS and UEFI, as a CD and as a raw disk.

The layout is grub-mkrescue's, but xorriso is driven directly: grub-mkrescue (2.06) stamps the
image with the current time (``--modification-date``), builds its EFI FAT image with a random
volume serial and clock dates, and adds HFS+ data, none of which a caller can pin. Driving
xorriso ourselves, every input is fixed by the buildstamp:

* BIOS: ``boot/grub/bios.img`` (grub-mkimage ``i386-pc-eltorito``) is the El Torito boot image;
  ``boot_hybrid.img`` in the MBR with ``--grub2-boot-info`` boots the same core from a raw disk.
* UEFI: ``boot/grub/efi.img``, a FAT image holding ``EFI/BOOT/BOOTX64.EFI``, is the El Torito EFI
  image and is appended as an EFI system partition (``-efi-boot-part --efi-boot-image``).
* Dates: every file's mtime is set to the stamp's epoch, ``all_file_dates set_to_mtime`` carries
  it to atime and ctime, SOURCE_DATE_EPOCH fixes the volume dates, and ``--modification-date``
  fixes the volume "uuid" (the date string GRUB and udev identify an ISO by).
* Volume id ``PLATFORM_<STAMP>``; Rock Ridge with ``-r`` (owner root, normalised modes); the
  tree is written by xorriso in name order.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path

from liveforge.build.media import fat, grubimg
from liveforge.build.media.grubcfg import grub_cfg
from liveforge.build.media.hosttools import ISO_TOOLS, run
from liveforge.build.media.job import media_job
from liveforge.build.media.layout import (
    EFI_LOADER,
    GRUB_CFG,
    GRUB_DIR,
    MediaFile,
    marker_name,
)

BIOS_IMAGE = f"{GRUB_DIR}/bios.img"
EFI_IMAGE = f"{GRUB_DIR}/efi.img"
EFI_IMAGE_SIZE = 4 * 1024 * 1024


def iso_name(stamp: str) -> str:
    return f"platform-{stamp}.iso"


def volume_id(stamp: str) -> str:
    return f"PLATFORM_{stamp}"


def iso_date(epoch: int) -> str:
    """xorriso's ``YYYYMMDDhhmmsscc`` form of ``epoch`` (UTC)."""
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y%m%d%H%M%S00")


def build_iso(platform_dir: Path, stamp: str, out_dir: Path, *, arch: str,
              console: str = "ttya") -> Path:
    """Write ``out_dir/platform-<stamp>.iso`` from a built platform; returns its path."""
    with media_job(platform_dir, stamp, out_dir, iso_name(stamp), arch=arch, console=console,
                   tools=ISO_TOOLS) as job:
        root = job.work / "root"
        stage_tree(root, job.files, stamp, grub_cfg(stamp, job.console, arch))
        grubimg.bios_eltorito(job.tools, root / BIOS_IMAGE, stamp, job.env)
        make_efi_image(job.tools, job.work, root / EFI_IMAGE, stamp, job.epoch, job.env)
        pin_mtimes(root, job.epoch)
        tmp_iso = job.work / job.final.name
        run_xorriso(job.tools, root, tmp_iso, stamp, job.epoch, job.env)
        os.replace(tmp_iso, job.final)
    return job.final


def stage_tree(root: Path, files: list[MediaFile], stamp: str, menu: str) -> None:
    """The ISO's file tree: the platform, the menu and the marker."""
    for item in files:
        dest = root / item.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.source, dest)
    (root / GRUB_DIR).mkdir(parents=True, exist_ok=True)
    (root / GRUB_CFG).write_text(menu)
    (root / marker_name(stamp)).write_bytes(b"")


def make_efi_image(tools: dict[str, str], work: Path, image: Path, stamp: str, epoch: int,
                   env: dict[str, str]) -> None:
    """The EFI system partition image: FAT holding only the removable-media loader."""
    loader = grubimg.efi_loader(tools, work / "BOOTX64.EFI", stamp, env)
    with open(image, "wb") as handle:
        handle.truncate(EFI_IMAGE_SIZE)
    fat.mkfs(tools, image, label="EFIBOOT", vol_id=fat.volume_id(epoch), env=env)
    fat.populate(tools, image, [MediaFile(loader, EFI_LOADER)], env)


def pin_mtimes(root: Path, epoch: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def run_xorriso(tools: dict[str, str], root: Path, out: Path, stamp: str, epoch: int,
                env: dict[str, str]) -> None:
    date = iso_date(epoch)
    run([
        tools["xorriso"], "-as", "mkisofs",
        "-o", str(out),
        "-V", volume_id(stamp),
        "--modification-date=" + date,
        "-r",
        # BIOS: El Torito no-emulation image, and the hybrid MBR for raw-disk boots
        "-b", BIOS_IMAGE, "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
        "--grub2-boot-info", "--grub2-mbr", str(grubimg.BOOT_HYBRID_IMG),
        # UEFI: El Torito EFI image, also appended as an EFI system partition
        "-eltorito-alt-boot", "-e", EFI_IMAGE, "-no-emul-boot",
        "-efi-boot-part", "--efi-boot-image",
        "--protective-msdos-label",
        str(root),
        "--",
        "-volume_date", "all_file_dates", "set_to_mtime",
    ], env=env)
