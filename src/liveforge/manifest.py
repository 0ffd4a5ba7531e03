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

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, InputErrors
from .keyvalue import write_atomic

KINDS = ("d", "f", "s", "h")
MAX_MODE = 0o7777
_MODE_RE = re.compile(r"[0-7]+\Z")
_VAR_RE = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Parsed mode strings, shared by every parse (there are only a few distinct ones).
_MODE_CACHE: dict[str, int] = {}


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

    def same_delivery(self, other: Entry) -> bool:
        """True when both lines say the same thing (ignoring where they were written)."""
        return (self.kind, self.path, self.mode, self.owner, self.group, self.target) == (
            other.kind, other.path, other.mode, other.owner, other.group, other.target)

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


@dataclass(frozen=True)
class Manifest:
    """Combined manifest: one entry per path, plus the repeated deliveries that were overridden."""

    by_path: dict[str, Entry] = field(hash=False)
    overrides: tuple[Override, ...] = ()
    files: tuple[str, ...] = ()

    def entries(self) -> list[Entry]:
        """Every entry, sorted by path (so parents come before their children)."""
        return [self.by_path[path] for path in sorted(self.by_path)]

    def __len__(self) -> int:
        return len(self.by_path)

    def __contains__(self, path: object) -> bool:
        return path in self.by_path

    def get(self, path: str) -> Entry | None:
        return self.by_path.get(path)


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

def _mode(text: str) -> int | None:
    mode = _MODE_CACHE.get(text)
    if mode is None:
        if not _MODE_RE.match(text):
            return None
        mode = int(text, 8)
        if mode > MAX_MODE:
            return None
        _MODE_CACHE[text] = mode
    return mode


def parse_text(text: str, file: str | Path,
               env: dict[str, str] | None = None) -> tuple[list[Entry], list[InputError]]:
    """Parse manifest text; return its entries and every error found (the caller raises).

    With ``env``, ``$VAR`` references are substituted in each field; without it, ``$`` is literal.
    """
    name = str(file)
    entries: list[Entry] = []
    errors: list[InputError] = []
    append = entries.append
    check = path_problem
    for number, raw in enumerate(text.split("\n"), 1):
        hash_at = raw.find("#")
        if hash_at >= 0:
            raw = raw[:hash_at]
        fields = raw.split()
        if not fields:
            continue
        if env is not None and "$" in raw:
            try:
                fields = [substitute(f, env) if "$" in f else f for f in fields]
            except _Undefined as undefined:
                errors.append(InputError(f"undefined variable {undefined.name!r}", name, number))
                continue
        kind = fields[0]
        if kind == "f" or kind == "d":
            if len(fields) != 5:
                errors.append(InputError(
                    f"'{kind}' entry needs exactly 5 fields (type path mode owner group), "
                    f"got {len(fields)}", name, number))
                continue
            path = fields[1]
            mode = _mode(fields[2])
            if mode is None:
                errors.append(InputError(
                    f"invalid mode {fields[2]!r}: expected an octal number <= 07777", name, number))
                continue
            problem = check(path)
            if problem is not None:
                errors.append(InputError(problem, name, number))
                continue
            append(Entry(kind, path, mode, fields[3], fields[4], "", name, number))
        elif kind == "s" or kind == "h":
            if len(fields) != 2:
                errors.append(InputError(
                    f"'{kind}' entry needs exactly 2 fields ({kind} name=target), "
                    f"got {len(fields)}", name, number))
                continue
            path, eq, target = fields[1].partition("=")
            if not eq:
                errors.append(InputError(
                    f"'{kind}' entry needs name=target, got {fields[1]!r}", name, number))
                continue
            if not path or not target:
                which = "name" if not path else "target"
                errors.append(InputError(
                    f"'{kind}' entry has an empty {which} in {fields[1]!r}", name, number))
                continue
            problem = check(path)
            if problem is None and kind == "h":
                norm, problem = hardlink_target(path, target)
                target = norm or target
            elif problem is None and ("\0" in target or "\n" in target):
                problem = f"symlink target {target!r} contains a NUL or newline"
            if problem is not None:
                errors.append(InputError(problem, name, number))
                continue
            append(Entry(kind, path, 0, "", "", target, name, number))
        else:
            errors.append(InputError(
                f"unknown entry type {kind!r}: expected one of d, f, s, h", name, number))
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

def combine(files: list[Path], env: dict[str, str], strict: bool,
            warn: Callable[[str], None]) -> Manifest:
    """Combine manifests in the order given (the later delivery of a path wins).

    A repeated path calls ``warn`` with a message naming both file:line pairs (nothing for two
    identical ``d`` lines); with ``strict`` it is an error instead. Errors of every file are
    collected and raised together as :class:`InputErrors`.
    """
    by_path: dict[str, Entry] = {}
    overrides: list[Override] = []
    errors: list[InputError] = []
    for file in files:
        try:
            text = _read(file)
        except InputError as exc:
            errors.append(exc)
            continue
        entries, file_errors = parse_text(text, file, env)
        errors.extend(file_errors)
        for entry in entries:
            previous = by_path.get(entry.path)
            if previous is not None:
                if entry.kind == "d" and previous.kind == "d" and entry.same_delivery(previous):
                    by_path[entry.path] = entry
                    continue
                overrides.append(Override(previous, entry))
                message = (f"{entry.path!r} is delivered twice: {previous.where} and "
                           f"{entry.where}")
                if strict:
                    errors.append(InputError(message, entry.file, entry.line))
                else:
                    warn(f"{message} (the later one wins)")
            by_path[entry.path] = entry
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
    lines = [entry.format() for entry in manifest.entries()]
    return "\n".join(lines) + "\n" if lines else ""


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write ``manifest.gen`` atomically."""
    write_atomic(path, format_manifest(manifest))
