"""imgadm list [FILTER...] [-j] [-H] [-o FIELDS] [-s FIELDS] [-P POOL]: installed images."""

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

SUMMARY = "list installed images"


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every image table takes (``list``, ``avail``)."""
    parser.add_argument("-j", dest="json", action="store_true", help="JSON output")
    parser.add_argument("-H", dest="no_header", action="store_true", help="no header line")
    parser.add_argument("-o", dest="columns", metavar="FIELD,...", help="columns to show")
    parser.add_argument("-s", dest="sort", metavar="FIELD,...",
                        help="sort by these fields (-FIELD: descending)")
    parser.add_argument("filters", nargs="*", metavar="FIELD=VALUE",
                        help="FIELD=VALUE, FIELD=true|false, FIELD=~SUBSTRING")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_table_arguments(parser)
    parser.add_argument("-P", dest="pool", metavar="POOL", help="only this pool")


def run(ctx: Context) -> int:
    args = ctx.args
    filters = parse_filters(args.filters)
    columns = parse_fields(args.columns, DEFAULT_COLUMNS, "column list")
    sort = parse_fields(args.sort, DEFAULT_SORT, "sort field list")
    store = ctx.store
    images = store.list(args.pool)
    children: dict[tuple[str, str], int] = {}
    for image in images:
        origin = image.manifest.origin
        if origin is not None:
            children[(image.pool, origin)] = children.get((image.pool, origin), 0) + 1
    rows = [dict(image.record(), clones=children.get((image.pool, image.uuid), 0)
                 + len(store.holders(image.uuid, image.pool))) for image in images]
    rows = select(rows, filters, sort)
    if args.json:
        ctx.json(rows)
    else:
        ctx.out.write(render(rows, columns, header=not args.no_header))
    return 0
