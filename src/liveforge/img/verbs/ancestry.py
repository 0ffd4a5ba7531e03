"""imgadm ancestry UUID [-P POOL] [-j] [-H] [-o FIELDS]: an image and its origins."""

from __future__ import annotations

import argparse

from liveforge.img.store import DEFAULT_POOL
from liveforge.img.verbs.base import Context, image_uuid
from liveforge.img.verbs.tabular import TableArgs, add_table_arguments

SUMMARY = "list an image's ancestry (the image, its origin, the origin's origin...)"
COLUMNS = ("uuid", "name", "version", "published")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="UUID", type=image_uuid)
    parser.add_argument("-P", dest="pool", default=DEFAULT_POOL, metavar="POOL")
    add_table_arguments(parser, choose=False)


def run(ctx: Context) -> int:
    args = ctx.args
    table = TableArgs.of(args, COLUMNS, choose=False)
    rows = [image.record() for image in ctx.store.ancestry(args.uuid, args.pool)]
    return table.show(ctx, rows)
