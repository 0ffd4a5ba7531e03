"""The command line in a subprocess: ``python -m liveforge.build.cli -C <root> ...``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path


def cli(root: Path, *args: str, stamp: str | None = None, env: Mapping[str, str] | None = None,
        unset: Iterable[str] = (), pythonpath: bool = False, timeout: float | None = 120,
        check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run liveforge on the workspace ``root``; its output is captured as text (bytes that are
    not UTF-8, a path's, as :func:`os.fsdecode` has them).

    The child's environment is this process's without the variables named in ``unset``, with
    ``BUILDSTAMP=stamp`` if a stamp is given and ``PYTHONPATH`` set to this process's
    ``sys.path`` if ``pythonpath``, and then ``env`` on top. ``check`` turns a non-zero exit
    into an AssertionError showing the ends of both outputs."""
    dropped = set(unset)
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    if stamp is not None:
        environ["BUILDSTAMP"] = stamp
    if pythonpath:
        environ["PYTHONPATH"] = os.pathsep.join(sys.path)
    environ.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "liveforge.build.cli", "-C", str(root), *args],
                          capture_output=True, text=True, errors="surrogateescape",
                          env=environ, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"liveforge {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc
