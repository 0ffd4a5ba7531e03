"""imgadm list [FILTER...] [-j] [-H] [-o FIELDS] [-s FIELDS] [-P POOL]: installed images."""

from __future__ import annotations

import argparse

from liveforge.img.verbs.base import Context
from liveforge.img.verbs.tabular import TableArgs, add_table_arguments

SUMMARY = "list installed images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_table_arguments(parser)
    parser.add_argument("-P", dest="pool", metavar="POOL", help="only this pool")


def run(ctx: Context) -> int:
    args = ctx.args
    table = TableArgs.of(args)
    store = ctx.store
    images = store.list(args.pool)
    children: dict[tuple[str, str], int] = {}
    for image in images:
        origin = image.manifest.origin
        if origin is not None:
            children[(image.pool, origin)] = children.get((image.pool, origin), 0) + 1
    rows = [dict(image.record(), clones=children.get((image.pool, image.uuid), 0)
                 + len(store.holders(image.uuid, image.pool))) for image in images]
    return table.show(ctx, rows)
