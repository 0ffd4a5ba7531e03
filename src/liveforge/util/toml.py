"""Line numbers for TOML keys: tomllib gives none, so errors find them in the text."""

from __future__ import annotations

import functools
import re

HEADER_RE = re.compile(r"\s*\[([^\[\]]+)\]\s*(#.*)?$")


@functools.lru_cache(maxsize=8)
def _headers(text: str) -> dict[tuple[str, ...], int]:
    found: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if "[" not in line:
            continue
        m = HEADER_RE.match(line)
        if m:
            found.setdefault(tuple(p.strip().strip('"') for p in m.group(1).split(".")), number)
    return found


def headers(text: str) -> dict[tuple[str, ...], int]:
    """The line of every table header, by :func:`table_key`."""
    return dict(_headers(text))


def table_key(table: str) -> tuple[str, ...]:
    """A dotted table name as a key of :func:`headers` (compared loosely)."""
    return tuple(p.strip().strip('"') for p in table.split("."))


def table_line(text: str, table: str) -> int | None:
    """Line (1-based) of the header ``[table]`` (dotted names compared loosely)."""
    return _headers(text).get(table_key(table))


def key_line(text: str, table: str, key: str) -> int | None:
    """Line of ``key = ...`` inside ``[table]`` (or the table header if the key is not found)."""
    start = table_line(text, table)
    if start is None:
        return None
    lines = text.splitlines()
    for number in range(start, len(lines)):
        line = lines[number]
        if re.match(r"\s*\[", line):
            break
        if re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", line):
            return number + 1
    return start


def value_line(text: str, table: str, key: str, value: str) -> int | None:
    """Line holding the string ``value`` within ``key``'s (possibly multi-line) array."""
    first = key_line(text, table, key)
    if first is None:
        return None
    lines = text.splitlines()
    for number in range(first - 1, len(lines)):
        line = lines[number]
        if number > first - 1 and re.match(r"\s*(\[|[A-Za-z0-9_\"-]+\s*=)", line):
            break
        if f'"{value}"' in line or f"'{value}'" in line:
            return number + 1
    return first
