"""Image and VM tables show a cell the same way (one cell text, ``liveforge.util.cells``)."""

from __future__ import annotations

from liveforge.img import table
from liveforge.vm import query


def test_both_tables_show_objects_alike() -> None:
    tags = {"role": "db", "n": 2}
    row = {"manifest": {"tags": tags}}
    vm = {"uuid": "u", "brand": "joyent", "tags": tags}
    assert table.render([row], ["tags"], header=False) == '{"n":2,"role":"db"}\n'
    assert query.table([vm], ["tags"], header=False) == '{"n":2,"role":"db"}\n'
    assert table.render([row], ["tags.none"], header=False) == "-\n"
