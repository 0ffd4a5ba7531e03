"""Manifests: what ships in the image (README, "Manifests").

A manifest is a text file of entries, one per line::

    d usr 0755 root sys            # directory: path, octal mode (<= 07777), owner, group
    f usr/bin/grep 0555 root bin   # file: the same five fields
    s usr/bin/coolgrep=grep        # symlink: name=literal target text
    h usr/bin/egrep=usr/bin/grep   # hard link: name=path of a file in the image

``#`` ends a line anywhere; blank lines and surrounding whitespace are ignored; spaces and tabs
(any run of them) separate fields. Paths are relative to the image root and must be *safe*: not
absolute, no ``.``, ``..`` or empty components, no NUL or newline, no component over 255 bytes
and no path over 4095 bytes (in UTF-8, as the file system counts them). A ``d`` path may end in
one ``/`` (``d usr/lib/ 0755 root bin``, as many real manifests write it), which is dropped: it is
the path ``usr/lib``. A symlink's target is literal text (absolute and ``..`` targets are legal);
a hard link's target is a path in the image and must stay inside it. A manifest is UTF-8 text:
each line that is not is an error.

:func:`combine` reads several manifests (``manifest.d/*`` in name order, then each overlay's
``manifest``), substitutes ``$VAR`` / ``${VAR}`` from build.env (a value may not leave a field
empty or put whitespace in it), keys the entries by path (the later one wins; a repeated path is
a warning naming both lines, silent for identical ``d`` lines, an error with ``strict``) and
returns a :class:`Manifest`; :func:`write_manifest` writes it sorted (``manifest.gen``). Every
malformed line of every file is reported, then :class:`InputErrors` is raised.
"""

from __future__ import annotations

import gc
import posixpath
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import add
from pathlib import Path

from liveforge.util.errors import InputError, InputErrors
from liveforge.util.fileio import not_utf8, write_atomic
from liveforge.util.keyvalue import UndefinedVariable, substitute
from liveforge.util.paths import MAX_NAME, SHORT_PATH, path_problem

MAX_MODE = 0o7777
_MODE_RE = re.compile(r"[0-7]+\Z")
_SUSPECT_RE = re.compile(r"/[/.]")


@dataclass(frozen=True, slots=True)
class Entry:
    """One manifest line. ``target`` is set for ``s`` and ``h`` entries, mode/owner/group for
    ``d`` and ``f`` entries; ``file`` and ``line`` say where the entry was written."""

    kind: str
    path: str
    mode: int
    owner: str
    group: str
    target: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def format(self) -> str:
        """The entry as a manifest line."""
        if self.kind in ("s", "h"):
            return f"{self.kind} {self.path}={self.target}"
        return f"{self.kind} {self.path} {self.mode:04o} {self.owner} {self.group}"


@dataclass(frozen=True, slots=True)
class Override:
    """A path delivered twice: ``winner`` (the later line) replaced ``loser``."""

    loser: Entry
    winner: Entry


class Manifest:
    """Combined manifest: one entry per path (the last delivery wins), plus the overridden ones.

    Entries are kept as the lines read, each entry's line in canonical form
    (``f usr/bin/grep 0555 root bin``), beside the path each line delivers (``""`` for a line
    that delivers nothing: a comment, or an entry a later line overrode). A line's position
    among them is its *code*; the *spans* (first code, file, line of the first code) give the
    file and line of a code. Entries are decoded into :class:`Entry` objects when asked for, and
    the lookup by path is made on the first :meth:`get`.
    """

    def __init__(self, texts: list[str], paths: list[str], spans: list[tuple[int, str, int]],
                 members: set[str], overrides: tuple[Override, ...] = (),
                 files: tuple[str, ...] = ()):
        self._texts = texts
        self._paths = paths
        self._members = members
        self._bases = [base for base, _, _ in spans]
        self._spans = spans
        self._index: dict[str, int] | None = None
        self.overrides = overrides
        self.files = files

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> Manifest:
        """A manifest of ``entries`` (the later of two with one path wins, silently)."""
        last = {e.path: e for e in entries}
        listed = list(last.values())
        return cls([e.format() for e in listed], list(last), [(i, e.file, e.line) for i, e in
                                                            enumerate(listed)], set(last))

    def _entry(self, code: int) -> Entry:
        base, file, line = self._spans[bisect_right(self._bases, code) - 1]
        return _decode(self._texts[code], file, line + code - base)

    def _codes(self) -> list[int]:
        """The codes of the entries, sorted by path."""
        paths = self._paths
        order = sorted(range(len(paths)), key=paths.__getitem__)
        # lines without an entry have the path "", which sorts first
        return order[len(paths) - len(self._members):]

    def entries(self) -> list[Entry]:
        """Every entry, sorted by path (so parents come before their children)."""
        codes = self._codes()
        # A million new objects would make the cycle collector walk the growing heap again
        # and again (it doubles the time); entries hold no cycles.
        paused = gc.isenabled()
        gc.disable()
        try:
            return list(map(self._entry, codes))
        finally:
            if paused:
                gc.enable()

    def paths(self) -> list[str]:
        return sorted(self._members)

    def get(self, path: str) -> Entry | None:
        if self._index is None:
            self._index = dict(zip(self._paths, range(len(self._paths)), strict=True))
            self._index.pop("", None)
        code = self._index.get(path)
        return None if code is None else self._entry(code)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, path: object) -> bool:
        return path in self._members

    def lines(self) -> list[str]:
        """The entries as manifest lines, sorted by path."""
        return list(map(self._texts.__getitem__, self._codes()))


# -- paths ------------------------------------------------------------------------------------

def hardlink_target(name: str, target: str) -> tuple[str | None, str | None]:
    """The normalised image path a hard link points to, or the problem with it."""
    if "\0" in target or "\n" in target or "\r" in target:
        return None, f"hard link target {target!r} contains a NUL or newline"
    if target.startswith("/"):
        return None, f"hard link target {target!r} is outside the image (absolute)"
    norm = posixpath.normpath(target)
    if norm == ".." or norm.startswith("../"):
        return None, f"hard link target {target!r} is outside the image (escapes with '..')"
    if norm in (".", ""):
        return None, f"hard link target {target!r} is the image root, not a file"
    if norm == name:
        return None, f"hard link {name!r} points to itself"
    return norm, None


# -- parsing ----------------------------------------------------------------------------------
#
# Parsing is on the critical path of every build (a platform's manifests run to hundreds of
# thousands of lines). A fast path takes the common line, in canonical form with single spaces,
# and only picks out its path; the line itself is kept as the entry. Everything else (comments,
# variables, other whitespace, non-canonical modes, every error) goes through _parse_line, the
# authority on the format, and its entry's line is rewritten in canonical form.

_new_object = object.__new__
(_set_kind, _set_path, _set_mode, _set_owner, _set_group, _set_target, _set_file,
 _set_line) = (getattr(Entry, name).__set__ for name in Entry.__dataclass_fields__)


def _decode(text: str, file: str, line: int) -> Entry:
    """The :class:`Entry` of a canonical line, made without the generated __init__ of a frozen
    dataclass (which sets each field through object.__setattr__, several times slower)."""
    made = _new_object(Entry)
    kind = text[0]
    if kind == "f" or kind == "d":
        _, path, mode, owner, group = text.split(" ")
        _set_mode(made, int(mode, 8))
        _set_owner(made, owner)
        _set_group(made, group)
        _set_target(made, "")
    else:
        path, _, target = text[2:].partition("=")
        _set_mode(made, 0)
        _set_owner(made, "")
        _set_group(made, "")
        _set_target(made, target)
    _set_kind(made, kind)
    _set_path(made, path)
    _set_file(made, file)
    _set_line(made, line)
    return made


def _mode(text: str) -> int | None:
    if not _MODE_RE.match(text):
        return None
    mode = int(text, 8)
    return mode if mode <= MAX_MODE else None


def _parse_line(raw: str, name: str, number: int,
                env: dict[str, str] | None) -> Entry | InputError | None:
    """Parse one line exactly by the rules: an entry, the error in it, or None for no entry."""
    hash_at = raw.find("#")
    if hash_at >= 0:
        raw = raw[:hash_at]
    fields = raw.split()
    if not fields:
        return None
    if env is not None and "$" in raw:
        try:
            values = [substitute(f, env) if "$" in f else f for f in fields]
        except UndefinedVariable as undefined:
            return InputError(f"undefined variable {undefined.name!r}", name, number)
        result = _parse_fields(values, name, number)
        for field, value in zip(fields, values, strict=True):
            if isinstance(result, Entry) and len(value.split()) != 1:
                return InputError(f"{field!r} is {value!r} after substitution: a field cannot "
                                  "be empty or hold whitespace", name, number)
        return result
    return _parse_fields(fields, name, number)


def _entry_path(kind: str, path: str) -> tuple[str, str | None]:
    """An entry's path as keyed (a ``d`` path loses one trailing ``/``) and the problem with it."""
    if len(path) > 1 and path[-1] == "/" and path[-2] != "/":
        if kind == "d":
            path = path[:-1]
        elif path_problem(path[:-1]) is None:
            return path, f"'{kind}' entry path {path!r} ends in '/' (only a 'd' entry may)"
    return path, path_problem(path)


def _parse_fields(fields: list[str], name: str, number: int) -> Entry | InputError:
    kind = fields[0]
    if kind == "f" or kind == "d":
        if len(fields) != 5:
            return InputError(f"'{kind}' entry needs exactly 5 fields (type path mode owner "
                              f"group), got {len(fields)}", name, number)
        mode = _mode(fields[2])
        if mode is None:
            return InputError(f"invalid mode {fields[2]!r}: expected an octal number <= 07777",
                              name, number)
        path, problem = _entry_path(kind, fields[1])
        if problem is not None:
            return InputError(problem, name, number)
        return Entry(kind, path, mode, fields[3], fields[4], "", name, number)
    if kind == "s" or kind == "h":
        if len(fields) != 2:
            return InputError(f"'{kind}' entry needs exactly 2 fields ({kind} name=target), "
                              f"got {len(fields)}", name, number)
        path, eq, target = fields[1].partition("=")
        if not eq:
            return InputError(f"'{kind}' entry needs name=target, got {fields[1]!r}", name, number)
        if not path or not target:
            which = "name" if not path else "target"
            return InputError(f"'{kind}' entry has an empty {which} in {fields[1]!r}", name, number)
        path, problem = _entry_path(kind, path)
        if problem is None and kind == "h":
            norm, problem = hardlink_target(path, target)
            target = norm or target
        elif problem is None and ("\0" in target or "\n" in target):
            problem = f"symlink target {target!r} contains a NUL or newline"
        if problem is not None:
            return InputError(problem, name, number)
        return Entry(kind, path, 0, "", "", target, name, number)
    return InputError(f"unknown entry type {kind!r}: expected one of d, f, s, h", name, number)


# Canonical metas ("0755 root sys") seen to be valid. They are few; the set is bounded.
_METAS: set[str] = set()
_METAS_MAX = 4096


def _canonical_meta(rest: str) -> bool:
    """Whether ``rest``, the text after an f/d path, is a mode of four octal digits, an owner and
    a group, separated by single spaces (the line holds no comment, variable or other space)."""
    if rest in _METAS:
        return True
    fields = rest.split(" ")
    if len(fields) != 3 or not all(fields) or len(fields[0]) != 4 or _mode(fields[0]) is None:
        return False
    if len(_METAS) < _METAS_MAX:
        _METAS.add(rest)
    return True


# Characters that send a line to the exact parser: a comment, a variable (with env), NUL, and
# every whitespace character but the space (str.split() splits on them all).
_ASCII_ODD = "#\0\t\r\x0b\x0c\x1c\x1d\x1e\x1f"
_WIDE_ODD = ("\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
             "\u200a\u2028\u2029\u202f\u205f\u3000")


def _special_lines(text: str, chars: str) -> list[int]:
    """The 0-based numbers of the lines of ``text`` holding any of ``chars``, in order."""
    found: set[int] = set()
    for char in chars:
        pos = text.find(char)
        line = 0
        counted = 0
        while pos >= 0:
            line += text.count("\n", counted, pos)
            counted = pos
            found.add(line)
            end = text.find("\n", pos)
            if end < 0:
                break
            pos = text.find(char, end)
    return sorted(found)


def _parse_into(text: str, name: str, env: dict[str, str] | None, texts: list[str],
                delivered: list[str], errors: list[InputError]) -> None:
    """Append the lines of ``text`` to ``texts``, each entry's line in canonical form, the path
    each line delivers to ``delivered`` (``""`` where a line holds no entry: blank, a comment, an
    error), and every error to ``errors`` (not sorted)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    chars = _ASCII_ODD + ("$" if env is not None else "")
    ascii_only = text.isascii()
    if not ascii_only:
        chars += _WIDE_ODD
    special = _special_lines(text, chars)
    del text
    special.append(len(lines))
    paths: list[str] = []
    keep = paths.append
    metas = _METAS
    slow = 0
    start = 0
    for stop in special:
        for raw in lines[start:stop]:
            parts = raw.split(" ", 2)
            count = len(parts)
            if count == 3:
                kind, path, rest = parts
                if (kind == "f" or kind == "d") and path and (rest in metas
                                                              or _canonical_meta(rest)):
                    keep(path)
                    continue
            elif count == 2:
                kind, spec = parts
                if kind == "s" or kind == "h":
                    path, _, target = spec.partition("=")
                    if path and target and (kind == "s" or (
                            target[0] != "/" and target[0] != "." and target[-1] != "/"
                            and "/." not in target and "//" not in target and target != path)):
                        # an h target that normpath leaves alone and that is not the link
                        keep(path)
                        continue
            slow += 1
            keep(_parse_slow(lines, len(paths), name, env, errors))
        if stop < len(lines):
            slow += 1
            keep(_parse_slow(lines, stop, name, env, errors))
        start = stop + 1
    # The fast path did not look at the paths: look at them all at once, check one by one only
    # those that look wrong, and hand a line whose path is wrong (a 'd' path ending in '/', say)
    # to the exact parser. The paths the exact parser took are fine and stay silent.
    present = list(filter(None, paths)) if slow else paths
    suspects = _suspects(present, ascii_only)
    if suspects:
        numbers = list(compress(range(len(paths)), paths)) if slow else range(len(paths))
        for index in suspects:
            number = numbers[index]
            if path_problem(paths[number]) is not None:
                paths[number] = _parse_slow(lines, number, name, env, errors)
    texts += lines
    delivered += paths


def _parse_slow(lines: list[str], number: int, name: str, env: dict[str, str] | None,
                errors: list[InputError]) -> str:
    """Parse ``lines[number]`` exactly; put its entry there in canonical form; return its path
    (``""`` for none)."""
    result = _parse_line(lines[number], name, number + 1, env)
    if isinstance(result, Entry):
        lines[number] = result.format()
        return result.path
    if result is not None:
        errors.append(result)
    return ""


def _suspects(paths: list[str], ascii_only: bool) -> list[int]:
    """The indexes of the ``paths`` (none empty) that may be unsafe or too long, in order."""
    if not paths:
        return []
    # Joined with '/': an absolute path, a trailing '/' or an empty component shows as '//'; a
    # '.' or '..' component as '/.' (so do hidden files); one regex scan finds both. The first
    # path shows at the start ('/' or '.') and the last at the end ('/'), where the join adds no
    # '/'. A match at position p names the path holding p, and the one after it when the match
    # touches the '/' the join put between them (the next match may overlap this one: "a///b").
    joined = "/".join(paths)
    found = [match.start() for match in _SUSPECT_RE.finditer(joined)]
    hits = set()
    if joined[0] in "/.":
        hits.add(0)
    if joined[-1] == "/":
        hits.add(len(paths) - 1)
    del joined
    if found:
        # the position of the '/' after each path (or of the end, after the last)
        after = list(map(add, accumulate(map(len, paths)), range(len(paths))))
        for position in found:
            index = bisect_left(after, position)
            hits.add(index)
            if position + 1 >= after[index]:
                hits.add(index + 1)
        hits.discard(len(paths))
    # A path is measured in bytes only when its characters may make more than MAX_NAME bytes.
    short = MAX_NAME if ascii_only else SHORT_PATH
    if max(map(len, paths)) > short:
        hits.update(index for index, path in enumerate(paths) if len(path) > short)
    return sorted(hits)


def _overridden(paths: list[str]) -> list[tuple[int, int]]:
    """Every (earlier, later) pair of codes delivering one path, in the order of the later one;
    the earlier path of each pair is blanked in ``paths``, so that each path is left once."""
    pairs: list[tuple[int, int]] = []
    last: dict[str, int] = {}
    for code, path in enumerate(paths):
        if path:
            previous = last.get(path)
            if previous is not None:
                pairs.append((previous, code))
                paths[previous] = ""
            last[path] = code
    return pairs


def parse_text(text: str, file: str | Path,
               env: dict[str, str] | None = None) -> tuple[list[Entry], list[InputError]]:
    """Parse manifest text; return its entries in line order and every error found.

    With ``env``, ``$VAR`` references are substituted in each field; without it, ``$`` is literal.
    """
    texts: list[str] = []
    paths: list[str] = []
    errors: list[InputError] = []
    name = str(file)
    _parse_into(text, name, env, texts, paths, errors)
    bad = {e.line for e in errors}
    entries = [_decode(texts[number], name, number + 1) for number, path in enumerate(paths)
               if path and number + 1 not in bad]
    errors.sort(key=lambda e: e.line or 0)
    return entries, errors


def parse_file(path: Path, env: dict[str, str] | None = None) -> list[Entry]:
    """Parse one manifest file; raise :class:`InputErrors` listing every bad line."""
    text, errors = _read(path)
    entries, parse_errors = parse_text(text, path, env)
    errors = sorted(errors + parse_errors, key=lambda e: e.line or 0)
    if errors:
        raise InputErrors(errors)
    return entries


def _read(path: Path) -> tuple[str, list[InputError]]:
    """The text of a manifest, and an error for each line that is not UTF-8 (left blank in the
    text, so that the other lines are still checked)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read manifest: {exc.strerror}", path) from None
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    errors: list[InputError] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            lines.append("")
            errors.append(not_utf8(path, number, raw[exc.start], exc.start + 1))
    return "\n".join(lines), errors


# -- combination ------------------------------------------------------------------------------

def combine(files: list[Path], env: dict[str, str], strict: bool,
            warn: Callable[[str], None]) -> Manifest:
    """Combine manifests in the order given (the later delivery of a path wins).

    A repeated path calls ``warn`` with a message naming both file:line pairs (nothing for two
    identical ``d`` lines); with ``strict`` it is an error instead. Errors of every file are
    collected and raised together as :class:`InputErrors`, in file and line order.
    """
    texts: list[str] = []
    paths: list[str] = []
    members: set[str] = set()
    spans: list[tuple[int, str, int]] = []
    errors: list[InputError] = []
    for file in files:
        try:
            text, file_errors = _read(file)
        except InputError as exc:
            errors.append(exc)
            continue
        base = len(texts)
        _parse_into(text, str(file), env, texts, paths, file_errors)
        del text
        members.update(paths[base:])
        spans.append((base, str(file), 1))
        errors.extend(sorted(file_errors, key=lambda e: e.line or 0))
    members.discard("")
    manifest = Manifest(texts, paths, spans, members, (), tuple(str(f) for f in files))
    overrides: list[Override] = []
    repeats = _overridden(paths) if len(members) != len(paths) - paths.count("") else []
    for previous, code in repeats:
        if texts[code] == texts[previous] and texts[code][0] == "d":
            continue
        loser, winner = manifest._entry(previous), manifest._entry(code)
        overrides.append(Override(loser, winner))
        message = f"{winner.path!r} is delivered twice: {loser.where} and {winner.where}"
        if strict:
            errors.append(InputError(message, winner.file, winner.line))
        else:
            warn(f"{message} (the later one wins)")
    if errors:
        raise InputErrors(errors)
    manifest.overrides = tuple(overrides)
    return manifest


def manifest_files(manifest_dir: Path, overlays: Iterable[Path] = ()) -> list[Path]:
    """The files :func:`combine` reads: ``manifest.d/*`` in name order, then each overlay's
    ``manifest`` (in overlay order). Hidden files and editor backups are skipped."""
    files: list[Path] = []
    if manifest_dir.is_dir():
        files = sorted(p for p in manifest_dir.iterdir()
                       if p.is_file() and not p.name.startswith(".") and not p.name.endswith("~")
                       and p.name != "manifest.gen")
    for overlay in overlays:
        candidate = overlay / "manifest"
        if candidate.is_file():
            files.append(candidate)
    return files


def format_manifest(manifest: Manifest) -> str:
    """The combined manifest as text, sorted by path (the content of ``manifest.gen``)."""
    lines = manifest.lines()
    return "\n".join(lines) + "\n" if lines else ""


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write ``manifest.gen`` atomically."""
    write_atomic(path, format_manifest(manifest))
