"""An IMGAPI client (httpx): ping a source, list and get manifests, download image files.

Every request sends ``Accept-Version: ~2``. Connection errors and 5xx answers are retried with a
doubling delay (``ATTEMPTS`` in all); a read that gets no data for ``read_timeout`` seconds is a
DownloadError at once. A source that cannot be reached, or answers with something that is not
IMGAPI's JSON, is a ``SourcePing`` error naming the source and the request; an error body
``{code, message}`` from the source is passed on with the source's code.

A download (:meth:`Client.download`) goes to ``<dest>.partial`` and is renamed to ``dest`` once
its size and SHA-1 (computed while the bytes arrive) equal the manifest's ``files[0]``. The
response's Content-Length must equal ``files[0].size`` (or what is left of it, for a range). A
connection dropped mid-stream is resumed with ``Range: bytes=<have>-``; so is a ``.partial`` an
earlier, interrupted run left (its bytes are hashed first). A file already at ``dest`` with the
right size and SHA-1 is used as it is. A mismatch deletes the partial file; an interruption
(timeout, Ctrl-C, retries used up) keeps it for the next attempt.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import Manifest

ACCEPT_VERSION = "~2"
PAGE = 1000                # IMGAPI's largest page
ATTEMPTS = 5               # tries of one request (connection errors, 5xx, dropped downloads)
BACKOFF = 0.25             # seconds before the first retry; doubled each time
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0        # seconds without a byte from the server
HASH_CHUNK = 1 << 20
WRITE_QUEUE = 256          # chunks (of up to 64 KiB) received but not yet written
WRITEBACK = 32 << 20       # bytes after which the writer starts their writeback
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
             httpx.ReadError, httpx.WriteError, httpx.PoolTimeout)

Progress = Callable[[int], None]


class Cancelled(ImgadmError):
    """A download stopped because its caller asked (Ctrl-C): the partial file stays."""

    def __init__(self, uuid: str):
        super().__init__("Interrupted", f"the download of image {uuid} was interrupted")


class _Retry(Exception):
    """A 5xx answer: worth another try."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def read_timeout_from_env() -> float:
    """``IMGADM_READ_TIMEOUT`` (seconds), else READ_TIMEOUT."""
    raw = os.environ.get("IMGADM_READ_TIMEOUT", "")
    try:
        value = float(raw) if raw else READ_TIMEOUT
    except ValueError:
        raise ImgadmError("ConfigError", f"IMGADM_READ_TIMEOUT={raw!r} is not a number of "
                          "seconds") from None
    if value <= 0:
        raise ImgadmError("ConfigError", "IMGADM_READ_TIMEOUT must be greater than 0")
    return value


def describe(exc: BaseException) -> str:
    """A connection error in a few words (httpx's own text, or its class)."""
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if not text and cause is not None:
        text = str(cause).strip()
    return text or type(exc).__name__


def ping(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Check that ``url`` is an IMGAPI server (one try: ``sources -a`` asks right away)."""
    with Client(url, read_timeout=timeout, attempts=1) as client:
        client.ping()


class Client:
    """One IMGAPI source. Thread safe: concurrent downloads share its connection pool."""

    def __init__(self, url: str, *, read_timeout: float | None = None, insecure: bool = False,
                 attempts: int = ATTEMPTS, backoff: float = BACKOFF, page: int = PAGE):
        self.url = url.rstrip("/")
        self.read_timeout = read_timeout if read_timeout is not None else read_timeout_from_env()
        self.attempts = attempts
        self.backoff = backoff
        self.page = page
        self.http = httpx.Client(
            base_url=self.url, verify=not insecure, follow_redirects=True,
            headers={"Accept-Version": ACCEPT_VERSION, "User-Agent": f"imgadm/{_version()}"},
            timeout=httpx.Timeout(CONNECT_TIMEOUT, read=self.read_timeout),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- JSON requests ----------------------------------------------------------------------
    def _pause(self, attempt: int, cancel: threading.Event | None = None) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        if cancel is not None:
            cancel.wait(delay)
        else:
            time.sleep(delay)

    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                **kwargs: Any) -> httpx.Response:
        """One request, retried on connection errors and 5xx; the last answer (any status)."""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.http.request(method, path, params=params, **kwargs)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and attempt < self.attempts:
                    self._pause(attempt)
                    continue
                raise ImgadmError("SourcePing", f'image source "{self.url}" did not answer '
                                  f"{method} {path} within {self.read_timeout:g} s") from None
            except RETRYABLE as exc:
                if attempt == self.attempts:
                    raise ImgadmError("SourcePing", f'image source "{self.url}" is not reachable '
                                      f"({method} {path}: {describe(exc)})") from None
                self._pause(attempt)
                continue
            except httpx.HTTPError as exc:
                raise ImgadmError("SourcePing", f'image source "{self.url}": {method} {path} '
                                  f"failed: {describe(exc)}") from None
            if response.status_code >= 500 and attempt < self.attempts:
                self._pause(attempt)
                continue
            return response
        raise AssertionError("unreachable")

    def json(self, response: httpx.Response) -> Any:
        """The JSON of an answer; an error body becomes an ImgadmError with the source's code;
        anything else that is not JSON is SourcePing."""
        what = f"{response.request.method} {response.request.url.path}"
        try:
            data = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise ImgadmError("SourcePing", f'image source "{self.url}" answered {what} with '
                              f"HTTP {response.status_code} and something that is not JSON "
                              f"({kind}, {len(response.content)} bytes): is it an IMGAPI "
                              "server?") from None
        if response.status_code >= 400:
            code, message = "InternalError", f"HTTP {response.status_code}"
            if isinstance(data, dict) and isinstance(data.get("code"), str):
                code, message = data["code"], str(data.get("message", ""))
            raise ImgadmError(code, f'image source "{self.url}": {what}: {message}')
        return data

    def ping(self) -> dict[str, Any]:
        """``GET /ping``: a 200 with ``"imgapi": true``, or SourcePing."""
        response = self.request("GET", "/ping")
        if response.status_code != 200:
            raise ImgadmError("SourcePing", f'image source "{self.url}" answered GET /ping with '
                              f"HTTP {response.status_code}")
        try:
            data = self.json(response)
        except ImgadmError as exc:
            raise ImgadmError("SourcePing", exc.message) from None
        if not isinstance(data, dict) or data.get("imgapi") is not True:
            raise ImgadmError("SourcePing", f'image source "{self.url}" is not an IMGAPI server '
                              '(GET /ping did not answer "imgapi": true)')
        return data

    def list_images(self, filters: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every manifest ``GET /images`` gives for ``filters``, page by page (limit + marker)
        until a short page. A page starting with the marker itself (servers that take the
        marker inclusively) has it dropped."""
        params = {**(filters or {}), "limit": str(self.page)}
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            page = self.json(self.request("GET", "/images", params=params))
            if not isinstance(page, list) or not all(
                    isinstance(m, dict) and isinstance(m.get("uuid"), str) for m in page):
                raise ImgadmError("SourcePing", f'image source "{self.url}" answered GET /images '
                                  "with something that is not a list of manifests")
            fresh = [m for m in page if m["uuid"] not in seen]
            found += fresh
            seen.update(m["uuid"] for m in fresh)
            if len(page) < self.page or not fresh:
                return found
            params["marker"] = page[-1]["uuid"]

    def get_manifest(self, uuid: str) -> dict[str, Any] | None:
        """``GET /images/:uuid``; None when the source does not have it (404)."""
        response = self.request("GET", f"/images/{uuid}")
        if response.status_code == 404:
            return None
        data = self.json(response)
        if not isinstance(data, dict):
            raise ImgadmError("SourcePing", f'image source "{self.url}" answered GET '
                              f"/images/{uuid} with something that is not a manifest")
        return data

    # -- downloads --------------------------------------------------------------------------
    def download(self, manifest: Manifest, dest: Path, on_bytes: Progress | None = None,
                 cancel: threading.Event | None = None,
                 on_discard: Callable[[], None] | None = None) -> bool:
        """Put the image's file at ``dest``, verified. Returns False when a file already there
        was good and used as it is, True when it was downloaded. ``on_discard`` is called
        before bytes already written to the ``.partial`` file are thrown away (truncated or
        deleted), for a reader following that file."""
        file = manifest.file
        if file is None:
            raise ImgadmError("DownloadError", f"image {manifest.uuid} has no file in its manifest")
        if dest.is_file():
            if dest.stat().st_size == file.size and _sha1_of(dest) == file.sha1:
                if on_bytes:
                    on_bytes(file.size)
                return False
            dest.unlink()
        partial = dest.with_name(dest.name + ".partial")
        for fresh in (False, True):
            resumed = partial.is_file() and partial.stat().st_size > 0
            got = self._fetch(manifest, partial, on_bytes, cancel, on_discard)
            if got == file.sha1:
                os.replace(partial, dest)
                return True
            if on_discard:
                on_discard()
            partial.unlink(missing_ok=True)
            if not resumed or fresh:
                raise ImgadmError("DownloadError", f'image {manifest.uuid} from "{self.url}": '
                                  f"the file has SHA-1 {got}, the manifest says {file.sha1} "
                                  "(the download was deleted)")
            # the bytes an earlier run left were not this file's: once more, from the start
        raise AssertionError("unreachable")

    def _fetch(self, manifest: Manifest, partial: Path, on_bytes: Progress | None,
               cancel: threading.Event | None, on_discard: Callable[[], None] | None) -> str:
        """Download into ``partial`` (resuming what it holds); the SHA-1 of all of it."""
        assert manifest.file is not None
        size = manifest.file.size
        where = f'image {manifest.uuid} from "{self.url}"'
        import hashlib

        digest = hashlib.sha1(usedforsecurity=False)
        fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            have = os.fstat(fd).st_size
            if have > size:
                if on_discard:
                    on_discard()
                os.ftruncate(fd, 0)
                have = 0
            _hash_prefix(fd, have, digest)
            os.lseek(fd, have, os.SEEK_SET)
            if on_bytes and have:
                on_bytes(have)
            if have == size:  # an earlier run got all of it but did not rename it
                return digest.hexdigest()
            attempt = 0
            while True:
                try:
                    have = self._stream(manifest.uuid, where, fd, have, size, digest, on_bytes,
                                        cancel)
                except (_Retry, *RETRYABLE) as exc:
                    have = os.lseek(fd, 0, os.SEEK_CUR)
                    attempt += 1
                    if attempt >= self.attempts:
                        reason = exc.what if isinstance(exc, _Retry) else describe(exc)
                        raise ImgadmError("DownloadError", f"{where}: gave up after "
                                          f"{attempt} attempts ({reason}); {have} of {size} "
                                          "bytes kept for the next try") from None
                    self._pause(attempt, cancel)
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(manifest.uuid) from None
                    continue
                except _Restart:
                    attempt += 1
                    if attempt >= self.attempts:
                        raise ImgadmError("DownloadError", f"{where}: the source does not "
                                          "answer range requests with the range") from None
                    if on_discard:
                        on_discard()
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    digest = hashlib.sha1(usedforsecurity=False)
                    have = 0
                    continue
                except httpx.TimeoutException:
                    have = os.lseek(fd, 0, os.SEEK_CUR)
                    raise ImgadmError("DownloadError", f"{where}: no data for "
                                      f"{self.read_timeout:g} s (read timeout) after {have} of "
                                      f"{size} bytes; they are kept for the next try") from None
                except OSError as exc:  # writing the partial file
                    raise ImgadmError("DownloadError", f"{where}: cannot write {partial}: "
                                      f"{exc.strerror or exc}") from None
                except _Mismatch as exc:
                    if on_discard:
                        on_discard()
                    os.close(fd)
                    fd = -1
                    partial.unlink(missing_ok=True)
                    raise ImgadmError("DownloadError", f"{where}: {exc} (the download was "
                                      "deleted)") from None
                if have == size:
                    return digest.hexdigest()
        finally:
            if fd >= 0:
                if os.fstat(fd).st_size == 0:  # nothing worth keeping for a next try
                    partial.unlink(missing_ok=True)
                os.close(fd)

    def _stream(self, uuid: str, where: str, fd: int, have: int, size: int, digest: Any,
                on_bytes: Progress | None, cancel: threading.Event | None) -> int:
        """One GET of the file from byte ``have`` on; returns how many bytes the partial file
        holds after it."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.http.stream("GET", f"/images/{uuid}/file", headers=headers) as response:
            status = response.status_code
            if status >= 500:
                raise _Retry(f"HTTP {status}")
            if status == 416 and have:
                raise _Mismatch(f"the source refused to resume at byte {have} (HTTP 416)")
            if status not in (200, 206):
                response.read()
                self.json(response)  # raises with the source's code
                raise ImgadmError("DownloadError", f"{where}: unexpected HTTP {status}")
            start = 0
            if status == 206:
                start, total = _content_range(response.headers.get("content-range", ""))
                if total != size:
                    raise _Mismatch(f"the file has {total} bytes, files[0].size says {size}")
                if start != have:
                    raise _Mismatch(f"asked for the bytes from {have}, got them from {start}")
            elif have:  # the whole file instead of the range: start again
                raise _Restart()
            length = response.headers.get("content-length")
            if length is None:
                raise _Mismatch("the answer has no Content-Length")
            if not length.isdigit() or int(length) != size - start:
                raise _Mismatch(f"Content-Length is {length} bytes, files[0].size says {size}"
                                + (f" ({size - start} from byte {start})" if start else ""))
            writer = _Writer(fd)
            try:
                for chunk in response.iter_raw():
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(uuid)
                    writer.write(chunk)
                    digest.update(chunk)
                    have += len(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            finally:
                writer.close()  # what was hashed is written, however the loop ended
        if have != size:
            raise _Retry(f"the answer ended at byte {have} of {size}")
        return have


class _Writer:
    """Writes a download's chunks in a thread of its own, so that waiting for the disk (the
    kernel throttles a writer of many dirty pages) overlaps receiving and hashing. Every
    WRITEBACK bytes it asks the kernel to start writing them out (``POSIX_FADV_DONTNEED``
    starts the writeback of dirty pages without waiting for it), so that the install's fsync
    of a disk image finds little left to do."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = 0  # bytes written since the last writeback was started
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=WRITE_QUEUE)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="download-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunk := self.chunks.get()) is not None:
            if self.error is not None:
                continue
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view):]
                self.pending += len(chunk)
                if self.pending >= WRITEBACK:
                    end = os.lseek(self.fd, 0, os.SEEK_CUR)
                    os.posix_fadvise(self.fd, end - self.pending, self.pending,
                                     os.POSIX_FADV_DONTNEED)
                    self.pending = 0
            except BaseException as exc:  # raised in the receiving thread
                self.error = exc

    def write(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.chunks.put(chunk)

    def close(self) -> None:
        """Wait until every chunk is written; the writing's error, if there was one."""
        self.chunks.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Mismatch(Exception):
    """The source's answer does not fit the manifest: no retry, the partial file goes."""


class _Restart(Exception):
    """The source sent the whole file where a range was asked for."""


def _content_range(value: str) -> tuple[int, int]:
    """(first byte, total size) of ``bytes a-b/n``."""
    try:
        unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        if unit != "bytes":
            raise ValueError
        return int(span.split("-")[0]), int(total)
    except ValueError:
        raise _Mismatch(f"a 206 answer with a Content-Range of {value!r}") from None


def _hash_prefix(fd: int, count: int, digest: Any) -> None:
    offset = 0
    while offset < count:
        chunk = os.pread(fd, min(HASH_CHUNK, count - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)


def _sha1_of(path: Path) -> str:
    from liveforge.util.hashing import file_digest

    return file_digest(path, "sha1")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("liveforge")
    except PackageNotFoundError:
        return "0"
