"""``clean`` and ``clobber``: components' clean targets, proto areas, stamps, outputs."""

from __future__ import annotations

import shutil

from liveforge.build.scheduler import each_component
from liveforge.build.units import forget
from liveforge.build.workspace import Workspace
from liveforge.util.events import Reporter


def clean(ws: Workspace, reporter: Reporter) -> list[str]:
    """Each component's clean, then remove proto areas, manifests and stamps."""
    _, failed = each_component(ws, reporter, "clean", "clean",
                               lambda kind, ctx: kind.clean(ctx))
    failures = [f"{name}: {error}" for name, error in failed.items()]
    for path in (ws.proto, ws.proto_strap, ws.manifest_d):
        shutil.rmtree(path, ignore_errors=True)
    (ws.root / "manifest.gen").unlink(missing_ok=True)
    for stamp in ws.root.glob("0-*-stamp"):
        stamp.unlink()
    forget(ws)
    reporter.info("removed proto areas, manifests and stamps")
    return failures


def clobber(ws: Workspace, reporter: Reporter, outputs: bool = True) -> list[str]:
    """clean, plus every output and the tree-hash cache."""
    failures = clean(ws, reporter)
    if outputs:
        for path in (ws.output_dir, ws.iso_dir, ws.usb_dir):
            shutil.rmtree(path, ignore_errors=True)
        reporter.info("removed output/, output-iso/, output-usb/")
    shutil.rmtree(ws.state_dir, ignore_errors=True)
    return failures
