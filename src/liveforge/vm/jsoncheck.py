"""``json --validate [-f FILE] [-q]``: is the input one JSON document?

Exit 0 when it is (empty or blank input counts), else 1 with, on stderr,
``json: error: input is not JSON: <detail> at line L, column C:`` (``"FILE" is not JSON``
with ``-f``), the offending line indented 8 spaces and under it one ``.`` per column before a
``^``. The scanner reads the text once, without building values and without recursion (any
depth of nesting), and stops at the first problem: ``Expected ',' instead of '"'``,
``Bad string``, ``Bad number``, ``Unexpected 'x'``, ``Bad object``, ``Bad array``, and
``Syntax error`` for text after the document (two documents are not one). Duplicate keys
pass, as in JSON.parse."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

WS = " \t\n\r"
STRING_RE = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
WORDS = ("true", "false", "null")


@dataclass(frozen=True, slots=True)
class NotJson(Exception):
    """Where and why a text is not JSON: ``at`` is the offending character's index."""

    detail: str
    at: int


def scan(text: str) -> None:
    """Raise ``NotJson`` at the first problem of ``text``; return when it is one JSON
    document or blank."""
    n = len(text)
    i = _skip(text, 0)
    if i == n:
        return
    stack: list[str] = []          # the closer of each open container
    while True:
        # a value starts at i
        ch = text[i] if i < n else ""
        if ch in ("{", "["):
            close = "}" if ch == "{" else "]"
            i = _skip(text, i + 1)
            if text.startswith(close, i):
                i += 1                 # an empty container: a whole value
            else:
                stack.append(close)
                if close == "}":
                    i = _key(text, i)
                continue
        else:
            i = _scalar(text, i)
        # after a value: close containers, then a separator and the next value
        while True:
            i = _skip(text, i)
            if not stack:
                if i < n:
                    raise NotJson("Syntax error", i)
                return
            ch = text[i] if i < n else ""
            if ch == stack[-1]:
                stack.pop()
                i += 1
                continue
            if ch != ",":
                raise NotJson(_expected(",", ch), i)
            i = _skip(text, i + 1)
            if stack[-1] == "}":
                i = _key(text, i)
            break


def _skip(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in WS:
        i += 1
    return i


def _expected(want: str, got: str) -> str:
    return f"Expected '{want}' instead of '{got}'"


def _key(text: str, i: int) -> int:
    """A member's key and its colon; the index of its value."""
    m = STRING_RE.match(text, i)
    if m is None:
        raise NotJson("Bad string", i)
    i = _skip(text, m.end())
    ch = text[i] if i < len(text) else ""
    if ch != ":":
        raise NotJson(_expected(":", ch), i)
    return _skip(text, i + 1)


def _scalar(text: str, i: int) -> int:
    """A string, number or word at ``i``: the index after it."""
    ch = text[i] if i < len(text) else ""
    if ch == '"':
        m = STRING_RE.match(text, i)
        if m is None:
            raise NotJson("Bad string", i)
        return m.end()
    if ch == "-" or ch.isdigit():
        m = NUMBER_RE.match(text, i)
        if m is None or (m.end() < len(text) and text[m.end()] in ".eE0123456789"):
            raise NotJson("Bad number", i)
        return m.end()
    for word in WORDS:
        if text.startswith(word, i):
            return i + len(word)
    raise NotJson(f"Unexpected '{ch}'", i)


def position(text: str, error: NotJson) -> tuple[int, int, str]:
    """The line and column (from 1) of the error, and the text of that line."""
    at = min(error.at, len(text))
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    line = text[start:] if end < 0 else text[start:end]
    return text.count("\n", 0, at) + 1, at - start + 1, line


def describe(text: str, error: NotJson) -> str:
    """``<detail> at line L, column C:`` and the excerpt: the line, then the caret."""
    lineno, column, line = position(text, error)
    return (f"{error.detail} at line {lineno}, column {column}:\n"
            f"        {line}\n        {'.' * (column - 1)}^")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="json", description="Validate JSON input.")
    parser.add_argument("--validate", action="store_true", required=True,
                        help="check that the input is JSON (the only mode)")
    parser.add_argument("-f", dest="file", help="read FILE instead of stdin")
    parser.add_argument("-q", dest="quiet", action="store_true", help="no output, exit code only")
    args = parser.parse_args(argv)
    what = "input"
    try:
        if args.file is not None:
            what = f'"{args.file}"'
            with open(args.file, "rb") as handle:
                data = handle.read()
        else:
            data = sys.stdin.buffer.read()
    except OSError as exc:
        if not args.quiet:
            print(f"json: error: cannot read {what}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        if not args.quiet:
            print(f"json: error: {what} is not JSON: not UTF-8 (byte {exc.start})",
                  file=sys.stderr)
        return 1
    try:
        scan(text)
    except NotJson as exc:
        if not args.quiet:
            print(f"json: error: {what} is not JSON: {describe(text, exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
