"""``KEY=value`` files (build.env, configure-build): parse with file:line errors; and the
``$KEY`` references to their values in other files (:func:`substitute`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from liveforge.util.errors import InputError, InputErrors
from liveforge.util.fileio import read_text

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
KEY_RE = re.compile(rf"{_KEY}\Z")
# $KEY, ${KEY}, and "${" of a braced reference that names no key (the "{" ends the match, so
# the text up to "}" is still scanned when such a reference is kept)
VAR_RE = re.compile(rf"\$(?:\{{({_KEY})\}}|({_KEY})|\{{(?=([^}}]*)\}}))")


def parse_keyvalue(path: Path) -> dict[str, str]:
    """Read ``KEY=value`` lines; ``#`` starts a comment line; blank lines are skipped.

    A value may be quoted with single or double quotes (the quotes are removed). Every bad line
    is reported, then :class:`InputErrors` is raised.
    """
    values: dict[str, str] = {}
    errors: list[InputError] = []
    text = read_text(path)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            errors.append(InputError(f"expected KEY=value, got {raw.strip()!r}", path, number))
            continue
        if not KEY_RE.match(key):
            errors.append(InputError(f"invalid variable name {key!r}", path, number))
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    if errors:
        raise InputErrors(errors)
    return values


def format_keyvalue(values: dict[str, str]) -> str:
    lines = ["# written by liveforge configure; edit configure-build instead"]
    for key in sorted(values):
        lines.append(f"{key}={values[key]}")
    return "\n".join(lines) + "\n"


class UndefinedVariable(Exception):
    """A ``$KEY`` that :func:`substitute` has no value for (``name``: the text it names)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def substitute(text: str, values: Mapping[str, str], keep_undefined: bool = False) -> str:
    """``text`` with each ``$KEY`` and ``${KEY}`` replaced by ``values[KEY]``. A key that
    ``values`` lacks, or a ``${...}`` that names no key, raises :class:`UndefinedVariable`; with
    ``keep_undefined`` it is left as written instead (for a text whose remaining references are
    substituted later, as a component's manifest is by :func:`~liveforge.build.image.manifest.
    combine`)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name is not None and name in values:
            return values[name]
        if keep_undefined:
            return match.group(0)
        raise UndefinedVariable(name if name is not None else match.group(3))

    return VAR_RE.sub(one, text)
