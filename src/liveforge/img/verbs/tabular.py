"""The command line of the image tables (``list``, ``avail``, ``ancestry``): their options
(``-j``, ``-H``, ``-o``; ``-s`` and filters where rows are chosen) and their output (the
table, or the rows as JSON)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from liveforge.img.table import (
    DEFAULT_COLUMNS,
    DEFAULT_SORT,
    Filter,
    parse_fields,
    parse_filters,
    render,
    select,
)
from liveforge.img.verbs.base import Context


def add_table_arguments(parser: argparse.ArgumentParser, *, choose: bool = True) -> None:
    """``-j``, ``-H``, ``-o``; with ``choose`` also ``-s`` and the ``FIELD=VALUE`` filters."""
    parser.add_argument("-j", dest="json", action="store_true", help="JSON output")
    parser.add_argument("-H", dest="no_header", action="store_true", help="no header line")
    parser.add_argument("-o", dest="columns", metavar="FIELD,...", help="columns to show")
    if choose:
        parser.add_argument("-s", dest="sort", metavar="FIELD,...",
                            help="sort by these fields (-FIELD: descending)")
        parser.add_argument("filters", nargs="*", metavar="FIELD=VALUE",
                            help="FIELD=VALUE, FIELD=true|false, FIELD=~SUBSTRING")


@dataclass(frozen=True, slots=True)
class TableArgs:
    """The table options of a command line, checked (``Usage`` errors) before any work."""

    filters: list[Filter]
    columns: list[str]
    sort: list[str]
    json: bool
    header: bool

    @classmethod
    def of(cls, args: argparse.Namespace, columns: Sequence[str] = DEFAULT_COLUMNS,
           *, choose: bool = True) -> TableArgs:
        """From the options :func:`add_table_arguments` added (with the same ``choose``)."""
        return cls(filters=parse_filters(args.filters) if choose else [],
                   columns=parse_fields(args.columns, columns, "column list"),
                   sort=parse_fields(args.sort, DEFAULT_SORT, "sort field list") if choose
                   else [],
                   json=args.json, header=not args.no_header)

    def show(self, ctx: Context, rows: Sequence[dict[str, Any]]) -> int:
        """The rows the filters match, sorted, as the table or JSON on stdout; exit status 0."""
        chosen = select(rows, self.filters, self.sort)
        if self.json:
            ctx.json(chosen)
        else:
            ctx.out.write(render(chosen, self.columns, header=self.header))
        return 0
