"""GRUB loader images made with grub-mkimage (deterministic: same inputs, same bytes).

Every module the menu needs is built into the image and the config embedded in it finds the
medium by its marker file, so no module directory has to be shipped on the media.
"""

from __future__ import annotations

from pathlib import Path

from liveforge.build.media.grubcfg import BIOS_MODULES, EFI_MODULES, embedded_cfg
from liveforge.build.media.hosttools import GRUB_LIB, run
from liveforge.build.media.layout import GRUB_DIR

BOOT_IMG = GRUB_LIB / "i386-pc" / "boot.img"  # the MBR boot code for a hard disk / USB stick
BOOT_HYBRID_IMG = GRUB_LIB / "i386-pc" / "boot_hybrid.img"  # the MBR of a hybrid ISO


def _mkimage(tools: dict[str, str], out: Path, fmt: str, platform: str, stamp: str,
             modules: tuple[str, ...], env: dict[str, str], extra: tuple[str, ...] = ()) -> Path:
    cfg = out.with_name(out.name + ".cfg")
    cfg.write_text(embedded_cfg(stamp))
    run([tools["grub-mkimage"], "--directory", str(GRUB_LIB / platform), "--format", fmt,
         "--output", str(out), "--config", str(cfg), "--prefix", f"/{GRUB_DIR}",
         "--compression", "auto", *extra, *modules], env=env)
    cfg.unlink()
    return out


def bios_core(tools: dict[str, str], out: Path, stamp: str, env: dict[str, str]) -> Path:
    """core.img for a disk: goes in the gap after the MBR, loaded by boot.img."""
    return _mkimage(tools, out, "i386-pc", "i386-pc", stamp, BIOS_MODULES, env)


def bios_eltorito(tools: dict[str, str], out: Path, stamp: str, env: dict[str, str]) -> Path:
    """The El Torito no-emulation boot image of an ISO (cdboot.img + core)."""
    return _mkimage(tools, out, "i386-pc-eltorito", "i386-pc", stamp, BIOS_MODULES, env)


def efi_loader(tools: dict[str, str], out: Path, stamp: str, env: dict[str, str]) -> Path:
    """BOOTX64.EFI: the removable-media UEFI loader."""
    return _mkimage(tools, out, "x86_64-efi", "x86_64-efi", stamp, EFI_MODULES, env)
