"""TOML files: one reader (:func:`read_toml`), whose errors name the file and line, and one
writer (:func:`dumps`, tomli-w).

tomllib gives no positions, so :class:`Lines` finds the line of a table, a key or a value in
the text when an error needs it. A text is parsed once per process: every reader of the same
text gets the same data, which is therefore never changed by its readers.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from liveforge.util.errors import InputError
from liveforge.util.fileio import read_text

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

HEADER_RE = re.compile(r"\s*\[([^\[\]]+)\]\s*(#.*)?$")
_TABLE_START_RE = re.compile(r"\s*\[")
_KEY_OR_TABLE_RE = re.compile(r"\s*(\[|[A-Za-z0-9_\"-]+\s*=)")
_POSITION_RE = re.compile(r"\s*\(at line (\d+), column \d+\)")


def read_toml(path: Path) -> tuple[dict[str, Any], Lines]:
    """``path``'s data (shared: not to be changed) and its :class:`Lines`. A byte that is not
    UTF-8, or text that is not TOML, is an :class:`InputError` naming the file and line."""
    text = read_text(path)
    return parse_toml(text, path), Lines(path, text)


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """``text`` (read from ``path``) parsed, once per process for each text (shared: not to be
    changed); not TOML: an :class:`InputError` naming ``path`` and the line."""
    import tomllib

    try:
        return _parse(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _POSITION_RE.search(message)
        message = _POSITION_RE.sub("", message).replace(" (at end of document)", " at end of file")
        raise InputError(message, path, int(at.group(1)) if at else None) from None


@functools.lru_cache(maxsize=1024)  # an extra component may hold a hundred packages
def _parse(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)


def table_key(table: str) -> tuple[str, ...]:
    """A dotted table name as a key of :meth:`Lines.headers` (compared loosely)."""
    return tuple(p.strip().strip('"') for p in table.split("."))


class Lines:
    """Where the tables, keys and values of one TOML file are (1-based lines, for errors).

    The text is read when first needed; ``headers``, when given, are the table header lines
    found earlier (a cached parse keeps them, so that a file without errors is not read)."""

    __slots__ = ("path", "_text", "_headers")

    def __init__(self, path: Path, text: str | None = None,
                 headers: dict[tuple[str, ...], int] | None = None):
        self.path = path
        self._text = text
        self._headers = headers

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = read_text(self.path)
        return self._text

    def headers(self) -> dict[tuple[str, ...], int]:
        """The line of every table header ``[a.b]``, by :func:`table_key`."""
        if self._headers is None:
            found: dict[tuple[str, ...], int] = {}
            for number, line in enumerate(self.text.splitlines(), 1):
                if "[" in line and (m := HEADER_RE.match(line)):
                    found.setdefault(table_key(m.group(1)), number)
            self._headers = found
        return self._headers

    def table(self, table: str) -> int | None:
        """The line of the header ``[table]`` (dotted names compared loosely)."""
        return self.headers().get(table_key(table))

    def key(self, table: str, key: str) -> int | None:
        """The line of ``key = ...`` in ``[table]`` (``""``: before the first table); a key not
        found in a table gives the table's header line."""
        start = 0
        if table:
            header = self.table(table)
            if header is None:
                return None
            start = header
        lines = self.text.splitlines()
        pattern = re.compile(rf"\s*\"?{re.escape(key)}\"?\s*=")
        for number in range(start, len(lines)):
            if _TABLE_START_RE.match(lines[number]):
                break
            if pattern.match(lines[number]):
                return number + 1
        return start or None

    def value(self, table: str, key: str, value: str) -> int | None:
        """The line holding the string ``value`` in ``key``'s (possibly multi-line) array, else
        the key's line."""
        first = self.key(table, key)
        if first is None:
            return None
        lines = self.text.splitlines()
        for number in range(first - 1, len(lines)):
            line = lines[number]
            if number > first - 1 and _KEY_OR_TABLE_RE.match(line):
                break
            if f'"{value}"' in line or f"'{value}'" in line:
                return number + 1
        return first


def dumps(data: Mapping[str, Any], comment: str = "") -> str:
    """``data`` as TOML text (tomli-w), after ``comment``'s lines as ``#`` comments."""
    import tomli_w

    head = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return head + tomli_w.dumps(data)
