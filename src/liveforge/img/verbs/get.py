"""imgadm get UUID [-P POOL] [-r]: an installed image's record as JSON."""

from __future__ import annotations

import argparse

from liveforge.img.store import DEFAULT_POOL
from liveforge.img.verbs.base import Context, image_uuid

SUMMARY = "print an installed image's manifest, pool and source"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="UUID", type=image_uuid)
    parser.add_argument("-P", dest="pool", default=DEFAULT_POOL, metavar="POOL")
    parser.add_argument("-r", dest="children", action="store_true",
                        help="add the uuids of the images built on it (children)")


def run(ctx: Context) -> int:
    store = ctx.store
    image = store.require(ctx.args.uuid, ctx.args.pool)
    record = image.record()
    if ctx.args.children:
        record["children"] = sorted(c.uuid for c in store.children(image.uuid, image.pool))
    ctx.json(record)
    return 0
