#!/usr/bin/env python3
"""Time to PLATFORM-READY for each medium, against a bare kernel + minimal initramfs boot.

    .venv/bin/python bench/boot.py [--platform DIR --stamp STAMP] [--repeat N] [--only a,b]

The baseline, measured in the same run, is QEMU started by hand (no liveforge runner) on the
runner's own machine (boot.machine_args: same memory, no NIC, no display adapter) with the same
kernel and a minimal initramfs whose init prints the marker and powers off: the cost of booting
at all under TCG here. Each medium is then booted through liveforge.build.media.boot
(direct, ISO BIOS/UEFI, USB BIOS/UEFI, netboot through iPXE BIOS/UEFI) from the given
platform (default: the test fixture platform, Debian's kernel + busybox) and its time is
reported as a ratio to the baseline (goal <= 1.5).
A UEFI case is also compared with the same bare boot started by OVMF (``-kernel`` through the
firmware's EFI loader; columns bare-uefi, ratio-uefi): that ratio is what the medium adds, while
the first one also counts OVMF's own start against SeaBIOS's.
Media are built once, before timing; the netboot script is served as ``boot --media pxe`` serves
it, from a directory holding it beside (a link to) the platform under its conventional name.
Each medium's boot is paired with a bare boot run just before it, so a machine whose load drifts
during the run still gives fair ratios; the figures are medians over --repeat pairs.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for tests.support
sys.path.insert(0, str(HERE.parent / "src"))

from liveforge.build.image.layout import PlatformLayout  # noqa: E402
from liveforge.build.media import build_iso, build_usb, get_console  # noqa: E402
from liveforge.build.media.boot import MEMORY_MB, boot, machine_args  # noqa: E402
from liveforge.build.media.hosttools import OVMF_CODE, OVMF_VARS  # noqa: E402
from liveforge.build.media.pxe import write_netboot  # noqa: E402
from tests.support import kernel as fixture  # noqa: E402

ARCH = "x86_64"  # the platforms the fixture makes, booted by qemu-system-x86_64
MARKER = b"BARE-READY"
BARE_INIT = "#!/bin/busybox sh\n/bin/busybox echo BARE-READY\n/bin/busybox poweroff -f\n"

CASES = {  # name -> (media, uefi)
    "direct": ("direct", False),
    "iso-bios": ("iso", False),
    "iso-uefi": ("iso", True),
    "usb-bios": ("usb", False),
    "usb-uefi": ("usb", True),
    "pxe-bios": ("pxe", False),
    "pxe-uefi": ("pxe", True),
}


def bare_initramfs() -> bytes:
    body = b"".join([
        fixture._newc("bin", 0o40755, ino=1),
        fixture._newc("bin/busybox", 0o100755, fixture.BUSYBOX.read_bytes(), ino=2),
        fixture._newc("dev", 0o40755, ino=3),
        fixture._newc("dev/console", 0o20600, ino=4, rdev=(5, 1)),
        fixture._newc("init", 0o100755, BARE_INIT.encode(), ino=5),
        fixture._newc("TRAILER!!!", 0),
    ])
    return gzip.compress(body, mtime=0)


def time_bare(kernel: Path, initrd: Path, work: Path, uefi: bool = False,
              timeout: float = 120.0) -> float:
    """Seconds from starting QEMU to the bare init's marker on the serial console; with
    ``uefi``, the kernel is started by OVMF (its EFI stub), set up as the runner sets it up."""
    firmware: list[str] = []
    if uefi:
        shutil.copyfile(OVMF_VARS, work / "bare-vars.fd")
        firmware = ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                    "-drive", f"if=pflash,format=raw,readonly=on,file={work / 'bare-vars.fd'}"]
    started = time.monotonic()
    machine = machine_args("tcg", MEMORY_MB, get_console("ttya"))
    proc = subprocess.Popen(
        ["qemu-system-x86_64", *machine, *firmware, "-serial", "stdio",
         "-kernel", str(kernel), "-initrd", str(initrd), "-append", "console=ttyS0 panic=-1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = b""
    try:
        while MARKER not in seen:
            chunk = proc.stdout.read1(65536)
            if not chunk or time.monotonic() - started > timeout:
                raise SystemExit("bare boot never printed its marker")
            seen = seen[-64:] + chunk
        return time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", type=Path, help="a built platform directory")
    parser.add_argument("--stamp", help="its buildstamp (default: etc/version/platform)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases")
    args = parser.parse_args()
    cases = [c for c in args.only.split(",") if c]
    with tempfile.TemporaryDirectory(prefix="liveforge-bench.") as tmp:
        work = Path(tmp)
        if args.platform:
            platform = args.platform.resolve()
            stamp = args.stamp or (platform / "etc/version/platform").read_text().strip()
        else:
            stamp = fixture.STAMP
            platform = fixture.make_platform(work / "platform", stamp)
        kernel = platform / PlatformLayout(ARCH).kernel
        initrd = work / "bare.initrd"
        initrd.write_bytes(bare_initramfs())
        images = {"direct": platform}
        if any(c.startswith("iso") for c in cases):
            images["iso"] = build_iso(platform, stamp, work / "iso", arch=ARCH)
        if any(c.startswith("usb") for c in cases):
            images["usb"] = build_usb(platform, stamp, work / "usb", arch=ARCH)
        if any(c.startswith("pxe") for c in cases):
            served = work / "tftp"
            served.mkdir()
            (served / f"platform-{stamp}").symlink_to(platform)
            images["pxe"] = write_netboot(served, f"platform-{stamp}", stamp, ARCH)

        print(f"{'case':<10} {'seconds':>8} {'bare':>6} {'ratio':>6} {'bare-uefi':>10} "
              f"{'ratio-uefi':>10}")
        for case in cases:
            media, uefi = CASES[case]
            times, bares, ratios, fw_bares, fw_ratios = [], [], [], [], []
            for i in range(args.repeat):
                bare = time_bare(kernel, initrd, work)
                fw_bare = time_bare(kernel, initrd, work, uefi=True) if uefi else bare
                result = boot(images[media], stamp, arch=ARCH, media=media, uefi=uefi, timeout=300,
                              log_path=work / f"{case}.{i}.log")
                if not result.ok:
                    print(f"{case}: {result.message}\n{result.tail}", file=sys.stderr)
                    return 1
                times.append(result.elapsed)
                bares.append(bare)
                ratios.append(result.elapsed / bare)
                fw_bares.append(fw_bare)
                fw_ratios.append(result.elapsed / fw_bare)
            same_fw = (f"{statistics.median(fw_bares):10.2f} {statistics.median(fw_ratios):10.2f}"
                       if uefi else f"{'-':>10} {'-':>10}")
            print(f"{case:<10} {statistics.median(times):8.2f} {statistics.median(bares):6.2f}"
                  f" {statistics.median(ratios):6.2f} {same_fw}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
