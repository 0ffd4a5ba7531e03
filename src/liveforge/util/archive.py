"""Deterministic tar streams: compressing byte sinks, tar headers, decompression by magic.

The one tar writer of liveforge: the build system's platform tarballs
(``liveforge.build.image.archive``) and imgadm's image layers (``liveforge.img.layer``) both
write through these sinks and headers. A header carries no user or group names, no device
numbers and no atime; names are written as the file system gave them (bytes that are not UTF-8
included), GNU long-name records when they are long.

Compression runs in a worker thread (zlib, bz2, lzma release the GIL; zstd is the ``zstd``
program), so reading files and compressing overlap. The gzip stream has mtime 0, no file name
and OS byte 255, so its bytes depend on the input only; bzip2 and xz streams are deterministic
by themselves, zstd is written without a checksum or a size.

:func:`open_decompressed` reads any of them back, telling the compression by its magic bytes,
from the file or from a reader of its bytes (a download still being written).
"""

from __future__ import annotations

import bz2
import lzma
import os
import queue
import shutil
import signal
import struct
import subprocess
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from liveforge.util.errors import BuildError, MissingToolError

COMPRESSIONS = ("gzip", "bzip2", "xz", "zstd", "none")
CHUNK = 1 << 20            # buffer size for writes and large-file reads
BLOCK = 512
RECORD = 20 * BLOCK        # tar pads the archive to a multiple of this
GZIP_LEVEL = 6
ZSTD_LEVEL = 3
BZIP2_LEVEL = 9
XZ_LEVEL = 6


# -- output sinks -----------------------------------------------------------------------------

class Sink:
    """Buffered byte sink writing to a file descriptor."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = bytearray()
        self.length = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data
        self.length += len(data)
        if len(self.buf) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self._out(bytes(self.buf))
            self.buf.clear()

    def _out(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        self.flush()

    def abort(self) -> None:
        """Give up after a failure elsewhere (nothing to stop here)."""


class ThreadedSink(Sink, ABC):
    """A sink whose chunks are transformed and written by a worker thread."""

    def __init__(self, fd: int):
        super().__init__(fd)
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _out(self, data: bytes) -> None:
        if self.error is not None:
            self._raise()
        self.queue.put(data)

    def _raise(self) -> None:
        """Report the worker's failure: a failed write (a full disk) as the OSError it is, so
        that the caller can name the directory; anything else as a compression failure."""
        if isinstance(self.error, OSError):
            raise self.error
        raise BuildError(f"compression failed: {self.error}")

    def _run(self) -> None:
        ended = False  # the closing None was taken: nothing more is queued
        try:
            while True:
                data = self.queue.get()
                if data is None:
                    ended = True
                    break
                self._handle(data)
            self._finish()
        except BaseException as exc:  # reported by the writing thread
            self.error = exc
            while not ended and self.queue.get() is not None:
                pass

    @abstractmethod
    def _handle(self, data: bytes) -> None:
        """Compress and write one buffer (in the writer thread)."""

    def _finish(self) -> None:
        pass

    def close(self) -> None:
        self.flush()
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            self._raise()

    def abort(self) -> None:
        """Stop the worker before the file is closed: it would write into whatever file reuses
        the descriptor. It finishes what is queued, or drops it when it has failed itself."""
        self.queue.put(None)
        self.thread.join()


class GzipSink(ThreadedSink):
    def __init__(self, fd: int, level: int = GZIP_LEVEL):
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.crc = 0
        self.size = 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        # Written before the worker starts, so before anything it writes.
        self.fd = fd
        Sink._out(self, b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, 255]))
        super().__init__(fd)

    def _handle(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        Sink._out(self, self.compressor.compress(data))

    def _finish(self) -> None:
        tail = self.compressor.flush() + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF)
        Sink._out(self, tail)


class ZstdSink(ThreadedSink):
    def __init__(self, fd: int, level: int = ZSTD_LEVEL):
        if shutil.which("zstd") is None:
            raise MissingToolError("zstd is needed for zstd compression: apt-get install zstd")
        self.proc = subprocess.Popen(["zstd", "-q", "-c", f"-{level}", "--no-check"],
                                     stdin=subprocess.PIPE, stdout=fd, stderr=subprocess.PIPE)
        super().__init__(fd)

    def _handle(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            self._failed()

    def _finish(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            self._failed()
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def _failed(self) -> None:
        """zstd has stopped: its one-line complaint (-q leaves only errors) as the error."""
        assert self.proc.stderr is not None
        self.proc.wait()
        said = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
        raise BuildError(f"zstd exited with status {self.proc.returncode}"
                         + (f": {said[-1].strip()}" if said else ""))


class Bzip2Sink(ThreadedSink):
    def __init__(self, fd: int, level: int = BZIP2_LEVEL):
        self.compressor = bz2.BZ2Compressor(level)
        super().__init__(fd)

    def _handle(self, data: bytes) -> None:
        Sink._out(self, self.compressor.compress(data))

    def _finish(self) -> None:
        Sink._out(self, self.compressor.flush())


class XzSink(ThreadedSink):
    def __init__(self, fd: int, level: int = XZ_LEVEL):
        self.compressor = lzma.LZMACompressor(lzma.FORMAT_XZ, lzma.CHECK_CRC64, level)
        super().__init__(fd)

    def _handle(self, data: bytes) -> None:
        Sink._out(self, self.compressor.compress(data))

    def _finish(self) -> None:
        Sink._out(self, self.compressor.flush())



def make_sink(fd: int, compression: str, level: int | None) -> Sink:
    if compression == "gzip":
        return GzipSink(fd, GZIP_LEVEL if level is None else level)
    if compression == "zstd":
        return ZstdSink(fd, ZSTD_LEVEL if level is None else level)
    if compression == "bzip2":
        return Bzip2Sink(fd, BZIP2_LEVEL if level is None else level)
    if compression == "xz":
        return XzSink(fd, XZ_LEVEL if level is None else level)
    if compression == "none":
        return Sink(fd)
    raise BuildError(f"unknown compression {compression!r} (expected one of "
                     f"{', '.join(COMPRESSIONS)})")


# -- headers ----------------------------------------------------------------------------------

def tar_number(value: int, width: int) -> bytes:
    """A tar numeric field: octal with a NUL, or GNU base-256 when too large."""
    if value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def tar_block(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
               typeflag: bytes, linkname: bytes = b"") -> bytes:
    header = b"".join((
        name[:100].ljust(100, b"\0"),
        tar_number(mode, 8), tar_number(uid, 8), tar_number(gid, 8),
        tar_number(size, 12), tar_number(mtime, 12),
        b"        ", typeflag, linkname[:100].ljust(100, b"\0"),
        b"ustar  \0",                      # GNU magic and version
        b"\0" * 32, b"\0" * 32,            # no user or group names
        b"\0" * 8, b"\0" * 8,              # no device numbers
        b"\0" * 167,                       # no atime, ctime or prefix
    ))
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def tar_pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def tar_header(path: str, kind: str, mode: int, uid: int, gid: int, size: int, mtime: int,
               link: str = "") -> bytes:
    """The header block(s) of one tar member, GNU long-name records first when needed. Names
    are written as the file system gave them (bytes that are not UTF-8 included)."""
    name = (path + "/" if kind == "d" else path).encode(errors="surrogateescape")
    linkname = link.encode(errors="surrogateescape")
    typeflag = {"f": b"0", "h": b"1", "s": b"2", "d": b"5"}[kind]
    out = []
    if len(linkname) > 100:
        data = linkname + b"\0"
        out += [tar_block(b"././@LongLink", 0, 0, 0, len(data), 0, b"K"), data,
                tar_pad(len(data))]
    if len(name) > 100:
        data = name + b"\0"
        out += [tar_block(b"././@LongLink", 0, 0, 0, len(data), 0, b"L"), data,
                tar_pad(len(data))]
    out.append(tar_block(name, mode & 0o7777, uid, gid, size, mtime, typeflag, linkname))
    return b"".join(out)


def open_sink(path: Path, compression: str, level: int | None,
               outputs: list[tuple[int, Sink]]) -> Sink:
    """Create ``path`` and a sink writing to it, added to ``outputs`` (the file is closed again
    when the sink cannot start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        sink = make_sink(fd, compression, level)
    except BaseException:
        os.close(fd)
        raise
    outputs.append((fd, sink))
    return sink


@contextmanager
def sink_outputs() -> Iterator[list[tuple[int, Sink]]]:
    """The sinks the block opens (:func:`open_sink`): when it succeeds each is closed and its
    file fsynced; when anything fails each worker is stopped. The files are closed either way."""
    outputs: list[tuple[int, Sink]] = []
    try:
        yield outputs
        for fd, sink in outputs:
            sink.close()
            os.fsync(fd)
    except BaseException:
        for _, sink in outputs:
            sink.abort()
        raise
    finally:
        for fd, _ in outputs:
            os.close(fd)


def gzip_file(source: Path, target: Path, level: int = GZIP_LEVEL) -> None:
    """Compress the file ``source`` into ``target`` (created or truncated, then fsynced) as the
    archives are: mtime 0 and no name in the header, so the same content gives the same
    bytes. A write the file system refuses (a full disk) is an error naming ``target``."""
    try:
        with sink_outputs() as outputs, open(source, "rb") as handle:
            sink = open_sink(target, "gzip", level, outputs)
            while data := handle.read(CHUNK):
                sink.write(data)
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from None


def tar_end(sink: Sink) -> None:
    """The two zero blocks ending a tar archive, and padding to a whole record."""
    sink.write(b"\0" * (2 * BLOCK))
    sink.write(b"\0" * (-sink.length % RECORD))


# -- reading ----------------------------------------------------------------------------------

MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
         (b"\x28\xb5\x2f\xfd", "zstd"))


def compression_of(head: bytes) -> str:
    """The compression a file starting with ``head`` (at least 6 bytes) uses, or ``none``."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return "none"


FEED = 1 << 16             # bytes a thread hands zstd at a time from a reader of the file


class _ZstdReader:
    """The output of ``zstd -dc`` as a readable stream: of the file ``path``, or with ``source``
    of the bytes a thread of its own reads from ``source`` and writes to the program's standard
    input. Closing stops the program, then waits for that thread (its read of ``source`` in
    progress, if one is)."""

    def __init__(self, path: Path, source: BinaryIO | None = None):
        if shutil.which("zstd") is None:
            raise MissingToolError("zstd is needed to read zstd files: apt-get install zstd")
        self.proc = subprocess.Popen(
            ["zstd", "-dcq", "--", str(path)] if source is None else ["zstd", "-dcq"],
            stdin=subprocess.DEVNULL if source is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.stream: IO[bytes] = self.proc.stdout
        self.fed: BaseException | None = None  # why the feeding thread stopped early
        self.feeder: threading.Thread | None = None
        if source is not None:
            self.feeder = threading.Thread(target=self._feed, args=(source,), daemon=True,
                                           name="zstd-feed")
            self.feeder.start()

    def _feed(self, source: BinaryIO) -> None:
        """Copy ``source`` to zstd's input, then close it (zstd ends at the end of its input)."""
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while data := source.read(FEED):
                stdin.write(data)
        except BaseException as exc:  # reported by the reading thread
            self.fed = exc
        finally:
            try:
                stdin.close()
            except OSError:  # zstd has gone: what was left to flush is not wanted
                pass

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if size != 0 and not data:
            self._check()
        return data

    def _check(self) -> None:
        """The end of zstd's output: its error, or the feeding thread's (a read of ``source``
        that failed ends zstd's input early, which zstd may take for the end of the data)."""
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode(errors="replace").strip()
        status = self.proc.wait()
        if status == 0 and self.feeder is not None:
            self.feeder.join()  # it has closed zstd's input: it is ending
        if self.fed is not None and not isinstance(self.fed, BrokenPipeError):
            raise self.fed
        if status != 0:
            raise OSError(f"zstd: {err or f'exit status {self.proc.returncode}'}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self.feeder is not None:
            self.feeder.join()  # a write to the killed zstd fails at once
        self.stream.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def __enter__(self) -> _ZstdReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_compression(path: Path, source: BinaryIO | None = None) -> str:
    """The compression of the file ``path`` told by its magic bytes; with ``source`` (a
    seekable reader of the file's bytes) read from there, which is left at its start."""
    if source is None:
        with open(path, "rb") as handle:
            return compression_of(handle.read(6))
    head = source.read(6)
    source.seek(0)
    return compression_of(head)


def open_decompressed(path: Path, source: BinaryIO | None = None) -> BinaryIO:
    """``path`` opened for reading its decompressed bytes (gzip, bzip2, xz, zstd or none, told
    by the magic bytes). A corrupt stream raises ``OSError``/``EOFError``/``lzma.LZMAError``/
    ``zlib.error`` while it is read.

    ``source``: the file's bytes from this seekable reader instead (a file still being written,
    say, whose reads wait for its bytes): its first bytes are read for the magic, then all of
    them once, in order, by the decompressor (zstd's from a thread that feeds the program; a
    failed read of ``source`` is raised by the reader). An uncompressed file is ``source``
    itself. Closing the result does not close ``source``; ``path`` only names the file."""
    kind = file_compression(path, source)
    if kind == "gzip":
        import gzip

        if source is not None:
            return gzip.GzipFile(mode="rb", fileobj=source)  # type: ignore[return-value]
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(source if source is not None else path, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(source if source is not None else path, "rb")  # type: ignore[return-value]
    if kind == "zstd":
        return _ZstdReader(path, source)  # type: ignore[return-value]
    return source if source is not None else open(path, "rb")
