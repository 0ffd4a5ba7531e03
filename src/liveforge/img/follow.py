"""Unpacking a tree image while it downloads.

An import writes an image's file to ``<uuid>.file.partial`` (kept for a resume); for a tree
image a :class:`Streamed` unpacks that same file into the layer ``<pool>/<uuid>-partial`` as
its bytes arrive, with the one tar reader of :func:`liveforge.img.layer.read_layer` over
:class:`Growing`, so that the install only has to rename the layer and record it. A plain tar
(compression ``none``) is read in random-access mode, the member data copied in the kernel
once it is there; a compressed one (gzip, bzip2, xz, zstd, told by its magic bytes, which must
agree with the manifest's ``files[0].compression``) goes through the one decompressing reader,
:func:`liveforge.util.archive.open_decompressed`, which reads the file's bytes once, in order:
a resumed download only appends to them, so the stream stays whole across a dropped
connection.

Nothing is trusted before the download is verified: the layer is handed to
:meth:`liveforge.img.store.ImageStore.install` (as its directory's identity) only when the
download's size and SHA-1 matched and the client never discarded bytes it had written (a
restart from zero, an earlier run's bytes that were not this file's). In every other case the
layer is removed (a failed download, Ctrl-C) or set aside so that the install unpacks the
verified file as it always does (a bad member, a corrupt stream, a full disk: the install meets
the same error and reports it; a file an earlier run left and that was used as it is).
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from liveforge.img.manifest import Manifest
from liveforge.util.scratch import remove_tree

POLL = 0.005         # seconds between looks at a file that has not grown
JOIN = 10.0          # seconds to wait for an unpacking to stop when it is aborted


class Stopped(Exception):
    """The download the reader follows failed or was set aside: stop unpacking."""


def streamable(manifest: Manifest) -> bool:
    """A tree image (its file a tar, compressed or not): unpacked while it downloads."""
    return manifest.is_tree and manifest.file is not None


class Growing(io.RawIOBase):
    """A file being written by someone else, read as a seekable file of ``size`` bytes: a read
    waits until the bytes it wants are there (:meth:`wait_for`) and raises :class:`Stopped`
    once ``stop`` is set. The file is ``path``, or ``final`` when it was renamed there before
    it could be opened."""

    def __init__(self, path: Path, size: int, stop: threading.Event):
        super().__init__()
        self.path = path
        self.size = size
        self.stop = stop
        self.final: Path | None = None
        self.fd = -1
        self.pos = 0

    def _open(self) -> bool:
        for path in (self.path, self.final):
            if path is None:
                continue
            try:
                self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                return True
            except FileNotFoundError:
                continue
        return False

    def wait_for(self, end: int) -> None:
        """Return once the file holds its first ``end`` bytes (at most ``size``)."""
        end = min(end, self.size)
        while True:
            if self.stop.is_set():
                raise Stopped()
            if (self.fd >= 0 or self._open()) and os.fstat(self.fd).st_size >= end:
                return
            self.stop.wait(POLL)

    def fileno(self) -> int:
        self.wait_for(0)
        return self.fd

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), max(0, self.size - self.pos))
        if want == 0:
            return 0
        self.wait_for(self.pos + want)
        data = os.pread(self.fd, want, self.pos)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().close()


class Streamed:
    """The unpacking of one image into its ``-partial`` layer while its file downloads to
    ``download`` (its ``.partial``). The caller holds the image's lock from :meth:`start` to
    :meth:`finish` or :meth:`abort`."""

    def __init__(self, manifest: Manifest, download: Path, layer: Path):
        assert manifest.file is not None
        self.manifest = manifest
        self.compression = manifest.file.compression
        self.layer = layer
        self.stop = threading.Event()
        self.reader = Growing(download.with_name(download.name + ".partial"),
                              manifest.file.size, self.stop)
        self.final = download
        self.invalid = False
        self.failed = False
        self.removing = threading.Lock()  # the worker and the main thread may both abort
        self.thread = threading.Thread(target=self._run, name=f"unpack-{manifest.uuid[:8]}",
                                       daemon=True)

    def start(self) -> Streamed:
        self.thread.start()
        return self

    def _run(self) -> None:
        from liveforge.img.layer import read_layer

        try:
            with self.reader:
                self.layer.mkdir(0o755)
                read_layer(self.final, self.layer, str(self.final), source=self.reader,
                           compression=self.compression)
        except BaseException:  # Stopped, or what the install will meet again
            self.failed = True
            self._remove()

    def _remove(self) -> None:
        with self.removing:
            if os.path.lexists(self.layer):
                remove_tree(self.layer)

    def discard(self) -> None:
        """The client is about to drop bytes it wrote: what was unpacked cannot be used."""
        self.invalid = True
        self.stop.set()

    def abort(self) -> None:
        """The download failed or was cancelled: stop, and remove the layer."""
        self.stop.set()
        self.thread.join(JOIN)
        if not self.thread.is_alive():
            self._remove()

    def finish(self, fresh: bool) -> tuple[int, int] | None:
        """The download is verified at ``download`` (``fresh``: downloaded by this run, not a
        file found there). The layer's identity (device, inode) when it was unpacked from that
        download, else None (and no layer)."""
        if not fresh:
            self.discard()
        self.reader.final = self.final
        self.thread.join()
        if self.failed or self.invalid:
            self._remove()
            return None
        st = os.lstat(self.layer)
        return st.st_dev, st.st_ino


class Unpackings:
    """The unpackings an import started, so that a failure or Ctrl-C stops them all: once
    :meth:`abort_all` has begun, none starts any more (a download worker that gets there late
    would leave its ``-partial`` layer behind a process that is exiting)."""

    def __init__(self, cancel: threading.Event):
        self.cancel = cancel
        self.lock = threading.Lock()
        self.started: list[Streamed] = []

    def start(self, stream: Streamed) -> bool:
        """Start ``stream``; False (not started) when the import is being cancelled."""
        with self.lock:
            if self.cancel.is_set():
                return False
            self.started.append(stream)
            stream.start()
            return True

    def abort_all(self) -> None:
        """Cancel the import: no unpacking starts from now on, each started one is aborted."""
        with self.lock:
            self.cancel.set()
            started = list(self.started)
        for stream in started:
            stream.abort()
