"""The host's identity as far as a build step's output can depend on it: the architecture, the
distribution release, the C library, and the version of each compiler and binutils command a
kind says its steps may call. Part of every cache key, so two hosts whose toolchains differ
never share an entry.

A command's version is the first line of ``COMMAND --version``; it is asked once per binary and
kept in ``toolchain.json`` beside the step cache, keyed by the binary's path, size, inode and
time, so a build pays for it only when a compiler changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from liveforge.util.fileio import read_json, write_atomic

_lock = threading.Lock()
_memory: dict[str, str] = {}


def host_identity() -> dict[str, str]:
    """The architecture, the distribution release (``ID`` and ``VERSION_ID`` of os-release)
    and the C library (``glibc 2.36``: what programs built here link against; a release's
    point updates keep its ``VERSION_ID``)."""
    release: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key in ("ID", "VERSION_ID"):
                release[key] = value.strip().strip('"')
        break
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown"
    except (ValueError, OSError):  # not glibc
        libc = "unknown"
    return {"arch": os.uname().machine,
            "release": f"{release.get('ID', 'unknown')} {release.get('VERSION_ID', '')}".strip(),
            "libc": libc}


def tool_versions(commands: list[str], memo: Path | None) -> dict[str, str]:
    """Each command line (``gcc``, ``ccache gcc -m32``: its first word is the program) ->
    ``<command>: <first line of its --version>``, or ``missing``."""
    result: dict[str, str] = {}
    stored = read_json(memo) if memo is not None else None
    cache: dict[str, str] = stored if isinstance(stored, dict) else {}
    changed = False
    for command in commands:
        words = command.split()
        program = shutil.which(words[0]) if words else None
        if program is None:
            result[command] = "missing"
            continue
        real = os.path.realpath(program)
        try:
            st = os.stat(real)
        except OSError:
            result[command] = "missing"
            continue
        # the program as called too: a compiler names itself after argv[0]
        ident = f"{program}={real}:{st.st_size}:{st.st_ino}:{st.st_mtime_ns}"
        with _lock:
            version = _memory.get(ident) or cache.get(ident)
        if version is None:
            version = _ask(program)
            changed = True
        with _lock:
            _memory[ident] = cache[ident] = version
        result[command] = version
    if changed and memo is not None:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(memo, json.dumps(cache, indent=1, sort_keys=True) + "\n")
    return result


def _ask(program: str) -> str:
    try:
        proc = subprocess.run([program, "--version"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"
