"""The bundled demo platform, built once per test run and booted every way it can boot.

The build uses the shared download cache (the kernel .deb, busybox, the zlib source, the strap
cache), so only the first run on a machine downloads anything.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.demo import STAMP, copy_demo, lf

pytestmark = [pytest.mark.slow, pytest.mark.network]


@pytest.fixture(scope="session")
def media(demo: Path) -> Path:
    lf(demo, "iso")
    lf(demo, "usb")
    lf(demo, "netboot")
    return demo


def test_platform_outputs(demo: Path) -> None:
    out = demo / "output"
    platform = out / f"platform-{STAMP}"
    arch = platform / "x86_64"
    assert os.readlink(out / "platform-latest") == platform.name
    assert os.readlink(out / "platform-latest.tgz") == f"{platform.name}.tgz"
    assert (platform / "etc/version/platform").read_text() == f"{STAMP}\n"
    assert (arch / "vmlinuz").read_bytes()[0x202:0x206] == b"HdrS"       # a bzImage
    data = (arch / "boot_archive").read_bytes()
    assert (arch / "boot_archive.hash").read_text().strip() == hashlib.sha1(data).hexdigest()
    listing = (arch / "boot_archive.manifest").read_text().splitlines()
    assert any(line.endswith("  usr/bin/platinfo") for line in listing)
    assert listing == sorted(listing, key=lambda line: line.split("  ", 1)[1])
    status = json.loads((arch / "boot_archive.gitstatus").read_text())
    assert {"repo", "warning"} <= set(status[0]) or {"repo", "rev", "branch"} <= set(status[0])
    assert (demo / "proto/buildstamp").read_text().strip() == STAMP
    cpio = gzip.decompress(data)
    assert b"usr/lib/32/libz.so.1.2.13-liveforge" in cpio
    assert b"etc/version/platform" in cpio
    # the kernel boots beside the boot archive, not from it
    assert b"boot/vmlinuz" not in cpio
    import tarfile

    # the tarball is the platform directory, what a boot server unpacks
    with tarfile.open(out / f"platform-{STAMP}.tgz") as tar:
        names = [name.rstrip("/") for name in tar.getnames()]
    # (the report's files, added later by `liveforge report`, are not in it)
    assert names == [platform.name, *sorted(f"{platform.name}/{path.relative_to(platform)}"
                                            for path in platform.rglob("*")
                                            if path.name not in ("report.html",
                                                                 "sbom.cdx.json"))]


def test_demo_is_up_to_date_after_live(demo: Path) -> None:
    rows = json.loads(lf(demo, "--json", "status").stdout)
    assert {r["state"] for r in rows} == {"up to date"}, rows
    assert {r["component"] for r in rows} == {"kernel", "busybox", "extra:strap", "extra",
                                              "src", "platinfo"}


def test_copied_workspace_needs_no_rebuild_and_gives_the_same_bytes(demo: Path,
                                                                    tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "ws"
    shutil.copytree(demo, copy, symlinks=True)
    shutil.rmtree(copy / "output")
    events = [json.loads(line) for line in lf(copy, "--json", "live").stdout.splitlines()]
    assert not [e for e in events if e["event"] == "start"], "a copied workspace rebuilt"
    for name in (f"platform-{STAMP}.tgz", f"platform-{STAMP}/x86_64/boot_archive"):
        assert (copy / "output" / name).read_bytes() == (demo / "output" / name).read_bytes()


@pytest.mark.parametrize("media_kind,uefi", [("direct", False), ("iso", False), ("iso", True),
                                             ("usb", False), ("usb", True), ("pxe", False),
                                             ("pxe", True)])
def test_demo_boots(media: Path, media_kind: str, uefi: bool) -> None:
    args = ["boot", "--media", media_kind, "--timeout", "300"] + (["--uefi"] if uefi else [])
    proc = lf(media, *args, check=False, timeout=400)
    log = media / "log" / f"boot.{STAMP}.{media_kind}{'-uefi' if uefi else ''}.log"
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, proc.stderr + text[-3000:]
    assert f"liveforge demo {STAMP} booting" in text
    for test in ("10-platinfo", "30-modes", "40-lib32"):
        assert f"selftest {test}: ok" in text
    assert f"PLATFORM-READY {STAMP}" in text
    if media_kind == "pxe":  # the kernel and boot archive named by output/platform-<stamp>.ipxe
        assert re.search(r"Command line: (vmlinuz )?initrd=boot_archive console=ttyS0,115200n8 "
                         r"panic=-1 liveforge\.test=1\s*$", text, re.M), text[-3000:]


def test_media_are_reproducible(media: Path, tmp_path: Path) -> None:
    copy = tmp_path / "again"
    shutil.copytree(media, copy, symlinks=True)
    for out in ("output-iso", "output-usb"):
        shutil.rmtree(copy / out)
    (copy / f"output/platform-{STAMP}.ipxe").unlink()
    lf(copy, "iso")
    lf(copy, "usb")
    lf(copy, "netboot")
    for name in (f"output-iso/platform-{STAMP}.iso", f"output-usb/platform-{STAMP}.usb.gz",
                 "output-usb/partition.map", f"output/platform-{STAMP}.ipxe"):
        assert (copy / name).read_bytes() == (media / name).read_bytes(), name
    part = (media / "output-usb/partition.map").read_text().split()
    assert part[0] == "PLATFORM" and int(part[2]) % 512 == 0


def test_broken_selftest_reports_failure(demo: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(demo, broken, symlinks=True)
    overlay = broken / "overlay" / "broken"
    (overlay / "usr/lib/selftest.d").mkdir(parents=True)
    test = overlay / "usr/lib/selftest.d/50-broken"
    test.write_text("#!/bin/sh\necho 'this self-test fails on purpose'\nexit 1\n")
    test.chmod(0o755)
    (overlay / "manifest").write_text("f usr/lib/selftest.d/50-broken 0755 root root\n")
    toml = broken / "platform.toml"
    toml.write_text(toml.read_text().replace('overlays = ["overlay/generic"]',
                                             'overlays = ["overlay/broken", "overlay/generic"]'))
    stamp = "20261129T111500Z"
    lf(broken, "live", stamp=stamp)
    proc = lf(broken, "boot", "--timeout", "300", stamp=stamp, check=False, timeout=400)
    assert proc.returncode == 1
    assert "PLATFORM-FAILED 50-broken" in proc.stderr + proc.stdout
    log = (broken / "log" / f"boot.{stamp}.direct.log").read_text(errors="replace")
    assert "this self-test fails on purpose" in log


def test_no_platform_yet_says_which_verb(tmp_path: Path) -> None:
    ws = copy_demo(tmp_path / "fresh")
    for verb in ("iso", "usb", "netboot", "boot"):
        proc = lf(ws, verb, check=False)
        assert proc.returncode == 1
        assert "no platform built yet" in proc.stderr and "liveforge live" in proc.stderr


def test_bad_console_is_a_usage_error(demo: Path) -> None:
    proc = lf(demo, "iso", "-c", "ttyz", check=False)
    assert proc.returncode == 2 and "invalid choice: 'ttyz'" in proc.stderr
