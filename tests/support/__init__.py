"""Helpers shared by the tests and the benchmarks (``bench/``), one module per subject:

- ``cli``: the command line in a subprocess;
- ``workspaces``: git repositories of make-contract components and the workspaces using them;
- ``debs``: generated .deb packages and a flat Debian repository of them;
- ``extras``: sources of extra packages and a loopback HTTP server;
- ``kernel``: a tiny bootable platform (Debian's kernel, a busybox initramfs) and its media;
- ``manifests``: realistic generated manifests and the proto trees they describe.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"
