"""A container's storage: its root is an overlayfs view of its image (lower layers, read-only)
under an upper layer of its own, in the VM's directory:

``disk.img``  a sparse ext4 file system of ``quota`` GiB (when ``quota`` > 0), loop-mounted at
``disk/``, which holds ``upper/`` and ``work/``: the VM's writes count against its quota
(ENOSPC past it) and nothing else's. Without a quota, ``disk/`` is a plain directory. Where no
loop device or mkfs.ext4 is at hand the quota is not enforced, and install says so.
``root/``     the overlay mount: the VM's ``/``; from a start on, its top lower layer is the
              VM's runtime layer ``run/layer`` (rtlayer.py), so that what the runtime puts in
              the VM is not in ``upper/`` (the VM's changes, what ``imgadm create`` ships).

imgadm's store and view are imported where they are used: a stop and zlogin do without them
(and their tar and compressor modules).

The mounts live in the host's mount namespace from install to destroy (a container's own
namespace is a copy made at start); :func:`mount` puts them back after a reboot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from liveforge.img.config import DEFAULT_POOL
from liveforge.util.errors import LiveforgeError
from liveforge.vm import linux

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any

GIB = 1 << 30


class StorageError(LiveforgeError):
    """A container's storage cannot be made, mounted or removed."""


def image_lowers(vm: dict[str, Any]) -> list[Path]:
    """The image's layer directories, top first (overlayfs ``lowerdir=`` order)."""
    from liveforge.img.store import ImageStore

    return ImageStore.from_env().lower_dirs(vm["image_uuid"], _pool(vm))


def _pool(vm: dict[str, Any]) -> str:
    return str(vm.get("zpool") or DEFAULT_POOL)


def mounted(path: Path) -> bool:
    target = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as handle:
        return any(line.split()[4] == target for line in handle)


def _make_disk(vmdir: Path, quota: int) -> str | None:
    """The quota file system (sparse ext4 on a loop device) at ``disk/``; a warning instead
    when it cannot be made."""
    image = vmdir / "disk.img"
    if shutil.which("mkfs.ext4") is None:
        return f"quota {quota} GiB is not enforced: mkfs.ext4 is missing (apt-get install " \
               f"e2fsprogs)"
    with open(image, "wb") as handle:
        handle.truncate(quota * GIB)
    mkfs = subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0", "-E",
                           "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0",
                           os.fspath(image)], capture_output=True, text=True)
    if mkfs.returncode == 0:
        mnt = subprocess.run(["mount", "-o", "loop,nodev,nosuid", os.fspath(image),
                              os.fspath(vmdir / "disk")], capture_output=True, text=True)
        if mnt.returncode == 0:
            return None
        why = mnt.stderr.strip()
    else:
        why = mkfs.stderr.strip()
    image.unlink()
    return f"quota {quota} GiB is not enforced: no loop-mounted file system ({why})"


def install(vm: dict[str, Any], vmdir: Path) -> list[str]:
    """Make the VM's storage and mount its root; the warnings. Leaves nothing when it fails.
    (vmadm holds the image from create to delete.)"""
    from liveforge.img.view import mount_view

    lowers = image_lowers(vm)
    warnings: list[str] = []
    if (vmdir / "disk").exists() or (vmdir / "root").exists():
        raise StorageError(f"{vmdir}: the VM's storage exists already")
    try:
        (vmdir / "disk").mkdir(parents=True)
        quota = int(vm.get("quota") or 0)
        if quota > 0:
            warning = _make_disk(vmdir, quota)
            if warning:
                warnings.append(warning)
        for name in ("upper", "work"):
            (vmdir / "disk" / name).mkdir(mode=0o755)
        (vmdir / "root").mkdir()
        mount_view(lowers, vmdir / "disk" / "upper", vmdir / "disk" / "work", vmdir / "root")
    except BaseException:
        remove(vmdir)
        raise
    return warnings


def mount(vm: dict[str, Any], vmdir: Path) -> None:
    """Mount what :func:`install` made, where it is not mounted (after a host's reboot)."""
    disk, root = vmdir / "disk", vmdir / "root"
    if (vmdir / "disk.resize").exists():
        unmount(vmdir)
        _offline_resize(vmdir)
    if (vmdir / "disk.img").exists() and not mounted(disk):
        proc = subprocess.run(["mount", "-o", "loop,nodev,nosuid", os.fspath(vmdir / "disk.img"),
                               os.fspath(disk)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise StorageError(f"{vmdir / 'disk.img'}: cannot mount: {proc.stderr.strip()}")
    if not mounted(root):
        from liveforge.img.view import mount_view

        if not (disk / "upper").is_dir():
            raise StorageError(f"{vmdir}: the VM's storage is missing (not installed?)")
        mount_view(image_lowers(vm), disk / "upper", disk / "work", root)


def mount_runtime(vm: dict[str, Any], vmdir: Path, hostname: str,
                  resolvers: tuple[str, ...]) -> None:
    """Mount the VM's root view afresh with a new runtime layer on top of its image's layers
    (the VM is stopped: nothing uses the view)."""
    from liveforge.img.view import mount_view, unmount_view
    from liveforge.vm.brands import rtlayer

    run, root, disk = vmdir / "run", vmdir / "root", vmdir / "disk"
    lowers = image_lowers(vm)
    _unmount_root(root)
    probe = run / "image"
    probe.mkdir(exist_ok=True)
    while mounted(probe):  # a start killed mid-way left it
        linux.umount(probe, linux.MNT_DETACH)
    try:
        mount_view(lowers, None, None, probe)
        try:
            rtlayer.build(probe, run / "layer", hostname, resolvers)
        finally:
            unmount_view(probe)
    except BaseException:  # the view as install left it: a failed start changes nothing
        mount_view(lowers, disk / "upper", disk / "work", root)
        raise
    mount_view([run / "layer", *lowers], disk / "upper", disk / "work", root)


def _unmount_root(root: Path) -> None:
    from liveforge.img.view import unmount_view

    while mounted(root):
        try:
            unmount_view(root)
        except LiveforgeError:  # busy: detached, gone once its last user is
            linux.umount(root, linux.MNT_DETACH)


def unmount(vmdir: Path) -> None:
    root, disk, probe = vmdir / "root", vmdir / "disk", vmdir / "run" / "image"
    _unmount_root(root)
    while probe.is_dir() and mounted(probe):  # a start killed while it made the runtime layer
        linux.umount(probe, linux.MNT_DETACH)
    while mounted(disk):  # a loop mount's device goes with it (autoclear)
        try:
            linux.umount(disk)
        except OSError:
            linux.umount(disk, linux.MNT_DETACH)


def remove(vmdir: Path) -> None:
    """Unmount and remove the VM's storage."""
    unmount(vmdir)
    for name in ("root", "disk"):
        shutil.rmtree(vmdir / name, ignore_errors=True)
        if (vmdir / name).exists():
            raise StorageError(f"{vmdir / name}: cannot be removed")
    (vmdir / "disk.img").unlink(missing_ok=True)
    (vmdir / "disk.resize").unlink(missing_ok=True)


def resize(vmdir: Path, quota: int) -> list[str]:
    """Grow the quota file system of a VM: online where the kernel lets resize2fs do it (not
    everywhere: it may answer EPERM), else at the VM's next start (``disk.resize`` marks it);
    the warnings for what cannot be done now."""
    image = vmdir / "disk.img"
    if not image.exists():
        return [f"quota {quota} GiB is not enforced: the VM has no quota file system"]
    if quota * GIB < image.stat().st_size:
        return [f"quota {quota} GiB: a quota cannot shrink (it stays "
                f"{image.stat().st_size // GIB} GiB)"]
    with open(image, "r+b") as handle:
        handle.truncate(quota * GIB)
    device = _source(vmdir / "disk")
    for argv in (["losetup", "-c", device], ["resize2fs", device]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            (vmdir / "disk.resize").touch()
            return [f"quota {quota} GiB takes effect at the VM's next start (online resize: "
                    f"{proc.stderr.strip().splitlines()[-1]})"]
    return []


def _offline_resize(vmdir: Path) -> None:
    """Grow an unmounted quota file system to its file's size."""
    image = os.fspath(vmdir / "disk.img")
    for argv in (["e2fsck", "-f", "-p", image], ["resize2fs", image]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode not in (0, 1):  # e2fsck: 1 = errors corrected
            raise StorageError(f"{argv[0]} {image}: {proc.stderr.strip() or proc.returncode}")
    (vmdir / "disk.resize").unlink()


def _source(path: Path) -> str:
    target = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == target:
                return os.fsdecode(fields[fields.index(b"-") + 2])
    raise StorageError(f"{path}: not mounted")
