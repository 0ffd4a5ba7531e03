"""A lock per image uuid, held while the image is imported, installed or deleted.

A lock file ``<root>/var/imgadm/locks/<uuid>.lock`` taken with ``flock``: another process
waits for it (the caller is told once through ``on_wait``), and the kernel drops it when its
holder dies, however it dies. Within one process the lock is re-entrant for the thread that
holds it (an import holding its image's lock installs the image), other threads wait.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class _Held:
    __slots__ = ("thread_lock", "fd", "depth")

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.fd = -1
        self.depth = 0


_guard = threading.Lock()
_held: dict[str, _Held] = {}


def _entry(path: Path) -> _Held:
    with _guard:
        return _held.setdefault(str(path), _Held())


def _flock(path: Path, blocking: bool, on_wait: Callable[[], None] | None) -> int:
    """An open descriptor of ``path`` holding its flock; -1 when it is held elsewhere and
    ``blocking`` is off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                os.close(fd)
                return -1
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None, *,
              blocking: bool = True) -> Iterator[bool]:
    """Hold the lock file ``path`` (created if need be) for the block, which is given True.
    Without ``blocking``, a lock held elsewhere is not waited for: the block is given False
    and runs without it. ``on_wait`` is called (once) before waiting."""
    held = _entry(path)
    if not held.thread_lock.acquire(blocking=False):
        if not blocking:
            yield False
            return
        if on_wait is not None:
            on_wait()
            on_wait = None
        held.thread_lock.acquire()
    try:
        if held.depth == 0:
            fd = _flock(path, blocking, on_wait)
            if fd < 0:
                yield False
                return
            held.fd = fd
        held.depth += 1
        try:
            yield True
        finally:
            held.depth -= 1
            if held.depth == 0:
                os.close(held.fd)
                held.fd = -1
    finally:
        held.thread_lock.release()
