"""imgadm show UUID: an image's manifest, from the first source that has it (2-space JSON)."""

from __future__ import annotations

import argparse

from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import is_uuid
from liveforge.img.verbs.base import Context

SUMMARY = "show the manifest of an image in the image sources"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="UUID")


def run(ctx: Context) -> int:
    from liveforge.img.remote import Remote, warner

    uuid = ctx.args.uuid
    if not is_uuid(uuid):
        raise ImgadmError("Usage", f'"{uuid}" is not an image uuid')
    with Remote.of(ctx.store, None, warner(ctx.verb, ctx.err)) as remote:
        manifest, _client = remote.find_any(uuid)
    ctx.json(manifest.data)
    return 0
