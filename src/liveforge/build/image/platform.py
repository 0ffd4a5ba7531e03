"""Platform outputs (README, "Outputs"): the platform directory, its tarball and the latest links.

What a user sees, ``<D>`` being the platform's name (``platform-<STAMP>``)::

    <output>/<D>/...                             the platform directory (image/layout.py):
                                                 <arch>/vmlinuz, <arch>/boot_archive, ...
    <output>/<D>.tgz                             the platform directory: <D>/...
    <output>/<D>-root.tgz                        the image root (on request)
    <output>/platform-latest -> <D>,  <output>/platform-latest.tgz -> <D>.tgz

Each build of ``<D>`` is a *generation*: one hidden directory holding the platform directory and
its tarballs. The names above lead to the current generation through one link::

    <output>/.<D>@<id>/<D>/...  <D>.tgz  <D>-root.tgz    one build; never changed once named
    <output>/.<D> -> .<D>@<id>                          the current generation
    <output>/<D> -> .<D>/<D>,  <D>.tgz -> .<D>/<D>.tgz  the same text for every generation

Crash safety. A build writes its generation under a hidden temporary name, fsyncs it, renames it
to ``.<D>@<id>`` and then renames a new link over ``.<D>``. That rename is atomic, and it is the
only step that changes what ``<D>`` and ``<D>.tgz`` lead to, since both lead through ``.<D>``:
however a build ends, a reader finds the old directory with the old tarball or the new directory
with the new tarball, never one of each (a stale root tarball is unlinked before the switch). The
steps after it only add names: the fixed links of a new ``<D>`` (after the switch, so that they
never lead nowhere), then ``platform-latest`` and ``platform-latest.tgz``, each renamed over the
old one (a build killed between these two leaves ``platform-latest`` at the new platform and
``platform-latest.tgz`` at the previous tarball, both complete). What a killed or failed run
leaves is hidden, and the next run removes it: temporary names (``TMP_MARK``) and generations
that no published name leads to. A failed run (a full disk) removes its own at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import posixpath
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import Any

from liveforge.build.buildstamp import stamp_epoch
from liveforge.build.image.archive import tree_image, write_archives
from liveforge.build.image.assemble import Image
from liveforge.build.image.layout import VERSION, PlatformLayout
from liveforge.util.errors import BuildError, InputError, LiveforgeError
from liveforge.util.fileio import swap_link
from liveforge.util.git import git_value
from liveforge.util.hashing import file_digest
from liveforge.util.scratch import TMP_MARK, tmp_name
from liveforge.util.scratch import remove_leftovers as _remove_leftovers

LATEST = "platform-latest"
GENERATION_MARK = "@"
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def write_platform(output_dir: Path, dirname: str, image: Image, *, stamp: str, kernel_path: str,
                   gitstatus: list[dict[str, Any]], compression: str,
                   arch: str, boot_archive_skip: frozenset[str] = frozenset(),
                   root_tarball: bool = False, extras: dict[str, str] | None = None) -> Path:
    """Assemble the platform ``output_dir/dirname`` from ``image``; return its path.

    ``boot_archive_skip``: image paths kept out of the boot archive (but in the root tarball):
    the kernel boots beside the boot archive, so a copy inside it would only slow the boot.
    ``root_tarball``: also write the image root as ``<dirname>-root.tgz``. ``extras``: more
    files of the platform directory, its path -> text (the SBOM)."""
    kernel = next((e for e in image.entries if e.path == kernel_path), None)
    if kernel is None or kernel.kind not in ("f", "h"):
        raise BuildError(f"the kernel {kernel_path!r} ([platform] kernel) is not a file the "
                         f"manifest ships")
    epoch = stamp_epoch(stamp)
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_link_places(output_dir, dirname, stamp)
    _remove_unused(output_dir)
    staging = output_dir / f".{dirname}{TMP_MARK}{os.getpid()}"
    published = False
    try:
        platform = staging / dirname
        _write_platform_dir(platform, image, stamp=stamp, epoch=epoch, kernel_path=kernel_path,
                            gitstatus=gitstatus, compression=compression, arch=arch,
                            boot_archive_skip=boot_archive_skip,
                            root_tarball=staging / f"{dirname}-root.tgz" if root_tarball
                            else None)
        for name, text in sorted((extras or {}).items()):
            _write(platform / name, text)
        write_archives(tree_image(platform, dirname), epoch, tar=staging / f"{dirname}.tgz",
                       tar_compression="gzip")
        _fsync_dir(staging)
        _step("written")
        generation = output_dir / f".{dirname}{GENERATION_MARK}{time.time_ns():x}"
        os.rename(staging, generation)
        _fsync_dir(output_dir)
        _step("named")
        if not root_tarball and os.path.lexists(output_dir / f"{dirname}-root.tgz"):
            os.unlink(output_dir / f"{dirname}-root.tgz")
        _link(output_dir, f".{dirname}", generation.name)          # the switch
        published = True
        _step("switched")
        names = [dirname, f"{dirname}.tgz"] + ([f"{dirname}-root.tgz"] if root_tarball else [])
        for name in names:
            _link(output_dir, name, f".{dirname}/{name}")
        _fsync_dir(output_dir)
        _step("linked")
        _link(output_dir, LATEST, dirname)
        _step("latest")
        _link(output_dir, f"{LATEST}.tgz", f"{dirname}.tgz")
        _fsync_dir(output_dir)
        _step("latest.tgz")
    except BaseException as exc:
        try:
            _remove_unused(output_dir)
        except OSError:
            pass                        # the next run tries again; the first error is the news
        if isinstance(exc, OSError):
            raise _output_error(exc, output_dir, dirname, published) from None
        raise
    _remove_unused(output_dir)          # the previous generation of a rebuilt platform
    _step("done")
    return output_dir / dirname


def kernel_file(image: Image, path: str) -> str:
    """The image path of the kernel file ``path`` ([platform] kernel) leads to, following
    symlinks within the image."""
    entries = image.by_path()
    seen: set[str] = set()
    while path in entries and entries[path].kind == "s" and path not in seen:
        seen.add(path)
        target = entries[path].target
        path = posixpath.normpath(target.lstrip("/") if target.startswith("/")
                                  else posixpath.join(posixpath.dirname(path), target))
    if path not in entries:
        raise InputError(f"the kernel {path!r} ([platform] kernel) is not in the image")
    return path


def latest_platform(output_dir: Path) -> tuple[Path, str]:
    """The platform ``output_dir/platform-latest`` leads to, and its buildstamp."""
    latest = output_dir / LATEST
    version = latest / VERSION
    if not version.is_file():
        raise LiveforgeError(f"no platform built yet in {output_dir}: run 'liveforge live' "
                             "(or 'make live') first")
    return latest.resolve(), version.read_text().strip()


def _step(name: str) -> None:
    """Called at each step boundary: a test makes a run die there."""


def _write_platform_dir(platform: Path, image: Image, *, stamp: str, epoch: int,
                        kernel_path: str, gitstatus: list[dict[str, Any]], compression: str,
                        arch: str, boot_archive_skip: frozenset[str],
                        root_tarball: Path | None) -> None:
    """The platform directory (and the root tarball, in the same pass as the boot archive)."""
    layout = PlatformLayout(arch)
    archdir = platform / arch
    archdir.mkdir(parents=True)
    boot_archive = platform / layout.boot_archive
    digests = write_archives(image, epoch, tar=root_tarball, cpio=boot_archive,
                             tar_compression="gzip", cpio_compression=compression, digests=True,
                             cpio_skip=boot_archive_skip)
    _write(platform / layout.hash, file_digest(boot_archive, "sha1") + "\n")
    _write(platform / layout.manifest,
           "".join(f"{digests[path]}  {path}\n" for path in sorted(digests)))
    _write(platform / layout.gitstatus, json.dumps(gitstatus, indent=2) + "\n")
    _copy_kernel(image, kernel_path, platform / layout.kernel)
    version = platform / layout.version
    version.parent.mkdir(parents=True)
    _write(version, stamp + "\n")
    # each directory made, innermost first: <arch>, etc/version, etc, the platform
    for directory in (archdir, *(platform / d for d in PurePosixPath(layout.version).parents)):
        _fsync_dir(directory)


def _output_error(exc: OSError, output_dir: Path, dirname: str, published: bool) -> BuildError:
    """A failed write or rename as one line naming the directory."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on" if exc.errno == errno.ENOSPC else "disk quota exceeded on"
        cause = f"{what} {output_dir}: writing {dirname} needs more room"
    else:
        where = f" ({exc.filename})" if exc.filename else ""
        cause = f"cannot write {dirname} in {output_dir}: {exc.strerror}{where}"
    if published:
        return BuildError(f"{cause}; {dirname} is complete, but the latest links may still "
                          "lead to the previous platform")
    return BuildError(f"{cause}; the previous outputs are as they were")


# -- steps ------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _copy_kernel(image: Image, kernel_path: str, dest: Path) -> None:
    entries = image.by_path()
    entry = entries[kernel_path]
    if entry.kind == "h":
        entry = entries[entry.target]
    assert entry.source is not None
    with open(entry.source, "rb") as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    os.chmod(dest, 0o644)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False when the system cannot."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _install_dir(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``, replacing an existing directory of that name."""
    if not os.path.lexists(final):
        os.rename(staging, final)
        return
    if _exchange(staging, final):
        shutil.rmtree(staging)          # now the old platform, under the hidden name
        return
    aside = final.with_name(f".{final.name}.old{TMP_MARK}{os.getpid()}")
    os.rename(final, aside)
    os.rename(staging, final)
    shutil.rmtree(aside)


def _link(output_dir: Path, name: str, target: str) -> None:
    """Point ``output_dir/name`` at ``target`` atomically. A platform directory an older
    liveforge wrote there is replaced (see _check_link_places)."""
    path = output_dir / name
    if path.is_dir() and not path.is_symlink():
        tmp = output_dir / tmp_name(name)
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        _install_dir(tmp, path)
    else:
        swap_link(path, target)


def _check_link_places(output_dir: Path, dirname: str, stamp: str) -> None:
    """Refuse, before anything is written, a directory where a link of ours goes: the user's,
    not ours to remove. The one exception is the platform directory ``dirname`` itself as an
    older liveforge wrote it (a real directory, with this stamp in etc/version/platform)."""
    for name in (dirname, f"{dirname}.tgz", f"{dirname}-root.tgz", f".{dirname}", LATEST,
                 f"{LATEST}.tgz"):
        path = output_dir / name
        if not path.is_dir() or path.is_symlink():
            continue
        version = path / VERSION
        if name == dirname and version.is_file() and version.read_text().strip() == stamp:
            continue
        raise BuildError(f"{path} is a directory, not the link liveforge makes there: move it "
                         "away or remove it, then run 'liveforge live' again")


def _remove_unused(output_dir: Path) -> None:
    """Remove what no published name leads to: the temporaries of killed runs (and of this run,
    when it failed), and generations (``.<D>@<id>``) that are not current or whose platform is
    not published (with their ``.<D>`` link). Those are first renamed to temporary names, so that
    a removal cut short is finished by the next run like any leftover."""
    tag = f"{TMP_MARK}{os.getpid()}"
    for child in list(output_dir.iterdir()):
        name = child.name
        if not name.startswith(".") or TMP_MARK in name:
            continue
        dirname, mark, _ = name[1:].rpartition(GENERATION_MARK)
        if mark and child.is_dir() and not child.is_symlink():
            if _current_generation(output_dir, dirname) == name:
                continue
        elif child.is_symlink() and os.readlink(child).startswith(f"{name}{GENERATION_MARK}"):
            if _current_generation(output_dir, name[1:]) is not None:
                continue
        else:
            continue
        os.rename(child, output_dir / f"{name}{tag}")
    _remove_leftovers(output_dir)


def _current_generation(output_dir: Path, dirname: str) -> str | None:
    """The name of ``dirname``'s current generation: what ``.<dirname>`` leads to, while
    ``dirname`` or its tarball is published; else None."""
    switch = output_dir / f".{dirname}"
    if not switch.is_symlink():
        return None
    if not (os.path.lexists(output_dir / dirname)
            or os.path.lexists(output_dir / f"{dirname}.tgz")):
        return None
    return os.readlink(switch)


# -- gitstatus --------------------------------------------------------------------------------

def gitstatus(paths: list[Path], root: Path | None = None) -> list[dict[str, str]]:
    """One record per component tree: repo, branch, rev, commit_date, url. A tree that is not
    a git checkout gets ``{"repo": ..., "warning": ...}`` instead, naming the tree by its path
    in the workspace ``root`` (else by its name): where the workspace is never shows, so the
    same build elsewhere gives the same bytes."""
    records: list[dict[str, str]] = []
    for path in paths:
        repo = path.name
        inside = git_value(path, "rev-parse", "--is-inside-work-tree") == "true"
        rev = git_value(path, "rev-parse", "HEAD") if inside else ""
        if not rev:
            shown = path.relative_to(root).as_posix() if root is not None and \
                path.is_relative_to(root) else repo
            records.append({"repo": repo, "warning": f"{shown} is not a git checkout"})
            continue
        records.append({
            "repo": repo,
            "branch": git_value(path, "rev-parse", "--abbrev-ref", "HEAD"),
            "rev": rev,
            "commit_date": git_value(path, "log", "-1", "--format=%cI", "HEAD"),
            "url": git_value(path, "config", "--get", "remote.origin.url"),
        })
    return records
