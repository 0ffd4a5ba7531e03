"""Container test material: a tiny busybox root (an image's single layer) and VM payloads."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = "/bin/busybox"  # Debian's busybox-static: no shared libraries needed in the root
INITTAB = "::sysinit:/bin/true\n"  # no respawning shells on consoles the VM does not have


def busybox_root(root: Path) -> Path:
    """A root tree that runs: busybox, its applets as symlinks, busybox init as /sbin/init."""
    for d in ("bin", "sbin", "etc", "root", "usr/bin", "usr/sbin", "var"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    os.symlink("/bin/busybox", root / "sbin" / "init")
    (root / "etc" / "inittab").write_text(INITTAB)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\n")
    return root
