"""The fault-injecting mode: what a broken or hostile IMGAPI server does, on purpose, so the
client's checks can be tested against a real server.

Set in the server's configuration as ``"faults": {...}`` (every key optional)::

    error_first        the first N requests (any route) answer 500 InternalError
    close_first        the first N downloads of a file ...
    close_after        ... drop the connection after this many bytes of the body (default 0)
    stall_first        the first N downloads of a file ...
    stall_after        ... stop sending after this many bytes (default 0) ...
    stall_seconds      ... for this long (default 3600), then go on
    rate               every download is sent at no more than this many bytes a second (a
                       source behind a slower network than loopback; 0: as fast as it goes)
    wrong_sha1         true: every download has one byte changed (same size, other SHA-1)
    wrong_size         true: every download has one byte more than the manifest says
    no_content_length  true: file bodies are sent chunked, without Content-Length

The counters are the server process's: "the first N" counts from its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from liveforge.util.errors import InputError

INT_KEYS = ("error_first", "close_first", "close_after", "stall_first", "stall_after",
            "stall_seconds", "rate")
BOOL_KEYS = ("wrong_sha1", "wrong_size", "no_content_length")


@dataclass(slots=True)
class Faults:
    error_first: int = 0
    close_first: int = 0
    close_after: int = 0
    stall_first: int = 0
    stall_after: int = 0
    stall_seconds: int = 3600
    rate: int = 0
    wrong_sha1: bool = False
    wrong_size: bool = False
    no_content_length: bool = False
    # counters
    requests: int = field(default=0)
    downloads: int = field(default=0)

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self)
                   if f.name not in ("requests", "downloads", "stall_seconds"))

    def next_request(self) -> bool:
        """Count a request; True when it is to fail with a 500."""
        self.requests += 1
        return self.requests <= self.error_first

    def next_download(self) -> tuple[int | None, int | None]:
        """Count a download; (bytes after which to drop the connection, bytes after which to
        stall), each None when this download is not to."""
        self.downloads += 1
        close = self.close_after if self.downloads <= self.close_first else None
        stall = self.stall_after if self.downloads <= self.stall_first else None
        return close, stall


def parse(data: Any, where: str) -> Faults:
    """The ``faults`` object of a configuration; InputError naming the bad key."""
    if data is None:
        return Faults()
    if not isinstance(data, dict):
        raise InputError("faults must be an object", where)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in INT_KEYS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"faults.{key} must be a whole number >= 0", where)
        elif key in BOOL_KEYS:
            if not isinstance(value, bool):
                raise InputError(f"faults.{key} must be true or false", where)
        else:
            raise InputError(f"faults.{key} is not a fault "
                             f"(one of {', '.join(INT_KEYS + BOOL_KEYS)})", where)
        values[key] = value
    return Faults(**values)
