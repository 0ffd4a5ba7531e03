"""An HVM guest's disks: qcow2 files in ``<vmdir>/disks/``, ``disk<N>.qcow2`` for ``disks[N]``.

A disk with an ``image_uuid`` is a qcow2 overlay whose backing file is the installed zvol image
(imgadm's ``<pool>/<uuid>.img``, raw or qcow2): the image stays read-only and shared, the VM
writes only its overlay. ``size`` (MiB) grows the overlay beyond the image; smaller is an error.
A disk without an image is a blank qcow2 of ``size`` MiB.

An image disk file must be a plain raw or qcow2 file with no backing or data file of its own: a
qcow2 naming ``/dev/sda`` or ``/etc/shadow`` as its backing file would otherwise be opened by
QEMU. A disk's ``path`` is this module's to choose; a payload naming another is refused.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveforge.img.config import DEFAULT_POOL
from liveforge.img.errors import ImgadmError
from liveforge.img.store import ImageStore
from liveforge.util.errors import LiveforgeError
from liveforge.util.scratch import make_temp_dir, remove_temp

MIB = 1024 * 1024
DISKS_DIR = "disks"


class QemuError(LiveforgeError):
    """An HVM VM cannot be installed, started or driven; the message names the VM's field."""


@dataclass(frozen=True, slots=True)
class DiskModel:
    """How QEMU attaches a disk of one ``model``: the device of a hard disk and of a CD-ROM
    (None: cannot be one), the controller it needs (created once) and how a unit is addressed
    on it (``{ctl}``, ``{n}``: the unit's index on that controller)."""

    hd: str
    cd: str | None
    controller: str | None
    bus: str | None
    units: int


# model -> QEMU devices (the i440fx machine: two IDE buses of two units each)
MODELS = {
    "virtio": DiskModel("virtio-blk-pci", None, None, None, 64),
    "ide": DiskModel("ide-hd", "ide-cd", None, "ide.{half},unit={odd}", 4),
    "ahci": DiskModel("ide-hd", "ide-cd", "ahci,id=ahci0", "ahci0.{n}", 6),
    "scsi": DiskModel("scsi-hd", "scsi-cd", "virtio-scsi-pci,id=scsi0",
                      "scsi0.0,channel=0,scsi-id={n},lun=0", 64),
    "nvme": DiskModel("nvme", None, None, None, 32),
}
DEFAULT_MODEL = "virtio"


@dataclass(frozen=True, slots=True)
class Disk:
    """``disks[index]`` as it is made and attached."""

    index: int
    file: Path
    model: str
    cdrom: bool
    boot: bool
    backing: Path | None  # the image's disk file
    backing_format: str | None
    size_mib: int | None  # None: the image's size
    serial: str
    discard: bool


def disk_file(vmdir: Path, index: int) -> Path:
    return vmdir / DISKS_DIR / f"disk{index}.qcow2"


def model_of(vm: dict[str, Any], disk: dict[str, Any], index: int) -> str:
    model = disk.get("model") or vm.get("disk_driver") or DEFAULT_MODEL
    if model not in MODELS:
        raise QemuError(f"disks.{index}.model: {model!r} is not one of "
                        f"{', '.join(sorted(MODELS))}")
    return str(model)


def plan(vm: dict[str, Any], vmdir: Path, images: ImageLookup | None) -> list[Disk]:
    """The VM's disks, checked; nothing is made yet. Without ``images`` (an installed VM's
    disks, whose files exist) the images are not looked up again."""
    disks = vm.get("disks") or []
    if not isinstance(disks, list):
        raise QemuError("disks: not a list of disk objects")
    planned = [plan_disk(vm, vmdir, i, d, images) for i, d in enumerate(disks)]
    for model in MODELS:
        used = sum(1 for d in planned if d.model == model)
        if used > MODELS[model].units:
            raise QemuError(f"disks: {used} disks of model {model} (at most "
                            f"{MODELS[model].units})")
    return planned


def plan_disk(vm: dict[str, Any], vmdir: Path, index: int, disk: Any,
              images: ImageLookup | None) -> Disk:
    where = f"disks.{index}"
    if not isinstance(disk, dict):
        raise QemuError(f"{where}: not a disk object")
    file = disk_file(vmdir, index)
    if disk.get("path") not in (None, str(file)):
        raise QemuError(f"{where}.path: {disk['path']!r} is not this VM's disk {str(file)!r} "
                        f"(a VM's disks live in its own directory)")
    if disk.get("nocreate"):
        raise QemuError(f"{where}.nocreate: disks that already exist are not supported")
    model = model_of(vm, disk, index)
    cdrom = disk.get("media") == "cdrom"
    if cdrom and MODELS[model].cd is None:
        raise QemuError(f"{where}.model: a {model} disk cannot be a cdrom (ide, ahci or scsi)")
    size = disk.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise QemuError(f"{where}.size: {size!r} is not a positive number of MiB")
    backing: Path | None = None
    backing_format: str | None = None
    uuid = disk.get("image_uuid")
    if uuid is None:
        if size is None:
            raise QemuError(f"{where}.size: a disk without image_uuid needs a size (MiB)")
    else:
        pool = str(disk.get("zpool") or vm.get("zpool") or DEFAULT_POOL)
        if images is not None:
            backing = images(str(uuid), pool, where)
            backing_format, image_size = image_file_info(backing, where)
            if size is not None and size * MIB < image_size:
                raise QemuError(f"{where}.size: {size} MiB is smaller than image {uuid} "
                                f"({image_size // MIB} MiB)")
    serial = str(disk.get("uuid") or f"disk{index}").replace("-", "")[:20]
    return Disk(index=index, file=file, model=model, cdrom=cdrom, boot=bool(disk.get("boot")),
                backing=backing, backing_format=backing_format, size_mib=size,
                serial=serial, discard=not disk.get("notrim"))


# -- images ----------------------------------------------------------------------------------

ImageLookup = Callable[[str, str, str], Path]  # (uuid, pool, field) -> the image's disk file


def installed_image(uuid: str, pool: str, where: str) -> Path:
    """The disk file of the installed zvol image ``uuid`` in ``pool``."""
    try:
        found = ImageStore.from_env().get(uuid, pool)
    except ImgadmError as exc:
        raise QemuError(f"{where}.image_uuid: {exc.message}") from None
    if found is None:
        raise QemuError(f"{where}.image_uuid: image {uuid} is not installed in pool {pool}")
    if found.manifest.type != "zvol":
        raise QemuError(f"{where}.image_uuid: image {uuid} is a {found.manifest.type} image, "
                        f"not a zvol (a disk image)")
    return found.path


def image_file_info(path: Path, where: str) -> tuple[str, int]:
    """The format (raw or qcow2) and virtual size in bytes of an image's disk file, which must be
    a regular file standing on its own."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise QemuError(f"{where}.image_uuid: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise QemuError(f"{where}.image_uuid: {path} is not a regular file")
    info = qemu_img_info(path, where)
    fmt = info.get("format")
    if fmt not in ("raw", "qcow2"):
        raise QemuError(f"{where}.image_uuid: {path} is a {fmt} disk, not raw or qcow2")
    if "backing-filename" in info or "full-backing-filename" in info:
        raise QemuError(f"{where}.image_uuid: {path} names a backing file of its own "
                        f"({info.get('backing-filename')!r}): refused")
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise QemuError(f"{where}.image_uuid: {path} names an external data file "
                        f"({specific['data-file']!r}): refused")
    return str(fmt), int(info["virtual-size"])


def qemu_img_info(path: Path, where: str) -> dict[str, Any]:
    proc = qemu_img(["info", "-U", "--output=json", str(path)], where)
    try:
        info = json.loads(proc)
    except ValueError:
        raise QemuError(f"{where}: qemu-img info {path}: not JSON") from None
    if not isinstance(info, dict):
        raise QemuError(f"{where}: qemu-img info {path}: not a JSON object")
    return info


def qemu_img(args: list[str], where: str) -> str:
    try:
        proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    except FileNotFoundError:
        from liveforge.util.errors import MissingToolError

        raise MissingToolError("qemu-img is missing: apt-get install qemu-utils") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or [f"status {proc.returncode}"]
        raise QemuError(f"{where}: qemu-img {args[0]}: {detail[0]}")
    return proc.stdout


# -- making them -----------------------------------------------------------------------------

def install(vm: dict[str, Any], vmdir: Path, images: ImageLookup = installed_image) -> list[Disk]:
    """Make every disk of ``vm`` in ``<vmdir>/disks/`` (built in a temporary folder that is
    renamed into place: a failure leaves nothing) and fill in each ``disks.*.path``."""
    disks = plan(vm, vmdir, images)
    target = vmdir / DISKS_DIR
    if os.path.lexists(target):
        raise QemuError(f"{target}: the VM's disks exist already")
    tmp = make_temp_dir(vmdir, DISKS_DIR)
    try:
        for disk in disks:
            create(disk, tmp / disk.file.name)
        os.rename(tmp, target)
    except BaseException:
        remove_temp(tmp)
        raise
    for disk, entry in zip(disks, vm.get("disks") or [], strict=True):
        entry["path"] = str(disk.file)
    return disks


def create(disk: Disk, file: Path) -> None:
    where = f"disks.{disk.index}"
    args = ["create", "-q", "-f", "qcow2"]
    if disk.backing is not None:
        args += ["-F", str(disk.backing_format), "-b", str(disk.backing.resolve())]
    args.append(str(file))
    if disk.size_mib is not None:
        args.append(f"{disk.size_mib}M")
    qemu_img(args, where)


def grow(disk: Disk, size_mib: int) -> None:
    """Grow a stopped VM's disk file to ``size_mib``."""
    info = qemu_img_info(disk.file, f"disks.{disk.index}")
    if size_mib * MIB < int(info["virtual-size"]):
        raise QemuError(f"disks.{disk.index}.size: {size_mib} MiB would shrink the disk "
                        f"({int(info['virtual-size']) // MIB} MiB)")
    qemu_img(["resize", "-q", "-f", "qcow2", str(disk.file), f"{size_mib}M"],
             f"disks.{disk.index}")
