"""A tiny bootable platform for the media and boot tests: Debian's kernel + a busybox initramfs.

The kernel comes from the Debian archive: ``apt-cache depends linux-image-amd64`` names the
versioned package, ``apt-get download`` fetches it once into the cache, ``dpkg-deb -x`` unpacks
it, and the extracted ``vmlinuz`` is reused by every later test run. The cache is
``$LIVEFORGE_TEST_CACHE``, else ``$XDG_CACHE_HOME/liveforge``, else ``~/.cache/liveforge``
(outside the repository). ``$LIVEFORGE_TEST_KERNEL`` may name a vmlinuz to use instead.

The initramfs is written here in Python (cpio newc, gzip, fixed dates and owners) so the fixture
needs no root for its ``dev/console`` node and is the same bytes for the same stamp.
"""

from __future__ import annotations

import fcntl
import gzip
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
META_PACKAGE = "linux-image-amd64"


def cache_dir() -> Path:
    if os.environ.get("LIVEFORGE_TEST_CACHE"):
        base = Path(os.environ["LIVEFORGE_TEST_CACHE"])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"]) / "liveforge"
    else:
        base = Path.home() / ".cache" / "liveforge"
    base.mkdir(parents=True, exist_ok=True)
    return base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def kernel_package() -> str:
    """The versioned kernel package the metapackage depends on, e.g. linux-image-6.1.0-56-amd64."""
    out = subprocess.run(["apt-cache", "depends", META_PACKAGE], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"Depends:\s*(linux-image-\S+)", out)
    if not match:
        raise RuntimeError(f"apt-cache depends {META_PACKAGE} names no kernel package:\n{out}")
    return match.group(1)


def kernel() -> Path:
    """The path of a cached Debian vmlinuz, downloading and unpacking it on first use."""
    if os.environ.get("LIVEFORGE_TEST_KERNEL"):
        return Path(os.environ["LIVEFORGE_TEST_KERNEL"])
    cache = cache_dir()
    target = cache / "test-kernel" / "vmlinuz"
    if target.is_file():
        return target
    with _locked(cache / "test-kernel.lock"):
        if target.is_file():
            return target
        package = kernel_package()
        debs = cache / "debs"
        debs.mkdir(exist_ok=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True,
                           capture_output=True)
            found = sorted(debs.glob(f"{package}_*.deb"))
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            subprocess.run(["dpkg-deb", "-x", str(found[-1]), tmp], check=True)
            vmlinuz = sorted(Path(tmp, "boot").glob("vmlinuz-*"))[-1]
            target.parent.mkdir(exist_ok=True)
            partial = target.with_name("vmlinuz.partial")
            shutil.copyfile(vmlinuz, partial)
            os.replace(partial, target)
    return target


# -- initramfs ---------------------------------------------------------------------------------

INIT = """#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
STAMP=$(cat /etc/version/platform)
echo "liveforge test platform $STAMP booting"
FAIL="@FAIL@"
if [ -n "$FAIL" ]; then
    echo "PLATFORM-FAILED $FAIL"
else
    echo "PLATFORM-READY $STAMP"
fi
case " $(cat /proc/cmdline) " in
    *" liveforge.test=1 "*) poweroff -f ;;
esac
exec setsid cttyhack sh
"""

DIRS = ("bin", "dev", "etc", "etc/version", "proc", "root", "sbin", "sys", "tmp", "usr",
        "usr/bin", "usr/sbin")


def _newc(name: str, mode: int, data: bytes = b"", ino: int = 0, rdev: tuple[int, int] = (0, 0),
          mtime: int = 0) -> bytes:
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 2 if mode & 0o40000 else 1, mtime, len(data), 0, 0, rdev[0],
              rdev[1], len(encoded), 0]
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def initramfs(stamp: str, fail: str = "") -> bytes:
    """A gzip cpio newc root: busybox, an init printing READY (or FAILED ``fail``), the stamp."""
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = []
    for d in DIRS:
        entries.append((d, 0o40755, b"", (0, 0)))
    entries.append(("dev/console", 0o20600, b"", (5, 1)))
    entries.append(("bin/busybox", 0o100755, BUSYBOX.read_bytes(), (0, 0)))
    entries.append(("etc/version/platform", 0o100644, f"{stamp}\n".encode(), (0, 0)))
    entries.append(("init", 0o100755, INIT.replace("@FAIL@", fail).encode(), (0, 0)))
    entries.sort(key=lambda e: e[0])
    body = b"".join(_newc(n, m, d, ino=i + 1, rdev=r) for i, (n, m, d, r) in enumerate(entries))
    body += _newc("TRAILER!!!", 0)
    return gzip.compress(body, compresslevel=6, mtime=0)


def make_platform(root: Path, stamp: str, fail: str = "", truncate: bool = False) -> Path:
    """A platform directory as the builder writes it; ``truncate`` cuts the boot archive short."""
    arch = root / "x86_64"
    arch.mkdir(parents=True, exist_ok=True)
    (root / "etc" / "version").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(kernel(), arch / "vmlinuz")
    archive = initramfs(stamp, fail)
    if truncate:
        archive = archive[: len(archive) // 3]
    (arch / "boot_archive").write_bytes(archive)
    (root / "etc" / "version" / "platform").write_text(f"{stamp}\n")
    return root


# -- the platforms the tests share ------------------------------------------------------------

STAMP = "20231114T221320Z"


@dataclass(slots=True)
class Bootable:
    """The test platforms for STAMP and their media, under ``root``, each made on first use.

    The session fixture ``bootable`` (tests/build/conftest.py) holds one for all tests."""

    root: Path
    made: dict[str, Path] = field(default_factory=dict)

    def platform(self, variant: str = "good") -> Path:
        """A platform: ``good``, ``broken`` (a failing self-test) or ``truncated``."""
        if variant not in self.made:
            root = self.root / f"platform-{variant}"
            make_platform(root, STAMP, fail="selftest-broken" if variant == "broken" else "",
                          truncate=variant == "truncated")
            self.made[variant] = root
        return self.made[variant]

    def media(self, kind: str) -> Path:
        """The ISO (``iso``) or USB image (``usb``) of the good platform."""
        key = f"media-{kind}"
        if key not in self.made:
            from liveforge.build.media import build_iso, build_usb

            build = build_iso if kind == "iso" else build_usb
            self.made[key] = build(self.platform(), STAMP, self.root / f"output-{kind}",
                                   arch="x86_64")
        return self.made[key]


def qemu_processes_mentioning(text: str) -> list[int]:
    """Process ids whose command line contains ``text`` (to prove QEMU did not outlive a boot)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "qemu-system" in Path(argv[0]).name and text in " ".join(argv):
            found.append(int(proc.name))
    return found
