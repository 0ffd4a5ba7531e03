"""Copies of the bundled demo workspace, without any build state, for builds elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import DEMO

STATE = ("proto", "proto.strap", "manifest.d", "manifest.gen", "log", "cache", "output",
         "output-iso", "output-usb", "build.env", ".liveforge", ".liveforge.lock")


def copy_demo(dest: Path, downloads: Path) -> Path:
    """The demo at ``dest``, downloading into (and finding its downloads in) ``downloads``."""
    shutil.copytree(DEMO, dest, symlinks=True, ignore=lambda d, names: [
        n for n in names if Path(d) == DEMO and (n in STATE or n.startswith("0-"))
        or n == "platinfo" and Path(d).name == "platinfo"])
    with open(dest / "configure-build", "a") as handle:
        handle.write(f"LIVEFORGE_CACHE={downloads}\n")
    return dest
