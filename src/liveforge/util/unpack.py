"""Safe unpacking of tarballs and Debian packages (no tar slip).

Every member is checked before anything is written: an absolute path, a ``..`` component, a
device, FIFO or socket, a hard link to something outside the archive, or a symbolic link whose
target leaves the tree is refused with :class:`UnsafeArchiveError` naming the member. On top of
the name checks, the directory a member lands in is resolved on disk and must still lie inside
the destination, so a chain of links planted by earlier members cannot redirect a later one.

A container-style layer (:func:`extract_tar` with ``whiteouts``) turns the ``.wh.<name>``
members that record deletions into overlayfs whiteouts (a 0/0 character device ``<name>``)
and ``.wh..wh..opq`` into an opaque directory (``trusted.overlay.opaque=y``); ``keep_owners``
keeps the members' numeric owners (a root file system's files are not all root's).

Unpacking goes to a temporary directory beside the destination, which is renamed (a source
tree) or merged entry by entry (a .deb into proto/) only when the whole archive was good. The
temporaries carry their owner's process id: those of a killed run are removed by the next
unpack into the same place (see :mod:`liveforge.util.scratch`).
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import signal
import stat
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from liveforge.util.errors import BuildError, FetchError, LiveforgeError
from liveforge.util.paths import shown
from liveforge.util.proc import signal_group, spawn, wait_group
from liveforge.util.scratch import make_temp_dir, remove_leftovers, remove_temp, replace_tree
from liveforge.util.walk import walk_tree


class UnsafeArchiveError(LiveforgeError):
    """An archive member would escape the tree or is a device: nothing was unpacked."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One unpacked member: kind ``d`` (directory), ``f`` (file), ``s`` (symlink), ``h`` (hard
    link, ``target`` is the linked path), ``w`` (a whiteout: ``path`` was deleted), ``o`` (the
    directory ``path`` is opaque)."""

    path: str
    kind: str
    mode: int
    target: str = ""
    owner: str = "root"
    group: str = "root"


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def member_name(archive: str, name: str, what: str = "member") -> str:
    """The member's path relative to the tree ('' for the root), refusing unsafe names
    (``what`` says which name it is in the message)."""
    if name.startswith("/"):
        raise UnsafeArchiveError(f"{archive}: {what} {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: {what} {name!r} has a '..' component")
    return "/".join(parts)


def symlink_leads_out(rel: str, target: str) -> bool:
    """Whether the symlink at ``rel`` (a path in a tree) with the relative ``target`` resolves
    outside the tree (an absolute target resolves against the tree's root: never)."""
    if target.startswith("/"):
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return joined == ".." or joined.startswith("../")


def _check_symlink(archive: str, rel: str, target: str, allow_absolute: bool) -> None:
    if not target:
        raise UnsafeArchiveError(f"{archive}: symlink {rel!r} has an empty target")
    if target.startswith("/"):
        if allow_absolute:
            return  # resolved against the image root; writes through it are still checked
        raise UnsafeArchiveError(
            f"{archive}: symlink {rel!r} -> {target!r} points outside the tree")
    if symlink_leads_out(rel, target):
        raise UnsafeArchiveError(
            f"{archive}: symlink {rel!r} -> {target!r} points outside the tree")


def _check_parent(archive: str, root: str, full: str, rel: str) -> None:
    parent = os.path.realpath(os.path.dirname(full))
    if not _inside(root, parent):
        raise UnsafeArchiveError(
            f"{archive}: member {rel!r} would be written through a link outside the tree")


def _clear(full: str) -> None:
    """Remove whatever (not a directory) is at ``full`` so a later member replaces it."""
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeArchiveError(f"cannot replace directory {full} with a non-directory")
    os.unlink(full)


WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


def _whiteout(label: str, member: tarfile.TarInfo, root: str, rel: str) -> Entry:
    """Make the overlayfs form of a ``.wh.`` member: a 0/0 character device in place of the
    deleted name, or the opaque mark on the directory."""
    if not member.isfile():
        raise UnsafeArchiveError(f"{label}: whiteout {member.name!r} is not a regular file")
    parent, name = posixpath.split(rel)
    full_parent = os.path.join(root, parent) if parent else root
    _check_parent(label, root, os.path.join(full_parent, "x"), rel)
    os.makedirs(full_parent, 0o755, exist_ok=True)
    if name == OPAQUE:
        os.setxattr(full_parent, OPAQUE_XATTR, b"y", follow_symlinks=False)
        return Entry(parent, "o", 0o755)
    target = name[len(WHITEOUT):]
    if target in ("", ".", "..") or target.startswith(WHITEOUT):
        raise UnsafeArchiveError(f"{label}: member {member.name!r} is not a valid whiteout")
    full = os.path.join(full_parent, target)
    _clear(full)
    os.mknod(full, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    deleted = f"{parent}/{target}" if parent else target
    return Entry(deleted, "w", 0o600)


def _copy_in_kernel(source: int, out: int, offset: int, size: int,
                    wait_for: Callable[[int], None] | None = None) -> bool:
    """Copy ``size`` bytes of ``source`` from ``offset`` to ``out`` with copy_file_range (no
    pass through user space); False when the kernel cannot for these files (nothing copied).
    ``wait_for(end)``: returns once the source holds its first ``end`` bytes (a file still
    being written), called before each slice."""
    left = size
    while left:
        step = min(left, 1 << 30 if wait_for is None else 8 << 20)
        if wait_for is not None:
            wait_for(offset + step)
        try:
            done = os.copy_file_range(source, out, step, offset)
        except OSError as exc:
            if left == size and exc.errno in (errno.EXDEV, errno.EINVAL, errno.ENOSYS,
                                              errno.EOPNOTSUPP, errno.EBADF):
                return False
            raise
        if done == 0:
            raise tarfile.ReadError("unexpected end of data")
        offset += done
        left -= done
    return True


def copy_member_data(tar: tarfile.TarFile, member: tarfile.TarInfo, out: IO[bytes]) -> None:
    """Write a regular member's data to ``out``: in the kernel when the archive is a plain file
    read in random-access mode (``tarfile.open(fileobj=f, mode="r:")`` of an uncompressed tar:
    the data is a byte range of the file; or a reader of a file still being written that has
    a ``wait_for(end)`` method), else through tarfile's reader."""
    source = tar.fileobj
    wait_for = getattr(source, "wait_for", None)
    if (wait_for is not None or isinstance(source, (io.BufferedReader, io.FileIO))) \
            and member.sparse is None:
        out.flush()
        if _copy_in_kernel(source.fileno(), out.fileno(),  # type: ignore[attr-defined]
                           member.offset_data, member.size, wait_for):
            return
    data = tar.extractfile(member)
    assert data is not None
    shutil.copyfileobj(data, out, 1 << 20)


def extract_tar(tar: tarfile.TarFile, dest: Path, label: str, *,
                allow_absolute_symlinks: bool = False, whiteouts: bool = False,
                keep_owners: bool = False) -> list[Entry]:
    """Extract every member of an open tarfile (stream mode is fine) into the directory
    ``dest``, keeping modes and mtimes (and with ``keep_owners`` the numeric owners); returns
    the entries in archive order. With ``whiteouts``, ``.wh.`` members become overlayfs
    whiteouts (see the module's text)."""
    root = os.path.realpath(dest)
    owners: list[tuple[str, int, int]] = []
    entries: list[Entry] = []
    dir_modes: list[tuple[str, int, int]] = []
    for member in tar:
        rel = member_name(label, member.name)
        if member.ischr() or member.isblk() or member.isfifo() or not (
                member.isdir() or member.isfile() or member.issym() or member.islnk()):
            raise UnsafeArchiveError(
                f"{label}: member {member.name!r} is a device or special file")
        if not rel:
            if member.isdir():
                continue
            raise UnsafeArchiveError(f"{label}: member {member.name!r} names the tree root")
        if whiteouts and posixpath.basename(rel).startswith(WHITEOUT):
            entries.append(_whiteout(label, member, root, rel))
            continue
        full = os.path.join(root, rel)
        _check_parent(label, root, full, rel)
        os.makedirs(os.path.dirname(full), 0o755, exist_ok=True)
        if keep_owners and not member.islnk():
            owners.append((full, member.uid, member.gid))
        mode = member.mode & 0o7777
        owner, group = member.uname or "root", member.gname or "root"
        if member.isdir():
            if not os.path.isdir(full) or os.path.islink(full):
                _clear(full)
                os.makedirs(full, 0o700, exist_ok=True)
            os.chmod(full, 0o700)
            dir_modes.append((full, mode, int(member.mtime)))
            entries.append(Entry(rel, "d", mode, owner=owner, group=group))
        elif member.issym():
            _check_symlink(label, rel, member.linkname, allow_absolute_symlinks)
            if not member.linkname.startswith("/") and not _inside(root, os.path.realpath(
                    os.path.join(os.path.realpath(os.path.dirname(full)), member.linkname))):
                raise UnsafeArchiveError(f"{label}: symlink {rel!r} -> {member.linkname!r} "
                                         "points outside the tree (through earlier links)")
            _clear(full)
            os.symlink(member.linkname, full)
            entries.append(Entry(rel, "s", 0o777, member.linkname, owner, group))
        elif member.islnk():
            target = member_name(label, member.linkname,
                                 f"hard link {member.name!r} -> target")
            source = os.path.join(root, target)
            if not target or not _inside(root, os.path.realpath(source)) \
                    or not os.path.isfile(source) or os.path.islink(source):
                raise UnsafeArchiveError(f"{label}: hard link {member.name!r} -> "
                                         f"{member.linkname!r} points outside the tree")
            _clear(full)
            os.link(source, full)
            entries.append(Entry(rel, "h", mode, target, owner, group))
        else:
            _clear(full)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                copy_member_data(tar, member, out)
                if keep_owners:  # before the mode: a change of owner clears set-id bits
                    os.fchown(out.fileno(), member.uid, member.gid)
                os.fchmod(out.fileno(), mode)
            os.utime(full, (member.mtime, member.mtime), follow_symlinks=False)
            entries.append(Entry(rel, "f", mode, owner=owner, group=group))
    for full, uid, gid in owners:
        if not os.path.isfile(full) or os.path.islink(full):
            os.lchown(full, uid, gid)
    for full, mode, mtime in reversed(dir_modes):
        os.chmod(full, mode | 0o700 if os.geteuid() != 0 else mode)
        os.utime(full, (mtime, mtime))
    return entries


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise FetchError(f"{archive}: not a readable tar archive: {exc}") from None


def unpack_tarball(archive: Path, into: Path) -> list[Entry]:
    """Unpack ``archive`` into the existing directory ``into``."""
    with _open_tar(archive) as tar:
        try:
            return extract_tar(tar, into, str(archive))
        except (tarfile.TarError, EOFError) as exc:
            raise FetchError(f"{archive}: corrupt tar archive: {exc}") from None


def unpack_source(archive: Path, dest: Path,
                  prepare: Callable[[Path], None] | None = None) -> Path:
    """Unpack a source tarball to ``dest`` (replaced if present): into a temporary folder
    beside it, descend into the single top directory if there is one, run ``prepare`` on the
    tree (patching), then rename. On any error nothing is left behind."""
    remove_leftovers(dest.parent)
    tmp = make_temp_dir(dest.parent, dest.name)
    try:
        unpack_tarball(archive, tmp)
        top = [p for p in tmp.iterdir()]
        tree = top[0] if len(top) == 1 and top[0].is_dir() and not top[0].is_symlink() else tmp
        if prepare is not None:
            prepare(tree)
        replace_tree(tree, dest)
    finally:
        remove_temp(tmp)
    return dest


def merge_tree(src: Path, dst: Path, *, move: bool = False) -> None:
    """Install the tree ``src`` over ``dst`` entry by entry (files replaced atomically, symlinks
    kept as links, directories merged), never writing through a link that leaves ``dst``."""
    root = os.path.realpath(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        out_dir = root if rel_dir == "." else os.path.join(root, rel_dir)
        if not _inside(root, os.path.realpath(out_dir)):
            raise UnsafeArchiveError(f"{dst}: {rel_dir!r} is a link leading outside {dst}")
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        for name in dirnames:
            target = os.path.join(out_dir, name)
            mode = stat.S_IMODE(os.lstat(os.path.join(dirpath, name)).st_mode)
            if os.path.islink(target) and os.path.isdir(target):
                continue  # e.g. proto's bin -> usr/bin: merge through the link (checked above)
            if not os.path.isdir(target) or os.path.islink(target):
                _clear(target)
                os.mkdir(target)
            os.chmod(target, mode)
        for name in sorted(filenames + links):
            source = os.path.join(dirpath, name)
            target = os.path.join(out_dir, name)
            if os.path.isdir(target) and not os.path.islink(target):
                raise UnsafeArchiveError(f"cannot replace directory {target} with a file")
            tmp = os.path.join(out_dir, f".{name}.lf-tmp")
            _clear(tmp)
            if os.path.islink(source):
                os.symlink(os.readlink(source), tmp)
            elif move:
                os.rename(source, tmp)
            else:
                shutil.copy2(source, tmp, follow_symlinks=False)
            os.replace(tmp, target)


def tree_paths(tree: Path) -> list[str]:
    """Every path under ``tree`` that is not a directory (files and symlinks), sorted: what
    :func:`merge_tree` delivers from it."""
    return sorted(rel for rel, _, st in walk_tree(tree) if not stat.S_ISDIR(st.st_mode))


def same_entry(a: str, b: str) -> bool:
    """Whether two entries are the same, links not followed: symlinks with one target, regular
    files with one mode and the same bytes (other kinds: one type, mode and device)."""
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
        return False
    if not stat.S_ISREG(sa.st_mode):
        return stat.S_ISDIR(sa.st_mode) or sa.st_rdev == sb.st_rdev
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    if sa.st_size != sb.st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def collisions(src: Path, dst: Path, owners: Mapping[str, str]) -> list[str]:
    """What :func:`merge_tree` of ``src`` over ``dst`` would replace with something else, among
    the entries of ``dst`` that ``owners`` (path -> who delivered it; files and links, never
    directories) says another delivered: ``"<path> (also delivered by <who>)"``, sorted (a
    name that is not printable UTF-8 shown quoted, with escapes). The
    same entry twice (:func:`same_entry`) is no collision; a file and a directory at one path
    are, either way round (a directory is whose files it holds); a directory merged through a
    link to a directory (proto's ``bin -> usr/bin``) is not."""
    found: list[tuple[str, str]] = []
    for rel, _, st in walk_tree(src):
        target = os.path.join(dst, rel)
        try:
            there = os.lstat(target).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        who: str | None
        if stat.S_ISDIR(st.st_mode):
            if stat.S_ISDIR(there) or (stat.S_ISLNK(there) and os.path.isdir(target)):
                continue
            who = owners.get(rel)
        elif stat.S_ISDIR(there):
            inside = rel + "/"
            who = next((w for p, w in sorted(owners.items()) if p.startswith(inside)), None)
        else:
            who = owners.get(rel)
            if who is not None and same_entry(os.path.join(src, rel), target):
                who = None
        if who is not None:
            found.append((rel, who))
    return [f"{p if p.isprintable() else shown(p)} (also delivered by {w})"
            for p, w in sorted(found)]


def refuse_collisions(who: str, dst: Path, clashes: list[str]) -> None:
    """The one error for :func:`collisions`: ``who`` and ``dst`` with the first three."""
    if clashes:
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        raise BuildError(f"{who} delivers into {dst.name}/ with different content: "
                         f"{', '.join(clashes[:3])}{more}")


def install_deb(deb: Path, dest: Path, workdir: Path) -> list[Entry]:
    """Unpack a .deb's data (``dpkg-deb --fsys-tarfile``) with the member checks, into a
    temporary folder under ``workdir`` (same file system as ``dest``), then merge into ``dest``.
    Absolute symlinks are allowed (they resolve against the image root)."""
    remove_leftovers(workdir)
    tmp = make_temp_dir(workdir, "deb")
    try:
        proc = spawn(["dpkg-deb", "--fsys-tarfile", str(deb)], stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        stream: IO[bytes] = proc.stdout
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                entries = extract_tar(tar, tmp, deb.name, allow_absolute_symlinks=True)
        except (tarfile.TarError, EOFError) as exc:
            signal_group(proc, signal.SIGKILL)
            wait_group(proc)
            raise FetchError(f"{deb}: cannot read the package data: {exc}: "
                             f"{proc.stderr.read().decode(errors='replace').strip()}") from None
        except BaseException:
            signal_group(proc, signal.SIGKILL)
            wait_group(proc)
            raise
        err = proc.stderr.read().decode(errors="replace").strip()
        if wait_group(proc) != 0:
            raise FetchError(f"{deb}: dpkg-deb --fsys-tarfile failed: {err}")
        merge_tree(tmp, dest, move=True)
        return entries
    finally:
        remove_temp(tmp)
