"""Digests: of a value as JSON, of a file's or a stream's content. (Source trees are hashed by
:mod:`liveforge.util.treehash`, which keeps a stat cache.)

:func:`json_digest` is the one canonical form every stamp and cache key is made of: the value
as JSON with sorted keys and Python's default separators, values JSON cannot hold (TOML dates)
as their ``str()``, then SHA-256. Changing the form changes every stamp, which rebuilds every
workspace once.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from hashlib import sha256
    from os import PathLike
    from typing import IO, Any
else:
    try:  # CPython's own SHA-256: the same digests, without loading OpenSSL (hashlib: ~4 ms)
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256

__all__ = ["file_digest", "file_digests", "json_digest", "sha256", "stream_digest"]

CHUNK = 1 << 20


def json_digest(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON."""
    return sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def stream_digest(handle: IO[bytes], algorithm: str = "sha256") -> str:
    """The hex digest (``sha256``, or any name :func:`hashlib.new` knows) of what is left to
    read from ``handle``."""
    if algorithm == "sha256":
        digest = sha256()
    else:
        import hashlib

        digest = hashlib.new(algorithm, usedforsecurity=False)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: str | PathLike[str], algorithm: str = "sha256") -> str:
    """The hex digest of a file's content (see :func:`stream_digest`)."""
    with open(path, "rb") as handle:
        return stream_digest(handle, algorithm)


def file_digests(path: str | PathLike[str], *algorithms: str) -> tuple[str, ...]:
    """The hex digests of a file's content by each of ``algorithms`` (names
    :func:`hashlib.new` knows), in one read."""
    import hashlib

    digests = [hashlib.new(name, usedforsecurity=False) for name in algorithms]
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            for digest in digests:
                digest.update(chunk)
    return tuple(digest.hexdigest() for digest in digests)
