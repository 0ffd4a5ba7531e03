"""``manifest lint``, ``manifest show`` and ``manifest diff``: structured results and text.

* :func:`lint` checks a combined manifest against its search path: missing files, paths in proto
  no manifest ships, entries whose parent directory is not declared, dangling symlinks and
  symlink loops inside the image, setuid/setgid files, and paths delivered more than once.
* :func:`show` lists each entry with the manifest it came from and the search directory that
  delivers it.
* :func:`diff` compares two platforms, each given as its directory or its tarball (``.tgz``,
  the directory), both read through ``<arch>/boot_archive``, or as a tarball of the image root
  (``live --root-tarball``).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from liveforge.build.image.archive import Member, read_cpio, read_tar
from liveforge.build.image.assemble import SearchPath
from liveforge.build.image.layout import BOOT_ARCHIVE
from liveforge.build.image.manifest import Entry, Manifest, Override
from liveforge.build.image.version import BUILDSTAMP_FILE
from liveforge.util.errors import InputError


@dataclass(frozen=True, slots=True)
class LintReport:
    missing: tuple[Entry, ...] = ()
    unresolvable: tuple[tuple[Entry, str], ...] = ()
    unshipped: tuple[str, ...] = ()
    undeclared_parents: tuple[tuple[Entry, str], ...] = ()
    dangling_symlinks: tuple[Entry, ...] = ()
    setid: tuple[Entry, ...] = ()
    duplicates: tuple[Override, ...] = ()
    symlink_loops: tuple[Entry, ...] = ()
    licences: tuple[str, ...] = ()   # components with no known licence: why, for each

    @property
    def ok(self) -> bool:
        """True when nothing is an error (dangling links, symlink loops, set-id files,
        duplicates, unshipped paths are reported but are not errors)."""
        return not (self.missing or self.unresolvable or self.undeclared_parents)


def lint(manifest: Manifest, search: list[Path], proto: Path) -> LintReport:
    """Check ``manifest`` against ``search`` (overlays then proto) and ``proto``."""
    finder = SearchPath(search)
    entries = manifest.entries()
    declared = {e.path: e for e in entries}
    missing: list[Entry] = []
    unresolvable: list[tuple[Entry, str]] = []
    undeclared: list[tuple[Entry, str]] = []
    for entry in entries:
        if entry.kind == "f":
            found = finder.find(entry.path)
            if found is None:
                missing.append(entry)
            elif isinstance(found, str):
                unresolvable.append((entry, found))
        parent = entry.path.rpartition("/")[0]
        if parent and (parent not in declared or declared[parent].kind != "d"):
            undeclared.append((entry, parent))
    links = [(e, _link_state(e, declared)) for e in entries if e.kind == "s"]
    dangling = tuple(e for e, state in links if state == "dangling")
    loops = tuple(e for e, state in links if state == "loop")
    setid = [e for e in entries if e.kind == "f" and e.mode & 0o6000]
    return LintReport(tuple(missing), tuple(unresolvable), tuple(_unshipped(proto, declared)),
                      tuple(undeclared), dangling, tuple(setid), manifest.overrides, loops)


# files liveforge itself keeps in the proto area (its identity and the last buildstamp)
BUILD_FILES = {".liveforge-proto", BUILDSTAMP_FILE}


def _unshipped(proto: Path, declared: dict[str, Entry]) -> list[str]:
    """Paths under ``proto`` that the manifest does not ship. A directory is listed only when
    nothing under it is shipped (then its contents are not listed one by one)."""
    if not proto.is_dir():
        return []
    shipped_parents = set()
    for path in declared:
        parent = path.rpartition("/")[0]
        while parent and parent not in shipped_parents:
            shipped_parents.add(parent)
            parent = parent.rpartition("/")[0]
    out: list[str] = []
    for root, dirs, files in os.walk(proto):
        rel_root = os.path.relpath(root, proto)
        rel_root = "" if rel_root == "." else rel_root + "/"
        keep = []
        for name in sorted(dirs):
            path = rel_root + name
            if os.path.islink(os.path.join(root, name)):
                files.append(name)
            elif path in declared or path in shipped_parents:
                keep.append(name)
            else:
                out.append(path + "/")
        dirs[:] = keep
        out.extend(rel_root + name for name in files if rel_root + name not in declared
                   and (rel_root + name) not in BUILD_FILES)
    return sorted(out)


# symlinks followed in one lookup before it fails with ELOOP (Linux's MAXSYMLINKS)
MAX_SYMLINKS = 40


def _link_state(entry: Entry, declared: dict[str, Entry], depth: int = 0) -> str:
    """Whether a symlink's target names a path of the image, following links in the image:
    ``"ok"``, ``"dangling"``, or ``"loop"`` (more than MAX_SYMLINKS links on the way)."""
    if depth > MAX_SYMLINKS:
        return "loop"
    target = entry.target
    base = "" if target.startswith("/") else posixpath.dirname(entry.path)
    path = posixpath.normpath(posixpath.join("/", base, target)).lstrip("/")
    if path == "":
        return "ok"
    # Follow symlinked parents inside the image.
    parts = path.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        link = declared.get(prefix)
        if link is not None and link.kind == "s":
            rest = "/".join(parts[i:])
            hop = Entry("s", entry.path, 0, "", "", _join_link(link, rest), entry.file, entry.line)
            return _link_state(hop, declared, depth + 1)
    found = declared.get(path)
    if found is None:
        implicit = any(p.startswith(path + "/") for p in declared)  # an implicit directory
        return "ok" if implicit else "dangling"
    if found.kind == "s":
        return _link_state(found, declared, depth + 1)
    return "ok"


def _join_link(link: Entry, rest: str) -> str:
    if link.target.startswith("/"):
        return posixpath.join(link.target, rest)
    return "/" + posixpath.join(posixpath.dirname(link.path), link.target, rest)


def format_lint(report: LintReport) -> str:
    lines: list[str] = []
    for entry in report.missing:
        lines.append(f"{entry.where}: error: missing file {entry.path!r}")
    for entry, problem in report.unresolvable:
        lines.append(f"{entry.where}: error: {problem}")
    for entry, parent in report.undeclared_parents:
        lines.append(f"{entry.where}: error: parent directory {parent!r} of {entry.path!r} "
                     f"is not declared")
    for entry in report.dangling_symlinks:
        lines.append(f"{entry.where}: warning: dangling symlink {entry.path} -> {entry.target}")
    for entry in report.symlink_loops:
        lines.append(f"{entry.where}: warning: symlink loop {entry.path} -> {entry.target}")
    for entry in report.setid:
        lines.append(f"{entry.where}: note: set-id file {entry.path} {entry.mode:04o}")
    for override in report.duplicates:
        lines.append(f"{override.winner.where}: warning: {override.winner.path!r} also "
                     f"delivered at {override.loser.where}")
    for problem in report.licences:
        lines.append(f"warning: {problem}")
    if report.unshipped:
        lines.append(f"unshipped ({len(report.unshipped)} paths in proto no manifest ships):")
        lines.extend(f"  {path}" for path in report.unshipped)
    return "\n".join(lines) + ("\n" if lines else "")


# -- show -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ShowRow:
    entry: Entry
    manifest: str
    search_dir: str | None     # the directory delivering an ``f`` (None: missing, or not a file)


def show(manifest: Manifest, search: list[Path]) -> list[ShowRow]:
    finder = SearchPath(search)
    rows = []
    for entry in manifest.entries():
        where = None
        if entry.kind == "f":
            found = finder.find(entry.path)
            where = str(found[1]) if isinstance(found, tuple) else None
        rows.append(ShowRow(entry, entry.file, where))
    return rows


def format_show(rows: list[ShowRow]) -> str:
    out = []
    for row in rows:
        source = f"  [{row.manifest}:{row.entry.line}"
        if row.entry.kind == "f":
            source += f" <- {row.search_dir or 'MISSING'}"
        out.append(row.entry.format() + source + "]")
    return "\n".join(out) + ("\n" if out else "")


# -- diff -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Change:
    path: str
    what: tuple[str, ...]          # among: type, mode, owner, content, target
    old: Member
    new: Member


@dataclass(frozen=True, slots=True)
class DiffReport:
    added: tuple[Member, ...] = ()
    removed: tuple[Member, ...] = ()
    changed: tuple[Change, ...] = field(default=())

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed)


def read_platform(path: Path) -> dict[str, Member]:
    """The image members of a platform given as its directory, its tarball or a tarball of its
    image root."""
    if path.is_dir():
        archives = sorted(path.glob(f"*/{BOOT_ARCHIVE}"))
        if not archives:
            raise InputError("not a platform directory (no */boot_archive)", path)
        return read_cpio(archives[0])
    if path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            boot_archive = _unpack_boot_archive(path, Path(tmp))
            if boot_archive is not None:
                return read_cpio(boot_archive)
        return read_tar(path)
    raise InputError("no such platform tarball or directory", path)


def _unpack_boot_archive(tarball: Path, into: Path) -> Path | None:
    """The boot archive of a platform tarball (``<name>/<arch>/boot_archive``), copied into
    ``into``; None when the tarball is not a platform directory (an image root's has more than
    one top-level name, or no boot archive)."""
    try:
        with tarfile.open(tarball, "r|*") as archive:
            top = None
            for info in archive:
                parts = info.name.rstrip("/").split("/")
                top = parts[0] if top is None else top
                if parts[0] != top:
                    return None
                if len(parts) == 3 and parts[2] == BOOT_ARCHIVE and info.isfile():
                    source = archive.extractfile(info)
                    assert source is not None
                    with open(into / "boot_archive", "wb") as dest:
                        shutil.copyfileobj(source, dest, 1 << 20)
                    return into / "boot_archive"
    except tarfile.TarError as exc:
        raise InputError(f"not a readable tarball: {exc}", tarball) from None
    return None


def diff(a: Path, b: Path) -> DiffReport:
    old, new = read_platform(a), read_platform(b)
    added = tuple(new[p] for p in sorted(new.keys() - old.keys()))
    removed = tuple(old[p] for p in sorted(old.keys() - new.keys()))
    changed = []
    for path in sorted(old.keys() & new.keys()):
        x, y = old[path], new[path]
        what = []
        if _kind(x) != _kind(y):
            what.append("type")
        if x.mode != y.mode:
            what.append("mode")
        if (x.uid, x.gid) != (y.uid, y.gid):
            what.append("owner")
        if x.kind == "s" and y.kind == "s" and x.target != y.target:
            what.append("target")
        if x.sha256 != y.sha256:
            what.append("content")
        if what:
            changed.append(Change(path, tuple(what), x, y))
    return DiffReport(added, removed, tuple(changed))


def _kind(member: Member) -> str:
    return "f" if member.kind == "h" else member.kind      # a hard link is a regular file


def format_diff(report: DiffReport) -> str:
    lines = [f"+ {m.path}" for m in report.added]
    lines += [f"- {m.path}" for m in report.removed]
    for change in report.changed:
        details = []
        for what in change.what:
            if what == "mode":
                details.append(f"mode {change.old.mode:04o} -> {change.new.mode:04o}")
            elif what == "owner":
                details.append(f"owner {change.old.uid}:{change.old.gid} -> "
                               f"{change.new.uid}:{change.new.gid}")
            elif what == "target":
                details.append(f"target {change.old.target} -> {change.new.target}")
            else:
                details.append(what)
        lines.append(f"~ {change.path}: {', '.join(details)}")
    return "\n".join(lines) + ("\n" if lines else "")
