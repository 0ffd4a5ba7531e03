"""Reading inputs and writing outputs: plain reads, UTF-8 with file:line errors, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from liveforge.util.errors import InputError
from liveforge.util.scratch import tmp_name

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any


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


def optional_file(path: Path) -> bool:
    """Whether the optional input ``path`` is there: False when it is missing, True when it is
    a file (or a link to one); anything else (a directory, a dangling link) is an
    :class:`InputError` naming it, never an input silently left out."""
    if path.is_file():
        return True
    if not os.path.lexists(path):
        return False
    raise InputError("not a file (an input liveforge reads must be one, or be absent)", path)


def read_json(path: str | Path) -> Any:
    """The JSON value a file holds; None when the file is missing or unreadable or is not JSON
    (a stamp or cache that is gone or torn means "build again", not an error)."""
    try:
        return json.loads(read_bytes(path))
    except (OSError, ValueError):
        return None


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


def text_bytes(text: str) -> bytes:
    """``text`` as UTF-8 bytes, a file name in it that is not UTF-8 as the bytes the file system
    has (as :func:`os.fsdecode` gave them); any other character UTF-8 cannot hold as a
    backslash escape: writing text never fails on it (a log, a JSON file, a report)."""
    try:
        return text.encode(errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode(errors="backslashreplace")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, and rename it into place; on
    any failure the temporary is removed (a killed run's is a leftover: scratch.py). Text is
    written as UTF-8, a file name in it that is not UTF-8 as its bytes (as :func:`os.fsdecode`
    has them)."""
    tmp = path.with_name(tmp_name(path.name))
    if isinstance(data, str):
        data = text_bytes(data)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename in (None, str(tmp)):  # the temporary's close or open: name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def swap_link(link: Path, target: str) -> None:
    """Point the symlink ``link`` at ``target`` with one rename: a reader sees the old link or
    the new one. Nothing is done when it already points there."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(tmp_name(link.name))
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
