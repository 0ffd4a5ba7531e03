"""Helpers shared by the tests and the benchmarks (``bench/``), one module per subject:

- ``cli``: the command line in a subprocess;
- ``workspaces``: git repositories of make-contract components and the workspaces using them,
  among them one that ``live`` can build;
- ``debs``: generated .deb packages and a flat Debian repository of them;
- ``extras``: sources of extra packages, workspaces of them, a loopback HTTP server, and
  whether the Debian archive is reachable;
- ``kernel``: tiny bootable platforms (Debian's kernel, a busybox initramfs) and their media;
- ``manifests``: realistic generated manifests and the proto trees they describe;
- ``images``: a busybox root tree and a child tree, image files and manifests of them,
  ``imgadm`` in a subprocess, a tree described by content.

The fixtures that several test files share are in the ``conftest.py`` files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"


def sha256(data: bytes | str) -> str:
    """The hex sha256 of ``data`` (text as UTF-8)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    return sha256(path.read_bytes())
