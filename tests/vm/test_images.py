"""A container's root is a view of its installed image: every layer of its ancestry (a child
image's changes and deletions over its origin's), copy-on-write."""

from __future__ import annotations

import shutil
import uuid as uuidlib

import pytest

from liveforge.img.store import ImageStore
from tests.support.containers import install_image
from tests.vm.conftest import IMAGE_UUID, zlogin


@pytest.fixture(scope="module")
def child_image(vm_env, tmp_path_factory):
    """An image on the busybox image: adds /etc/motd, changes /etc/hostname, deletes
    /bin/vi and /var/log/old."""
    work = tmp_path_factory.mktemp("child")
    tree = work / "tree"
    shutil.copytree(vm_env["tree"], tree, symlinks=True)
    (tree / "etc" / "motd").write_text("from the child\n")
    (tree / "etc" / "hostname").write_text("child\n")
    (tree / "bin" / "vi").unlink()
    shutil.rmtree(tree / "var" / "log" / "old")
    uuid = str(uuidlib.uuid4())
    install_image(vm_env["imgroot"], tree, uuid, work / "files", origin_tree=vm_env["tree"],
                  origin=IMAGE_UUID)
    return uuid


def test_a_vm_on_a_child_image_sees_every_layer(vms, child_image):
    vm = vms.create(image_uuid=child_image)
    out = zlogin(vm, "cat /etc/motd /etc/issue; ls /bin/vi /var/log/old 2>&1; echo end")
    assert out.stdout.startswith("from the child\nBusybox base image\n")
    assert out.stdout.count("No such file or directory") == 2
    # a write in the VM goes to its own upper layer, never into an image's layer
    zlogin(vm, "echo mine > /etc/motd; rm /etc/issue")
    store = ImageStore.from_env()
    layers = store.lower_dirs(child_image, "zones")
    assert (layers[0] / "etc" / "motd").read_text() == "from the child\n"
    assert (layers[1] / "etc" / "issue").read_text() == "Busybox base image\n"
    assert zlogin(vm, "cat /etc/motd").stdout == "mine\n"
