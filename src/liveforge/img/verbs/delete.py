"""imgadm delete UUID [-P POOL]: remove an installed image nothing is built on."""

from __future__ import annotations

import argparse

from liveforge.img.store import DEFAULT_POOL
from liveforge.img.verbs.base import Context, image_uuid

SUMMARY = "delete an installed image (refused while an image or VM is built on it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="UUID", type=image_uuid)
    parser.add_argument("-P", dest="pool", default=DEFAULT_POOL, metavar="POOL")


def run(ctx: Context) -> int:
    image = ctx.store.delete(ctx.args.uuid, ctx.args.pool)
    ctx.say(f"Deleted image {image.uuid}")
    return 0
