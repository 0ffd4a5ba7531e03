"""The image store: installed images in pools, their database records, ancestry and holds.

Every path lies under ``IMGADM_ROOT`` (``/`` when unset):

- ``var/imgadm/imgadm.conf``: sources and pools (:mod:`liveforge.img.config`);
- ``var/imgadm/images/<pool>-<uuid>.json``: an installed image's record
  ``{"manifest", "zpool", "source"}``; the record is what makes an image installed;
- ``<pool dir>/<uuid>/``: a tree image's read-only layer (its own diff against its origin,
  whiteouts as overlayfs whiteouts), or ``<pool dir>/<uuid>.img``: a zvol's disk;
- ``var/imgadm/holds/<pool>-<uuid>/<holder>``: one empty file per VM built on the image;
- ``var/imgadm/locks/<uuid>.lock``: the per-image lock (:mod:`liveforge.img.lock`).

Installing unpacks into ``<pool dir>/<uuid>-partial`` under the image's lock, renames it into
place and then writes the record; any failure removes the partial. (An import may have
unpacked the ``-partial`` while it downloaded the file: :mod:`liveforge.img.follow`.) What a
killed run leaves (a ``-partial``) is removed by the next command that looks at the pool
(:meth:`ImageStore.clean`), unless its lock shows an install still running. Deleting removes
the record first, then the layer.

Why overlayfs layers everywhere, btrfs or not: one code path for every pool and file system,
the same stack a container engine mounts, a child's install costs only its diff, and deleting
a child never touches its origin. A btrfs subvolume snapshot per image would make each child a
full tree (snapshot of the origin plus the diff applied, deletions included) with a second way
to build and tear down a VM root; its gain, fewer layers to stack, matters only for long
ancestries, which image chains here are not.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveforge.img import config as imgconfig
from liveforge.img.errors import ImgadmError
from liveforge.img.lock import file_lock
from liveforge.img.manifest import Manifest, is_uuid, validate
from liveforge.util.fileio import read_bytes, write_atomic
from liveforge.util.hashing import file_digest
from liveforge.util.scratch import remove_tree

DEFAULT_POOL = imgconfig.DEFAULT_POOL
PARTIAL = "-partial"
HOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}\Z")


@dataclass(frozen=True, slots=True)
class Installed:
    """An installed image: its manifest, pool, source URL (None: installed from a file) and
    its layer directory (tree images) or disk file (zvol)."""

    manifest: Manifest
    pool: str
    source: str | None
    path: Path

    @property
    def uuid(self) -> str:
        return self.manifest.uuid

    def record(self) -> dict[str, Any]:
        """The database record, as ``imgadm get`` prints it."""
        return {"manifest": self.manifest.data, "zpool": self.pool, "source": self.source}


def not_installed(uuid: str, pool: str) -> ImgadmError:
    return ImgadmError("ImageNotInstalled", f'image "{uuid}" was not found on zpool "{pool}"')


class ImageStore:
    """The images installed under one root."""

    def __init__(self, root: Path):
        self.root = root
        self.imgadm_dir = root / "var" / "imgadm"
        self.config_path = self.imgadm_dir / "imgadm.conf"
        self.db_dir = self.imgadm_dir / "images"
        self.holds_dir = self.imgadm_dir / "holds"
        self.locks_dir = self.imgadm_dir / "locks"
        self._config: imgconfig.Config | None = None

    @classmethod
    def from_env(cls) -> ImageStore:
        return cls(imgconfig.root_from_env())

    # -- configuration ----------------------------------------------------------------------
    @property
    def config(self) -> imgconfig.Config:
        if self._config is None:
            self._config = imgconfig.load(self.config_path)
        return self._config

    def save_config(self, config: imgconfig.Config) -> None:
        imgconfig.save(self.config_path, config)
        self._config = config

    def pools(self) -> list[str]:
        return sorted(self.config.pools)

    def pool_dir(self, pool: str) -> Path:
        path = self.config.pools.get(pool)
        if path is None:
            raise ImgadmError("ConfigError", f'unknown zpool "{pool}" (configured: '
                              f'{", ".join(self.pools())})')
        return self.root / path.lstrip("/")

    # -- records ----------------------------------------------------------------------------
    def _record_path(self, uuid: str, pool: str) -> Path:
        return self.db_dir / f"{pool}-{uuid}.json"

    def _image_path(self, manifest: Manifest, pool: str) -> Path:
        name = manifest.uuid if manifest.is_tree else f"{manifest.uuid}.img"
        return self.pool_dir(pool) / name

    def _load(self, path: Path, pool: str) -> Installed | None:
        try:
            data = json.loads(read_bytes(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ImgadmError("InternalError", f"{path}: unreadable image record: {exc}") \
                from None
        if not isinstance(data, dict):
            raise ImgadmError("InternalError", f"{path}: the image record is not an object")
        manifest = validate(data.get("manifest"), str(path))
        source = data.get("source")
        return Installed(manifest, pool, source if isinstance(source, str) else None,
                         self._image_path(manifest, pool))

    def get(self, uuid: str, pool: str = DEFAULT_POOL) -> Installed | None:
        """The installed image ``uuid`` in ``pool``, None when it is not installed there."""
        if not is_uuid(uuid):
            return None
        self.pool_dir(pool)
        return self._load(self._record_path(uuid, pool), pool)

    def require(self, uuid: str, pool: str = DEFAULT_POOL) -> Installed:
        """As :meth:`get`, but ``ImageNotInstalled`` (exit status 3) when it is not."""
        found = self.get(uuid, pool)
        if found is None:
            raise not_installed(uuid, pool)
        return found

    def list(self, pool: str | None = None) -> builtins.list[Installed]:
        """The installed images of ``pool`` (all pools when None), by pool and uuid."""
        pools = self.pools() if pool is None else [pool]
        for name in pools:
            self.pool_dir(name)
        found = []
        try:
            names = sorted(os.listdir(self.db_dir))
        except FileNotFoundError:
            return []
        for name in pools:
            prefix = f"{name}-"
            for entry in names:
                uuid = entry[len(prefix):-len(".json")]
                if entry.startswith(prefix) and entry.endswith(".json") and is_uuid(uuid):
                    image = self._load(self.db_dir / entry, name)
                    if image is not None:
                        found.append(image)
        return found

    # -- ancestry ---------------------------------------------------------------------------
    def ancestry(self, uuid: str, pool: str = DEFAULT_POOL) -> builtins.list[Installed]:
        """The image and its origins, the image first, the base last; an origin that is not
        installed is ``OriginNotInstalled``."""
        chain = [self.require(uuid, pool)]
        while (origin := chain[-1].manifest.origin) is not None:
            if any(image.uuid == origin for image in chain):
                raise ImgadmError("InternalError", f'image "{uuid}" has an origin loop at '
                                  f'"{origin}"')
            found = self.get(origin, pool)
            if found is None:
                raise ImgadmError("OriginNotInstalled", f'origin image "{origin}" of image '
                                  f'"{chain[-1].uuid}" is not installed on zpool "{pool}"')
            chain.append(found)
        return chain

    def lower_dirs(self, uuid: str, pool: str = DEFAULT_POOL) -> builtins.list[Path]:
        """The layer directories of a tree image's ancestry, top layer first (overlayfs
        ``lowerdir=`` order)."""
        chain = self.ancestry(uuid, pool)
        if not chain[0].manifest.is_tree:
            raise ImgadmError("InternalError", f'image "{uuid}" is a {chain[0].manifest.type} '
                              "image: it has a disk, not layers")
        return [image.path for image in chain]

    def children(self, uuid: str, pool: str = DEFAULT_POOL) -> builtins.list[Installed]:
        """The installed images whose origin is ``uuid``."""
        return [image for image in self.list(pool) if image.manifest.origin == uuid]

    # -- holds (a VM built on an image) -----------------------------------------------------
    def _holds(self, uuid: str, pool: str) -> Path:
        return self.holds_dir / f"{pool}-{uuid}"

    def holders(self, uuid: str, pool: str = DEFAULT_POOL) -> builtins.list[str]:
        try:
            return sorted(os.listdir(self._holds(uuid, pool)))
        except FileNotFoundError:
            return []

    def hold(self, uuid: str, pool: str, holder: str) -> None:
        """Record that ``holder`` (a VM uuid) is built on the image: ``delete`` refuses it."""
        if HOLDER_RE.match(holder) is None:
            raise ImgadmError("InternalError", f"invalid image holder name {holder!r}")
        with self.lock(uuid):
            self.require(uuid, pool)
            directory = self._holds(uuid, pool)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / holder).touch()

    def release(self, uuid: str, pool: str, holder: str) -> None:
        """Drop ``holder``'s hold (nothing when it holds none)."""
        if HOLDER_RE.match(holder) is None:
            return
        with self.lock(uuid):
            (self._holds(uuid, pool) / holder).unlink(missing_ok=True)
            try:
                self._holds(uuid, pool).rmdir()
            except OSError:
                pass

    def dependants(self, uuid: str, pool: str = DEFAULT_POOL) -> builtins.list[str]:
        """What is built on the image: ``image U`` for each child image, ``VM V`` per hold."""
        return ([f"image {child.uuid}" for child in self.children(uuid, pool)]
                + [f"VM {holder}" for holder in self.holders(uuid, pool)])

    # -- locks and leftovers ----------------------------------------------------------------
    def lock_path(self, uuid: str) -> Path:
        return self.locks_dir / f"{uuid}.lock"

    @contextmanager
    def import_lock(self, uuid: str, on_wait: Callable[[], None] | None = None
                    ) -> Iterator[None]:
        """Hold the image's lock (installs, imports, deletes of one uuid run one at a time);
        ``on_wait`` is called once when another process holds it."""
        if not is_uuid(uuid):
            raise ImgadmError("InternalError", f"not an image uuid: {uuid!r}")
        with file_lock(self.lock_path(uuid), on_wait):
            yield

    lock = import_lock

    @staticmethod
    def _partial_uuid(name: str) -> str | None:
        """The uuid of a ``<uuid>-partial`` pool entry, None for any other entry."""
        uuid = name[:-len(PARTIAL)] if name.endswith(PARTIAL) else ""
        return uuid if is_uuid(uuid) else None

    def clean(self, pool: str | None = None) -> builtins.list[Path]:
        """Remove the ``-partial`` entries killed installs left in the pools; returns what was
        removed. One whose image's lock is held (an install running) is kept. (A layer a run
        killed between its rename and its record is not listed, and is replaced by the next
        install of that image: pool directories may hold other uuid-named things, VMs'.)"""
        removed: builtins.list[Path] = []
        for name in self.pools() if pool is None else [pool]:
            directory = self.pool_dir(name)
            try:
                entries = sorted(os.listdir(directory))
            except FileNotFoundError:
                continue
            for entry in entries:
                uuid = self._partial_uuid(entry)
                if uuid is None:
                    continue
                with file_lock(self.lock_path(uuid), blocking=False) as got:
                    if got and os.path.lexists(directory / entry):
                        remove_tree(directory / entry)
                        removed.append(directory / entry)
        return removed

    # -- install and delete -----------------------------------------------------------------
    @staticmethod
    def check_file(manifest: Manifest, file: Path) -> None:
        """The image file has the manifest's size and SHA-1 (``InvalidImageFile`` if not);
        static: ``imgadm publish`` checks its file with it without a store."""
        expected = manifest.file
        if expected is None:
            raise ImgadmError("InvalidManifest", f'image "{manifest.uuid}": the manifest has '
                              "no files")
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise ImgadmError("InvalidImageFile", f"{file}: {exc.strerror}") from None
        if size != expected.size:
            raise ImgadmError("InvalidImageFile", f"{file}: size is {size} bytes, the manifest "
                              f"(files[0].size) says {expected.size}")
        sha1 = file_digest(file, "sha1")
        if sha1 != expected.sha1:
            raise ImgadmError("InvalidImageFile", f"{file}: sha1 is {sha1}, the manifest "
                              f"(files[0].sha1) says {expected.sha1}")

    @contextmanager
    def _origin_lock(self, manifest: Manifest) -> Iterator[None]:
        """The origin's lock too: it is not deleted while its child is being installed."""
        if manifest.origin is None:
            yield
            return
        with self.lock(manifest.origin):
            yield

    def fresh_partial(self, manifest: Manifest, pool: str = DEFAULT_POOL) -> Path:
        """The ``<uuid>-partial`` path an install of the image unpacks into, with what a killed
        run left there removed (the caller holds the image's lock)."""
        directory = self.pool_dir(pool)
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f"{manifest.uuid}{PARTIAL}"
        if os.path.lexists(partial):
            remove_tree(partial)
        return partial

    def drop_partial(self, uuid: str, pool: str, identity: tuple[int, int]) -> None:
        """Remove the ``<uuid>-partial`` layer whose (device, inode) is ``identity``, if it is
        still there (one unpacked for an install that did not happen)."""
        partial = self.pool_dir(pool) / f"{uuid}{PARTIAL}"
        if _identity(partial) == identity:
            try:
                remove_tree(partial)
            except OSError:
                pass  # another run's clean-up got there first

    def install(self, manifest: Manifest, file: Path, source: str | None = None,
                pool: str = DEFAULT_POOL, *, verified: bool = False,
                take: bool = False, unpacked: tuple[int, int] | None = None) -> Installed:
        """Install ``manifest``'s image from its file: size and SHA-1 checked, origin
        installed, unpacked into ``<uuid>-partial``, renamed into place, recorded. On any
        failure nothing of it is left. Takes the image's lock (re-entrant for the thread that
        already holds it).

        ``verified``: the caller computed the file's SHA-1 as it wrote it (an import's
        download), so only its size is checked. ``take``: the file is the caller's to give
        away: an uncompressed disk is renamed into the pool rather than copied. ``unpacked``:
        the (device, inode) of the ``<uuid>-partial`` layer the caller unpacked from this
        verified file while downloading it (:mod:`liveforge.img.follow`); used when that is
        still what is there, else the file is unpacked again."""
        uuid = manifest.uuid
        with self.lock(uuid), self._origin_lock(manifest):
            if self.get(uuid, pool) is not None:
                raise ImgadmError("ImageAlreadyInstalled",
                                  f'image "{uuid}" is already installed on zpool "{pool}"')
            origin = manifest.origin
            if origin is not None and self.get(origin, pool) is None:
                raise ImgadmError("OriginNotInstalled", f'origin image "{origin}" of image '
                                  f'"{uuid}" is not installed on zpool "{pool}"')
            if verified and manifest.file is not None \
                    and file.stat().st_size == manifest.file.size:
                pass
            else:
                self.check_file(manifest, file)
            directory = self.pool_dir(pool)
            directory.mkdir(parents=True, exist_ok=True)
            final = self._image_path(manifest, pool)
            partial = directory / f"{uuid}{PARTIAL}"
            ready = unpacked is not None and manifest.is_tree and _identity(partial) == unpacked
            for stale in (final,) if ready else (partial, final):  # a killed run's (this lock
                if os.path.lexists(stale):                         # is ours now)
                    remove_tree(stale)
            from liveforge.img.layer import read_disk, read_layer  # tar, lzma: install's alone

            try:
                if ready:
                    pass
                elif manifest.is_tree:
                    partial.mkdir(0o755)
                    read_layer(file, partial, str(file), compression=manifest.file.compression
                               if manifest.file is not None else None)
                elif not (take and _move_disk(manifest, file, partial)):
                    read_disk(file, partial, str(file))
                if not manifest.is_tree:
                    os.chmod(partial, 0o444)
                os.rename(partial, final)
                installed = Installed(manifest, pool, source, final)
                self.db_dir.mkdir(parents=True, exist_ok=True)
                write_atomic(self._record_path(uuid, pool),
                             json.dumps(installed.record(), indent=2) + "\n")
            except BaseException:
                for path in (partial, final):
                    if os.path.lexists(path):
                        remove_tree(path)
                raise
        return installed

    def delete(self, uuid: str, pool: str = DEFAULT_POOL) -> Installed:
        """Remove an installed image: refused (``ImageHasDependentClones``) while a child image
        or a VM is built on it."""
        with self.lock(uuid):
            image = self.require(uuid, pool)
            dependants = self.dependants(uuid, pool)
            if dependants:
                raise ImgadmError("ImageHasDependentClones", f'image "{uuid}" has dependent '
                                  f'clones: {", ".join(dependants)}')
            self._record_path(uuid, pool).unlink()
            if os.path.lexists(image.path):
                remove_tree(image.path)
        return image


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a directory (not through a link), None when there is none."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _move_disk(manifest: Manifest, file: Path, dest: Path) -> bool:
    """Rename an uncompressed disk image to ``dest`` (made durable first, as a copy would
    be); False when it is compressed or on another file system."""
    if manifest.file is None or manifest.file.compression != "none":
        return False
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(file, dest)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise
    return True
