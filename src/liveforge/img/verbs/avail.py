"""imgadm avail [FILTER...] [-j] [-H] [-o FIELDS] [-s FIELDS]: the images the sources offer.

The active images of every source (an image several sources have is listed once, from the
first), as the same table as ``imgadm list`` (fields, filters, sort)."""

from __future__ import annotations

import argparse

from liveforge.img.table import (
    DEFAULT_COLUMNS,
    DEFAULT_SORT,
    parse_fields,
    parse_filters,
    render,
    select,
)
from liveforge.img.verbs.base import Context
from liveforge.img.verbs.list_ import add_table_arguments

SUMMARY = "list the images available from the image sources"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_table_arguments(parser)


def run(ctx: Context) -> int:
    from liveforge.img.remote import Remote, warner

    args = ctx.args
    filters = parse_filters(args.filters)
    columns = parse_fields(args.columns, DEFAULT_COLUMNS, "column list")
    sort = parse_fields(args.sort, DEFAULT_SORT, "sort field list")
    with Remote.of(ctx.store, None, warner(ctx.verb, ctx.err)) as remote:
        rows = select(remote.list(), filters, sort)
    if args.json:
        ctx.json(rows)
    else:
        ctx.out.write(render(rows, columns, header=not args.no_header))
    return 0
