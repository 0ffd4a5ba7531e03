"""imgadm create for real: a container VM on the busybox image is changed through zlogin,
stopped, made into an image (imgadm in a subprocess, which asks vmadm), and that image is
installed on a fresh store beside its origin, where its view must be the VM's tree exactly.
It is also published to the real imgapi and imported by a host without its origin. Hostile: a
running VM, an HVM VM, a missing VM, a symlink leading out, a device node, a FIFO, a
whiteout-like name, bad -m fields, two creates at once, a full disk, Ctrl-C and kill -9
mid-way."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest

from liveforge.img.store import ImageStore
from liveforge.img.view import mount_view, unmount_view
from liveforge.util.hashing import file_digest
from tests.support.disks import small_disk
from tests.support.images import imgadm, tree_content
from tests.support.imgapi import TOKEN, imgapi, put_image
from tests.vm.conftest import IMAGE_UUID, Vms, zlogin

CHANGES = ("echo welcome > /etc/motd && chown 1000:1000 /etc/motd"
           " && echo changed > /etc/issue"
           " && rm /bin/vi && rm -r /var/log/old"
           " && chmod 600 /etc/profile"
           " && mkdir -p /opt/app && printf '#!/bin/sh\\necho app\\n' > /opt/app/run.sh"
           " && chmod 4710 /opt/app/run.sh"
           " && ln -s /etc/shadow /etc/leak && ln -s ../passwd /etc/rel")


def create(vm_env: dict[str, Any], *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``imgadm create ARGS`` on the VM store's image root (vmadm found beside this Python)."""
    return imgadm(vm_env["imgroot"], "create", *args, **kw)


def stopped(vms: Any, vm: dict[str, Any]) -> dict[str, Any]:
    vms.rt.stop(vm, vms.vmdir(vm), 30, True)
    return vm


def changed_vm(vms: Any, script: str = CHANGES, **props: Any) -> dict[str, Any]:
    vm = vms.create(**props)
    out = zlogin(vm, script)
    assert out.returncode == 0, out.stderr
    return stopped(vms, vm)


def origin_files(vm_env: dict[str, Any]) -> tuple[Path, Path]:
    files = vm_env["base"] / "files"
    return files / f"img-{IMAGE_UUID[:8]}.json", files / f"img-{IMAGE_UUID[:8]}.tar.gz"


def fresh_store(tmp_path: Path, vm_env: dict[str, Any]) -> Path:
    """Another host's IMGADM_ROOT with the origin installed."""
    root = tmp_path / "other-host"
    (root / "var" / "imgadm").mkdir(parents=True)
    (root / "var" / "imgadm" / "imgadm.conf").write_text(json.dumps({"sources": []}))
    manifest, file = origin_files(vm_env)
    out = imgadm(root, "install", "-m", str(manifest), "-f", str(file))
    assert out.returncode == 0, out.stderr
    return root


def view_content(lowers: list[Path], target: Path) -> dict[str, tuple[Any, ...]]:
    """The tree of the read-only overlay of ``lowers`` (top first)."""
    target.mkdir()
    mount_view(lowers, None, None, target)
    try:
        return tree_content(target)
    finally:
        unmount_view(target)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_an_image_of_a_vm_installs_elsewhere_with_exactly_its_changes(vms, vm_env, tmp_path):
    vm = changed_vm(vms)
    vmdir = vms.vmdir(vm)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    made = create(vm_env, vm["uuid"], "-c", "gzip", "-o", str(out_dir), "-m", "name=web",
                  "-m", "version=1.0.0", "description=a web server", "tags={\"role\": \"web\"}")
    assert made.returncode == 0, made.stderr
    assert listing(out_dir) == ["web-1.0.0.json", "web-1.0.0.tar.gz"]
    manifest = json.loads((out_dir / "web-1.0.0.json").read_text())
    file = out_dir / "web-1.0.0.tar.gz"
    assert made.stdout.splitlines()[-2:] == [
        str(out_dir / "web-1.0.0.json"), f"{file} ({file.stat().st_size} bytes)"]
    assert manifest["origin"] == IMAGE_UUID
    assert (manifest["name"], manifest["version"], manifest["description"]) == (
        "web", "1.0.0", "a web server")
    assert manifest["tags"] == {"role": "web"}
    assert (manifest["type"], manifest["os"], manifest["v"]) == ("zone-dataset", "linux", 2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", manifest["published_at"])
    assert manifest["files"] == [{"sha1": file_digest(file, "sha1"),
                                  "size": file.stat().st_size, "compression": "gzip"}]
    assert file.read_bytes()[:2] == b"\x1f\x8b"

    other = fresh_store(tmp_path, vm_env)
    installed = imgadm(other, "install", "-m", str(out_dir / "web-1.0.0.json"), "-f",
                       str(file))
    assert installed.returncode == 0, installed.stderr
    store = ImageStore(other)
    assert [i.manifest.uuid for i in store.ancestry(manifest["uuid"], "zones")] == [
        manifest["uuid"], IMAGE_UUID]
    got = view_content(store.lower_dirs(manifest["uuid"], "zones"), tmp_path / "view")
    # the VM's own tree: its upper layer over its image's layers, as the VM sees it
    here = ImageStore(vm_env["imgroot"]).lower_dirs(IMAGE_UUID, "zones")
    want = view_content([vmdir / "disk" / "upper", *here], tmp_path / "vmview")
    assert got == want
    assert got["etc/motd"] == ("f", "0o644", 1000, 1000, b"welcome\n")
    assert got["etc/issue"][-1] == b"changed\n"
    assert got["etc/issue.net"][-1] == b"Busybox base image\n"  # its hard link kept the old
    assert got["etc/profile"][1] == "0o600"
    assert got["opt/app/run.sh"] == ("f", "0o4710", 0, 0, b"#!/bin/sh\necho app\n")
    assert got["etc/leak"] == ("s", "/etc/shadow")  # the link, never the host's file
    assert got["etc/rel"] == ("s", "../passwd")
    for gone in ("bin/vi", "var/log/old", "var/log/old/boot.log"):
        assert gone not in got
    assert "bin/ls" in got and "var/log" in got


def test_two_creates_of_one_stopped_vm_give_the_same_file(vms, vm_env, tmp_path):
    vm = changed_vm(vms)
    made = []
    for n in (1, 2):
        out_dir = tmp_path / f"out{n}"
        out_dir.mkdir()
        proc = create(vm_env, vm["uuid"], "-c", "xz", "-o", str(out_dir), "-m", "name=same",
                      "-m", "version=2")
        assert proc.returncode == 0, proc.stderr
        made.append((json.loads((out_dir / "same-2.json").read_text()),
                     (out_dir / "same-2.tar.xz").read_bytes()))
        time.sleep(0.01)
    (one, file_one), (two, file_two) = made
    assert file_one == file_two
    assert one["uuid"] != two["uuid"]
    for manifest in (one, two):
        del manifest["uuid"], manifest["published_at"]
    assert one == two


@pytest.mark.parametrize(("compression", "suffix", "magic"), [
    ("none", ".tar", b""), ("zstd", ".tar.zst", b"\x28\xb5\x2f\xfd")])
def test_compressions_name_the_file(vms, vm_env, tmp_path, compression, suffix, magic):
    vm = changed_vm(vms, "echo x > /etc/motd")
    made = create(vm_env, vm["uuid"], "-c", compression, "-o", str(tmp_path), "-m", "name=c",
                  "-m", "version=1")
    assert made.returncode == 0, made.stderr
    file = tmp_path / f"c-1{suffix}"
    assert file.read_bytes().startswith(magic)
    assert json.loads((tmp_path / "c-1.json").read_text())["files"][0]["compression"] == \
        compression


def refused(proc: subprocess.CompletedProcess[str], code: str, *words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"error ({code})" in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_running_vm_is_refused(vms, vm_env, tmp_path):
    vm = vms.create()
    proc = create(vm_env, vm["uuid"], "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
    refused(proc, "VmNotStopped", vm["uuid"], "running")
    assert listing(tmp_path) == []


def test_missing_and_malformed_vms_are_refused(vm_env, tmp_path):
    missing = str(uuidlib.uuid4())
    proc = create(vm_env, missing, "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
    refused(proc, "VmNotFound", missing)
    proc = create(vm_env, "not-a-uuid", "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
    refused(proc, "Usage", "not-a-uuid")
    assert listing(tmp_path) == []


def test_an_hvm_vm_is_refused(vm_env, tmp_path):
    uuid = str(uuidlib.uuid4())
    vmdir = vm_env["vmroot"] / uuid
    vmdir.mkdir()
    try:
        (vmdir / "config.json").write_text(json.dumps({"uuid": uuid, "brand": "bhyve"}))
        (vmdir / "status").write_text("configured\n")
        proc = create(vm_env, uuid, "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
        refused(proc, "NotSupported", "bhyve")
    finally:
        for name in os.listdir(vmdir):
            os.unlink(vmdir / name)
        vmdir.rmdir()
    assert listing(tmp_path) == []


@pytest.mark.parametrize(("script", "what"), [
    ("ln -s ../../../../../etc/shadow /etc/escape", "/etc/escape"),
    ("mkfifo /etc/pipe", "/etc/pipe"),
    ("touch /etc/.wh.passwd", "/etc/.wh.passwd"),
])
def test_what_an_image_cannot_carry_is_refused(vms, vm_env, tmp_path, script, what):
    vm = changed_vm(vms, script)
    proc = create(vm_env, vm["uuid"], "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
    refused(proc, "VmUnsafeFile", what.rsplit("/", 1)[1])
    assert listing(tmp_path) == []


def test_a_device_node_is_refused(vms, vm_env, tmp_path):
    vm = vms.create()
    # root in a container has no CAP_MKNOD: a device node in its layer came from the host
    inside = zlogin(vm, "mknod /etc/mem c 1 1")
    assert inside.returncode != 0
    stopped(vms, vm)
    upper = vms.vmdir(vm) / "disk" / "upper"
    os.mkdir(upper / "srv")
    os.mknod(upper / "srv" / "mem", stat.S_IFCHR | 0o600, os.makedev(1, 1))
    proc = create(vm_env, vm["uuid"], "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
    refused(proc, "VmUnsafeFile", "srv/mem", "device node")
    assert listing(tmp_path) == []


@pytest.mark.parametrize(("args", "words"), [
    (("-m", "name=a"), ("-m version",)),
    (("-m", "name=a", "-m", "version=1", "-m", "origin=" + IMAGE_UUID), ("origin",)),
    (("-m", "name=a", "-m", "version=1", "-m", "colour=red"), ("colour",)),
    (("-m", "name=a", "-m", "version=1", "-m", "public=maybe"), ("public",)),
    (("-m", "name=a", "-m", "version=1", "-m", "public=3"), ("public",)),
    (("-m", "name=../x", "-m", "version=1"), ("'/'",)),
    (("-m", "name=a", "-m", "version=1", "-c", "lz4"), ("lz4",)),
])
def test_bad_fields_are_refused_before_anything_is_read(vm_env, tmp_path, args, words):
    proc = create(vm_env, str(uuidlib.uuid4()), "-o", str(tmp_path), *args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[0]
    assert "error (" in line
    for word in words:
        assert word in line
    assert listing(tmp_path) == []


def test_existing_outputs_are_not_overwritten(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "echo x > /etc/motd")
    (tmp_path / "a-1.tar").write_text("mine")
    proc = create(vm_env, vm["uuid"], "-o", str(tmp_path), "-m", "name=a", "-m", "version=1")
    refused(proc, "Usage", "exists already")
    assert listing(tmp_path) == ["a-1.tar"]
    assert (tmp_path / "a-1.tar").read_text() == "mine"


def big_vm(vms: Any) -> dict[str, Any]:
    """A stopped VM whose layer takes a while to compress (xz over 48 MiB of noise)."""
    return changed_vm(vms, "head -c 50331648 /dev/urandom > /big")


def start_create(vm_env: dict[str, Any], vm: dict[str, Any], out_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, IMGADM_ROOT=str(vm_env["imgroot"]))
    return subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "create", vm["uuid"],
                             "-c", "xz", "-o", str(out_dir), "-m", "name=big", "-m",
                             "version=1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_temporary(out_dir: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = os.listdir(out_dir)
        if any(n.endswith(f".lf-tmp-{proc.pid}") and os.path.getsize(out_dir / n) > 0
               for n in names):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no temporary appeared")


def test_ctrl_c_and_kill_9_leave_no_output(vms, vm_env, tmp_path):
    vm = big_vm(vms)
    proc = start_create(vm_env, vm, tmp_path)
    wait_for_temporary(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "error (Interrupted)" in err and "Traceback" not in err
    assert listing(tmp_path) == []

    proc = start_create(vm_env, vm, tmp_path)
    wait_for_temporary(tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=60)
    left = listing(tmp_path)
    assert left and all(n.startswith(".") and f".lf-tmp-{proc.pid}" in n for n in left)

    # the next create into that directory removes the dead run's temporary
    again = create(vm_env, vm["uuid"], "-c", "zstd", "-o", str(tmp_path), "-m", "name=big",
                   "-m", "version=1")
    assert again.returncode == 0, again.stderr
    assert listing(tmp_path) == ["big-1.json", "big-1.tar.zst"]


def test_create_waits_for_a_vmadm_holding_the_vms_lock(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "echo x > /etc/motd")
    fd = os.open(vms.vmdir(vm) / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as vmadm start/stop/update/delete hold it
        env = dict(os.environ, IMGADM_ROOT=str(vm_env["imgroot"]))
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "create",
                                 vm["uuid"], "-o", str(tmp_path), "-m", "name=l", "-m",
                                 "version=1"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert proc.poll() is None
        assert listing(tmp_path) == []
    finally:
        os.close(fd)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert listing(tmp_path) == ["l-1.json", "l-1.tar"]


def test_two_creates_at_once_into_one_directory(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "head -c 8388608 /dev/urandom > /big")
    env = dict(os.environ, IMGADM_ROOT=str(vm_env["imgroot"]))
    argv = [sys.executable, "-m", "liveforge.img.cli", "create", vm["uuid"], "-c", "gzip",
            "-o", str(tmp_path), "-m", "name=twice", "-m", "version=1"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 1], results
    assert any("exists already" in err for rc, err in results if rc == 1)
    assert listing(tmp_path) == ["twice-1.json", "twice-1.tar.gz"]
    manifest = json.loads((tmp_path / "twice-1.json").read_text())
    assert manifest["files"][0]["sha1"] == file_digest(tmp_path / "twice-1.tar.gz", "sha1")


def test_a_non_utf8_name_comes_through(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "echo bytes > \"$(printf '/etc/caf\\351')\"")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    made = create(vm_env, vm["uuid"], "-o", str(out_dir), "-m", "name=n", "-m", "version=1")
    assert made.returncode == 0, made.stderr
    other = fresh_store(tmp_path, vm_env)
    installed = imgadm(other, "install", "-m", str(out_dir / "n-1.json"), "-f",
                       str(out_dir / "n-1.tar"))
    assert installed.returncode == 0, installed.stderr
    uuid = json.loads((out_dir / "n-1.json").read_text())["uuid"]
    layer = ImageStore(other).get(uuid, "zones")
    assert layer is not None
    assert (layer.path / os.fsdecode(b"etc/caf\xe9")).read_bytes() == b"bytes\n"


@pytest.fixture(scope="module")
def noisy_vm(vm_env):
    """A stopped VM with 4 MiB of noise in its layer (made once: the tests only read it)."""
    made = Vms(vm_env)
    try:
        vm = made.create()
        assert zlogin(vm, "head -c 4194304 /dev/urandom > /big").returncode == 0
        yield stopped(made, vm)
    finally:
        made.destroy_all()


@pytest.mark.parametrize("compression", ["none", "gzip", "bzip2", "xz", "zstd"])
def test_a_full_disk_leaves_nothing(noisy_vm, vm_env, tmp_path, compression):
    vm = noisy_vm
    with small_disk(tmp_path / "small", "1m") as small:
        proc = create(vm_env, vm["uuid"], "-c", compression, "-o", str(small), "-m", "name=f",
                      "-m", "version=1", timeout=60)
        assert proc.returncode == 1
        line = proc.stderr.strip().splitlines()
        assert len(line) == 1 and "error (WriteError)" in line[0], proc.stderr
        assert f"writing the image into {small}: " in line[0]
        assert "No space left on device" in line[0]
        assert listing(small) == []


def test_a_vm_with_a_quota_file_system(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "echo q > /etc/motd && rm /etc/issue", quota=1)
    disk = vms.vmdir(vm) / "disk"
    assert os.path.ismount(disk) == (vms.vmdir(vm) / "disk.img").exists()
    made = create(vm_env, vm["uuid"], "-c", "gzip", "-o", str(tmp_path), "-m", "name=q",
                  "-m", "version=1")
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(["tar", "tzf", str(tmp_path / "q-1.tar.gz")], capture_output=True,
                            text=True, check=True).stdout.split()
    assert "etc/motd" in listed and "etc/.wh.issue" in listed
    assert not any("lost+found" in name for name in listed)


def test_the_contract_imgadm_relies_on_holds(vms, vm_env):
    """img/vmsource's two names are the vm side's: the overlay of the VM's root has its upper
    there, and vmadm's lock is the file imgadm locks."""
    from liveforge.img import vmsource
    from liveforge.vm.store import VmStore

    vm = vms.create(start=False)
    found = vmsource.get(vm["uuid"])
    assert found.zonepath == vms.vmdir(vm) and found.state == "stopped"
    root = os.path.realpath(vms.vmdir(vm) / "root")
    with open("/proc/self/mountinfo") as handle:
        options = [line.split(" - ")[1].split()[2] for line in handle
                   if line.split()[4] == root]
    assert len(options) == 1
    assert f"upperdir={os.path.realpath(found.upper)}" in options[0].split(",")
    store = VmStore(vm_env["vmroot"])
    taken = threading.Event()

    def vmadm_verb() -> None:
        with store.locked(vm["uuid"]):
            taken.set()

    with vmsource.locked(found):
        verb = threading.Thread(target=vmadm_verb)
        verb.start()
        assert not taken.wait(1.0)  # vmadm waits while imgadm holds the VM
    assert taken.wait(10)
    verb.join()


def test_no_vmadm_is_one_clear_error(vm_env, tmp_path):
    proc = create(vm_env, str(uuidlib.uuid4()), "-o", str(tmp_path), "-m", "name=a", "-m",
                  "version=1", env={"IMGADM_VMADM": str(tmp_path / "no-vmadm")})
    refused(proc, "VmadmNotFound", "no-vmadm")
    assert listing(tmp_path) == []


def test_a_directory_made_anew_hides_the_images_content(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "rm -r /var/log && mkdir /var/log && echo new > /var/log/new"
                         " && rm /etc/passwd && mkdir /etc/passwd")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    made = create(vm_env, vm["uuid"], "-o", str(out_dir), "-m", "name=o", "-m", "version=1")
    assert made.returncode == 0, made.stderr
    other = fresh_store(tmp_path, vm_env)
    installed = imgadm(other, "install", "-m", str(out_dir / "o-1.json"), "-f",
                       str(out_dir / "o-1.tar"))
    assert installed.returncode == 0, installed.stderr
    uuid = json.loads((out_dir / "o-1.json").read_text())["uuid"]
    got = view_content(ImageStore(other).lower_dirs(uuid, "zones"), tmp_path / "view")
    assert sorted(p for p in got if p.startswith("var/log/")) == ["var/log/new"]
    assert got["etc/passwd"][0] == "d"


def test_published_and_imported_by_another_host(vms, vm_env, tmp_path):
    """create -> publish to the real imgapi (the origin is there already) -> import on a host
    that has neither: the import fetches the ancestry, and the tree is the VM's."""
    vm = changed_vm(vms, "echo shipped > /etc/motd && rm /bin/vi")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    made = create(vm_env, vm["uuid"], "-c", "zstd", "-o", str(out_dir), "-m", "name=ship",
                  "-m", "version=1")
    assert made.returncode == 0, made.stderr
    manifest = json.loads((out_dir / "ship-1.json").read_text())
    origin_manifest, origin_file = origin_files(vm_env)
    served = tmp_path / "served"
    origin = json.loads(origin_manifest.read_text())
    put_image(served, origin, origin_file, "gzip")
    other = tmp_path / "other-host"
    (other / "var" / "imgadm").mkdir(parents=True)
    with imgapi(served) as server:
        published = imgadm(other, "publish", "-m", str(out_dir / "ship-1.json"), "-f",
                           str(out_dir / "ship-1.tar.zst"), server.url,
                           env={"IMGAPI_TOKEN": TOKEN})
        assert published.returncode == 0, published.stderr
        (other / "var" / "imgadm" / "imgadm.conf").write_text(
            json.dumps({"sources": [{"url": server.url, "type": "imgapi"}]}))
        imported = imgadm(other, "import", manifest["uuid"])
        assert imported.returncode == 0, imported.stderr
    store = ImageStore(other)
    assert [i.manifest.uuid for i in store.ancestry(manifest["uuid"], "zones")] == [
        manifest["uuid"], IMAGE_UUID]
    got = view_content(store.lower_dirs(manifest["uuid"], "zones"), tmp_path / "view")
    here = ImageStore(vm_env["imgroot"]).lower_dirs(IMAGE_UUID, "zones")
    assert got == view_content([vms.vmdir(vm) / "disk" / "upper", *here], tmp_path / "vmview")
    assert got["etc/motd"][-1] == b"shipped\n" and "bin/vi" not in got


def members(file: Path) -> dict[str, tarfile.TarInfo]:
    """The image file's members by name (``./`` and trailing ``/`` dropped; the root is "")."""
    with tarfile.open(file) as tar:
        return {m.name.removeprefix("./").rstrip("/").removeprefix("."): m
                for m in tar.getmembers()}


def no_world_writable_directory(got: dict[str, tarfile.TarInfo]) -> None:
    for name, member in got.items():
        if member.isdir():
            assert member.mode & 0o002 == 0 or member.mode & 0o1000, (name, oct(member.mode))


def test_a_vm_started_and_stopped_unchanged_gives_an_empty_image(vms, vm_env, tmp_path):
    """What the runtime puts in the VM at every start (host name, resolvers, mdata-get, mount
    points, the metadata directory) is not the VM's change: none of it ships."""
    vm = vms.create(hostname="secret-host", resolvers=["192.0.2.9"], tmpfs=16,
                    customer_metadata={"k": "v"})
    out = zlogin(vm, "hostname; cat /etc/hostname /etc/resolv.conf; mdata-get k")
    assert out.stdout == "secret-host\nsecret-host\nnameserver 192.0.2.9\nv\n", out.stderr
    stopped(vms, vm)
    vms.rt.start(vm, vms.vmdir(vm))  # and a second start leaves nothing either
    stopped(vms, vm)
    assert listing(vms.vmdir(vm) / "disk" / "upper") == []
    made = create(vm_env, vm["uuid"], "-o", str(tmp_path), "-m", "name=e", "-m", "version=1")
    assert made.returncode == 0, made.stderr
    assert [name for name in members(tmp_path / "e-1.tar") if name] == []  # the root at most


def test_a_vm_with_one_change_gives_only_that_change(vms, vm_env, tmp_path):
    vm = changed_vm(vms, "echo hi > /etc/motd && echo edited > /etc/hostname"
                         " && echo 'nameserver 192.0.2.7' > /etc/resolv.conf",
                    hostname="secret-host", resolvers=["192.0.2.9"])
    made = create(vm_env, vm["uuid"], "-o", str(tmp_path), "-m", "name=o", "-m", "version=1")
    assert made.returncode == 0, made.stderr
    got = members(tmp_path / "o-1.tar")
    # the VM's own edits of the runtime's files are its changes: they ship, nothing else does
    assert sorted(n for n in got if n) == ["etc", "etc/hostname", "etc/motd", "etc/resolv.conf"]
    no_world_writable_directory(got)
    here = ImageStore(vm_env["imgroot"]).lower_dirs(IMAGE_UUID, "zones")[0]
    image_etc = os.lstat(here / "etc")
    assert (got["etc"].mode, got["etc"].uid, got["etc"].gid) == (
        stat.S_IMODE(image_etc.st_mode), image_etc.st_uid, image_etc.st_gid)
    with tarfile.open(tmp_path / "o-1.tar") as tar:
        assert tar.extractfile(got["etc/hostname"]).read() == b"edited\n"  # type: ignore
    # the VM's edit survives its next start (the runtime writes under it, not over it)
    vms.rt.start(vm, vms.vmdir(vm))
    assert zlogin(vm, "cat /etc/hostname; hostname").stdout == "edited\nsecret-host\n"

