"""Platform outputs (DESIGN.md §6): the platform directory, its tarball and the latest links.

::

    <output>/<dirname>/x86_64/vmlinuz                  the image's kernel, copied out
    <output>/<dirname>/x86_64/boot_archive             cpio newc, gzip (or zstd)
    <output>/<dirname>/x86_64/boot_archive.hash        sha1 of boot_archive
    <output>/<dirname>/x86_64/boot_archive.manifest    md5 of each shipped file (md5sum format)
    <output>/<dirname>/x86_64/boot_archive.gitstatus   JSON list of component repos
    <output>/<dirname>/etc/version/platform            the buildstamp
    <output>/<dirname>.tgz                             the platform directory: <dirname>/...
    <output>/<dirname>-root.tgz                        the image root (on request)
    <output>/platform-latest -> <dirname>,  <output>/platform-latest.tgz -> <dirname>.tgz

Crash safety: the directory is built under a hidden temporary name and the tarball written to
one; both are fsynced and then renamed into place (a directory of the same name is swapped
atomically with ``renameat2(RENAME_EXCHANGE)`` where the kernel has it); the links are made under
a temporary name and renamed over the old ones. A run killed at any point leaves the previous
platform and links as they were and nothing partial under a final name; leftovers of killed runs
are hidden and removed by the next run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .archive import tree_image, write_archives
from .assemble import Image
from .errors import BuildError
from .workspace import stamp_epoch

LATEST = "platform-latest"
TMP_MARK = ".lf-tmp-"
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def write_platform(output_dir: Path, dirname: str, image: Image, *, stamp: str, kernel_path: str,
                   gitstatus: list[dict[str, Any]], compression: str,
                   arch: str = "x86_64", boot_archive_skip: frozenset[str] = frozenset(),
                   root_tarball: bool = False) -> Path:
    """Assemble the platform ``output_dir/dirname`` from ``image``; return its path.

    ``boot_archive_skip``: image paths kept out of the boot archive (but in the root tarball):
    the kernel boots beside the boot archive, so a copy inside it would only slow the boot.
    ``root_tarball``: also write the image root as ``<dirname>-root.tgz``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output_dir)
    kernel = next((e for e in image.entries if e.path == kernel_path), None)
    if kernel is None or kernel.kind not in ("f", "h"):
        raise BuildError(f"the kernel {kernel_path!r} ([platform] kernel) is not a file the "
                         f"manifest ships")
    epoch = stamp_epoch(stamp)
    tag = f"{TMP_MARK}{os.getpid()}"
    staging = output_dir / f".{dirname}{tag}"
    tarball_tmp = output_dir / f".{dirname}.tgz{tag}"
    root_tmp = output_dir / f".{dirname}-root.tgz{tag}" if root_tarball else None
    archdir = staging / arch
    archdir.mkdir(parents=True)
    boot_archive = archdir / "boot_archive"

    digests = write_archives(image, epoch, tar=root_tmp, cpio=boot_archive,
                             tar_compression="gzip", cpio_compression=compression, digests=True,
                             cpio_skip=boot_archive_skip)
    _write(archdir / "boot_archive.hash", _sha1(boot_archive) + "\n")
    _write(archdir / "boot_archive.manifest",
           "".join(f"{digests[path]}  {path}\n" for path in sorted(digests)))
    _write(archdir / "boot_archive.gitstatus", json.dumps(gitstatus, indent=2) + "\n")
    _copy_kernel(image, kernel_path, archdir / "vmlinuz")
    (staging / "etc" / "version").mkdir(parents=True)
    _write(staging / "etc" / "version" / "platform", stamp + "\n")
    for directory in (archdir, staging / "etc" / "version", staging / "etc", staging):
        _fsync_dir(directory)
    write_archives(tree_image(staging, dirname), epoch, tar=tarball_tmp, tar_compression="gzip")

    final = output_dir / dirname
    _install_dir(staging, final)
    os.replace(tarball_tmp, output_dir / f"{dirname}.tgz")
    if root_tmp is not None:
        os.replace(root_tmp, output_dir / f"{dirname}-root.tgz")
    else:
        (output_dir / f"{dirname}-root.tgz").unlink(missing_ok=True)
    _fsync_dir(output_dir)
    _link(output_dir, LATEST, dirname)
    _link(output_dir, f"{LATEST}.tgz", f"{dirname}.tgz")
    _fsync_dir(output_dir)
    return final


# -- steps ------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        while data := handle.read(1 << 20):
            digest.update(data)
    return digest.hexdigest()


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
    """Point ``output_dir/name`` at ``target`` atomically."""
    tmp = output_dir / f".{name}{TMP_MARK}{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, output_dir / name)


def _remove_leftovers(output_dir: Path) -> None:
    """Remove the hidden temporaries of killed runs (their process is gone)."""
    for child in output_dir.iterdir():
        name = child.name
        if not name.startswith(".") or TMP_MARK not in name:
            continue
        pid = name.rsplit(TMP_MARK, 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- gitstatus --------------------------------------------------------------------------------

def _git(path: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def gitstatus(paths: list[Path]) -> list[dict[str, str]]:
    """One record per component tree: repo, branch, rev, commit_date, url. A tree that is not
    a git checkout gets ``{"repo": ..., "warning": ...}`` instead."""
    records: list[dict[str, str]] = []
    for path in paths:
        repo = path.name
        inside = _git(path, "rev-parse", "--is-inside-work-tree") == "true"
        rev = _git(path, "rev-parse", "HEAD") if inside else ""
        if not rev:
            records.append({"repo": repo, "warning": f"{path} is not a git checkout"})
            continue
        records.append({
            "repo": repo,
            "branch": _git(path, "rev-parse", "--abbrev-ref", "HEAD"),
            "rev": rev,
            "commit_date": _git(path, "log", "-1", "--format=%cI", "HEAD"),
            "url": _git(path, "config", "--get", "remote.origin.url"),
        })
    return records
