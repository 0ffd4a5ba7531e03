"""Declarative field tables: one declaration per key of an input table (its type, its default,
a further check), read by one function that validates a table and fills in defaults.

A table of fields is data: the reader and its error messages come from it, so a key is
described once. ``platform.toml``'s ``[platform]`` and an extra package's
``package.toml`` are read through it.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    # a check's problems: (message, the item of a list the message is about, or None)
    Problems = list[tuple[str, Any]]

# a field's type -> how an error names it
TYPES = {
    "str": "a string",
    "int": "a whole number",
    "bool": "true or false",
    "strlist": "a list of strings",
    "strmap": "a table of strings",
    "table": "a table",
    "list": "a list",
    "any": "a value",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a table."""

    key: str
    type: str                    # one of TYPES
    default: Any = None          # None: the key has no default (the reader's caller decides)
    check: Callable[[Any], Problems] | None = None  # further problems of a well-typed value


def typed(value: Any, type: str) -> bool:
    """Whether ``value`` is of the field type ``type``."""
    if type == "str":
        return isinstance(value, str)
    if type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type == "bool":
        return isinstance(value, bool)
    if type == "strlist":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if type == "strmap":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if type == "table":
        return isinstance(value, dict)
    if type == "list":
        return isinstance(value, list)
    return True


def read_table(data: Mapping[str, Any], fields: Iterable[Field],
               report: Callable[[str, str, Any], None], where: str = "") -> dict[str, Any]:
    """The values of ``data`` by the ``fields``, each missing or bad one replaced by its default.

    Every problem is passed to ``report(message, key, item)`` (``item``: the element of a
    list the message is about, else None): a key no field declares (``where`` names the table
    in that message), a value of the wrong type, and what a field's check finds. A value equal
    to its default is not checked again: a default is known good."""
    known = {f.key: f for f in fields}
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = known.get(key)
        if field is None:
            report(f"unknown key {key!r}{where} (known: {', '.join(sorted(known))})", key, None)
            continue
        if not typed(value, field.type):
            report(f"{key} must be {TYPES[field.type]}", key, None)
            continue
        problems = field.check(value) if field.check is not None and value != field.default \
            else []
        for message, item in problems:
            report(message, key, item)
        if not problems:
            out[key] = value
    for field in known.values():
        out.setdefault(field.key, field.default)
    return out
