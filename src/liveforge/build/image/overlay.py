"""The overlay's device driver registry: ``etc/name_to_major`` and ``etc/driver_aliases``.

``name_to_major`` holds ``NAME MAJOR`` lines, ``driver_aliases`` holds ``NAME "ALIAS"`` lines;
``#`` starts a comment. :func:`add_driver` gives a new driver the next free major number (the
largest in use plus one) and records its aliases; a driver already present is refused.
"""

from __future__ import annotations

from pathlib import Path

from liveforge.build.config import NAME_RE
from liveforge.util.errors import InputError
from liveforge.util.fileio import read_text, write_atomic

NAME_TO_MAJOR = "etc/name_to_major"
DRIVER_ALIASES = "etc/driver_aliases"


def _lines(path: Path) -> list[str]:
    return read_text(path).splitlines() if path.is_file() else []


def _fields(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def read_majors(path: Path) -> dict[str, int]:
    """Driver name -> major number from a ``name_to_major`` file."""
    majors: dict[str, int] = {}
    for number, line in enumerate(_lines(path), 1):
        fields = _fields(line)
        if not fields:
            continue
        if len(fields) != 2 or not (fields[1].isascii() and fields[1].isdigit()):
            raise InputError(f"expected 'NAME MAJOR', got {line.strip()!r}", path, number)
        majors[fields[0]] = int(fields[1])
    return majors


def read_aliases(path: Path) -> dict[str, str]:
    """Alias -> driver name from a ``driver_aliases`` file."""
    aliases: dict[str, str] = {}
    for line in _lines(path):
        fields = _fields(line)
        if len(fields) >= 2:
            aliases[" ".join(fields[1:]).strip('"')] = fields[0]
    return aliases


def add_driver(overlay_dir: Path, name: str, aliases: list[str]) -> int:
    """Register driver ``name`` with ``aliases`` in ``overlay_dir``; return its major number."""
    if not NAME_RE.match(name):
        raise InputError(f"invalid driver name {name!r}")
    for alias in aliases:
        if not alias or any(c in alias for c in '"#\n') or alias != alias.strip():
            raise InputError(f"invalid alias {alias!r} for driver {name!r}")
    majors_path = overlay_dir / NAME_TO_MAJOR
    aliases_path = overlay_dir / DRIVER_ALIASES
    majors = read_majors(majors_path)
    bound = read_aliases(aliases_path)
    if name in majors or name in bound.values():
        where = majors_path if name in majors else aliases_path
        raise InputError(f"driver {name!r} is already present", where)
    for alias in aliases:
        if alias in bound:
            raise InputError(f"alias {alias!r} already belongs to driver {bound[alias]!r}",
                             aliases_path)
    if len(set(aliases)) != len(aliases):
        raise InputError(f"an alias is given twice for driver {name!r}")
    major = max(majors.values(), default=0) + 1
    majors_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(majors_path, _append(_lines(majors_path), [f"{name} {major}"]))
    write_atomic(aliases_path,
                 _append(_lines(aliases_path), [f'{name} "{alias}"' for alias in aliases]))
    return major


def _append(lines: list[str], new: list[str]) -> str:
    lines = lines + new
    return "\n".join(lines) + "\n" if lines else ""
