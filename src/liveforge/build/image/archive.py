"""Deterministic archive writers (and readers): tar for the platform tarball, cpio newc for the
boot archive, both written straight from image entries.

Nothing on disk but file *content* is used: mode, uid and gid come from the manifest; every
mtime is the buildstamp's time (so a checkout's file times never leak in); there are no user or
group names, no device numbers, no atime. Entries are in path order (parents first). Hard links
stay hard links: the first path of a link group (in path order) carries the data, the others
refer to it (tar ``1`` entries; cpio entries sharing the inode number with no data).

One pass reads each file once and feeds both archives (and the MD5 of each shipped file). The
compressing sinks, tar headers and decompressing reader are :mod:`liveforge.util.archive`'s
(liveforge's one tar writer, shared with imgadm's image layers); compression runs in worker
threads, so on two cores the two archives are compressed side by side while files are read.
The platform tarball, the platform directory's tarball (:func:`tree_image`) and the build
cache's entries (:func:`merged_image`) are all written here.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from liveforge.build.image.assemble import Image, ImageEntry
from liveforge.util.archive import (
    BLOCK,
    CHUNK,
    Sink,
    open_decompressed,
    open_sink,
    sink_outputs,
    tar_end,
    tar_header,
    tar_pad,
)
from liveforge.util.errors import BuildError, InputError
from liveforge.util.hashing import stream_digest
from liveforge.util.walk import walk_tree

SMALL = 1 << 20            # files up to this size are read in one call


# -- headers ----------------------------------------------------------------------------------

_CPIO_TYPES = {"d": stat.S_IFDIR, "f": stat.S_IFREG, "h": stat.S_IFREG, "s": stat.S_IFLNK}


def cpio_header(path: str, ino: int, mode: int, uid: int, gid: int, nlink: int, mtime: int,
                size: int) -> bytes:
    """A cpio newc header with its name and padding (device numbers and checksum zero)."""
    name = path.encode() + b"\0"
    if size > 0xFFFFFFFF:
        raise BuildError(f"{path}: too large for a cpio newc archive ({size} bytes)")
    header = b"070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X" % (
        ino, mode, uid, gid, nlink, mtime, size, 0, 0, 0, 0, len(name), 0)
    return header + name + b"\0" * (-(110 + len(name)) % 4)


# -- the writer -------------------------------------------------------------------------------

def _link_groups(image: Image) -> tuple[dict[str, str], dict[str, int], dict[str, ImageEntry]]:
    """For each file path: the path carrying its data (first of its group), the group size, and
    the ``f`` entry holding the source."""
    members: dict[str, list[str]] = {}
    files: dict[str, ImageEntry] = {}
    for entry in image.entries:
        if entry.kind == "f":
            files[entry.path] = entry
            members.setdefault(entry.path, []).append(entry.path)
        elif entry.kind == "h":
            members.setdefault(entry.target, []).append(entry.path)
    primary: dict[str, str] = {}
    count: dict[str, int] = {}
    for file_path, paths in members.items():
        first = min(paths)
        for path in paths:
            primary[path] = first
            count[path] = len(paths)
        files[first] = files[file_path]
    return primary, count, files


def _read_file(entry: ImageEntry) -> Iterator[bytes]:
    """The content of ``entry``'s source, in one piece when small, else in chunks. The first
    item is the size as 8 bytes, so headers can be written before the data."""
    assert entry.source is not None
    try:
        fd = os.open(entry.source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise BuildError(f"{entry.path}: cannot read {entry.source}: {exc.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        yield size.to_bytes(8, "big")
        remaining = size
        while remaining > 0:
            data = os.read(fd, min(remaining, SMALL if size <= SMALL else CHUNK))
            if not data:
                raise BuildError(f"{entry.path}: {entry.source} shrank while being archived")
            remaining -= len(data)
            yield data
    finally:
        os.close(fd)


def write_archives(image: Image, mtime: int, *, tar: Path | None = None,
                   cpio: Path | None = None, tar_compression: str = "gzip",
                   cpio_compression: str = "gzip", level: int | None = None,
                   digests: bool = False, cpio_skip: frozenset[str] = frozenset()
                   ) -> dict[str, str]:
    """Write the tar and/or cpio archive of ``image`` to the given paths in one pass.

    Paths in ``cpio_skip`` (files that are not hard-linked, and symlinks) go to the tar only:
    the kernel, which boots beside the boot archive rather than from it.

    ``mtime`` is the time given to every entry (the buildstamp's epoch). With ``digests``, the
    MD5 of every regular file (and hard link) is returned, keyed by path. The files are created
    (or truncated) and fsynced; the caller chooses temporary names and renames them.
    """
    primary, group_size, sources = _link_groups(image)
    tar_sink = cpio_sink = None
    with sink_outputs() as outputs:
        if tar is not None:
            tar_sink = open_sink(tar, tar_compression, level, outputs)
        if cpio is not None:
            cpio_sink = open_sink(cpio, cpio_compression, level, outputs)
        md5s = _write_entries(image, mtime, tar_sink, cpio_sink, primary, group_size, sources,
                              digests, cpio_skip)
        if tar_sink is not None:
            tar_end(tar_sink)
        if cpio_sink is not None:
            cpio_sink.write(cpio_header("TRAILER!!!", 0, 0, 0, 0, 1, 0, 0))
            cpio_sink.write(b"\0" * (-cpio_sink.length % BLOCK))
    return md5s


def _write_entries(image: Image, mtime: int, tar_sink: Sink | None, cpio_sink: Sink | None,
                   primary: dict[str, str], group_size: dict[str, int],
                   sources: dict[str, ImageEntry], digests: bool,
                   cpio_skip: frozenset[str] = frozenset()) -> dict[str, str]:
    md5s: dict[str, str] = {}
    inodes: dict[str, int] = {}
    tar_write = tar_sink.write if tar_sink is not None else None
    cpio_all = cpio_sink.write if cpio_sink is not None else None
    for ino, entry in enumerate(image.entries, 1):
        kind, path = entry.kind, entry.path
        skip = path in cpio_skip and (kind == "s" or kind == "f" and group_size[path] == 1)
        cpio_write = None if skip else cpio_all
        cpio_mode = _CPIO_TYPES[kind] | entry.mode
        if kind == "d" or kind == "s":
            link = entry.target
            data = link.encode()
            if tar_write is not None:
                tar_write(tar_header(path, kind, entry.mode, entry.uid, entry.gid, 0, mtime, link))
            if cpio_write is not None:
                cpio_write(cpio_header(path, ino, cpio_mode, entry.uid, entry.gid,
                                       2 if kind == "d" else 1, mtime, len(data)))
                if data:
                    cpio_write(data + b"\0" * (-len(data) % 4))
            continue
        first = primary[path]
        nlink = group_size[path]
        if first != path:
            # A later member of a link group: refers to the first, carries no data.
            if tar_write is not None:
                tar_write(tar_header(path, "h", entry.mode, entry.uid, entry.gid, 0, mtime,
                                     first))
            if cpio_write is not None:
                cpio_write(cpio_header(path, inodes[first], cpio_mode, entry.uid, entry.gid,
                                       nlink, mtime, 0))
            if digests:
                md5s[path] = md5s[first]
            continue
        inodes[path] = ino
        chunks = _read_file(sources[path])
        size = int.from_bytes(next(chunks), "big")
        if tar_write is not None:
            tar_write(tar_header(path, "f", entry.mode, entry.uid, entry.gid, size, mtime))
        if cpio_write is not None:
            cpio_write(cpio_header(path, ino, cpio_mode, entry.uid, entry.gid, nlink, mtime,
                                   size))
        digest = hashlib.md5(usedforsecurity=False) if digests else None
        for data in chunks:
            if tar_write is not None:
                tar_write(data)
            if cpio_write is not None:
                cpio_write(data)
            if digest is not None:
                digest.update(data)
        if tar_write is not None:
            tar_write(tar_pad(size))
        if cpio_write is not None:
            cpio_write(b"\0" * (-size % 4))
        if digest is not None:
            md5s[path] = digest.hexdigest()
    return md5s


def tree_image(directory: Path, name: str) -> Image:
    """The directories and regular files under ``directory`` as image entries under ``name/``:
    what a tarball of the directory holds, unpacking to ``name/``. Owners are root (0:0);
    directories are 0755 and files 0644 (0755 when executable), whatever the umask made on
    disk. Anything but a directory or a regular file is an error."""
    entries = [ImageEntry("d", name, 0o755, 0, 0)]
    for member, child, st in walk_tree(directory, f"{name}/"):
        if stat.S_ISDIR(st.st_mode):
            entries.append(ImageEntry("d", member, 0o755, 0, 0))
        elif stat.S_ISREG(st.st_mode):
            executable = st.st_mode & 0o111
            entries.append(ImageEntry("f", member, 0o755 if executable else 0o644, 0, 0,
                                      source=Path(child.path)))
        else:
            raise BuildError(f"{child.path}: not a directory or a regular file")
    return Image(tuple(sorted(entries, key=lambda entry: entry.path)))


def merged_image(trees: Iterable[Path]) -> Image:
    """Everything under the directories ``trees`` as image entries, merged as installing them
    in turn would: a path under a later tree replaces the same path under an earlier one. Modes
    are as on disk, owners root (0:0); symlinks stay symlinks and files hard-linked within one
    tree stay hard links. Anything else (a FIFO, a device) is an error."""
    found: dict[str, tuple[ImageEntry, tuple[int, int, int] | None]] = {}
    for index, tree in enumerate(trees):
        for path, child, st in walk_tree(tree):
            mode = stat.S_IMODE(st.st_mode)
            inode = None
            if stat.S_ISDIR(st.st_mode):
                entry = ImageEntry("d", path, mode, 0, 0)
            elif stat.S_ISLNK(st.st_mode):
                entry = ImageEntry("s", path, 0o777, 0, 0, os.readlink(child.path))
            elif stat.S_ISREG(st.st_mode):
                entry = ImageEntry("f", path, mode, 0, 0, source=Path(child.path))
                if st.st_nlink > 1:
                    inode = (index, st.st_dev, st.st_ino)
            else:
                raise BuildError(f"{child.path}: not a directory, a regular file or a "
                                 "symbolic link")
            found[path] = (entry, inode)
    entries = []
    first: dict[tuple[int, int, int], str] = {}  # a hard-linked file -> its first path left
    for path in sorted(found):
        entry, inode = found[path]
        if inode is not None and first.setdefault(inode, path) != path:
            entry = ImageEntry("h", path, entry.mode, 0, 0, first[inode])
        entries.append(entry)
    return Image(tuple(entries))


# -- readers (for lint, diff and tests) --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Member:
    """One archive member as read back: kind (d f s h), permissions, ids, link target, content."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    target: str = ""
    sha256: str = ""
    size: int = 0
    mtime: int = 0


def read_tar(path: Path) -> dict[str, Member]:
    """Members of a (possibly compressed) tar archive, keyed by path without a trailing slash."""
    members: dict[str, Member] = {}
    with open_decompressed(path) as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
        for info in archive:
            name = info.name.rstrip("/")
            if info.isdir():
                members[name] = Member(name, "d", info.mode, info.uid, info.gid,
                                       mtime=int(info.mtime))
            elif info.issym():
                members[name] = Member(name, "s", info.mode, info.uid, info.gid, info.linkname,
                                       mtime=int(info.mtime))
            elif info.islnk():
                first = members.get(info.linkname.rstrip("/"))
                if first is None:
                    raise InputError(f"hard link {name!r} to {info.linkname!r}, no member "
                                     "before it", path)
                members[name] = Member(name, "h", info.mode, info.uid, info.gid, info.linkname,
                                       first.sha256, first.size, int(info.mtime))
            elif info.isfile():
                handle = archive.extractfile(info)
                assert handle is not None
                digest = stream_digest(handle)
                members[name] = Member(name, "f", info.mode, info.uid, info.gid, "", digest,
                                       info.size, int(info.mtime))
    return members


def read_cpio(path: Path) -> dict[str, Member]:
    """Members of a (possibly compressed) cpio newc archive. Of a set of entries sharing an
    inode, the first is a file (``f``) and the others hard links (``h``) to it."""
    members: dict[str, Member] = {}
    by_ino: dict[int, str] = {}
    content: dict[int, tuple[str, int]] = {}
    with open_decompressed(path) as raw:
        while True:
            header = raw.read(110)
            if len(header) < 110 or header[:6] not in (b"070701", b"070702"):
                raise BuildError(f"{path}: not a cpio newc archive")
            fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
            ino, mode, uid, gid, nlink, mtime, size = fields[:7]
            namesize = fields[11]
            name = raw.read(namesize)[:-1].decode()
            raw.read(-(110 + namesize) % 4)
            data = raw.read(size)
            raw.read(-size % 4)
            if name == "TRAILER!!!":
                break
            perms = stat.S_IMODE(mode)
            if stat.S_ISDIR(mode):
                members[name] = Member(name, "d", perms, uid, gid, mtime=mtime)
            elif stat.S_ISLNK(mode):
                members[name] = Member(name, "s", perms, uid, gid, data.decode(), mtime=mtime)
            else:
                if size or ino not in content:
                    content[ino] = (hashlib.sha256(data).hexdigest(), size)
                if nlink > 1 and ino in by_ino:
                    members[name] = Member(name, "h", perms, uid, gid, by_ino[ino], mtime=mtime)
                else:
                    by_ino[ino] = name
                    members[name] = Member(name, "f", perms, uid, gid, mtime=mtime)
    # Some writers put a link group's data on its last member: give every member the content.
    first_ino = {name: ino for ino, name in by_ino.items()}
    for name, member in members.items():
        if member.kind in ("f", "h"):
            ino = first_ino[member.target or name]
            sha, size = content[ino]
            members[name] = Member(name, member.kind, member.mode, member.uid, member.gid,
                                   member.target, sha, size, member.mtime)
    return members
