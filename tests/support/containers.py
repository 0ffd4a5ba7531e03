"""Container test material: a busybox root that boots (images.busybox_tree plus every applet,
busybox init as /sbin/init and an inittab), installed as a real image."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from liveforge.img.manifest import validate
from liveforge.img.store import ImageStore
from tests.support.images import BUSYBOX, busybox_tree, write_image

INITTAB = "::sysinit:/bin/true\n"  # no respawning shells on consoles the VM does not have


def busybox_root(root: Path) -> Path:
    """A root tree that runs: busybox, its applets as symlinks, busybox init as /sbin/init."""
    busybox_tree(root)
    for d in ("sbin", "usr/sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox" and not os.path.lexists(root / "bin" / applet):
            os.symlink("busybox", root / "bin" / applet)
    os.symlink("/bin/busybox", root / "sbin" / "init")
    (root / "etc" / "inittab").write_text(INITTAB)
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\n")
    return root


def install_image(imgroot: Path, tree: Path, uuid: str, work: Path, *,
                  origin_tree: Path | None = None, origin: str | None = None,
                  type_: str = "zone-dataset") -> Path:
    """``tree`` as an image of ``type_`` (a diff against ``origin_tree`` when given)
    installed in the store at ``imgroot`` (pool zones); its layer directory."""
    _, file, manifest = write_image(work, tree, f"img-{uuid[:8]}", uuid=uuid,
                                    origin_tree=origin_tree, origin=origin, type_=type_)
    return ImageStore(imgroot).install(validate(manifest, "test"), file).path
