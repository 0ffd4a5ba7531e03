"""The ISO writer: content, reproducibility, and boots under BIOS and UEFI (CD and raw disk)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from liveforge.build.media import build_iso
from liveforge.build.media.boot import boot
from tests.support.kernel import STAMP, Bootable


def iso_listing(iso: Path, path: str) -> str:
    return subprocess.run(["xorriso", "-indev", str(iso), "-ls", path], capture_output=True,
                          text=True, check=True).stdout


def test_iso_name_and_content(bootable: Bootable) -> None:
    iso = bootable.media("iso")
    assert iso.name == f"platform-{STAMP}.iso"
    assert sorted(p.name for p in iso.parent.iterdir()) == [iso.name]  # no temp leftovers
    assert "'vmlinuz'" in iso_listing(iso, "/platform/x86_64")
    assert "'boot_archive'" in iso_listing(iso, "/platform/x86_64")
    assert f"'platform-{STAMP}'" in iso_listing(iso, "/")
    report = subprocess.run(["xorriso", "-indev", str(iso), "-report_el_torito", "plain"],
                            capture_output=True, text=True, check=True).stdout
    assert "BIOS" in report and "UEFI" in report


def test_iso_reproducible(tmp_path: Path, bootable: Bootable) -> None:
    first = build_iso(bootable.platform(), STAMP, tmp_path / "a", arch="x86_64")
    time.sleep(1.1)  # a clock leaking into the image would now differ
    second = build_iso(bootable.platform(), STAMP, tmp_path / "b", arch="x86_64", console="ttya")
    assert first.read_bytes() == second.read_bytes()


def test_iso_console_changes_image(tmp_path: Path, bootable: Bootable) -> None:
    text = build_iso(bootable.platform(), STAMP, tmp_path / "text", arch="x86_64",
                     console="text")
    assert text.read_bytes() != bootable.media("iso").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("uefi", [False, True], ids=["bios", "uefi"])
def test_iso_boots(uefi: bool, tmp_path: Path, bootable: Bootable) -> None:
    result = boot(bootable.media("iso"), STAMP, arch="x86_64", media="iso", uefi=uefi, timeout=150,
                  log_path=tmp_path / "boot.log")
    assert result.ok, f"{result.message}\n{result.tail}"
    assert f"PLATFORM-READY {STAMP}" in (tmp_path / "boot.log").read_text(errors="replace")
    assert "liveforge.test=1" in result.tail or "liveforge.test=1" in (
        tmp_path / "boot.log").read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("uefi", [False, True], ids=["bios", "uefi"])
def test_iso_boots_as_raw_disk(uefi: bool, tmp_path: Path, bootable: Bootable) -> None:
    """The hybrid ISO written to a USB stick and attached raw: BIOS through the hybrid MBR,
    UEFI through the appended EFI system partition."""
    result = boot(bootable.media("iso"), STAMP, arch="x86_64", media="usb", uefi=uefi, timeout=150,
                  log_path=tmp_path / "boot.log")
    assert result.ok, f"{result.message}\n{result.tail}"


@pytest.mark.slow
def test_iso_menu_defaults_to_normal_entry(tmp_path: Path, bootable: Bootable) -> None:
    """Without the boot test's SMBIOS string GRUB boots the normal entry (no self-test argument,
    no power-off): what a person booting the medium gets."""
    from liveforge.build.media import get_console
    from liveforge.build.media.boot import qemu_command, watch

    argv = qemu_command("qemu-system-x86_64", bootable.media("iso"), STAMP, arch="x86_64",
                        media="iso", uefi=False, term=get_console("ttya"), interactive=False,
                        log_path=tmp_path / "log", work=tmp_path)
    at = argv.index("-smbios")
    del argv[at:at + 2]
    result = watch(argv, STAMP, 150, tmp_path / "boot.log", tmp_path / "stderr", grace=0)
    assert result.ok, f"{result.message}\n{result.tail}"  # the fixture prints READY, then a shell
    log = (tmp_path / "boot.log").read_text(errors="replace")
    command_line = next(line for line in log.splitlines() if "Command line:" in line)
    assert "console=ttyS0,115200n8" in command_line
    assert "liveforge.test=1" not in command_line
