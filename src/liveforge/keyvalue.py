"""``KEY=value`` files (build.env, configure-build): parse with file:line errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InputError, InputErrors
from .scratch import tmp_name

KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_keyvalue(path: Path) -> dict[str, str]:
    """Read ``KEY=value`` lines; ``#`` starts a comment line; blank lines are skipped.

    A value may be quoted with single or double quotes (the quotes are removed). Every bad line
    is reported, then :class:`InputErrors` is raised.
    """
    values: dict[str, str] = {}
    errors: list[InputError] = []
    text = read_text(path)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            errors.append(InputError(f"expected KEY=value, got {raw.strip()!r}", path, number))
            continue
        if not KEY_RE.match(key):
            errors.append(InputError(f"invalid variable name {key!r}", path, number))
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    if errors:
        raise InputErrors(errors)
    return values


def read_bytes(path: str | Path) -> bytes:
    """A file's content, read with plain system calls (no buffered file object: a no-op run
    reads a few hundred small files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(path: Path) -> str:
    """A text input's content, decoded as UTF-8; a byte that is not UTF-8 is an
    :class:`InputError` naming the file, its line and column."""
    data = read_bytes(path)
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        raise not_utf8(path, data.count(b"\n", 0, exc.start) + 1, data[exc.start],
                       exc.start - start + 1) from None


def not_utf8(path: Path, line: int, byte: int, column: int) -> InputError:
    """The error for a text input's byte that is not UTF-8, at ``line`` and ``column``."""
    return InputError(f"not UTF-8 text (byte 0x{byte:02x} in column {column})", path, line)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, and rename it into place."""
    tmp = path.with_name(tmp_name(path.name))  # a killed run's is a leftover (scratch.py)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def format_keyvalue(values: dict[str, str]) -> str:
    lines = ["# written by liveforge configure; edit configure-build instead"]
    for key in sorted(values):
        lines.append(f"{key}={values[key]}")
    return "\n".join(lines) + "\n"
