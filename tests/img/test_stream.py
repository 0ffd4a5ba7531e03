"""Uncompressed tree images are unpacked while they download (liveforge.img.follow): the layer
is used only when the download verified and no byte the unpacking read was thrown away; every
fault (a bad SHA-1 seen only at the end, Ctrl-C, a full pool, an earlier run's wrong bytes)
ends with nothing installed and no ``-partial`` layer, or with the right tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from liveforge.img.store import ImageStore
from liveforge.img.view import mount_view, unmount_view
from tests.img.test_import import (
    assert_nothing_installed,
    error_line,
    source,
    use_sources,
    wait_for,
)
from tests.support.disks import small_disk
from tests.support.images import imgadm, tree_content
from tests.support.imgapi import imgapi, put_image

Images = dict[str, tuple[Path, Path, dict[str, Any]]]


def child_view(root: Path, uuid: str, work: Path) -> dict[str, tuple[Any, ...]]:
    """The content of the image's full tree (its ancestry's layers stacked)."""
    view = work / "view"
    for name in ("upper", "work", "view"):
        (work / name).mkdir()
    mount_view(ImageStore(root).lower_dirs(uuid), work / "upper", work / "work", view)
    try:
        return tree_content(view)
    finally:
        unmount_view(view)


def partial_layers(root: Path) -> list[str]:
    pool = root / "zones"
    return sorted(n for n in os.listdir(pool) if n.endswith("-partial")) if pool.is_dir() else []


def test_a_plain_ancestry_is_unpacked_while_it_downloads(
        tmp_path: Path, imgadm_root: Path, plain_images: Images,
        trees: tuple[Path, Path]) -> None:
    base, child = plain_images["base"][2], plain_images["child"][2]
    faults = {"stall_first": 2, "stall_after": 100, "stall_seconds": 3}
    with source(tmp_path, plain_images, faults) as server:
        use_sources(imgadm_root, server.url)
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "import",
                                 child["uuid"]], env=dict(os.environ, IMGADM_ROOT=str(imgadm_root)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # while both downloads wait after 100 bytes, both layers are being unpacked
        wait_for(lambda: partial_layers(imgadm_root) == sorted(
            f"{m['uuid']}-partial" for m in (base, child)))
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert out.splitlines()[-2:] == [f"Imported image {base['uuid']} (base@1.0.0)",
                                     f"Imported image {child['uuid']} (child@1.0.0)"]
    assert sorted(os.listdir(imgadm_root / "zones")) == sorted([base["uuid"], child["uuid"]])
    assert os.listdir(imgadm_root / "var" / "imgadm" / "downloads") == []
    got = child_view(imgadm_root, child["uuid"], tmp_path)
    assert got == tree_content(trees[1])
    assert "etc/issue.net" not in got and got["etc/hostname"][4] == b"child\n"


def test_a_sha1_mismatch_seen_at_the_end_leaves_no_partial_layer(
        tmp_path: Path, imgadm_root: Path, plain_images: Images) -> None:
    """The corrupt byte is unpacked like any other; only the SHA-1 at the end tells."""
    child = plain_images["child"][2]
    with source(tmp_path, plain_images, {"wrong_sha1": True}) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", child["uuid"]), "DownloadError")
    assert "the file has SHA-1 " in message and "(the download was deleted)" in message
    assert_nothing_installed(imgadm_root)


def test_a_dropped_connection_resumes_the_unpacking(
        tmp_path: Path, imgadm_root: Path, plain_images: Images,
        trees: tuple[Path, Path]) -> None:
    child = plain_images["child"][2]
    with source(tmp_path, plain_images, {"close_first": 2, "close_after": 700}) as server:
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", child["uuid"])
        assert proc.returncode == 0, proc.stderr
        assert len([r for r in server.requests() if "range=bytes=700- -> 206" in r]) == 2
    assert child_view(imgadm_root, child["uuid"], tmp_path) == tree_content(trees[1])
    assert partial_layers(imgadm_root) == []


def test_ctrl_c_while_unpacking_then_import_again(
        tmp_path: Path, imgadm_root: Path, plain_images: Images,
        trees: tuple[Path, Path]) -> None:
    base, child = plain_images["base"][2], plain_images["child"][2]
    faults = {"stall_first": 2, "stall_after": 1500, "stall_seconds": 60}
    downloads = imgadm_root / "var" / "imgadm" / "downloads"
    with source(tmp_path, plain_images, faults) as server:
        use_sources(imgadm_root, server.url)
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "import",
                                 child["uuid"]], env=dict(os.environ, IMGADM_ROOT=str(imgadm_root)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: downloads.is_dir() and sorted(
            (p.name, p.stat().st_size) for p in downloads.iterdir()) == sorted(
            (f"{m['uuid']}.file.partial", 1500) for m in (base, child))
            and len(partial_layers(imgadm_root)) == 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.splitlines()[-1] == "imgadm import: error (Interrupted): interrupted by SIGINT"
        assert_nothing_installed(imgadm_root)  # no -partial layer either
        again = imgadm(imgadm_root, "import", child["uuid"])
        assert again.returncode == 0, again.stderr
        for m in (base, child):
            assert server.file_requests(m["uuid"])[-1].startswith(
                f"GET /images/{m['uuid']}/file range=bytes=1500- -> 206")
    assert child_view(imgadm_root, child["uuid"], tmp_path) == tree_content(trees[1])
    assert partial_layers(imgadm_root) == []


def test_an_earlier_runs_wrong_bytes_are_not_installed(tmp_path: Path,
                                                       imgadm_root: Path) -> None:
    """A ``.partial`` an earlier run left whose bytes are not this file's: the unpacking read
    them, the SHA-1 at the end fails, the client starts again from zero; the install must
    then unpack the verified file, not keep what was unpacked from the wrong bytes."""
    data = os.urandom(200_000)
    (tmp_path / "data.bin").write_bytes(data)
    image = tmp_path / "image.tar"
    with tarfile.open(image, "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(tmp_path / "data.bin", "data.bin")
    uuid = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98"
    downloads = imgadm_root / "var" / "imgadm" / "downloads"
    downloads.mkdir(parents=True)
    wrong = bytearray(image.read_bytes()[:8192])
    wrong[512 + 1000] ^= 0xFF  # a byte of data.bin's data, in the part already "downloaded"
    (downloads / f"{uuid}.file.partial").write_bytes(wrong)
    with imgapi(tmp_path / "served") as server:
        put_image(server.directory, {"uuid": uuid, "name": "plain", "version": "1",
                                     "type": "zone-dataset", "os": "linux"}, image)
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", uuid)
        assert proc.returncode == 0, proc.stderr
        requests = server.file_requests(uuid, at_least=2)
    assert requests[0].startswith(f"GET /images/{uuid}/file range=bytes=8192- -> 206")
    assert requests[1].startswith(f"GET /images/{uuid}/file -> 200")
    assert (imgadm_root / "zones" / uuid / "data.bin").read_bytes() == data
    assert partial_layers(imgadm_root) == [] and os.listdir(downloads) == []


def test_a_full_pool_while_unpacking(tmp_path: Path, imgadm_root: Path,
                                     plain_images: Images) -> None:
    child = plain_images["child"][2]
    with small_disk(imgadm_root / "zones", "64k") as pool:
        with source(tmp_path, plain_images) as server:
            use_sources(imgadm_root, server.url)
            proc = imgadm(imgadm_root, "import", child["uuid"])
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        assert "No space left on device" in proc.stderr.splitlines()[-1], proc.stderr
        assert ImageStore(imgadm_root).list() == [] and os.listdir(pool) == []
