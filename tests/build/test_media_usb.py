"""The USB writer: partition table, file system, partition.map, reproducibility, boots."""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

import pytest

from liveforge.build.media import build_usb
from liveforge.build.media.boot import boot
from tests.support.kernel import STAMP, Bootable


@pytest.fixture(scope="module")
def raw_usb(tmp_path_factory: pytest.TempPathFactory, bootable: Bootable) -> Path:
    raw = tmp_path_factory.mktemp("usb") / "usb.img"
    raw.write_bytes(gzip.decompress(bootable.media("usb").read_bytes()))
    return raw


def test_usb_outputs(bootable: Bootable) -> None:
    image = bootable.media("usb")
    assert image.name == f"platform-{STAMP}.usb.gz"
    assert sorted(p.name for p in image.parent.iterdir()) == ["partition.map", image.name]
    name, kind, start, size = (image.parent / "partition.map").read_text().split()
    assert (name, kind, int(start)) == ("PLATFORM", "fat32", 1048576)
    assert int(size) % 1048576 == 0


def test_usb_partition_table(raw_usb: Path, bootable: Bootable) -> None:
    dump = subprocess.run(["sfdisk", "--dump", str(raw_usb)], capture_output=True, text=True,
                          check=True).stdout
    assert "label: dos" in dump
    part = [line for line in dump.splitlines() if "start=" in line]
    assert len(part) == 1
    assert "start=        2048" in part[0] and "type=c" in part[0] and "bootable" in part[0]
    size = int((bootable.media("usb").parent / "partition.map").read_text().split()[3])
    assert raw_usb.stat().st_size == 1048576 + size
    mbr = raw_usb.read_bytes()[:512]
    assert mbr[510:512] == b"\x55\xaa"
    assert b"GRUB" in mbr  # boot.img's message strings


def test_usb_filesystem(raw_usb: Path) -> None:
    target = f"{raw_usb}@@1M"
    info = subprocess.run(["minfo", "-i", target, "::"], capture_output=True, text=True,
                          check=True).stdout
    assert "PLATFORM" in info and "FAT32" in info
    listing = subprocess.run(["mdir", "-b", "-/", "-i", target, "::/"], capture_output=True,
                             text=True, check=True).stdout
    for path in ("::/EFI/BOOT/BOOTX64.EFI", "::/boot/grub/grub.cfg",
                 "::/platform/x86_64/vmlinuz", "::/platform/x86_64/boot_archive",
                 "::/platform/etc/version/platform", f"::/platform-{STAMP}"):
        assert path in listing, listing


def test_usb_reproducible(tmp_path: Path, bootable: Bootable) -> None:
    first = build_usb(bootable.platform(), STAMP, tmp_path / "a", arch="x86_64")
    time.sleep(1.1)
    second = build_usb(bootable.platform(), STAMP, tmp_path / "b", arch="x86_64")
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "a/partition.map").read_text() == (tmp_path / "b/partition.map").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("uefi", [False, True], ids=["bios", "uefi"])
def test_usb_boots(uefi: bool, tmp_path: Path, bootable: Bootable) -> None:
    result = boot(bootable.media("usb"), STAMP, arch="x86_64", media="usb", uefi=uefi, timeout=150,
                  log_path=tmp_path / "boot.log")
    assert result.ok, f"{result.message}\n{result.tail}"
    assert f"PLATFORM-READY {STAMP}" in (tmp_path / "boot.log").read_text(errors="replace")
