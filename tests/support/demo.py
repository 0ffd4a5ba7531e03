"""The bundled demo workspace, copied and built for tests (the fixture ``demo`` in
tests/build/conftest.py builds it once per session)."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from tests.support import DEMO
from tests.support.cli import cli
from tests.support.kernel import cache_dir

STAMP = "20261129T101500Z"
STATE = ("proto", "proto.strap", "manifest.d", "manifest.gen", "log", "cache", "output",
         "output-iso", "output-usb", "build.env", ".liveforge", ".liveforge.lock")

# Every run: the demo's stamp and no SOURCE_DATE_EPOCH from outside, up to half an hour; a
# failure raises unless the call says check=False.
lf = functools.partial(cli, stamp=STAMP, unset=("SOURCE_DATE_EPOCH",), timeout=1800, check=True)


def copy_demo(dest: Path, downloads: Path | None = None) -> Path:
    """The demo at ``dest``, downloading into (and finding its downloads in) ``downloads``,
    by default the demo tests' download cache."""
    shutil.copytree(DEMO, dest, symlinks=True,
                    ignore=lambda d, names: [n for n in names if Path(d) == DEMO and (
                        n in STATE or n.startswith("0-"))
                        or n == "platinfo" and Path(d).name == "platinfo"])
    with open(dest / "configure-build", "a") as handle:
        handle.write(f"LIVEFORGE_CACHE={downloads or cache_dir() / 'demo'}\n")
    return dest


def build_demo(ws: Path) -> Path:
    """Configure and build the demo workspace ``ws`` (``live``)."""
    try:
        lf(ws, "configure", "--offline", timeout=600)
    except AssertionError:
        lf(ws, "configure", timeout=600)  # the cache was cold: resolve through the network
    built = lf(ws, "live", check=False)
    if built.returncode != 0 and "--refresh-lock" in built.stderr:
        # the archive has moved past the demo's committed lock (Debian keeps only the newest
        # version of a package): the demo itself still has to build, so lock afresh
        lf(ws, "configure", "--refresh-lock", timeout=600)
        built = lf(ws, "live", check=False)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return ws
