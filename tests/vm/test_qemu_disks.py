"""HVM disks: qcow2 overlays on installed zvol images, blank disks, and what is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveforge.img.manifest import validate
from liveforge.img.store import ImageStore
from liveforge.vm.brands.qemu import QemuRuntime
from liveforge.vm.brands.qemu_disks import QemuError
from tests.support.hvm import MIB, install_zvol, vm_object, zvol_manifest


@pytest.fixture
def roots(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """(the image store root, a VM directory), both short paths (unix sockets live there)."""
    base = Path(tempfile.mkdtemp(prefix="lfvm.", dir="/tmp"))
    monkeypatch.setenv("IMGADM_ROOT", str(base / "img"))
    (base / "vm").mkdir()
    try:
        yield base / "img", base / "vm"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def info(path: Path) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def raw_disk(path: Path, mib: int, fill: bytes = b"liveforge") -> Path:
    with open(path, "wb") as handle:
        handle.write(fill)
        handle.truncate(mib * MIB)
    return path


def test_an_image_disk_is_an_overlay_growing_it_and_a_blank_disk_has_its_size(
        roots: tuple[Path, Path]) -> None:
    img, vmdir = roots
    uuid = install_zvol(img, raw_disk(img.parent / "base.raw", 4))
    vm = vm_object(disks=[{"image_uuid": uuid, "boot": True},
                          {"image_uuid": uuid, "size": 12, "model": "nvme"},
                          {"size": 7, "model": "ide"}])
    QemuRuntime().install(vm, vmdir)
    files = sorted(p.name for p in (vmdir / "disks").iterdir())
    assert files == ["disk0.qcow2", "disk1.qcow2", "disk2.qcow2"]
    assert [d["path"] for d in vm["disks"]] == [str(vmdir / "disks" / f) for f in files]
    first, second, blank = (info(vmdir / "disks" / f) for f in files)
    image_file = img / "zones" / f"{uuid}.img"
    for overlay in (first, second):
        assert overlay["format"] == "qcow2"
        assert overlay["backing-filename"] == str(image_file.resolve())
        assert overlay["backing-filename-format"] == "raw"
    assert (first["virtual-size"], second["virtual-size"]) == (4 * MIB, 12 * MIB)
    assert blank["virtual-size"] == 7 * MIB and "backing-filename" not in blank
    # the overlay reads the image's bytes; the image is not written
    flat = img.parent / "flat.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(vmdir / "disks/disk1.qcow2"),
                    str(flat)], check=True)
    assert flat.read_bytes()[:9] == b"liveforge" and flat.stat().st_size == 12 * MIB
    assert image_file.read_bytes()[:9] == b"liveforge"


def test_destroy_removes_the_disks_and_leaves_the_image(roots: tuple[Path, Path]) -> None:
    img, vmdir = roots
    uuid = install_zvol(img, raw_disk(img.parent / "base.raw", 2))
    vm = vm_object(disks=[{"image_uuid": uuid}, {"image_uuid": uuid, "size": 3}])
    runtime = QemuRuntime()
    runtime.install(vm, vmdir)
    runtime.destroy(vm, vmdir)
    assert list(vmdir.iterdir()) == []
    assert (img / "zones" / f"{uuid}.img").stat().st_size == 2 * MIB
    ImageStore(img).delete(uuid)


def test_a_tree_image_is_no_disk(roots: tuple[Path, Path]) -> None:
    img, vmdir = roots
    tree = img.parent / "tree"
    (tree / "etc").mkdir(parents=True)
    layer = img.parent / "base.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(layer), "etc"], check=True)
    manifest = dict(zvol_manifest(layer, str(uuidlib.uuid4())), type="zone-dataset")
    del manifest["image_size"]
    ImageStore(img).install(validate(manifest), layer)
    vm = vm_object(disks=[{"image_uuid": manifest["uuid"]}])
    with pytest.raises(QemuError, match=r"disks\.0\.image_uuid: image .* is a zone-dataset image, "
                                        r"not a zvol"):
        QemuRuntime().install(vm, vmdir)
    assert list(vmdir.iterdir()) == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../../etc/passwd", "disks/../../x.qcow2",
                                  "/dev/sda"])
def test_a_disk_path_of_the_payload_is_refused(path: str, roots: tuple[Path, Path]) -> None:
    _, vmdir = roots
    vm = vm_object(disks=[{"size": 4, "path": path}])
    with pytest.raises(QemuError, match=r"disks\.0\.path: .* is not this VM's disk"):
        QemuRuntime().install(vm, vmdir)
    assert list(vmdir.iterdir()) == []


def test_an_image_with_a_backing_file_of_its_own_is_refused(roots: tuple[Path, Path]) -> None:
    """A shipped qcow2 naming a host file as its backing file would let the guest read it."""
    img, vmdir = roots
    hostile = img.parent / "hostile.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd",
                    str(hostile), "1M"], check=True)
    uuid = install_zvol(img, hostile)
    vm = vm_object(disks=[{"size": 4}, {"image_uuid": uuid}])
    with pytest.raises(QemuError, match=r"disks\.1\.image_uuid: .* names a backing file of its "
                                        r"own \('/etc/passwd'\): refused"):
        QemuRuntime().install(vm, vmdir)
    assert list(vmdir.iterdir()) == []


def test_an_image_file_that_is_a_symlink_is_refused(roots: tuple[Path, Path]) -> None:
    img, vmdir = roots
    uuid = install_zvol(img, raw_disk(img.parent / "base.raw", 1))
    image_file = img / "zones" / f"{uuid}.img"
    image_file.unlink()
    image_file.symlink_to("/etc/passwd")
    vm = vm_object(disks=[{"image_uuid": uuid}])
    with pytest.raises(QemuError, match=r"disks\.0\.image_uuid: .* is not a regular file"):
        QemuRuntime().install(vm, vmdir)
    assert list(vmdir.iterdir()) == []


def test_bad_disks_are_named(roots: tuple[Path, Path]) -> None:
    img, vmdir = roots
    uuid = install_zvol(img, raw_disk(img.parent / "base.raw", 8))
    missing = "00000000-0000-4000-8000-000000000001"
    cases = [
        ({"image_uuid": missing}, rf"disks\.0\.image_uuid: image {missing} is not installed"),
        ({"image_uuid": uuid, "size": 4}, r"disks\.0\.size: 4 MiB is smaller than image"),
        ({"model": "virtio"}, r"disks\.0\.size: a disk without image_uuid needs a size"),
        ({"size": 4, "model": "floppy"}, r"disks\.0\.model: 'floppy' is not one of ahci, ide"),
        ({"size": 4, "media": "cdrom"}, r"disks\.0\.model: a virtio disk cannot be a cdrom"),
        ({"size": 4, "nocreate": True}, r"disks\.0\.nocreate"),
        ({"size": -1}, r"disks\.0\.size: -1 is not a positive number"),
    ]
    for disk, message in cases:
        with pytest.raises(QemuError, match=message):
            QemuRuntime().install(vm_object(disks=[disk]), vmdir)
        assert list(vmdir.iterdir()) == []
    with pytest.raises(QemuError, match=r"disks: 5 disks of model ide \(at most 4\)"):
        QemuRuntime().install(vm_object(disks=[{"size": 1, "model": "ide"}] * 5), vmdir)


def test_a_disk_failing_half_way_leaves_nothing(roots: tuple[Path, Path]) -> None:
    """The first disk is made, the second cannot be (beyond qcow2's largest size): the first
    goes too."""
    _, vmdir = roots
    vm = vm_object(disks=[{"size": 4}, {"size": 2 ** 40}])
    with pytest.raises(QemuError, match=r"disks\.1: qemu-img create"):
        QemuRuntime().install(vm, vmdir)
    assert os.listdir(vmdir) == []
    assert "path" not in vm["disks"][0]  # type: ignore[index]
