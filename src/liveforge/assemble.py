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
  ``implicit``) so every archive has parents before children; ``manifest lint`` reports them.

Every problem is collected; missing files are all listed. Then :class:`ResolveErrors` is raised.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, InputErrors
from .manifest import Entry, Manifest

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


@dataclass(frozen=True)
class Image:
    """All entries of an image, sorted by path (parents before children)."""

    entries: tuple[ImageEntry, ...]

    def by_path(self) -> dict[str, ImageEntry]:
        return {e.path: e for e in self.entries}

    def files(self) -> list[ImageEntry]:
        return [e for e in self.entries if e.kind == "f"]


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
        self._parents: dict[tuple[int, str], str | None] = {}

    def _inside(self, index: int, real: str) -> bool:
        root = self._real[index]
        return real == root or real.startswith(root + os.sep) or root == os.sep

    def _parent(self, index: int, parent: str) -> str | None:
        """The real path of ``parent`` under search directory ``index``; None when it escapes."""
        key = (index, parent)
        if key not in self._parents:
            real = os.path.realpath(os.path.join(self.dirs[index], parent))
            self._parents[key] = real if self._inside(index, real) else None
        return self._parents[key]

    def find(self, path: str) -> tuple[Path, Path] | str | None:
        """``(real source file, search dir)`` of the first directory holding ``path``; an error
        message when that candidate is unusable; None when no directory holds it."""
        parent, _, name = path.rpartition("/")
        for index, directory in enumerate(self.dirs):
            candidate = os.path.join(directory, path)
            try:
                st = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                continue
            real_parent = self._parent(index, parent)
            if real_parent is None:
                return f"{path!r} in {directory} is reached through a symlink leading outside it"
            source = os.path.join(real_parent, name)
            if stat.S_ISLNK(st.st_mode):
                source = os.path.realpath(candidate)
                if not self._inside(index, source):
                    return (f"{path!r} in {directory} is a symlink leading outside it "
                            f"(to {source})")
                try:
                    st = os.stat(source)
                except OSError:
                    return f"{path!r} in {directory} is a dangling symlink"
            if not stat.S_ISREG(st.st_mode):
                return f"{path!r} in {directory} is not a regular file"
            return Path(source), directory
        return None


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
            if len(fields) >= 3 and fields[0] and fields[2].isdigit():
                ids.setdefault(fields[0], int(fields[2]))
    return ids, str(found[0])


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
        if name.isdigit():
            return int(name)
        if where is None:
            return f"unknown {what} {name!r}: no {file} in the search path"
        return f"unknown {what} {name!r} (not in {where})"


# -- resolution -------------------------------------------------------------------------------

def resolve(manifest: Manifest, search: list[Path]) -> Image:
    """Turn ``manifest`` into image entries, finding every file in ``search`` (overlays in order,
    then proto). Raises :class:`ResolveErrors` listing every problem."""
    finder = SearchPath(search)
    ids = _Ids(finder)
    entries = manifest.entries()
    declared = {e.path: e for e in entries}
    errors: list[InputError] = []
    missing: list[str] = []
    out: dict[str, ImageEntry] = {}
    for entry in entries:
        if entry.kind == "s":
            out[entry.path] = ImageEntry("s", entry.path, 0o777, 0, 0, target=entry.target,
                                         entry=entry)
            continue
        if entry.kind == "h":
            continue
        uid, gid = ids.uid(entry.owner), ids.gid(entry.group)
        problems = [p for p in (uid, gid) if isinstance(p, str)]
        for problem in problems:
            errors.append(InputError(f"{entry.path}: {problem}", entry.file, entry.line))
        if entry.kind == "d":
            if not problems:
                out[entry.path] = ImageEntry("d", entry.path, entry.mode, int(uid), int(gid),
                                             entry=entry)
            continue
        found = finder.find(entry.path)
        if found is None:
            missing.append(entry.path)
            where = ", ".join(str(d) for d in finder.dirs) or "an empty search path"
            errors.append(InputError(f"missing file {entry.path!r} (not in {where})",
                                     entry.file, entry.line))
        elif isinstance(found, str):
            errors.append(InputError(found, entry.file, entry.line))
        elif not problems:
            out[entry.path] = ImageEntry("f", entry.path, entry.mode, int(uid), int(gid),
                                         source=found[0], search_dir=found[1], entry=entry)
    for entry in entries:
        if entry.kind == "h":
            target = _link_target(entry, declared)
            if isinstance(target, str):
                errors.append(InputError(target, entry.file, entry.line))
            elif target.path in out:
                file = out[target.path]
                out[entry.path] = ImageEntry("h", entry.path, file.mode, file.uid, file.gid,
                                             target=target.path, entry=entry)
    _check_parents(out, declared, errors)
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
                   errors: list[InputError]) -> None:
    """Add undeclared parent directories; refuse parents that are not directories."""
    for path in list(out):
        parent = path.rpartition("/")[0]
        while parent:
            existing = declared.get(parent)
            if existing is not None and existing.kind != "d":
                entry = out[path].entry
                assert entry is not None
                errors.append(InputError(
                    f"{path!r}: parent {parent!r} is not a directory (it is "
                    f"{'a symlink' if existing.kind == 's' else 'a file'}, {existing.where})",
                    entry.file, entry.line))
                break
            if parent in out:
                break
            out[parent] = ImageEntry("d", parent, IMPLICIT_DIR_MODE, 0, 0)
            parent = parent.rpartition("/")[0]
