"""``KEY=value`` files (build.env, configure-build): parse with file:line errors; and their
values put into text as ``$KEY`` or ``${KEY}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from liveforge.util.errors import InputError, InputErrors
from liveforge.util.fileio import read_text

KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


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


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``$VAR`` and ``${VAR}`` that ``values`` defines; leave the others."""
    return VAR_RE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)
