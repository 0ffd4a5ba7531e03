"""``clean`` and ``clobber``: components' clean targets, proto areas, stamps, outputs."""

from __future__ import annotations

import shutil

from .events import Reporter
from .graph import make_steps
from .kinds.base import MAIN, ProcessGroup
from .scheduler import context_for
from .workspace import Workspace


def clean(ws: Workspace, reporter: Reporter) -> list[str]:
    """Each component's clean, then remove proto areas, manifests and stamps."""
    failures: list[str] = []
    ws.log_dir.mkdir(parents=True, exist_ok=True)
    for name, step in make_steps(ws).items():
        if step.phase != MAIN:
            continue
        log_path = ws.log_dir / f"{step.log_name}.clean.log"
        with open(log_path, "wb") as log:
            ctx = context_for(ws, step, reporter, log, log_path, ProcessGroup())
            try:
                step.kind.clean(ctx)
            except Exception as exc:  # keep cleaning the others
                failures.append(f"{name}: {exc}")
                reporter.warn(f"clean of {name} failed: {exc} (log: {log_path})")
    for path in (ws.proto, ws.proto_strap, ws.manifest_d):
        shutil.rmtree(path, ignore_errors=True)
    (ws.root / "manifest.gen").unlink(missing_ok=True)
    for stamp in ws.root.glob("0-*-stamp"):
        stamp.unlink()
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
