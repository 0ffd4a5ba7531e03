"""imgadm install -m MANIFEST -f FILE [-P POOL] [-q]: install an image from local files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import Manifest, validate
from liveforge.img.store import DEFAULT_POOL
from liveforge.img.verbs.base import Context
from liveforge.util.fileio import read_bytes

SUMMARY = "install an image from a manifest file and an image file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", dest="manifest", required=True, metavar="MANIFEST")
    parser.add_argument("-f", dest="file", required=True, metavar="FILE")
    parser.add_argument("-P", dest="pool", default=DEFAULT_POOL, metavar="POOL")
    parser.add_argument("-q", dest="quiet", action="store_true", help="no progress output")


def read_manifest(path: Path) -> Manifest:
    """The manifest in the JSON file ``path``: ``InvalidManifest`` if it cannot be read or is
    not JSON, ``ManifestValidation`` listing every bad field."""
    try:
        data = json.loads(read_bytes(path))
    except OSError as exc:
        raise ImgadmError("InvalidManifest", f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ImgadmError("InvalidManifest", f"{path}: not JSON: {exc}") from None
    return validate(data, str(path))


def run(ctx: Context) -> int:
    args = ctx.args
    manifest = read_manifest(Path(args.manifest))
    file = Path(args.file)
    if not file.is_file():
        raise ImgadmError("Usage", f'image file "{file}" does not exist')
    store = ctx.store
    skipping = (f"Image {manifest.uuid} ({manifest.name} {manifest.version}) is already "
                "installed, skipping")
    if store.get(manifest.uuid, args.pool) is not None:
        ctx.say(skipping)
        return 0
    if manifest.origin is not None and store.get(manifest.origin, args.pool) is None:
        raise ImgadmError("OriginNotInstalled", f'origin image "{manifest.origin}" of image '
                          f'"{manifest.uuid}" is not installed on zpool "{args.pool}"')
    ctx.say(f"Installing image {manifest.uuid} ({manifest.label})")
    ctx.debug("install", uuid=manifest.uuid, file=str(file), pool=args.pool,
              size=file.stat().st_size, origin=manifest.origin)
    try:
        installed = store.install(manifest, file, None, args.pool)
    except ImgadmError as exc:
        if exc.code != "ImageAlreadyInstalled":  # another install won the race for the lock
            raise
        ctx.say(skipping)
        return 0
    ctx.debug("installed", uuid=manifest.uuid, path=str(installed.path))
    ctx.say(f"Installed image {manifest.uuid} ({manifest.label})")
    return 0
