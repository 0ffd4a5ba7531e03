"""A container's runtime layer: what the runtime puts in a VM at every start, kept out of the
VM's own upper layer (which is the VM's changes: what ``imgadm create`` ships).

The layer is a directory of the VM's (``run/layer``), made afresh by the host at each start
while the VM's root view is unmounted, and mounted as the top *lower* layer of that view
(rootfs.mount_root): the image's layers below it, the VM's upper layer above it. It holds

- the mount points the image lacks (``/proc``, ``/sys``, ``/dev``, ``/tmp``,
  ``/.liveforge/metadata``): cinit mounts over them without writing anything;
- ``/etc/hostname``, ``/etc/resolv.conf`` (with resolvers), ``/usr/sbin/mdata-get``.

The VM may edit or remove those files: overlayfs copies the file up into the VM's upper layer
(or whites it out there), and from then on that edit is the VM's change, kept across starts
and shipped by ``imgadm create`` like any other.

A directory of the layer that the image has too takes the image's mode, owner and mtime (the
top layer's attributes are the merged directory's, and a copy-up copies them): the VM sees
its image's ``/etc`` as it is. Paths are resolved in a read-only view of the image as the VM
would resolve them (an image's symlink, absolute or relative, leads inside the image, as a
merged ``/usr/sbin -> bin`` does), and only to choose where in the layer a file goes: nothing
of the image is followed on the host, and the layer's own directories are made 0755 (``/tmp``
1777) and owned by root."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from liveforge.util.errors import LiveforgeError
from liveforge.vm.brands.cinit import METADATA_DIR, MOUNT_POINTS

MAX_LINKS = 40  # symlinks followed while resolving one path (the kernel's limit)
DIR_MODE = 0o755
TMP_MODE = 0o1777

# mdata-get KEY: the value of KEY in the VM's customer_metadata, from the read-only directory
# vmadm binds at METADATA_DIR (file name: the key's bytes in hex); exit 1 for a missing key.
MDATA_SCRIPT = f"""#!/bin/sh
if [ $# -ne 1 ]; then
    echo "Usage: mdata-get <keyname>" >&2
    exit 2
fi
f={METADATA_DIR}/$(printf %s "$1" | od -An -v -tx1 | tr -d ' \\n')
if [ -z "$1" ] || [ ! -f "$f" ]; then
    echo "No metadata for '$1'" >&2
    exit 1
fi
cat "$f"
echo
"""


class RuntimeLayerError(LiveforgeError):
    """The runtime's files have no place in the VM's image."""


def files(hostname: str, resolvers: tuple[str, ...]) -> list[tuple[str, str, str, int]]:
    """(directory, name, content, mode) of each file the runtime puts in the VM."""
    made = [("etc", "hostname", hostname + "\n", 0o644)]
    if resolvers:
        made.append(("etc", "resolv.conf", "".join(f"nameserver {r}\n" for r in resolvers),
                     0o644))
    made.append(("usr/sbin", "mdata-get", MDATA_SCRIPT, 0o755))
    return made


def resolve(image: Path, path: str) -> list[str]:
    """The components of ``path`` (relative to the VM's ``/``) with every symlink of the image
    on the way resolved inside the image; components the image lacks are kept as named."""
    pending = list(reversed(path.split("/")))
    done: list[str] = []
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        try:
            info = os.lstat(image.joinpath(*done, name))
        except (FileNotFoundError, NotADirectoryError):
            done.append(name)  # the image lacks it (and all below it)
            continue
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise RuntimeLayerError(f"/{path}: too many levels of symbolic links in the "
                                        "image")
            target = os.readlink(image.joinpath(*done, name))
            if target.startswith("/"):
                done = []
            pending.extend(reversed(target.split("/")))
        elif stat.S_ISDIR(info.st_mode):
            done.append(name)
        else:
            where = "/" + "/".join([*done, name])
            raise RuntimeLayerError(f"/{path}: {where} is not a directory in the image")
    return done


def _make_dirs(image: Path, layer: Path, parts: list[str], mode: int,
               made: list[tuple[Path, os.stat_result]]) -> Path:
    """The directory ``parts`` in the layer, its missing ancestors made as the image has them
    (``mode`` for the last one when the image lacks it, 0755 for the others)."""
    for n in range(1, len(parts) + 1):
        target = layer.joinpath(*parts[:n])
        if target.is_dir():
            continue
        try:
            info = os.lstat(image.joinpath(*parts[:n]))
        except (FileNotFoundError, NotADirectoryError):
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            target.mkdir(mode=0o700)
            os.chown(target, info.st_uid, info.st_gid)
            os.chmod(target, stat.S_IMODE(info.st_mode))
            made.append((target, info))
        else:
            target.mkdir(mode=0o700)
            os.chown(target, 0, 0)
            os.chmod(target, mode if n == len(parts) else DIR_MODE)
    return layer.joinpath(*parts)


def build(image: Path, layer: Path, hostname: str, resolvers: tuple[str, ...]) -> None:
    """Make the runtime layer afresh at ``layer`` for a VM on the image whose read-only view
    is mounted at ``image``."""
    if os.path.lexists(layer):
        shutil.rmtree(layer)
    layer.mkdir(mode=DIR_MODE)
    os.chmod(layer, DIR_MODE)
    os.chown(layer, 0, 0)
    made: list[tuple[Path, os.stat_result]] = []
    for point in MOUNT_POINTS:
        _make_dirs(image, layer, resolve(image, point), TMP_MODE if point == "/tmp" else
                   DIR_MODE, made)
    for directory, name, content, mode in files(hostname, resolvers):
        where = _make_dirs(image, layer, resolve(image, directory), DIR_MODE, made)
        fd = os.open(where / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, content.encode())
            os.fchown(fd, 0, 0)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    for target, info in reversed(made):  # after their content: making it changed the mtimes
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
