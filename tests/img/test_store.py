"""The store: installs that fail leave nothing, kill -9 leftovers, dependants, locks, views."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from liveforge.img.errors import ImgadmError
from liveforge.img.layer import write_tree
from liveforge.img.manifest import validate
from liveforge.img.store import ImageStore
from liveforge.img.view import mount_view, unmount_view
from liveforge.util.hashing import file_digest
from tests.support.disks import small_disk
from tests.support.images import imgadm, manifest_for, tree_content, write_image

Images = dict[str, tuple[Path, Path, dict]]


def pool_entries(root: Path) -> list[str]:
    pool = root / "zones"
    return sorted(os.listdir(pool)) if pool.exists() else []


def assert_nothing_installed(root: Path) -> None:
    assert pool_entries(root) == []
    db = root / "var/imgadm/images"
    assert not db.exists() or os.listdir(db) == []


def install_both(root: Path, images: Images) -> None:
    for name in ("base", "child"):
        manifest, file, _ = images[name]
        proc = imgadm(root, "install", "-m", str(manifest), "-f", str(file))
        assert proc.returncode == 0, proc.stderr


# -- hostile input ----------------------------------------------------------------------------

def bad_image(tmp_path: Path, member: tarfile.TarInfo) -> tuple[Path, Path]:
    file = tmp_path / "bad.tgz"
    with tarfile.open(file, "w:gz") as tar:
        for name in ("etc", "etc/a", "etc/b"):
            ok = tarfile.TarInfo(name)
            ok.type = tarfile.DIRTYPE if name == "etc" else tarfile.REGTYPE
            tar.addfile(ok, io.BytesIO(b"") if ok.isfile() else None)
        tar.addfile(member, io.BytesIO(b"evil") if member.isfile() else None)
    data = {"v": 2, "uuid": "11111111-2222-4333-8444-555555555555", "name": "bad",
            "version": "1", "type": "zone-dataset", "os": "linux",
            "files": [{"sha1": file_digest(file, "sha1"), "size": file.stat().st_size,
                       "compression": "gzip"}]}
    manifest = tmp_path / "bad.json"
    manifest.write_text(json.dumps(data))
    return manifest, file


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 4 if kind == tarfile.REGTYPE else 0
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info


@pytest.mark.parametrize("bad", [
    member("../../../../tmp/imgadm-escaped"),
    member("/tmp/imgadm-escaped"),
    member("etc/link", tarfile.SYMTYPE, "../../../../tmp"),
    member("etc/null", tarfile.CHRTYPE),
    member("etc/hl", tarfile.LNKTYPE, "../../../etc/passwd"),
], ids=["dotdot", "absolute", "symlink-out", "device", "hardlink-out"])
def test_install_of_a_hostile_image_leaves_nothing(bad: tarfile.TarInfo, tmp_path: Path,
                                                   imgadm_root: Path) -> None:
    manifest, file = bad_image(tmp_path, bad)
    proc = imgadm(imgadm_root, "install", "-m", str(manifest), "-f", str(file))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("imgadm install: error (InvalidImageFile): ")
    assert bad.name in last and "Traceback" not in proc.stderr
    assert_nothing_installed(imgadm_root)
    assert not Path("/tmp/imgadm-escaped").exists()


def test_size_and_sha1_mismatch_are_refused(tmp_path: Path, imgadm_root: Path,
                                            images: Images) -> None:
    manifest_path, file, manifest = images["base"]
    for key, value, says in (("size", manifest["files"][0]["size"] + 1, "size is"),
                             ("sha1", "0" * 40, "sha1 is")):
        changed = json.loads(json.dumps(manifest))
        changed["files"][0][key] = value
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(changed))
        proc = imgadm(imgadm_root, "-E", "install", "-m", str(path), "-f", str(file))
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert f"(InvalidImageFile): {file}: {says}" in lines[-2]
        assert f"files[0].{key}" in lines[-2]
        assert json.loads(lines[-1])["err"]["code"] == "InvalidImageFile"
        assert_nothing_installed(imgadm_root)


def test_invalid_manifest_lists_every_bad_field(tmp_path: Path, imgadm_root: Path,
                                                images: Images) -> None:
    _, file, manifest = images["base"]
    bad = dict(manifest, v=3, uuid="nope", type="vm", published_at="yesterday")
    del bad["name"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    proc = imgadm(imgadm_root, "install", "-m", str(path), "-f", str(file))
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert line.startswith(f"imgadm install: error (ManifestValidation): {path}: invalid "
                           "manifest: ")
    for field in ("name (is required)", "v (must be 2)", "uuid (not a UUID)", "type (must be",
                  "published_at (not an ISO 8601"):
        assert field in line
    path.write_text("{not json")
    proc = imgadm(imgadm_root, "install", "-m", str(path), "-f", str(file))
    assert "error (InvalidManifest): " in proc.stderr and "not JSON" in proc.stderr
    assert_nothing_installed(imgadm_root)


def test_origin_must_be_installed_exit_3(imgadm_root: Path, images: Images) -> None:
    manifest, file, data = images["child"]
    proc = imgadm(imgadm_root, "install", "-m", str(manifest), "-f", str(file))
    assert proc.returncode == 3
    assert (f'error (OriginNotInstalled): origin image "{data["origin"]}" of image '
            f'"{data["uuid"]}" is not installed on zpool "zones"') in proc.stderr
    assert_nothing_installed(imgadm_root)


@pytest.fixture
def big_image(tmp_path: Path) -> tuple[Path, Path, dict]:
    """An image of 4000 small files (slow enough to stop mid-way): (manifest file, image
    file, manifest)."""
    tree = tmp_path / "big"
    (tree / "files").mkdir(parents=True)
    for i in range(4000):
        (tree / "files" / f"f{i:05d}").write_text(f"file {i}\n" * 20)
    layer = write_tree(tree, tmp_path / "big.tar", "none")
    manifest = manifest_for(layer, "big")
    (tmp_path / "big.json").write_text(json.dumps(manifest))
    return tmp_path / "big.json", layer.path, manifest


def start_install_and_wait_for_partial(root: Path, image: tuple[Path, Path, dict]
                                       ) -> tuple[subprocess.Popen[str], Path]:
    manifest_path, file, manifest = image
    env = dict(os.environ, IMGADM_ROOT=str(root))
    proc = subprocess.Popen([os.sys.executable, "-m", "liveforge.img.cli", "install", "-m",
                             str(manifest_path), "-f", str(file)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = root / "zones" / f"{manifest['uuid']}-partial"
    deadline = time.monotonic() + 60
    while not (partial / "files").exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert proc.poll() is None, "the install finished before it could be stopped"
    return proc, partial


def test_kill_9_mid_install_leaves_no_partial_after_the_next_command(
        imgadm_root: Path, big_image: tuple[Path, Path, dict]) -> None:
    proc, partial = start_install_and_wait_for_partial(imgadm_root, big_image)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert partial.exists()  # what the killed run left...
    listed = imgadm(imgadm_root, "list", "-H")
    assert listed.returncode == 0 and listed.stdout == ""
    assert_nothing_installed(imgadm_root)  # ...is gone after the next command
    manifest_path, file, manifest = big_image
    again = imgadm(imgadm_root, "install", "-m", str(manifest_path), "-f", str(file))
    assert again.returncode == 0, again.stderr
    assert pool_entries(imgadm_root) == [manifest["uuid"]]
    assert len(os.listdir(imgadm_root / "zones" / manifest["uuid"] / "files")) == 4000


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_install_removes_its_partial(sig: signal.Signals, imgadm_root: Path,
                                                 big_image: tuple[Path, Path, dict]) -> None:
    proc, partial = start_install_and_wait_for_partial(imgadm_root, big_image)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert err.strip() == f"imgadm install: error (Interrupted): interrupted by {sig.name}"
    assert_nothing_installed(imgadm_root)  # at once, not only after the next command


def test_full_disk_leaves_nothing(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    with small_disk(imgadm_root / "zones", "256k") as pool:
        manifest, file, _ = images["base"]  # busybox alone is over a megabyte
        proc = imgadm(imgadm_root, "install", "-m", str(manifest), "-f", str(file))
        assert proc.returncode == 1
        assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert os.listdir(pool) == []


# -- dependants -------------------------------------------------------------------------------

def test_delete_refuses_an_image_with_a_child_or_a_vm(imgadm_root: Path,
                                                      images: Images) -> None:
    install_both(imgadm_root, images)
    base, child = images["base"][2]["uuid"], images["child"][2]["uuid"]
    proc = imgadm(imgadm_root, "delete", base)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f'imgadm delete: error (ImageHasDependentClones): image '
                                   f'"{base}" has dependent clones: image {child}')
    store = ImageStore(imgadm_root)
    vm = "5b1e4c4e-0000-4000-8000-000000000001"
    store.hold(child, "zones", vm)
    proc = imgadm(imgadm_root, "delete", child)
    assert proc.returncode == 1 and f"VM {vm}" in proc.stderr
    vac = imgadm(imgadm_root, "vacuum", "-f")
    assert vac.stdout == "No unused images to delete\n"
    store.release(child, "zones", vm)
    assert imgadm(imgadm_root, "delete", child).stdout == f"Deleted image {child}\n"
    assert imgadm(imgadm_root, "delete", base).stdout == f"Deleted image {base}\n"
    assert_nothing_installed(imgadm_root)
    proc = imgadm(imgadm_root, "delete", base)
    assert proc.returncode == 3 and "(ImageNotInstalled)" in proc.stderr


def test_vacuum_keeps_what_a_vm_uses_and_asks(imgadm_root: Path, images: Images,
                                              tmp_path: Path, trees: tuple[Path, Path]
                                              ) -> None:
    install_both(imgadm_root, images)
    other_m, other_f, other = write_image(tmp_path, trees[0], "other", compression="none")
    assert imgadm(imgadm_root, "install", "-m", str(other_m), "-f", str(other_f)).returncode == 0
    ImageStore(imgadm_root).hold(images["child"][2]["uuid"], "zones", "vm-1")
    dry = imgadm(imgadm_root, "vacuum", "-n")
    assert dry.stdout == f"[dry-run] Would delete image {other['uuid']} (other@1.0.0)\n"
    no = imgadm(imgadm_root, "vacuum", input="n\n")
    assert no.stdout.endswith("Aborting vacuum\n")
    assert len(ImageStore(imgadm_root).list()) == 3
    yes = imgadm(imgadm_root, "vacuum", input="y\n")
    assert yes.stdout == ("Delete 1 unused image(s)? [y/N] "
                          f"Deleted image {other['uuid']} (other@1.0.0)\n"
                          "Deleted 1 unused image(s)\n")
    assert {i.uuid for i in ImageStore(imgadm_root).list()} == {
        images["base"][2]["uuid"], images["child"][2]["uuid"]}


# -- locks ------------------------------------------------------------------------------------

def test_two_installs_at_once_one_installs_the_other_skips(imgadm_root: Path,
                                                           images: Images) -> None:
    manifest, file, data = images["base"]
    env = dict(os.environ, IMGADM_ROOT=str(imgadm_root))
    procs = [subprocess.Popen([os.sys.executable, "-m", "liveforge.img.cli", "install", "-m",
                               str(manifest), "-f", str(file)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    text = "".join(o[0] + o[1] for o in outs)
    assert text.count(f"Installed image {data['uuid']} (base@1.0.0)") == 1
    assert codes == [0, 0]
    assert text.count(f"Image {data['uuid']} (base 1.0.0) is already installed, skipping") == 1
    assert pool_entries(imgadm_root) == [data["uuid"]]


def test_import_lock_waits_and_says_so_once(imgadm_root: Path) -> None:
    store = ImageStore(imgadm_root)
    uuid = "22222222-3333-4444-8555-666666666666"
    holder = subprocess.Popen(
        [os.sys.executable, "-c", "import sys, time\n"
         "from liveforge.img.store import ImageStore\n"
         f"with ImageStore.from_env().import_lock({uuid!r}):\n"
         "    print('held', flush=True); time.sleep(1.5)"],
        env=dict(os.environ, IMGADM_ROOT=str(imgadm_root)), stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    waits: list[float] = []
    start = time.monotonic()
    with store.import_lock(uuid, on_wait=lambda: waits.append(time.monotonic())):
        got = time.monotonic()
    holder.wait()
    assert len(waits) == 1 and got - start > 0.5
    with store.import_lock(uuid, on_wait=lambda: waits.append(0)):
        with store.import_lock(uuid):  # re-entrant in the holding thread
            pass
    assert len(waits) == 1
    blocked = threading.Event()

    def other_thread() -> None:
        with store.import_lock(uuid, on_wait=blocked.set):
            pass

    with store.import_lock(uuid):
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert blocked.wait(10)
    thread.join(10)
    assert not thread.is_alive()


# -- the view of an installed image -----------------------------------------------------------

def test_installed_child_mounts_as_the_child_tree(tmp_path: Path, imgadm_root: Path,
                                                  images: Images,
                                                  trees: tuple[Path, Path]) -> None:
    install_both(imgadm_root, images)
    store = ImageStore(imgadm_root)
    child = images["child"][2]["uuid"]
    lowers = store.lower_dirs(child, "zones")
    assert lowers == [imgadm_root / "zones" / child,
                      imgadm_root / "zones" / images["base"][2]["uuid"]]
    for name in ("upper", "work", "view"):
        (tmp_path / name).mkdir()
    mount_view(lowers, tmp_path / "upper", tmp_path / "work", tmp_path / "view")
    try:
        view = tmp_path / "view"
        assert tree_content(view) == tree_content(trees[1])
        for deleted in ("bin/vi", "etc/issue.net", "var/log/old"):
            assert not os.path.lexists(view / deleted)
        assert (view / "etc/hostname").read_text() == "child\n"
        assert oct(os.stat(view / "etc/profile").st_mode & 0o7777) == "0o600"
        out = subprocess.run(["chroot", str(view), "/bin/sh", "-c",
                              "cat /etc/hostname; ls /bin/vi 2>&1; /usr/bin/env | head -1"],
                             capture_output=True, text=True, timeout=30)
        assert out.stdout.splitlines()[0] == "child"
        assert "No such file" in out.stdout
    finally:
        unmount_view(tmp_path / "view")
    assert store.ancestry(child)[1].uuid == images["base"][2]["uuid"]
    record = json.loads(imgadm(imgadm_root, "get", child, "-r").stdout)
    assert record["zpool"] == "zones" and record["source"] is None
    assert validate(record["manifest"]).uuid == child and record["children"] == []
    base_record = json.loads(imgadm(imgadm_root, "get", images["base"][2]["uuid"],
                                    "-r").stdout)
    assert base_record["children"] == [child]


def test_store_api_errors(imgadm_root: Path, images: Images) -> None:
    store = ImageStore(imgadm_root)
    with pytest.raises(ImgadmError) as caught:
        store.pool_dir("tank")
    assert caught.value.code == "ConfigError" and '"tank"' in caught.value.message
    manifest, file, data = images["base"]
    installed = store.install(validate(data), file, "http://127.0.0.1:1")
    assert installed.path == imgadm_root / "zones" / data["uuid"]
    with pytest.raises(ImgadmError) as caught:
        store.install(validate(data), file)
    assert caught.value.code == "ImageAlreadyInstalled"
    record = json.loads((imgadm_root / "var/imgadm/images" / f"zones-{data['uuid']}.json")
                        .read_text())
    assert record == {"manifest": data, "zpool": "zones", "source": "http://127.0.0.1:1"}


def test_zvol_image_installs_its_disk(tmp_path: Path, imgadm_root: Path) -> None:
    from liveforge.img.layer import write_disk

    disk = tmp_path / "disk.qcow2"
    disk.write_bytes(b"QFI\xfb" + os.urandom(70_000))
    layer = write_disk(disk, tmp_path / "disk.qcow2.xz", "xz")
    data = manifest_for(layer, "vm-disk", type_="zvol", image_size=10240)
    (tmp_path / "disk.json").write_text(json.dumps(data))
    proc = imgadm(imgadm_root, "install", "-m", str(tmp_path / "disk.json"), "-f",
                  str(layer.path))
    assert proc.returncode == 0, proc.stderr
    installed = imgadm_root / "zones" / f"{data['uuid']}.img"
    assert installed.read_bytes() == disk.read_bytes()
    assert oct(installed.stat().st_mode & 0o777) == "0o444"
    store = ImageStore(imgadm_root)
    assert store.require(data["uuid"]).path == installed
    with pytest.raises(ImgadmError, match="it has a disk, not layers"):
        store.lower_dirs(data["uuid"])
    assert imgadm(imgadm_root, "delete", data["uuid"]).returncode == 0
    assert_nothing_installed(imgadm_root)
    del data["image_size"]
    (tmp_path / "disk.json").write_text(json.dumps(data))
    proc = imgadm(imgadm_root, "install", "-m", str(tmp_path / "disk.json"), "-f",
                  str(layer.path))
    assert proc.returncode == 1 and "image_size (is required for a zvol image)" in proc.stderr
