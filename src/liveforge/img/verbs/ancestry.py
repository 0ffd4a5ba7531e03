"""imgadm ancestry UUID [-P POOL] [-j] [-H] [-o FIELDS]: an image and its origins."""

from __future__ import annotations

import argparse

from liveforge.img.store import DEFAULT_POOL
from liveforge.img.table import parse_fields, render
from liveforge.img.verbs.base import Context, image_uuid

SUMMARY = "list an image's ancestry (the image, its origin, the origin's origin...)"
COLUMNS = ("uuid", "name", "version", "published")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uuid", metavar="UUID", type=image_uuid)
    parser.add_argument("-P", dest="pool", default=DEFAULT_POOL, metavar="POOL")
    parser.add_argument("-j", dest="json", action="store_true", help="JSON output")
    parser.add_argument("-H", dest="no_header", action="store_true", help="no header line")
    parser.add_argument("-o", dest="columns", metavar="FIELD,...", help="columns to show")


def run(ctx: Context) -> int:
    args = ctx.args
    columns = parse_fields(args.columns, COLUMNS, "column list")
    rows = [image.record() for image in ctx.store.ancestry(args.uuid, args.pool)]
    if args.json:
        ctx.json(rows)
    else:
        ctx.out.write(render(rows, columns, header=not args.no_header))
    return 0
