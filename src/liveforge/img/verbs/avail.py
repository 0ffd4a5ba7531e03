"""imgadm avail [FILTER...] [-j] [-H] [-o FIELDS] [-s FIELDS]: the images the sources offer.

The active images of every source (an image several sources have is listed once, from the
first), as the same table as ``imgadm list`` (fields, filters, sort)."""

from __future__ import annotations

import argparse

from liveforge.img.verbs.base import Context
from liveforge.img.verbs.tabular import TableArgs, add_table_arguments

SUMMARY = "list the images available from the image sources"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_table_arguments(parser)


def run(ctx: Context) -> int:
    from liveforge.img.remote import Remote, warner

    table = TableArgs.of(ctx.args)
    with Remote.of(ctx.store, None, warner(ctx.verb, ctx.err)) as remote:
        rows = remote.list()
    return table.show(ctx, rows)
