"""The image tables of ``imgadm list`` and ``imgadm avail``: fields, filters, sort, layout.

A row is an image record ``{"manifest": {...}, "zpool", "source", "clones"}`` (``avail``'s have
no pool or clones). A field is a computed one (:data:`COMPUTED`) or a dotted path into the
manifest (``name``, ``tags.role``, ``files.0.size``). Filters: ``F=V`` matches the value's text
exactly (``true``/``false`` match booleans), ``F=~sub`` holds ``sub``. Columns are as wide as
their widest cell, two spaces apart, missing values ``-``, lines right-trimmed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from liveforge.img.errors import ImgadmError
from liveforge.util.cells import cell_text

DEFAULT_COLUMNS = ("uuid", "name", "version", "os", "type", "pub")
DEFAULT_SORT = ("published_at", "name")


def _published(row: dict[str, Any]) -> Any:
    value = row["manifest"].get("published_at")
    if not isinstance(value, str):
        return None
    return value.split(".", 1)[0].rstrip("Z") + "Z"


def _pub(row: dict[str, Any]) -> Any:
    value = row["manifest"].get("published_at")
    return value[:10] if isinstance(value, str) else None


def _size(row: dict[str, Any]) -> Any:
    files = row["manifest"].get("files")
    if isinstance(files, list) and files and isinstance(files[0], dict):
        return files[0].get("size")
    return None


def _record(key: str) -> Callable[[dict[str, Any]], Any]:
    def get(row: dict[str, Any]) -> Any:
        return row.get(key)
    return get


# the fields computed from the record rather than read from the manifest
COMPUTED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "pub": _pub,
    "published": _published,
    "size": _size,
    "source": _record("source"),
    "clones": _record("clones"),
    "zpool": _record("zpool"),
}


def field_value(row: dict[str, Any], field: str) -> Any:
    """The value of ``field`` in ``row``, ``None`` when there is none."""
    if field in COMPUTED:
        return COMPUTED[field](row)
    value: Any = row["manifest"]
    for part in field.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


@dataclass(frozen=True, slots=True)
class Filter:
    """``field=value`` (exact), ``field=true|false`` (boolean), ``field=~value`` (substring)."""

    field: str
    value: str
    substring: bool = False

    def matches(self, row: dict[str, Any]) -> bool:
        value = field_value(row, self.field)
        if value is None:
            return False
        if self.substring:
            return self.value in cell_text(value)
        if isinstance(value, bool):
            return self.value == ("true" if value else "false")
        if isinstance(value, list):
            return self.value in [cell_text(v) for v in value] or self.value == cell_text(value)
        return cell_text(value) == self.value


def parse_filters(args: Iterable[str]) -> list[Filter]:
    """The filters of the command line; an argument without ``=`` is a ``Usage`` error."""
    filters = []
    for arg in args:
        field, sep, value = arg.partition("=")
        if not sep or not field:
            raise ImgadmError("Usage", f'invalid filter "{arg}": expected FIELD=VALUE')
        if value.startswith("~"):
            filters.append(Filter(field, value[1:], substring=True))
        else:
            filters.append(Filter(field, value))
    return filters


def parse_fields(option: str | None, default: Sequence[str], what: str) -> list[str]:
    """A comma-separated field list (``-o``/``-s``); empty names are a ``Usage`` error."""
    if option is None:
        return list(default)
    fields = [f.strip() for f in option.split(",")]
    if not all(fields) or not all(f.lstrip("-") for f in fields):
        raise ImgadmError("Usage", f'invalid {what} "{option}": expected comma-separated '
                          "field names")
    return fields


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, cell_text(value))


def select(rows: Iterable[dict[str, Any]], filters: Sequence[Filter],
           sort: Sequence[str]) -> list[dict[str, Any]]:
    """The rows every filter matches, sorted by the fields of ``sort`` (``-field``:
    descending); ties keep their order."""
    chosen = [row for row in rows if all(f.matches(row) for f in filters)]
    for field in reversed(sort):
        descending = field.startswith("-")
        name = field.lstrip("-")
        chosen.sort(key=lambda row: _sort_key(field_value(row, name)), reverse=descending)
    return chosen


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], header: bool = True) -> str:
    """The table as text (a final newline included when there is any line)."""
    lines = [[c.upper() for c in columns]] if header else []
    lines += [[cell_text(field_value(row, c)) for c in columns] for row in rows]
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
           .rstrip() for line in lines]
    return "\n".join(out) + "\n"
