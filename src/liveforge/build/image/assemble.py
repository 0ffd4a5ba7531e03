"""The builder: a combined manifest plus a search path (overlays, then proto) -> image entries.

:func:`resolve` decides, for every entry of the manifest, exactly what goes into the image:

* ``f``: the first search directory holding the path wins and is recorded. A symlink met on the
  way (the file itself or a parent directory) is followed only if its resolved target stays
  inside that search directory; otherwise the entry is an error. The file must be a regular file.
* ``d`` and ``s`` come from the manifest alone (a symlink's target text is literal).
* ``h``: the target must be a file the manifest delivers (``f``, or another ``h`` that leads to
  one); the link shares the target's mode and owner.
* Owner and group names are resolved through the image's *own* ``etc/passwd`` and ``etc/group``,
  looked up through the same search path as files (so they must be present in an overlay or in
  proto; shipping them is up to the manifest, and ``manifest lint`` reports them when they are
  not shipped). A plain number is taken as a numeric id.
* A parent directory the manifest does not declare is added as ``0755 root root`` (marked
  ``implicit``) so every archive has parents before children. Each is a warning naming the entry
  under it (``manifest lint`` reports them too); with ``strict`` it is an error.
* A path the file system cannot look up (a symlink loop on the way, a name too long once joined
  to the search directory, no permission) is an error naming the entry, never a traceback.

Every problem is collected; missing files are all listed. Then :class:`ResolveErrors` is raised.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.image.manifest import Entry, Manifest
from liveforge.util.errors import InputError, InputErrors
from liveforge.util.paths import shown

IMPLICIT_DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One entry of the image, ready for the archive writers.

    ``kind`` is ``d``, ``f``, ``s`` or ``h``. For ``f``, ``source`` is the real file to read and
    ``search_dir`` the search directory it was found in. For ``s``, ``target`` is the literal link
    text; for ``h`` it is the image path of the file linked to (mode and ids are that file's).
    """

    kind: str
    path: str
    mode: int
    uid: int
    gid: int
    target: str = ""
    source: Path | None = None
    search_dir: Path | None = None
    entry: Entry | None = None

    @property
    def implicit(self) -> bool:
        return self.entry is None


@dataclass(frozen=True, slots=True)
class Image:
    """All entries of an image, sorted by path (parents before children)."""

    entries: tuple[ImageEntry, ...]

    def by_path(self) -> dict[str, ImageEntry]:
        return {e.path: e for e in self.entries}

    def files(self) -> list[ImageEntry]:
        return [e for e in self.entries if e.kind == "f"]


_new_object = object.__new__
_IMAGE_ENTRY_SLOTS = tuple(ImageEntry.__dataclass_fields__)
(_set_kind, _set_path, _set_mode, _set_uid, _set_gid, _set_target, _set_source, _set_search_dir,
 _set_entry) = (getattr(ImageEntry, name).__set__ for name in _IMAGE_ENTRY_SLOTS)


def _image_entry(kind: str, path: str, mode: int, uid: int, gid: int, target: str,
                 source: Path | None, search_dir: Path | None,
                 entry: Entry | None) -> ImageEntry:
    """``ImageEntry(...)`` without the generated __init__ of a frozen dataclass, which sets each
    field through object.__setattr__ (several times slower; resolve makes one per entry)."""
    made = _new_object(ImageEntry)
    _set_kind(made, kind)
    _set_path(made, path)
    _set_mode(made, mode)
    _set_uid(made, uid)
    _set_gid(made, gid)
    _set_target(made, target)
    _set_source(made, source)
    _set_search_dir(made, search_dir)
    _set_entry(made, entry)
    return made


class ResolveErrors(InputErrors):
    """Resolution failed; ``missing`` lists every ``f`` path found in no search directory."""

    def __init__(self, errors: list[InputError], missing: list[str]):
        super().__init__(errors)
        self.missing = missing


# -- finding files ----------------------------------------------------------------------------

class SearchPath:
    """Looks image paths up in search directories, refusing symlinks that leave a directory."""

    def __init__(self, dirs: Iterable[Path]):
        self.dirs = [Path(d) for d in dirs]
        self._real = [os.path.realpath(d) for d in self.dirs]
        # "<dir>/" for joining by concatenation (what os.path.join does for a relative path)
        self._prefix = [os.path.join(d, "") for d in self.dirs]
        # per search directory: parent path -> its real path (None: it leads outside)
        self._parents: list[dict[str, str | None]] = [{} for _ in self.dirs]
        self._reals: list[dict[str, str]] = [{} for _ in self.dirs]
        # real directory -> its Path, so a source Path is made by joining one name
        self._real_dirs: dict[str, Path] = {}

    def _inside(self, index: int, real: str) -> bool:
        root = self._real[index]
        return real == root or real.startswith(root + os.sep) or root == os.sep

    def _parent(self, index: int, parent: str) -> str | None:
        """The real path of ``parent`` under search directory ``index``; None when it escapes."""
        cache = self._parents[index]
        if parent in cache:
            return cache[parent]
        real = self._realpath(index, parent)
        result = real if self._inside(index, real) else None
        cache[parent] = result
        return result

    def _realpath(self, index: int, relative: str) -> str:
        """``os.path.realpath`` of ``relative`` under search directory ``index``, built from its
        parent's (cached): one lstat per directory rather than one per component of each."""
        cache = self._reals[index]
        real = cache.get(relative)
        if real is None:
            up, _, name = relative.rpartition("/")
            if not relative or name in ("", ".", "..") or relative[0] == "/":
                real = os.path.realpath(os.path.join(self.dirs[index], relative))
            else:
                joined = os.path.join(self._realpath(index, up), name)
                try:
                    plain = not stat.S_ISLNK(os.lstat(joined).st_mode)
                except OSError:
                    plain = False
                real = joined if plain else os.path.realpath(joined)
            cache[relative] = real
        return real

    def find(self, path: str) -> tuple[Path, Path] | str | None:
        """``(real source file, search dir)`` of the first directory holding ``path``; an error
        message when that candidate is unusable; None when no directory holds it."""
        parent, _, name = path.rpartition("/")
        relative = path[:1] != "/"
        for index, directory in enumerate(self.dirs):
            candidate = self._prefix[index] + path if relative else os.path.join(directory, path)
            try:
                st = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                return _lookup_problem(path, directory, exc, "is reached through a symlink loop")
            cache = self._parents[index]
            real_parent = cache[parent] if parent in cache else self._parent(index, parent)
            if real_parent is None:
                return f"{path!r} in {directory} is reached through a symlink leading outside it"
            if stat.S_ISLNK(st.st_mode):
                source = os.path.realpath(candidate)
                if not self._inside(index, source):
                    return (f"{path!r} in {directory} is a symlink leading outside it "
                            f"(to {source})")
                try:
                    st = os.stat(source)
                except OSError as exc:
                    return _lookup_problem(path, directory, exc, "is a symlink loop")
                if not stat.S_ISREG(st.st_mode):
                    return f"{path!r} in {directory} is not a regular file"
                return Path(source), directory
            if not stat.S_ISREG(st.st_mode):
                return f"{path!r} in {directory} is not a regular file"
            base = self._real_dirs.get(real_parent)
            if base is None:
                base = self._real_dirs[real_parent] = Path(real_parent)
            return base / name, directory
        return None


def _lookup_problem(path: str, directory: Path, exc: OSError, loop: str) -> str:
    """What the error ``exc``, met looking ``path`` up in ``directory``, means for the entry;
    ``loop`` says what a symlink loop is there."""
    if exc.errno == errno.ELOOP:
        return f"{path!r} in {directory} {loop}"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"{path!r} in {directory} is a dangling symlink"
    if exc.errno == errno.ENAMETOOLONG:
        return f"{shown(path)} in {directory}: file name too long"
    return f"{shown(path)} in {directory}: {exc.strerror or exc}"


# -- users and groups -------------------------------------------------------------------------

def _read_ids(search: SearchPath, name: str) -> tuple[dict[str, int], str | None]:
    """Name -> id from the image's ``etc/passwd`` or ``etc/group``, and where it was found."""
    found = search.find(name)
    if not isinstance(found, tuple):
        return {}, None
    ids: dict[str, int] = {}
    with open(found[0], encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 3 and fields[0] and (number := id_number(fields[2])) is not None:
                ids.setdefault(fields[0], number)
    return ids, str(found[0])


def id_number(text: str) -> int | None:
    """The user or group id ``text`` names in ASCII digits, None when it names none: an id is
    32 bits, and the largest of them is (uid_t)-1, no one."""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number < 0xFFFFFFFF else None


class _Ids:
    def __init__(self, search: SearchPath):
        self.users, self.passwd = _read_ids(search, "etc/passwd")
        self.groups, self.group = _read_ids(search, "etc/group")

    def uid(self, name: str) -> int | str:
        return self._lookup(name, self.users, "owner", "etc/passwd", self.passwd)

    def gid(self, name: str) -> int | str:
        return self._lookup(name, self.groups, "group", "etc/group", self.group)

    @staticmethod
    def _lookup(name: str, table: dict[str, int], what: str, file: str,
                where: str | None) -> int | str:
        if name in table:
            return table[name]
        number = id_number(name)
        if number is not None:
            return number
        if where is None:
            return f"unknown {what} {name!r}: no {file} in the search path"
        return f"unknown {what} {name!r} (not in {where})"


# -- resolution -------------------------------------------------------------------------------

def resolve(manifest: Manifest, search: list[Path], strict: bool = False,
            warn: Callable[[str], None] | None = None) -> Image:
    """Turn ``manifest`` into image entries, finding every file in ``search`` (overlays in order,
    then proto). Raises :class:`ResolveErrors` listing every problem. A parent directory no
    entry declares calls ``warn`` (it is made ``0755 root root``); with ``strict`` it is an
    error."""
    finder = SearchPath(search)
    ids = _Ids(finder)
    entries = manifest.entries()
    declared = {e.path: e for e in entries}
    errors: list[InputError] = []
    missing: list[str] = []
    out: dict[str, ImageEntry] = {}
    # owner and group names are few: look each up once
    uids: dict[str, int | str] = {}
    gids: dict[str, int | str] = {}
    find = finder.find
    new = _image_entry
    for entry in entries:
        kind = entry.kind
        if kind == "s":
            out[entry.path] = new("s", entry.path, 0o777, 0, 0, entry.target, None, None, entry)
            continue
        if kind == "h":
            continue
        uid = uids.get(entry.owner)
        if uid is None:
            uid = uids[entry.owner] = ids.uid(entry.owner)
        gid = gids.get(entry.group)
        if gid is None:
            gid = gids[entry.group] = ids.gid(entry.group)
        problems = isinstance(uid, str) or isinstance(gid, str)
        if problems:
            for problem in (uid, gid):
                if isinstance(problem, str):
                    errors.append(InputError(f"{entry.path}: {problem}", entry.file, entry.line))
        if kind == "d":
            if not problems:
                out[entry.path] = new("d", entry.path, entry.mode, int(uid), int(gid), "", None,
                                      None, entry)
            continue
        found = find(entry.path)
        if found is None:
            missing.append(entry.path)
            where = ", ".join(str(d) for d in finder.dirs) or "an empty search path"
            errors.append(InputError(f"missing file {entry.path!r} (not in {where})",
                                     entry.file, entry.line))
        elif isinstance(found, str):
            errors.append(InputError(found, entry.file, entry.line))
        elif not problems:
            out[entry.path] = new("f", entry.path, entry.mode, int(uid), int(gid), "", found[0],
                                  found[1], entry)
    for entry in entries:
        if entry.kind == "h":
            target = _link_target(entry, declared)
            if isinstance(target, str):
                errors.append(InputError(target, entry.file, entry.line))
            elif target.path in out:
                file = out[target.path]
                out[entry.path] = new("h", entry.path, file.mode, file.uid, file.gid,
                                      target.path, None, None, entry)
    for entry, parent in _check_parents(out, declared, errors):
        message = f"parent directory {parent!r} of {entry.path!r} is not declared in any manifest"
        if strict:
            errors.append(InputError(message, entry.file, entry.line))
        elif warn is not None:
            warn(f"{entry.where}: {message} (made {IMPLICIT_DIR_MODE:04o} root root)")
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0))
        raise ResolveErrors(errors, missing)
    return Image(tuple(out[path] for path in sorted(out)))


def _link_target(entry: Entry, declared: dict[str, Entry]) -> Entry | str:
    """The ``f`` entry a hard link leads to, or what is wrong with it."""
    seen = {entry.path}
    target = declared.get(entry.target)
    while target is not None and target.kind == "h" and target.path not in seen:
        seen.add(target.path)
        target = declared.get(target.target)
    if target is None:
        return f"hard link {entry.path!r}: target {entry.target!r} is not delivered by the manifest"
    if target.kind == "h":
        return f"hard link {entry.path!r}: hard links form a loop"
    if target.kind != "f":
        return f"hard link {entry.path!r}: target {entry.target!r} is not a file"
    return target


def _check_parents(out: dict[str, ImageEntry], declared: dict[str, Entry],
                   errors: list[InputError]) -> list[tuple[Entry, str]]:
    """Add undeclared parent directories; refuse parents that are not directories. Returns each
    added directory with the first entry under it, nearest first."""
    added: list[tuple[Entry, str]] = []
    for path in list(out):
        entry = out[path].entry
        assert entry is not None
        parent = path.rpartition("/")[0]
        while parent:
            existing = declared.get(parent)
            if existing is not None:
                if existing.kind != "d":
                    errors.append(InputError(
                        f"{path!r}: parent {parent!r} is not a directory (it is "
                        f"{'a symlink' if existing.kind == 's' else 'a file'}, "
                        f"{existing.where})", entry.file, entry.line))
                break       # a directory (or one left out for an error of its own)
            if parent in out:
                break       # added already
            out[parent] = ImageEntry("d", parent, IMPLICIT_DIR_MODE, 0, 0)
            added.append((entry, parent))
            parent = parent.rpartition("/")[0]
    return added
