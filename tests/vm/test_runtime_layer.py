"""A container's runtime layer (vm/brands/rtlayer.py): what the runtime puts in a VM at each
start sits in a host-made layer between the image and the VM's own layer. Its directories show
the image's modes and owners; the image's symlinks are resolved inside the image, never on the
host (absolute, ``..`` past the root, loops); an image where a file cannot go is one clear
error and leaves nothing; a start with another host name rebuilds it."""

from __future__ import annotations

import os
import shutil
import stat
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest

from liveforge.util.errors import LiveforgeError
from liveforge.vm import cgroups
from liveforge.vm.brands import rtlayer
from liveforge.vm.brands.pidfile import init_pid
from tests.support.containers import busybox_root, install_image
from tests.vm.conftest import zlogin


def image_of(vm_env: dict[str, Any], tmp_path: Path, change: Any, planted: Any = None) -> str:
    """A busybox image changed by ``change(tree)``, installed, and then by ``planted(layer)``
    in the store (what imgadm would refuse to install); its uuid."""
    uuid = str(uuidlib.uuid4())
    tree = busybox_root(tmp_path / "tree")
    change(tree)
    layer = install_image(vm_env["imgroot"], tree, uuid, tmp_path / "files")
    if planted is not None:
        planted(layer)
    return uuid


def world_writable_dirs(layer: Path) -> list[str]:
    found = []
    for path, dirs, _ in os.walk(layer):
        for name in [".", *dirs]:
            mode = os.lstat(os.path.join(path, name)).st_mode
            if mode & 0o002 and not mode & 0o1000:
                found.append(os.path.join(path, name))
    return found


def upper(vms: Any, vm: dict[str, Any]) -> list[str]:
    return sorted(os.listdir(vms.vmdir(vm) / "disk" / "upper"))


def test_the_runtime_layer_keeps_the_images_directories_as_they_are(vms, vm_env, tmp_path):
    """The runtime's /etc, /usr/sbin and /tmp show the image's modes and owners and content;
    a symlinked /usr/sbin (as in merged-/usr distributions) gets mdata-get where it leads."""
    def change(tree: Path) -> None:
        shutil.rmtree(tree / "usr" / "sbin")
        (tree / "usr" / "bin").mkdir(exist_ok=True)
        os.symlink("bin", tree / "usr" / "sbin")
        os.chmod(tree / "etc", 0o750)
        os.chown(tree / "etc", 0, 5)
        (tree / "tmp").mkdir(exist_ok=True)
        os.chmod(tree / "tmp", 0o1777)

    vm = vms.create(image_uuid=image_of(vm_env, tmp_path, change), hostname="h1")
    out = zlogin(vm, "stat -c '%n %a %u %g' /etc /tmp /usr/sbin/ /usr/bin; readlink /usr/sbin;"
                     " test -x /usr/bin/mdata-get && test -e /usr/bin/env && echo both;"
                     " cat /etc/inittab >/dev/null && echo inittab")
    assert out.stdout.splitlines() == ["/etc 750 0 5", "/tmp 1777 0 0", "/usr/sbin/ 755 0 0",
                                       "/usr/bin 755 0 0", "bin", "both", "inittab"], out
    layer = vms.vmdir(vm) / "run" / "layer"
    assert world_writable_dirs(layer) == []
    assert stat.S_IMODE(os.lstat(layer / "etc").st_mode) == 0o750
    assert not (layer / "usr" / "sbin").exists() and (layer / "usr" / "bin" / "mdata-get").exists()
    vms.rt.stop(vm, vms.vmdir(vm), 30, True)
    assert upper(vms, vm) == []


def test_the_images_symlinks_never_lead_to_the_host(vms, vm_env, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (tmp_path / "host-proc").mkdir()
    for name in ("hostname", "resolv.conf", "mdata-get"):
        (host / name).write_text("host's\n")

    def change(tree: Path) -> None:
        (tree / "etc" / "hostname").unlink(missing_ok=True)
        os.symlink(host / "hostname", tree / "etc" / "hostname")  # absolute, to a host file
        os.symlink(host / "resolv.conf", tree / "etc" / "resolv.conf")
        os.symlink(tmp_path / "host-proc", tree / "proc")  # a mount point leading out

    def planted(layer: Path) -> None:
        shutil.rmtree(layer / "usr" / "sbin")
        os.symlink("../" * 12 + str(host).lstrip("/"), layer / "usr" / "sbin")  # .. past /

    image = image_of(vm_env, tmp_path, change, planted)
    # the host paths are under /tmp: no tmpfs there, to see what the layer put in them
    vm = vms.create(image_uuid=image, hostname="in-vm", resolvers=["192.0.2.5"], tmpfs=0,
                    customer_metadata={"k": "v"})
    out = zlogin(vm, "cat /etc/hostname /etc/resolv.conf; mdata-get k; test -d /proc/1/ns &&"
                     " echo proc")
    assert out.stdout == "in-vm\nnameserver 192.0.2.5\nv\nproc\n", out
    assert sorted(os.listdir(host)) == ["hostname", "mdata-get", "resolv.conf"]
    assert all((host / n).read_text() == "host's\n" for n in os.listdir(host))
    assert os.listdir(tmp_path / "host-proc") == []
    assert world_writable_dirs(vms.vmdir(vm) / "run" / "layer") == []


@pytest.mark.parametrize(("change", "words"), [
    (lambda t: (shutil.rmtree(t / "etc"), (t / "etc").write_text("a file")),
     ["/etc is not a directory in the image"]),
    (lambda t: (shutil.rmtree(t / "etc"), os.symlink("etc", t / "etc")),
     ["/etc", "too many levels of symbolic links"]),
])
def test_an_image_without_room_for_the_runtimes_files_is_one_clear_error(
        vms, vm_env, tmp_path, change, words):
    vm = vms.create(start=False, image_uuid=image_of(vm_env, tmp_path, change))
    with pytest.raises(LiveforgeError) as caught:
        vms.rt.start(vm, vms.vmdir(vm))
    for word in words:
        assert word in str(caught.value)
    assert "\n" not in str(caught.value)
    assert init_pid(vms.vmdir(vm)) is None
    assert not any(p.exists() for p in cgroups.Cgroup(vm["uuid"]).paths())
    assert upper(vms, vm) == []
    assert os.path.ismount(vms.vmdir(vm) / "root")  # the view stays, as install left it


def test_a_start_with_another_host_name_rebuilds_the_layer(vms):
    vm = vms.create(hostname="first", resolvers=["192.0.2.1"])
    vms.rt.stop(vm, vms.vmdir(vm), 30, True)
    vm = {**vm, "hostname": "second", "resolvers": []}
    vms.rt.start(vm, vms.vmdir(vm))
    out = zlogin(vm, "cat /etc/hostname; hostname; cat /etc/resolv.conf 2>&1 || echo none")
    assert out.stdout.splitlines()[:2] == ["second", "second"]
    assert "192.0.2.1" not in out.stdout
    vms.rt.stop(vm, vms.vmdir(vm), 30, True)
    assert upper(vms, vm) == []


def test_resolve_stays_inside_the_image(tmp_path):
    image = tmp_path / "image"
    (image / "usr" / "lib").mkdir(parents=True)
    os.symlink("lib", image / "usr" / "sbin")
    os.symlink("/usr/lib", image / "abs")
    os.symlink("../../../../..", image / "usr" / "up")
    os.symlink("/nowhere/deep", image / "dangling")
    (image / "file").write_text("")
    assert rtlayer.resolve(image, "usr/sbin") == ["usr", "lib"]
    assert rtlayer.resolve(image, "abs") == ["usr", "lib"]
    assert rtlayer.resolve(image, "usr/up/usr/up/etc") == ["etc"]
    assert rtlayer.resolve(image, "dangling") == ["nowhere", "deep"]
    assert rtlayer.resolve(image, "missing/../etc") == ["etc"]
    with pytest.raises(rtlayer.RuntimeLayerError, match="/file is not a directory"):
        rtlayer.resolve(image, "file/x")
