"""Manifests: what ships in the image (DESIGN.md §4).

A manifest is a text file of entries, one per line::

    d usr 0755 root sys            # directory: path, octal mode (<= 07777), owner, group
    f usr/bin/grep 0555 root bin   # file: the same five fields
    s usr/bin/coolgrep=grep        # symlink: name=literal target text
    h usr/bin/egrep=usr/bin/grep   # hard link: name=path of a file in the image

``#`` ends a line anywhere; blank lines and surrounding whitespace are ignored; spaces and tabs
separate fields. Paths are relative to the image root and must be *safe*: not absolute, no ``.``,
``..`` or empty components, no NUL or newline. A symlink's target is literal text (absolute and
``..`` targets are legal); a hard link's target is a path in the image and must stay inside it.

:func:`combine` reads several manifests (``manifest.d/*`` in name order, then each overlay's
``manifest``), substitutes ``$VAR`` / ``${VAR}`` from build.env, keys the entries by path (the
later one wins; a repeated path is a warning naming both lines, silent for identical ``d`` lines,
an error with ``strict``) and returns a :class:`Manifest`; :func:`write_manifest` writes it sorted
(``manifest.gen``). Every malformed line of every file is reported, then :class:`InputErrors` is
raised.
"""

from __future__ import annotations

import gc
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, InputErrors
from .keyvalue import write_atomic

KINDS = ("d", "f", "s", "h")
MAX_MODE = 0o7777
_MODE_RE = re.compile(r"[0-7]+\Z")
_VAR_RE = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
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


@dataclass(frozen=True)
class Override:
    """A path delivered twice: ``winner`` (the later line) replaced ``loser``."""

    loser: Entry
    winner: Entry


class Manifest:
    """Combined manifest: one entry per path (the last delivery wins), plus the overridden ones.

    Entries are stored compactly and handed out as :class:`Entry` objects.
    """

    def __init__(self, records: dict[str, Record], overrides: tuple[Override, ...] = (),
                 files: tuple[str, ...] = ()):
        self._records = records
        self.overrides = overrides
        self.files = files

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> Manifest:
        """A manifest of ``entries`` (the later of two with one path wins, silently)."""
        return cls({e.path: _record(e) for e in entries})

    def entries(self) -> list[Entry]:
        """Every entry, sorted by path (so parents come before their children)."""
        records = self._records
        return [_entry(records[path]) for path in sorted(records)]

    def paths(self) -> list[str]:
        return sorted(self._records)

    def get(self, path: str) -> Entry | None:
        record = self._records.get(path)
        return None if record is None else _entry(record)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, path: object) -> bool:
        return path in self._records

    def lines(self) -> list[str]:
        """The entries as manifest lines, sorted by path."""
        records = self._records
        # Sorting the str keys alone is the fast case of list.sort; each meta carries its own
        # text (" 0755 root sys"), so a line is one concatenation.
        return [f"{r[0]} {r[1]}{r[2][3]}" if r[0] == "f" or r[0] == "d" else
                f"{r[0]} {r[1]}={r[3]}" for r in map(records.__getitem__, sorted(records))]


# -- paths ------------------------------------------------------------------------------------

def path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe image path, or None when it is."""
    if not path:
        return "empty path"
    if "\0" in path:
        return f"NUL character in path {path!r}"
    if "\n" in path or "\r" in path:
        return f"newline in path {path!r}"
    if path[0] == "/":
        return f"absolute path {path!r} (paths are relative to the image root)"
    if "//" in path or path[-1] == "/":
        return f"empty component in path {path!r}"
    if "." in path:
        wrapped = f"/{path}/"
        if "/../" in wrapped:
            return f"'..' component in path {path!r}"
        if "/./" in wrapped:
            return f"'.' component in path {path!r}"
    return None


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


# -- variables --------------------------------------------------------------------------------

class _Undefined(Exception):
    def __init__(self, name: str):
        self.name = name


def substitute(text: str, env: dict[str, str]) -> str:
    """Replace ``$VAR`` and ``${VAR}`` from ``env``; raise :class:`_Undefined` for a missing one."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if match.group(1) is not None and not _NAME_RE.match(name):
            raise _Undefined(name)
        try:
            return env[name]
        except KeyError:
            raise _Undefined(name) from None

    return _VAR_RE.sub(one, text)


# -- parsing ----------------------------------------------------------------------------------
#
# Parsing is on the critical path of every build (a platform's manifests run to hundreds of
# thousands of lines), so a fast path handles the common well-formed line and everything else
# (comments, variables, odd whitespace, every error) goes through :func:`_parse_line`, which is
# the authority on the format. Entries are kept as compact records and turned into :class:`Entry`
# objects when asked for.

# A record: (kind, path, (mode, owner, group, text), target, file, line), where ``text`` is the
# meta as written in manifest.gen (" 0755 root sys"; empty for s and h). Metas are shared.
Meta = tuple[int, str, str, str]
Record = tuple[str, str, Meta, str, str, int]
_NO_META: Meta = (0, "", "", "")
_META_CACHE: dict[str, Meta] = {}
_META_CACHE_MAX = 4096


def _make_meta(mode: int, owner: str, group: str) -> Meta:
    return (mode, owner, group, f" {mode:04o} {owner} {group}")


def _record(entry: Entry) -> Record:
    meta = _make_meta(entry.mode, entry.owner, entry.group) if entry.kind in ("f", "d") \
        else (entry.mode, entry.owner, entry.group, "")
    return (entry.kind, entry.path, meta, entry.target, entry.file, entry.line)


_new_object = object.__new__
(_set_kind, _set_path, _set_mode, _set_owner, _set_group, _set_target, _set_file,
 _set_line) = (getattr(Entry, name).__set__ for name in Entry.__dataclass_fields__)


def _entry(record: Record) -> Entry:
    """``Entry(...)`` of a record, without the generated __init__ of a frozen dataclass (which
    sets each field through object.__setattr__, several times slower)."""
    kind, path, (mode, owner, group, _), target, file, line = record
    made = _new_object(Entry)
    _set_kind(made, kind)
    _set_path(made, path)
    _set_mode(made, mode)
    _set_owner(made, owner)
    _set_group(made, group)
    _set_target(made, target)
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
            fields = [substitute(f, env) if "$" in f else f for f in fields]
        except _Undefined as undefined:
            return InputError(f"undefined variable {undefined.name!r}", name, number)
    kind = fields[0]
    if kind == "f" or kind == "d":
        if len(fields) != 5:
            return InputError(f"'{kind}' entry needs exactly 5 fields (type path mode owner "
                              f"group), got {len(fields)}", name, number)
        path = fields[1]
        mode = _mode(fields[2])
        if mode is None:
            return InputError(f"invalid mode {fields[2]!r}: expected an octal number <= 07777",
                              name, number)
        problem = path_problem(path)
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
        problem = path_problem(path)
        if problem is None and kind == "h":
            norm, problem = hardlink_target(path, target)
            target = norm or target
        elif problem is None and ("\0" in target or "\n" in target):
            problem = f"symlink target {target!r} contains a NUL or newline"
        if problem is not None:
            return InputError(problem, name, number)
        return Entry(kind, path, 0, "", "", target, name, number)
    return InputError(f"unknown entry type {kind!r}: expected one of d, f, s, h", name, number)


def _meta(rest: str) -> Meta | None:
    """The (mode, owner, group) of the text after an f/d path, when it is plainly valid."""
    meta = _META_CACHE.get(rest)
    if meta is None:
        fields = rest.split()
        if len(fields) != 3 or "#" in rest or "$" in rest:
            return None
        mode = _mode(fields[0])
        if mode is None:
            return None
        meta = _make_meta(mode, fields[1], fields[2])
        if len(_META_CACHE) < _META_CACHE_MAX:
            _META_CACHE[rest] = meta
    return meta


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


def _parse_records(text: str, name: str, env: dict[str, str] | None, records: list[Record],
                   errors: list[InputError]) -> list[str] | None:
    """Append the entries of ``text`` to ``records`` in line order, and every error to
    ``errors`` (not sorted). Return the paths of the appended records, in order (None when
    they are not at hand)."""
    lines = text.split("\n")
    first = len(records)
    if "\0" in text or "\r" in text:
        special = list(range(len(lines)))
    else:
        special = _special_lines(text, "#$" if env is not None else "#")
    special.append(len(lines))
    keep = records.append
    metas = _META_CACHE
    start = 0
    for stop in special:
        # lines[start:stop] hold no comment and no variable: the fast path takes the common
        # well-formed lines and leaves the rest to _parse_line
        for number, raw in enumerate(lines[start:stop], start + 1):
            parts = raw.split(None, 2)
            count = len(parts)
            if count == 3:
                kind, path, rest = parts
                if kind == "f" or kind == "d":
                    meta = metas.get(rest) or _meta(rest)
                    if meta is not None:
                        keep((kind, path, meta, "", name, number))
                        continue
            elif count == 2:
                kind, spec = parts
                if kind == "s" or kind == "h":
                    path, _, target = spec.partition("=")
                    if path and target and (kind == "s" or (
                            target[0] != "/" and target[0] != "." and target[-1] != "/"
                            and "/." not in target and "//" not in target and target != path)):
                        # an h target that normpath leaves alone and that is not the link
                        keep((kind, path, _NO_META, target, name, number))
                        continue
            elif count == 0:
                continue
            _parse_slow(raw, name, number, env, keep, errors)
        if stop < len(lines):
            _parse_slow(lines[stop], name, stop + 1, env, keep, errors)
        start = stop + 1
    # The fast path did not look at the paths: check them all at once, then one by one only
    # when something looks wrong (paths the slow path took are fine and stay silent).
    paths = [r[1] for r in records[first:]] if first else [r[1] for r in records]
    if paths and _paths_suspect(paths):
        unsafe_links: set[int] = set()
        for record in records[first:]:
            problem = path_problem(record[1])
            if problem is not None:
                errors.append(InputError(problem, name, record[5]))
                if record[0] == "h":
                    unsafe_links.add(id(record))
        if unsafe_links:
            # _parse_line makes no entry of such a hard link: neither does the fast path
            records[first:] = [r for r in records[first:] if id(r) not in unsafe_links]
            return None
    return paths


def _parse_slow(raw: str, name: str, number: int, env: dict[str, str] | None,
                keep: Callable[[Record], None], errors: list[InputError]) -> None:
    result = _parse_line(raw, name, number, env)
    if isinstance(result, Entry):
        keep(_record(result))
    elif result is not None:
        errors.append(result)


def _paths_suspect(paths: list[str]) -> bool:
    """False when no path can be unsafe; True when one may be."""
    # Joined with '/': an absolute path, a trailing '/', an empty path or an empty component
    # shows as '//'; a '.' or '..' component as '/.' (so do hidden files); one regex scan finds
    # both. The first path shows at the start ('/' or '.') and the last at the end ('/'), where
    # the join adds no '/' (as a copy wrapped in '/' would, at the cost of copying it).
    joined = "/".join(paths)
    return joined[:1] in "/." or joined[-1:] == "/" or _SUSPECT_RE.search(joined) is not None


def _by_path(records: list[Record], paths: list[str] | None = None,
             ) -> tuple[dict[str, Record], list[tuple[Record, Record]]]:
    """Records keyed by path (the later wins) and every (earlier, later) pair of one path, in
    the order of the later one. ``paths``, when given, are those of ``records``."""
    if paths is None:
        paths = [r[1] for r in records]
    by_path = dict(zip(paths, records, strict=True))
    repeats: list[tuple[Record, Record]] = []
    if len(by_path) != len(records):
        repeated = {r[1] for r in records if by_path[r[1]] is not r}
        last: dict[str, Record] = {}
        for record in records:
            path = record[1]
            if path in repeated:
                previous = last.get(path)
                if previous is not None:
                    repeats.append((previous, record))
                last[path] = record
    return by_path, repeats


def parse_text(text: str, file: str | Path,
               env: dict[str, str] | None = None) -> tuple[list[Entry], list[InputError]]:
    """Parse manifest text; return its entries in line order and every error found.

    With ``env``, ``$VAR`` references are substituted in each field; without it, ``$`` is literal.
    """
    records: list[Record] = []
    errors: list[InputError] = []
    _parse_records(text, str(file), env, records, errors)
    bad = {e.line for e in errors}
    entries = [_entry(r) for r in records if r[5] not in bad]
    errors.sort(key=lambda e: e.line or 0)
    return entries, errors


def parse_file(path: Path, env: dict[str, str] | None = None) -> list[Entry]:
    """Parse one manifest file; raise :class:`InputErrors` listing every bad line."""
    entries, errors = parse_text(_read(path), path, env)
    if errors:
        raise InputErrors(errors)
    return entries


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read manifest: {exc.strerror}", path) from None


# -- combination ------------------------------------------------------------------------------

@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cycle collector: records hold no cycles, and a million new tuples would make it
    walk the growing heap again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def combine(files: list[Path], env: dict[str, str], strict: bool,
            warn: Callable[[str], None]) -> Manifest:
    """Combine manifests in the order given (the later delivery of a path wins).

    A repeated path calls ``warn`` with a message naming both file:line pairs (nothing for two
    identical ``d`` lines); with ``strict`` it is an error instead. Errors of every file are
    collected and raised together as :class:`InputErrors`, in file and line order.
    """
    records: list[Record] = []
    errors: list[InputError] = []
    paths: list[str] | None = []

    with _no_gc():
        for file in files:
            try:
                text = _read(file)
            except InputError as exc:
                errors.append(exc)
                continue
            file_errors: list[InputError] = []
            file_paths = _parse_records(text, str(file), env, records, file_errors)
            del text
            if file_paths is None or paths is None:
                paths = None
            elif paths:
                paths += file_paths
            else:
                paths = file_paths
            errors.extend(sorted(file_errors, key=lambda e: e.line or 0))
        by_path, repeats = _by_path(records, paths)
        del paths
        del records
    overrides: list[Override] = []
    for previous, record in repeats:
        if record[0] == "d" and previous[0] == "d" and previous[2] == record[2]:
            continue
        loser, winner = _entry(previous), _entry(record)
        overrides.append(Override(loser, winner))
        message = f"{winner.path!r} is delivered twice: {loser.where} and {winner.where}"
        if strict:
            errors.append(InputError(message, winner.file, winner.line))
        else:
            warn(f"{message} (the later one wins)")
    if errors:
        raise InputErrors(errors)
    return Manifest(by_path, tuple(overrides), tuple(str(f) for f in files))


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
