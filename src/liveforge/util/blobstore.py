"""Content-addressed stores of archives, local and over HTTP, laid out as Bazel's caches are.

An *action record* ``ac/<key>`` maps a key (64 hex digits) to the sha256 and size of an archive,
as JSON; the archive itself is ``cas/<sha256>``. Records and archives are written whole: a
local store renames a temporary into place, and an HTTP server answers a ``PUT`` only with all
of the body. An archive is written before its record, so a record never names a missing
archive on purpose; a reader checks every archive against its digest anyway.

:class:`LocalStore` is a folder with a size limit: each use refreshes an entry's time, and
:meth:`LocalStore.prune` removes the least recently used archives (and the records naming them)
until the store fits. It also keeps the counts ``liveforge cache stats`` shows.

:class:`HttpStore` is any HTTP server that stores what is ``PUT`` at a path and serves it back
with ``GET`` and ``HEAD`` (nginx's WebDAV module, Bazel's and ccache's HTTP caches). Every
request has a read timeout; credentials (basic auth) are needed to write, never to read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from liveforge.util.errors import LiveforgeError
from liveforge.util.fileio import write_atomic
from liveforge.util.hashing import CHUNK, file_digest, sha256
from liveforge.util.scratch import remove_leftovers, tmp_name

HEX64 = re.compile(r"[0-9a-f]{64}\Z")
RECORD_FORMAT = 1


class StoreError(LiveforgeError):
    """A store could not be read or written: missing, corrupt, slow, refused. ``unreachable``:
    the server did not answer at all (refused, timed out), so asking again is no use."""

    unreachable = False


@dataclass(frozen=True, slots=True)
class Record:
    """An action record: the archive a key maps to."""

    archive: str   # its sha256
    size: int      # its length in bytes

    def to_bytes(self) -> bytes:
        return (json.dumps({"format": RECORD_FORMAT, "archive": self.archive,
                            "size": self.size}, sort_keys=True) + "\n").encode()

    @staticmethod
    def parse(data: bytes, where: str) -> Record:
        try:
            value = json.loads(data)
            archive, size = value["archive"], value["size"]
        except (ValueError, TypeError, KeyError):
            raise StoreError(f"{where}: not an action record") from None
        if value.get("format") != RECORD_FORMAT or not isinstance(archive, str) or \
                not HEX64.match(archive) or not isinstance(size, int) or size < 0:
            raise StoreError(f"{where}: not an action record of format {RECORD_FORMAT}")
        return Record(archive, size)


def check_key(key: str) -> str:
    if not HEX64.match(key):
        raise StoreError(f"{key!r} is not a key (64 hex digits)")
    return key


# -- the local store -------------------------------------------------------------------------
STATS = ("local_hits", "shared_hits", "misses", "stored", "pushed", "bytes_downloaded",
         "bytes_uploaded")


class LocalStore:
    """``root/ac/<key>``, ``root/cas/<sha256>``, ``root/tmp/`` and ``root/stats.json``."""

    def __init__(self, root: Path):
        self.root = root

    def _ac(self, key: str) -> Path:
        return self.root / "ac" / check_key(key)

    def _cas(self, digest: str) -> Path:
        return self.root / "cas" / check_key(digest)

    def temp(self, name: str) -> Path:
        """A temporary file name in the store (same file system as its entries)."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        return self.root / "tmp" / tmp_name(name)

    def record(self, key: str) -> Record | None:
        """The key's record, when the store has it and the archive it names."""
        path = self._ac(key)
        try:
            record = Record.parse(path.read_bytes(), str(path))
        except FileNotFoundError:
            return None
        except StoreError:
            path.unlink(missing_ok=True)
            return None
        if not self._cas(record.archive).is_file():
            return None
        return record

    def archive(self, record: Record) -> Path:
        """The record's archive, checked against its digest and refreshed (LRU); a damaged
        one is deleted and raises StoreError."""
        path = self._cas(record.archive)
        try:
            actual = file_digest(path)
        except FileNotFoundError:
            raise StoreError(f"{path} is gone") from None
        if actual != record.archive or path.stat().st_size != record.size:
            path.unlink(missing_ok=True)
            raise StoreError(f"{path} is damaged (sha256 {actual}): deleted")
        now = time.time()
        for used in (path, self.root / "ac"):
            with contextlib.suppress(OSError):
                os.utime(used, (now, now))
        return path

    def add(self, key: str, archive: Path, digest: str | None = None) -> Record:
        """Move the finished file ``archive`` (in :meth:`temp`) into the store under its
        digest and record ``key`` -> it."""
        digest = digest or file_digest(archive)
        record = Record(digest, archive.stat().st_size)
        target = self._cas(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(archive, target)
        self._ac(key).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self._ac(key), record.to_bytes())
        return record

    def touch(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self._ac(key))

    def usage(self) -> tuple[int, int]:
        """(archives, bytes) held."""
        count = size = 0
        for path in self._listing("cas"):
            with contextlib.suppress(OSError):
                size += path.stat().st_size
                count += 1
        return count, size

    def _listing(self, sub: str) -> Iterator[Path]:
        try:
            names = os.listdir(self.root / sub)
        except FileNotFoundError:
            return
        for name in names:
            if HEX64.match(name):
                yield self.root / sub / name

    def prune(self, max_size: int, leftovers: bool = False) -> tuple[int, int]:
        """Remove the least recently used archives until the store holds at most
        ``max_size`` bytes, then every record whose archive is gone; returns (archives
        removed, bytes freed). With ``leftovers`` (not while this process writes to the
        store), the temporaries of dead processes and of this one go too."""
        if leftovers and (self.root / "tmp").is_dir():
            remove_leftovers(self.root / "tmp")
        entries = []
        for path in self._listing("cas"):
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((max(st.st_mtime, st.st_atime), st.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed = freed = 0
        for _, size, path in sorted(entries):
            if total <= max_size:
                break
            path.unlink(missing_ok=True)
            total -= size
            freed += size
            removed += 1
        if removed:
            for record in self._listing("ac"):
                try:
                    archive = Record.parse(record.read_bytes(), str(record)).archive
                except (OSError, StoreError):
                    archive = ""
                if not archive or not self._cas(archive).is_file():
                    record.unlink(missing_ok=True)
        return removed, freed

    # -- counts ----------------------------------------------------------------------------
    def count(self, **increments: int) -> None:
        """Add to the counts in ``stats.json`` (under a lock: several builds at once)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "stats.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stats = self.stats()
            for name, value in increments.items():
                stats[name] = stats.get(name, 0) + value
            write_atomic(self.root / "stats.json", json.dumps(stats, sort_keys=True) + "\n")

    def stats(self) -> dict[str, int]:
        try:
            data = json.loads((self.root / "stats.json").read_text())
        except (OSError, ValueError):
            data = {}
        return {name: int(data.get(name, 0)) if isinstance(data, dict) else 0
                for name in STATS}


# -- the shared store over HTTP ---------------------------------------------------------------
class HttpStore:
    """A store at ``url`` (``http://`` or ``https://``); ``auth`` is (user, password) for
    writes, None for a client that only reads; ``timeout``: seconds any read may wait."""

    def __init__(self, url: str, auth: tuple[str, str] | None, timeout: float):
        self.url = url.rstrip("/")
        self.auth = auth
        self.timeout = timeout

    @property
    def writable(self) -> bool:
        return self.auth is not None

    def _request(self, method: str, path: str, body: bytes | BinaryIO | None = None,
                 headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        import urllib.request

        request = urllib.request.Request(f"{self.url}/{path}", method=method, data=body,
                                          headers=headers or {})
        if self.auth is not None and method == "PUT":
            import base64

            token = base64.b64encode(":".join(self.auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        return urllib.request.urlopen(request, timeout=self.timeout)

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        import urllib.error

        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        elif isinstance(exc, urllib.error.URLError):
            reason = str(exc.reason)
        elif isinstance(exc, TimeoutError):
            reason = f"no answer within {self.timeout:g} s"
        else:
            reason = str(exc) or type(exc).__name__
        error = StoreError(f"{what} {self.url}: {reason}")
        error.unreachable = not isinstance(exc, urllib.error.HTTPError) and (
            isinstance(exc, (TimeoutError, ConnectionRefusedError)) or isinstance(
                getattr(exc, "reason", None), (TimeoutError, ConnectionRefusedError, OSError)))
        return error

    def record(self, key: str) -> Record | None:
        """The key's record, None when the server has none (404)."""
        import urllib.error

        path = f"ac/{check_key(key)}"
        try:
            with self._request("GET", path) as answer:
                data = answer.read(1 << 16)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise self._fail(f"cannot read {path} from", exc) from None
        except (OSError, ValueError) as exc:
            raise self._fail(f"cannot read {path} from", exc) from None
        return Record.parse(data, f"{self.url}/{path}")

    def has(self, path: str) -> bool:
        """Whether ``HEAD`` finds ``path``."""
        import urllib.error

        try:
            with self._request("HEAD", path):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise self._fail(f"cannot look up {path} on", exc) from None
        except (OSError, ValueError) as exc:
            raise self._fail(f"cannot look up {path} on", exc) from None

    def download(self, record: Record, dest: Path) -> None:
        """The record's archive into the file ``dest``, checked: its length and sha256 must be
        the record's (else StoreError, and ``dest`` is removed)."""
        path = f"cas/{record.archive}"
        digest = sha256()
        received = 0
        try:
            with self._request("GET", path) as answer, open(dest, "wb") as out:
                while chunk := answer.read(CHUNK):
                    received += len(chunk)
                    if received > record.size:
                        raise StoreError(f"{self.url}/{path} is longer than its record says "
                                         f"({record.size} bytes)")
                    digest.update(chunk)
                    out.write(chunk)
        except StoreError:
            dest.unlink(missing_ok=True)
            raise
        except (OSError, ValueError, EOFError) as exc:  # http.client's errors are OSErrors
            dest.unlink(missing_ok=True)
            raise self._fail(f"cannot download {path} from", exc) from None
        except Exception as exc:  # http.client.IncompleteRead and the like
            dest.unlink(missing_ok=True)
            raise self._fail(f"cannot download {path} from", exc) from None
        if received != record.size:
            dest.unlink(missing_ok=True)
            raise StoreError(f"{self.url}/{path} is truncated: {received} bytes of "
                             f"{record.size}")
        if digest.hexdigest() != record.archive:
            dest.unlink(missing_ok=True)
            raise StoreError(f"{self.url}/{path} is corrupt: its sha256 is "
                             f"{digest.hexdigest()}")

    def upload(self, key: str, record: Record, archive: Path) -> bool:
        """Put the archive (unless the server has it) and then the record; False when the
        server already had the record."""
        if not self.writable:
            raise StoreError(f"no credentials to write to {self.url}")
        ac = f"ac/{check_key(key)}"
        cas = f"cas/{record.archive}"
        if self.has(ac):
            return False
        try:
            if not self.has(cas):
                with open(archive, "rb") as body:
                    self._request("PUT", cas, body, {
                        "Content-Length": str(record.size),
                        "Content-Type": "application/octet-stream"}).close()
            data = record.to_bytes()
            self._request("PUT", ac, data, {"Content-Length": str(len(data)),
                                            "Content-Type": "application/json"}).close()
        except StoreError:
            raise
        except (OSError, ValueError) as exc:
            raise self._fail(f"cannot upload {key} to", exc) from None
        return True


def credentials(url: str, environ: dict[str, str] | os._Environ[str]) -> tuple[str, str] | None:
    """Write credentials for ``url``: ``LIVEFORGE_CACHE_AUTH`` (``user:password``), else the
    netrc entry of its host (``$NETRC`` or ``~/.netrc``), else None (read only)."""
    given = environ.get("LIVEFORGE_CACHE_AUTH", "")
    if given:
        user, sep, password = given.partition(":")
        if not sep:
            raise StoreError("LIVEFORGE_CACHE_AUTH must be user:password")
        return user, password
    import netrc
    import urllib.parse

    host = urllib.parse.urlparse(url).hostname or ""
    path = environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not host or not os.path.isfile(path):
        return None
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise StoreError(f"{path}: {exc}") from None
    if entry is None:
        return None
    login, _, password = entry
    return login, password or ""
