"""Relative paths that must stay inside a root: image paths, file names from inputs.

One check for every input that becomes a path (manifest entries, templates, a kernel path, a
download's file name): no absolute path, no ``.`` or ``..`` component, no empty component, no
NUL or newline, and within the file system's limits for a name and a path.
"""

from __future__ import annotations

import os

MAX_NAME = 255          # bytes in one path component (NAME_MAX)
MAX_PATH = 4095         # bytes in a path (PATH_MAX, less the terminating NUL)
# A path of this many characters or fewer is at most MAX_NAME bytes (4 bytes a character at most),
# so neither of the limits above can be reached: only longer paths are measured.
SHORT_PATH = MAX_NAME // 4


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe image path, or None when it is."""
    if not path:
        return "empty path"
    if "\0" in path:
        return f"NUL character in path {path!r}"
    if "\n" in path or "\r" in path:
        return f"newline in path {path!r}"
    if path[0] == "/":
        return f"absolute path {path!r} (paths are relative to the image root)"
    if "//" in path:
        return f"empty component in path {path!r}"
    if path[-1] == "/":
        return f"trailing '/' in path {path!r}"
    if "." in path:
        wrapped = f"/{path}/"
        if "/../" in wrapped:
            return f"'..' component in path {path!r}"
        if "/./" in wrapped:
            return f"'.' component in path {path!r}"
    if len(path) > SHORT_PATH:
        return _length_problem(path)
    return None


def _length_problem(path: str) -> str | None:
    """Why ``path`` is too long for the file system, or None."""
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:
        return f"path {shown(path)} cannot be encoded as a file name"
    if len(encoded) > MAX_PATH:
        return f"path of {len(encoded)} bytes (at most {MAX_PATH}): {shown(path)}"
    if len(encoded) > MAX_NAME:
        longest = max(encoded.split(b"/"), key=len)
        if len(longest) > MAX_NAME:
            return (f"path component of {len(longest)} bytes (at most {MAX_NAME}): "
                    f"{shown(os.fsdecode(longest))}")
    return None


def shown(text: str) -> str:
    """``repr(text)``, its middle left out when it is long (a message holding a path of 4000
    bytes helps nobody)."""
    return repr(text) if len(text) <= 64 else f"{text[:32]!r}...{text[-16:]!r}"
