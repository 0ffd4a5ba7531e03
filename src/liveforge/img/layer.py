"""Image files: the tar stream of a tree image, the disk file of a zvol image.

A tree image (``zone-dataset``, ``lx-dataset``) is a tar stream of a root file system; an image
with an ``origin`` holds only its changes against the origin's tree: added and changed entries
(with every parent directory, so the parents' modes and owners come with them) and a
``.wh.<name>`` empty file for each deleted name (``.wh..wh..opq`` marks a directory whose lower
content is hidden). Three ways to write one: :func:`write_tree` (a base image: the whole tree),
:func:`write_diff` (a tree against its origin's tree, as unpacked) and :func:`write_upper` (an
overlayfs upper directory, whose whiteouts are 0/0 character devices and whose opaque
directories carry ``trusted.overlay.opaque=y``: what ``imgadm create`` of a container sees).

The stream is deterministic: entries in path order (parents first), numeric owners as on disk
and no user or group names, mtimes clamped to ``mtime`` when given, hard links within the
tree as tar hard links (the first path of a group carries the data). Device nodes and FIFOs
are refused (an image holds none); sockets are left out (nothing a socket file means survives
its process). The tar writer is :mod:`liveforge.util.archive`'s.

:func:`read_layer` unpacks an image file (compression told by its magic bytes, which must agree
with the manifest's) into a layer directory with :mod:`liveforge.util.unpack`'s checks (no
``..``, absolute names, links leading out, devices) and turns the ``.wh.`` entries into
overlayfs whiteouts, so the layer directories of an ancestry stack up as one overlayfs mount.
A zvol's file is its disk (raw or qcow2) as shipped, decompressed by :func:`read_disk` when it
was compressed.
"""

from __future__ import annotations

import io
import lzma
import os
import stat
import tarfile
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from liveforge.img.errors import ImgadmError
from liveforge.util.archive import (
    CHUNK,
    COMPRESSIONS,
    Sink,
    file_compression,
    open_decompressed,
    open_sink,
    sink_outputs,
    tar_end,
    tar_header,
    tar_pad,
)
from liveforge.util.errors import LiveforgeError
from liveforge.util.hashing import file_digest
from liveforge.util.unpack import OPAQUE, OPAQUE_XATTR, WHITEOUT, Entry, extract_tar
from liveforge.util.walk import walk_tree

REDIRECT_XATTR = "trusted.overlay.redirect"
METACOPY_XATTR = "trusted.overlay.metacopy"


@dataclass(frozen=True, slots=True)
class LayerFile:
    """A written image file: what the manifest's ``files[0]`` says of it."""

    path: Path
    sha1: str
    size: int
    compression: str

    def manifest_file(self) -> dict[str, object]:
        return {"sha1": self.sha1, "size": self.size, "compression": self.compression}


@dataclass(frozen=True, slots=True)
class Node:
    """One entry of a tree: kind ``d`` ``f`` ``s`` or ``w`` (a whiteout), and where it is."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int
    full: str
    target: str = ""
    size: int = 0
    inode: tuple[int, int] | None = None  # (dev, ino) of a file with other links
    opaque: bool = False


def _xattr(full: str, name: str) -> bytes | None:
    try:
        return os.getxattr(full, name, follow_symlinks=False)
    except OSError:
        return None


def _upper_check(full: str) -> None:
    """Refuse an upper entry that is not whole: a metadata-only copy (its data is in a lower
    layer) or a renamed directory's redirect."""
    for name in (REDIRECT_XATTR, METACOPY_XATTR):
        if _xattr(full, name) is not None:
            raise ImgadmError("InvalidImageFile", f"{full}: an overlayfs {name} entry (mount "
                              "the view with redirect_dir=off,metacopy=off)")


def scan(root: Path, *, upper: bool = False) -> dict[str, Node]:
    """Every entry under ``root`` by relative path. With ``upper`` (an overlayfs upper
    directory), 0/0 character devices are whiteouts and opaque directories are marked."""
    if not root.is_dir():
        raise ImgadmError("InvalidImageFile", f"{root}: not a directory")
    nodes: dict[str, Node] = {}
    for path, child, st in walk_tree(root):
        mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        ids = (st.st_uid, st.st_gid)
        if upper and not stat.S_ISLNK(st.st_mode):
            _upper_check(child.path)
        if stat.S_ISDIR(st.st_mode):
            opaque = upper and _xattr(child.path, OPAQUE_XATTR) == b"y"
            nodes[path] = Node(path, "d", mode, *ids, mtime, child.path, opaque=opaque)
        elif stat.S_ISREG(st.st_mode):
            inode = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
            nodes[path] = Node(path, "f", mode, *ids, mtime, child.path, size=st.st_size,
                               inode=inode)
        elif stat.S_ISLNK(st.st_mode):
            nodes[path] = Node(path, "s", 0o777, *ids, mtime, child.path,
                               os.readlink(child.path))
        elif upper and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            nodes[path] = Node(path, "w", 0o600, 0, 0, mtime, child.path)
        elif stat.S_ISSOCK(st.st_mode):
            continue
        else:
            raise ImgadmError("InvalidImageFile", f"{child.path}: a device node or FIFO "
                              "cannot go into an image")
    return nodes


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as one, open(b, "rb") as two:
        while True:
            x, y = one.read(CHUNK), two.read(CHUNK)
            if x != y:
                return False
            if not x:
                return True


def _changed(old: Node, new: Node) -> bool:
    if (old.kind, old.mode, old.uid, old.gid, old.target) != (
            new.kind, new.mode, new.uid, new.gid, new.target):
        return True
    if new.kind == "f":
        return old.size != new.size or not _same_content(old.full, new.full)
    return False


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def diff(origin: dict[str, Node], tree: dict[str, Node]) -> list[Node]:
    """The entries of a layer taking ``origin`` to ``tree``: those added or changed, a
    whiteout for each deleted name whose parent stays a directory (a deleted directory is one
    whiteout), and the parent directories of all of them; in path order."""
    keep: dict[str, Node] = {}
    for path, node in tree.items():
        old = origin.get(path)
        if old is None or _changed(old, node):
            keep[path] = node
    for path, old in origin.items():
        if path in tree:
            continue
        parent = _parent(path)
        if parent and (parent not in tree or tree[parent].kind != "d"):
            continue  # its parent is gone or replaced: that one hides it
        keep[path] = Node(path, "w", 0o600, 0, 0, old.mtime, old.full)
    for path in list(keep):
        parent = _parent(path)
        while parent and parent not in keep:
            keep[parent] = tree[parent]
            parent = _parent(parent)
    return [keep[path] for path in sorted(keep)]


def _write_file(sink: Sink, node: Node, mtime: int, uid: int, gid: int) -> None:
    fd = os.open(node.full, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        sink.write(tar_header(node.path, "f", node.mode, uid, gid, size, mtime))
        remaining = size
        while remaining > 0:
            data = os.read(fd, min(remaining, CHUNK))
            if not data:
                raise ImgadmError("InvalidImageFile", f"{node.full} shrank while being written")
            remaining -= len(data)
            sink.write(data)
        sink.write(tar_pad(size))
    finally:
        os.close(fd)


def _write_nodes(nodes: list[Node], out: Path, compression: str, clamp: int | None) -> LayerFile:
    if compression not in COMPRESSIONS:
        raise ImgadmError("InvalidImageFile", f"unknown compression {compression!r} (expected "
                          f"one of {', '.join(COMPRESSIONS)})")
    first: dict[tuple[int, int], str] = {}  # a hard-linked file -> the path carrying its data
    try:
        with sink_outputs() as outputs:
            sink = open_sink(out, compression, None, outputs)
            for node in nodes:
                mtime = node.mtime if clamp is None else min(node.mtime, clamp)
                if node.kind == "w":
                    parent, name = _parent(node.path), node.path.rpartition("/")[2]
                    wh = f"{parent}/{WHITEOUT}{name}" if parent else WHITEOUT + name
                    sink.write(tar_header(wh, "f", 0o600, 0, 0, 0, mtime))
                elif node.kind == "d":
                    sink.write(tar_header(node.path, "d", node.mode, node.uid, node.gid, 0,
                                          mtime))
                    if node.opaque:
                        sink.write(tar_header(f"{node.path}/{OPAQUE}", "f", 0o600, 0, 0, 0,
                                              mtime))
                elif node.kind == "s":
                    sink.write(tar_header(node.path, "s", 0o777, node.uid, node.gid, 0, mtime,
                                          node.target))
                elif node.inode is not None and node.inode in first:
                    sink.write(tar_header(node.path, "h", node.mode, node.uid, node.gid, 0,
                                          mtime, first[node.inode]))
                else:
                    if node.inode is not None:
                        first[node.inode] = node.path
                    _write_file(sink, node, mtime, node.uid, node.gid)
            tar_end(sink)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return LayerFile(out, file_digest(out, "sha1"), out.stat().st_size, compression)


def write_tree(root: Path, out: Path, compression: str = "gzip", *,
               mtime: int | None = None) -> LayerFile:
    """The image file of a whole tree (a base image) at ``out``."""
    nodes = scan(root)
    return _write_nodes([nodes[p] for p in sorted(nodes)], out, compression, mtime)


def write_diff(origin: Path, root: Path, out: Path, compression: str = "gzip", *,
               mtime: int | None = None) -> LayerFile:
    """The image file of ``root``'s changes against the tree ``origin`` (its origin image's
    full tree, e.g. the mounted view of the origin)."""
    return _write_nodes(diff(scan(origin), scan(root)), out, compression, mtime)


def write_upper(upper: Path, out: Path, compression: str = "gzip", *,
                mtime: int | None = None) -> LayerFile:
    """The image file of an overlayfs upper directory: its entries as they are, its whiteouts
    as ``.wh.`` entries and its opaque directories marked."""
    nodes = scan(upper, upper=True)
    return _write_nodes([nodes[p] for p in sorted(nodes)], out, compression, mtime)


def write_disk(disk: Path, out: Path, compression: str = "none") -> LayerFile:
    """The image file of a zvol image: the disk file (raw or qcow2), compressed or not."""
    try:
        with sink_outputs() as outputs, open(disk, "rb") as handle:
            sink = open_sink(out, compression, None, outputs)
            while data := handle.read(CHUNK):
                sink.write(data)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return LayerFile(out, file_digest(out, "sha1"), out.stat().st_size, compression)


# -- reading ----------------------------------------------------------------------------------

def read_layer(file: Path, dest: Path, label: str = "", *,
               source: io.RawIOBase | None = None, compression: str | None = None) -> list[Entry]:
    """Unpack the image file ``file`` into the existing, empty directory ``dest`` as a layer:
    member checks as for any archive, owners kept, ``.wh.`` entries as overlayfs whiteouts.
    A bad member is ``InvalidImageFile``, a corrupt compressed stream ``UncompressionError``;
    the caller removes ``dest`` then. ``source``: the file's bytes from a seekable reader
    instead (a download being written, :mod:`liveforge.img.follow`). ``compression``: what the
    manifest says (``files[0].compression``): the file's magic bytes must say the same, else
    ``UncompressionError``."""
    label = label or str(file)
    try:
        if compression is not None:
            found = file_compression(file, cast(BinaryIO, source))
            if found != compression:
                raise ImgadmError("UncompressionError", f"{label}: files[0].compression says "
                                  f"{compression!r}, the file's magic bytes say {found!r}")
        # an uncompressed file is read in random-access mode, its members' data copied in the
        # kernel (see copy_member_data); a compressed one as a stream, with a 1 MiB buffer
        # (tarfile's default, 10 KiB, halves the unpacking speed)
        raw = open_decompressed(file, cast(BinaryIO, source))
        plain = raw is source or isinstance(raw, io.BufferedReader)
        with (nullcontext(raw) if raw is source else raw), \
                tarfile.open(fileobj=raw, mode="r:" if plain else "r|", bufsize=1 << 20) as tar:
            return extract_tar(tar, dest, label, allow_absolute_symlinks=True, whiteouts=True,
                               keep_owners=True)
    except tarfile.TarError as exc:
        raise ImgadmError("InvalidImageFile", f"{label}: not a valid tar stream: {exc}") from None
    except LiveforgeError as exc:
        if isinstance(exc, ImgadmError):
            raise
        raise ImgadmError("InvalidImageFile", str(exc)) from None
    except (EOFError, lzma.LZMAError, zlib.error) as exc:
        raise ImgadmError("UncompressionError", f"{label}: {exc or 'truncated'}") from None
    except OSError as exc:
        if exc.errno is not None:  # the disk, not the stream (a decoder's error has none)
            raise
        raise ImgadmError("UncompressionError", f"{label}: {exc}") from None


def read_disk(file: Path, dest: Path, label: str = "") -> None:
    """Write the disk of a zvol image file to ``dest`` (decompressed when it was)."""
    label = label or str(file)
    try:
        with open_decompressed(file) as raw, open(dest, "xb") as out:
            while data := raw.read(CHUNK):
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except (EOFError, lzma.LZMAError, zlib.error) as exc:
        raise ImgadmError("UncompressionError", f"{label}: {exc or 'truncated'}") from None
