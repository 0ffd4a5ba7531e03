"""A payload: the JSON object of ``-f FILE`` or stdin, or ``key=value`` arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from liveforge.util.fileio import read_bytes
from liveforge.vm.errors import VmadmError


def read(file: str | None) -> dict[str, Any]:
    """The payload object; ``File: X does not exist.`` or ``Invalid JSON payload: ...``."""
    if file is not None and file != "-":
        if not Path(file).exists():
            raise VmadmError(f"File: {file} does not exist.")
        try:
            data = read_bytes(file)
        except OSError as exc:
            raise VmadmError(f"File: {file} cannot be read: {exc.strerror}") from None
    else:
        if sys.stdin.isatty():
            raise VmadmError("no payload: give -f FILE or JSON on stdin")
        data = sys.stdin.buffer.read()
    return parse(data)


def parse(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise VmadmError(f"Invalid JSON payload: not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise VmadmError("Invalid JSON payload: empty input")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as error:  # json --validate's scanner says what and where
        from liveforge.vm.jsoncheck import NotJson, position, scan

        try:
            scan(text)
        except NotJson as exc:
            line, column, _ = position(text, exc)
            raise VmadmError(f"Invalid JSON payload: {exc.detail} at line {line}, "
                             f"column {column}") from None
        raise VmadmError(f"Invalid JSON payload: {error}") from None
    if not isinstance(value, dict):
        raise VmadmError("Invalid JSON payload: not a JSON object")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def from_args(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` arguments as a payload (values as strings: validation types them)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise VmadmError(f"Invalid property assignment: {pair!r} (want key=value)")
        out[key] = value
    return out
