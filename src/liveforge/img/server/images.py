"""The served directory, one folder per image::

    DIR/<uuid>/manifest.json   the manifest; ``files`` is there once the file is uploaded
    DIR/<uuid>/file            the image file (files[0])
    DIR/<uuid>/file.md5        {"size", "mtime_ns", "md5"}: the file's MD5 (base64) that
                               Content-MD5 needs, written on upload or on the first download

Every write goes to a temporary name in the image's folder (``.<name>.lf-tmp-<pid>``) and is
renamed into place, so a reader sees the old manifest or the new one, never half of one; the
temporaries of a killed server are removed when the next one starts. A folder whose name is no
UUID, or whose manifest is missing or invalid, is not served (the log says why, once).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liveforge.img.errors import ManifestValidation
from liveforge.img.manifest import COMPRESSIONS, is_uuid, problems
from liveforge.img.server.errors import ApiError, not_found
from liveforge.util.fileio import read_json, write_atomic
from liveforge.util.scratch import remove_leftovers, tmp_name

MANIFEST = "manifest.json"
FILE = "file"
MD5 = "file.md5"
CHUNK = 1 << 20
# fields only the server sets: the state by activation, files by the upload
SERVER_FIELDS = ("state", "files")
_serial = itertools.count(1)


def now_iso() -> str:
    """The current time as IMGAPI writes dates: UTC with milliseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def field_errors(found: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"field": field, "code": "Invalid", "message": message} for field, message in found]


class Upload:
    """An image file being received: written to a temporary file beside the final one while
    its size, SHA-1 and MD5 are computed."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.tmp = folder / f"{tmp_name(FILE)}.{next(_serial)}"
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.size = 0
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.size += len(data)
        self.sha1.update(data)
        self.md5.update(data)

    def abandon(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.tmp.unlink(missing_ok=True)


class ImageDir:
    """The images of a directory, read from disk on every request (another process may publish
    into it by hand: a folder with its manifest and file is all an image is)."""

    def __init__(self, root: Path, log: Callable[[str], None]):
        self.root = root
        self.log = log
        self.warned: set[str] = set()
        self.uploading: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)
        for folder in root.iterdir():
            if folder.is_dir() and is_uuid(folder.name):
                remove_leftovers(folder)

    # -- reading ----------------------------------------------------------------------------
    def _warn_once(self, key: str, text: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.log(f"warning: {text}")

    def _load(self, folder: Path) -> dict[str, Any] | None:
        data = read_json(folder / MANIFEST)
        if data is None:
            self._warn_once(str(folder), f"{folder / MANIFEST}: missing or not JSON, not served")
            return None
        found = problems(data, need_files=False)
        if isinstance(data, dict) and data.get("uuid") != folder.name:
            found.append(("uuid", f"must be the folder's name {folder.name}"))
        if found:
            self._warn_once(str(folder), str(ManifestValidation(found, str(folder / MANIFEST)))
                            + "; not served")
            return None
        return dict(data)

    def all(self) -> list[dict[str, Any]]:
        """Every servable manifest, in no particular order."""
        found = []
        for name in os.listdir(self.root):
            if is_uuid(name) and (self.root / name).is_dir():
                manifest = self._load(self.root / name)
                if manifest is not None:
                    found.append(manifest)
        return found

    def get(self, uuid: str) -> dict[str, Any]:
        if not is_uuid(uuid):
            raise ApiError("InvalidParameter", f'"{uuid}" is not a UUID',
                           [{"field": "uuid", "code": "Invalid", "message": "not a UUID"}])
        folder = self.root / uuid
        manifest = self._load(folder) if folder.is_dir() else None
        if manifest is None:
            raise not_found(uuid)
        return manifest

    def file(self, uuid: str) -> tuple[Path, int]:
        """The image file and its size (as the manifest gives it); 404 when it has none."""
        manifest = self.get(uuid)
        path = self.root / uuid / FILE
        if not manifest.get("files") or not path.is_file():
            raise not_found(uuid, "the file of image")
        return path, int(manifest["files"][0]["size"])

    def md5(self, uuid: str, path: Path) -> str:
        """The file's MD5, base64: from ``file.md5`` when that matches the file, else computed
        (and written down for the next request). Blocking: for a thread."""
        st = path.stat()
        cached = read_json(path.parent / MD5)
        if isinstance(cached, dict) and cached.get("size") == st.st_size \
                and cached.get("mtime_ns") == st.st_mtime_ns and isinstance(cached.get("md5"), str):
            return str(cached["md5"])
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        value = base64.b64encode(digest.digest()).decode()
        self._write_md5(path, value)
        return value

    def _write_md5(self, path: Path, value: str) -> None:
        st = path.stat()
        record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": value}
        write_atomic(path.parent / MD5, json.dumps(record) + "\n")

    # -- publishing -------------------------------------------------------------------------
    def _save(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.root / manifest["uuid"] / MANIFEST,
                     json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def create(self, data: Any) -> dict[str, Any]:
        """A new, unactivated image from a posted manifest (its uuid made up when it has none)."""
        if not isinstance(data, dict):
            raise ApiError("InvalidParameter", "the request body must be a JSON object")
        manifest = dict(data)
        manifest.setdefault("v", 2)
        if "uuid" not in manifest:
            import uuid

            manifest["uuid"] = str(uuid.uuid4())
        found = problems(manifest, need_files=False)
        found += [(key, "is set by the server (upload the file, then activate)")
                  for key in SERVER_FIELDS if key in manifest and key != "state"]
        if found:
            raise ApiError("ValidationFailed", str(ManifestValidation(found)), field_errors(found))
        manifest["state"] = "unactivated"
        folder = self.root / manifest["uuid"]
        try:
            folder.mkdir()
        except FileExistsError:
            raise ApiError("ImageUuidAlreadyExists",
                           f'image uuid "{manifest["uuid"]}" already exists') from None
        try:
            self._save(manifest)
        except BaseException:
            os.rmdir(folder)
            raise
        return manifest

    def begin_upload(self, uuid: str) -> Upload:
        manifest = self.get(uuid)
        if manifest["state"] != "unactivated":
            raise ApiError("ImageFilesImmutable",
                           f'image "{uuid}" is {manifest["state"]}: its file cannot change')
        if uuid in self.uploading:
            raise ApiError("UploadInProgress", f'the file of image "{uuid}" is being uploaded')
        self.uploading.add(uuid)
        try:
            return Upload(self.root / uuid)
        except BaseException:
            self.uploading.discard(uuid)
            raise

    def finish_upload(self, uuid: str, upload: Upload, *, sha1: str | None, size: int | None,
                      compression: str) -> dict[str, Any]:
        """Check what was received against the ``sha1`` and ``size`` the client gave, then put
        the file in place and record it in the manifest. Any failure removes the upload."""
        try:
            got_sha1 = upload.sha1.hexdigest()
            found = []
            if size is not None and size != upload.size:
                found.append(("size", f"{size} bytes were announced, {upload.size} received"))
            if sha1 is not None and sha1 != got_sha1:
                found.append(("sha1", f"{sha1} was announced, the data received has {got_sha1}"))
            if found:
                raise ApiError("ValidationFailed", "the uploaded file does not match: "
                               + ", ".join(f"{f} ({m})" for f, m in found), field_errors(found))
            os.fsync(upload.fd)
            os.close(upload.fd)
            upload.fd = -1
            path = self.root / uuid / FILE
            os.replace(upload.tmp, path)
            self._write_md5(path, base64.b64encode(upload.md5.digest()).decode())
            manifest = self.get(uuid)
            manifest["files"] = [{"sha1": got_sha1, "size": upload.size,
                                  "compression": compression}]
            self._save(manifest)
            return manifest
        finally:
            upload.abandon()
            self.uploading.discard(uuid)

    def activate(self, uuid: str) -> dict[str, Any]:
        manifest = self.get(uuid)
        if manifest["state"] == "active":
            raise ApiError("ImageAlreadyActivated", f'image "{uuid}" is already activated')
        if not manifest.get("files") or not (self.root / uuid / FILE).is_file():
            raise ApiError("NoActivationNoFile",
                           f'image "{uuid}" cannot be activated: it has no file')
        manifest["state"] = "active"
        manifest.setdefault("published_at", now_iso())
        self._save(manifest)
        return manifest


def check_compression(value: str | None, manifest: dict[str, Any]) -> str:
    """The compression an upload declares (the query's, else the manifest's ``files``)."""
    if value is None:
        files = manifest.get("files") or [{}]
        value = files[0].get("compression")
    if value not in COMPRESSIONS:
        raise ApiError("InvalidParameter",
                       f"compression must be one of {', '.join(COMPRESSIONS)} (got {value!r})",
                       [{"field": "compression", "code": "Invalid",
                         "message": f"must be one of {', '.join(COMPRESSIONS)}"}])
    return str(value)
