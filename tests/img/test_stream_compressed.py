"""Compressed tree images (gzip, bzip2, xz, zstd) are unpacked while they download, through the
one decompressing reader over the growing file: the layers are exactly those an install of the
verified file makes; a dropped connection resumes the same stream; every fault (a bad SHA-1
seen only at the end, Ctrl-C, a hostile member, a corrupt or truncated stream, a manifest that
lies about the compression, an earlier run's wrong bytes, a full pool) ends with nothing
installed and no ``-partial`` layer, or with the right tree."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from liveforge.img.follow import Growing, Stopped
from liveforge.img.store import ImageStore
from liveforge.util.archive import open_decompressed
from tests.img.test_import import (
    assert_nothing_installed,
    error_line,
    source,
    use_sources,
    wait_for,
)
from tests.img.test_stream import child_view, partial_layers
from tests.support.disks import small_disk
from tests.support.images import imgadm, tree_content, write_image
from tests.support.imgapi import imgapi, put_image

Images = dict[str, tuple[Path, Path, dict[str, Any]]]
COMPRESSED = ("gzip", "bzip2", "xz", "zstd")
HOSTILE_UUID = "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8"


@pytest.fixture(scope="module")
def packed(trees: tuple[Path, Path]) -> Iterator[Callable[[str], Images]]:
    """compression -> the base and child images written with it (made once, on demand)."""
    out = Path(tempfile.mkdtemp(prefix="liveforge-img-packed."))
    made: dict[str, Images] = {}

    def get(compression: str) -> Images:
        if compression not in made:
            base, child = trees
            where = out / compression
            images = {"base": write_image(where, base, "base", compression=compression)}
            images["child"] = write_image(where, child, "child", origin_tree=base,
                                          origin=images["base"][2]["uuid"],
                                          compression=compression)
            made[compression] = images
        return made[compression]

    try:
        yield get
    finally:
        shutil.rmtree(out, ignore_errors=True)


def start_import(root: Path, uuid: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "-v", "import", uuid],
                            env=dict(os.environ, IMGADM_ROOT=str(root)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def streamed(stderr: str) -> dict[str, bool]:
    """uuid -> whether its install took the layer unpacked while it downloaded (-v records)."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == "install":
                found[record["uuid"]] = record["unpacked_while_downloading"]
    return found


def layers(root: Path, *uuids: str) -> dict[str, dict[str, tuple[Any, ...]]]:
    return {u: tree_content(root / "zones" / u) for u in uuids}


def installed_the_slow_way(root: Path, images: Images) -> Path:
    """``imgadm install -m -f`` of the base, then the child, into a store of its own: the
    layers as the install unpacks the verified files."""
    (root / "var" / "imgadm").mkdir(parents=True)
    (root / "var" / "imgadm" / "imgadm.conf").write_text(json.dumps({"sources": []}))
    for name in ("base", "child"):
        manifest, file, _ = images[name]
        proc = imgadm(root, "install", "-m", str(manifest), "-f", str(file))
        assert proc.returncode == 0, proc.stderr
    return root


def stalled_base(images: Images) -> dict[str, int]:
    """Faults: both downloads stop 64 bytes before the end of the base's file, for 5 s (the
    child's file is smaller: it goes through; a bzip2 block is decompressed only once all of
    it is there)."""
    size = images["base"][2]["files"][0]["size"]
    assert images["child"][2]["files"][0]["size"] < size - 64
    return {"stall_first": 2, "stall_after": size - 64, "stall_seconds": 5}


@pytest.mark.parametrize("compression", COMPRESSED)
def test_a_compressed_ancestry_is_unpacked_while_it_downloads_as_an_install_would(
        compression: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images], trees: tuple[Path, Path]) -> None:
    images = packed(compression)
    base, child = images["base"][2], images["child"][2]
    faults = stalled_base(images)
    partial = imgadm_root / "var" / "imgadm" / "downloads" / f"{base['uuid']}.file.partial"
    layer = imgadm_root / "zones" / f"{base['uuid']}-partial"
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        proc = start_import(imgadm_root, child["uuid"])
        # while the base's download waits, its layer already holds its first files
        wait_for(lambda: partial.exists() and partial.stat().st_size == faults["stall_after"]
                 and (layer / "bin" / "busybox").exists())
        assert not (imgadm_root / "zones" / base["uuid"]).exists()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert out.splitlines()[-2:] == [f"Imported image {base['uuid']} (base@1.0.0)",
                                     f"Imported image {child['uuid']} (child@1.0.0)"]
    assert streamed(err) == {base["uuid"]: True, child["uuid"]: True}
    # the same layers, byte for byte, mode for mode, owner for owner, whiteout for whiteout
    slow = installed_the_slow_way(tmp_path / "slow", images)
    got = layers(imgadm_root, base["uuid"], child["uuid"])
    assert got == layers(slow, base["uuid"], child["uuid"])
    whiteouts = {p for p, entry in got[child["uuid"]].items() if entry[0] == "other"}
    assert whiteouts == {"etc/issue.net", "bin/vi", "var/log/old"}
    assert got[base["uuid"]]["home/user/notes.txt"][2:4] == (1000, 1000)
    assert got[base["uuid"]]["usr/bin/su-helper"][1] == "0o4755"
    assert child_view(imgadm_root, child["uuid"], tmp_path) == tree_content(trees[1])
    assert partial_layers(imgadm_root) == []
    assert os.listdir(imgadm_root / "var" / "imgadm" / "downloads") == []


def test_from_a_slow_source_the_layer_fills_as_the_file_comes(
        tmp_path: Path, imgadm_root: Path, packed: Callable[[str], Images],
        trees: tuple[Path, Path]) -> None:
    """A source sending 200 kB/s (a network slower than the unpacking): most of the base's
    files are in its layer while a good part of the download is still to come."""
    images = packed("xz")
    base, child = images["base"][2], images["child"][2]
    size = base["files"][0]["size"]
    partial = imgadm_root / "var" / "imgadm" / "downloads" / f"{base['uuid']}.file.partial"
    layer = imgadm_root / "zones" / f"{base['uuid']}-partial"
    with source(tmp_path, images, {"rate": 200_000}) as server:
        use_sources(imgadm_root, server.url)
        proc = start_import(imgadm_root, child["uuid"])
        wait_for(lambda: (layer / "bin" / "busybox").exists() or proc.poll() is not None)
        had = partial.stat().st_size
        assert had < size * 9 // 10, (had, size)  # busybox is the tar's first big member
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert streamed(err) == {base["uuid"]: True, child["uuid"]: True}
    assert child_view(imgadm_root, child["uuid"], tmp_path) == tree_content(trees[1])


@pytest.mark.parametrize("compression", ("gzip", "xz", "zstd"))
def test_a_dropped_connection_resumes_the_compressed_stream(
        compression: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images], trees: tuple[Path, Path]) -> None:
    """The resumed download appends to the file the decompressor reads: the same stream goes
    on, and the layer it made is the one installed."""
    images = packed(compression)
    base, child = images["base"][2], images["child"][2]
    half = base["files"][0]["size"] // 2
    assert child["files"][0]["size"] < half  # the child's download is not cut
    with source(tmp_path, images, {"close_first": 2, "close_after": half}) as server:
        use_sources(imgadm_root, server.url)
        proc = start_import(imgadm_root, child["uuid"])
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        requests = server.file_requests(base["uuid"], at_least=2)
    assert "(fault: connection dropped)" in requests[0]
    assert requests[1].startswith(f"GET /images/{base['uuid']}/file range=bytes={half}- -> 206")
    assert streamed(err) == {base["uuid"]: True, child["uuid"]: True}
    assert child_view(imgadm_root, child["uuid"], tmp_path) == tree_content(trees[1])
    assert partial_layers(imgadm_root) == []


@pytest.mark.parametrize("compression", ("gzip", "xz", "zstd"))
def test_a_sha1_mismatch_at_the_end_leaves_nothing(
        compression: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images]) -> None:
    images = packed(compression)
    with source(tmp_path, images, {"wrong_sha1": True}) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", images["child"][2]["uuid"]),
                             "DownloadError")
    assert "the file has SHA-1 " in message and "(the download was deleted)" in message
    assert_nothing_installed(imgadm_root)


@pytest.mark.parametrize("compression", ("gzip", "zstd"))
def test_ctrl_c_mid_download_then_the_import_resumes_the_stream(
        compression: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images], trees: tuple[Path, Path]) -> None:
    images = packed(compression)
    base, child = images["base"][2], images["child"][2]
    faults = {**stalled_base(images), "stall_seconds": 60}
    partial = imgadm_root / "var" / "imgadm" / "downloads" / f"{base['uuid']}.file.partial"
    layer = imgadm_root / "zones" / f"{base['uuid']}-partial"
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        proc = start_import(imgadm_root, child["uuid"])
        wait_for(lambda: partial.exists() and partial.stat().st_size == faults["stall_after"]
                 and (layer / "bin" / "busybox").exists())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.splitlines()[-1] == "imgadm import: error (Interrupted): interrupted by SIGINT"
        assert_nothing_installed(imgadm_root)  # no -partial layer either
        assert partial.stat().st_size == faults["stall_after"]  # kept for the next import
        again = start_import(imgadm_root, child["uuid"])
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert server.file_requests(base["uuid"])[-1].startswith(
            f"GET /images/{base['uuid']}/file range=bytes={faults['stall_after']}- -> 206")
    # the base's resumed file was unpacked from its first byte while the rest came; the
    # child's, verified by the first run, was used as it is (and unpacked by the install)
    assert streamed(err) == {base["uuid"]: True, child["uuid"]: False}
    assert child_view(imgadm_root, child["uuid"], tmp_path) == tree_content(trees[1])
    assert partial_layers(imgadm_root) == []


def compressed_tar(path: Path, compression: str, members: list[tuple[str, bytes]]) -> Path:
    """A tar of ``members`` (name, data) compressed with the system's own compressor."""
    plain = path.with_suffix(".plain")
    with tarfile.open(plain, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tool = {"gzip": ["gzip", "-c"], "bzip2": ["bzip2", "-c"], "xz": ["xz", "-c"],
            "zstd": ["zstd", "-qc"]}[compression]
    with open(path, "wb") as out:
        subprocess.run([*tool, str(plain)], stdout=out, check=True)
    plain.unlink()
    return path


@pytest.mark.parametrize("compression", ("gzip", "zstd"))
def test_a_hostile_compressed_child_is_refused_with_nothing_installed(
        compression: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images]) -> None:
    images = packed(compression)
    base = images["base"][2]
    filler = os.urandom(1 << 20)  # the hostile member comes after a MiB of good data
    hostile = compressed_tar(tmp_path / "hostile", compression,
                             [("etc/ok", filler), ("../escape", b"owned")])
    with source(tmp_path, images, which=("base",)) as server:
        put_image(server.directory, {"uuid": HOSTILE_UUID, "name": "hostile", "version": "1",
                                     "type": "zone-dataset", "os": "linux",
                                     "origin": base["uuid"]}, hostile, compression)
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", HOSTILE_UUID)
    message = error_line(proc, "InvalidImageFile")
    assert "'../escape'" in message and "'..' component" in message
    assert f"Imported image {base['uuid']} (base@1.0.0)" in proc.stdout  # then undone:
    assert_nothing_installed(imgadm_root)
    assert not (tmp_path / "escape").exists() and not (imgadm_root / "escape").exists()
    assert not (imgadm_root / "zones" / "escape").exists()


@pytest.mark.parametrize("compression", COMPRESSED)
def test_a_truncated_compressed_stream_is_an_uncompression_error(
        compression: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images]) -> None:
    """The publisher's file itself is cut short (its SHA-1 is the manifest's): the download
    verifies, the decompressor meets the end of the data: one clear error, nothing kept."""
    whole = packed(compression)["base"][1].read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    uuid = "6e5d4c3b-2a19-4807-9f6e-5d4c3b2a1908"
    with imgapi(tmp_path / "served") as server:
        put_image(server.directory, {"uuid": uuid, "name": "cut", "version": "1",
                                     "type": "zone-dataset", "os": "linux"}, cut, compression)
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", uuid, timeout=60)
    message = error_line(proc, "UncompressionError")
    assert message.startswith(str(imgadm_root / "var/imgadm/downloads" / f"{uuid}.file"))
    assert_nothing_installed(imgadm_root)


@pytest.mark.parametrize(("says", "is_"), [("gzip", "xz"), ("none", "zstd"), ("zstd", "none")])
def test_a_manifest_that_lies_about_the_compression_fails_cleanly(
        says: str, is_: str, tmp_path: Path, imgadm_root: Path,
        packed: Callable[[str], Images], plain_images: Images) -> None:
    file = (plain_images if is_ == "none" else packed(is_))["base"][1]
    uuid = "5f4e3d2c-1b0a-4f9e-8d7c-6b5a49382716"
    with imgapi(tmp_path / "served") as server:
        put_image(server.directory, {"uuid": uuid, "name": "liar", "version": "1",
                                     "type": "zone-dataset", "os": "linux"}, file, says)
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", uuid, timeout=60)
    message = error_line(proc, "UncompressionError")
    assert message.endswith(f"files[0].compression says {says!r}, the file's magic bytes say "
                            f"{is_!r}")
    assert_nothing_installed(imgadm_root)


@pytest.mark.parametrize("compression", ("gzip", "zstd"))
def test_an_earlier_runs_wrong_bytes_are_not_installed(
        compression: str, tmp_path: Path, imgadm_root: Path) -> None:
    """A ``.partial`` an earlier run left whose bytes are not this file's: the decompressor
    read them; the SHA-1 fails at the end, the client starts again from zero, and the install
    unpacks the verified file instead of what was streamed."""
    data = bytes(range(256)) * 4096  # 1 MiB, compressible
    image = compressed_tar(tmp_path / "image", compression, [("data.bin", data)])
    uuid = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98"
    downloads = imgadm_root / "var" / "imgadm" / "downloads"
    downloads.mkdir(parents=True)
    wrong = bytearray(image.read_bytes())
    wrong[len(wrong) // 2] ^= 0xFF
    (downloads / f"{uuid}.file.partial").write_bytes(wrong[: len(wrong) * 3 // 4])
    with imgapi(tmp_path / "served") as server:
        put_image(server.directory, {"uuid": uuid, "name": "plain", "version": "1",
                                     "type": "zone-dataset", "os": "linux"}, image, compression)
        use_sources(imgadm_root, server.url)
        proc = start_import(imgadm_root, uuid)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        requests = server.file_requests(uuid, at_least=2)
    assert requests[0].startswith(f"GET /images/{uuid}/file range=bytes={len(wrong) * 3 // 4}-")
    assert requests[1].startswith(f"GET /images/{uuid}/file -> 200")
    assert streamed(err) == {uuid: False}
    assert (imgadm_root / "zones" / uuid / "data.bin").read_bytes() == data
    assert partial_layers(imgadm_root) == [] and os.listdir(downloads) == []


def test_a_full_pool_while_unpacking_a_zstd_stream(tmp_path: Path, imgadm_root: Path,
                                                   packed: Callable[[str], Images]) -> None:
    images = packed("zstd")
    with small_disk(imgadm_root / "zones", "64k") as pool:
        with source(tmp_path, images) as server:
            use_sources(imgadm_root, server.url)
            proc = imgadm(imgadm_root, "import", images["child"][2]["uuid"], timeout=60)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        assert "No space left on device" in proc.stderr.splitlines()[-1], proc.stderr
        assert ImageStore(imgadm_root).list() == [] and os.listdir(pool) == []


@pytest.mark.parametrize("compression", COMPRESSED)
def test_the_reader_follows_a_file_being_written_and_stops_when_told(
        compression: str, tmp_path: Path, packed: Callable[[str], Images]) -> None:
    """open_decompressed over Growing: the bytes come as a writer appends them (in small
    pieces, with pauses); a reader waiting for bytes that do not come stops once told, with
    Stopped, and closing it does not hang (zstd's feeding thread included)."""
    file = packed(compression)["base"][1]
    whole = file.read_bytes()
    with open_decompressed(file) as raw:
        expected = raw.read()
    target = tmp_path / "growing"
    partial = target.with_name(target.name + ".partial")

    def write(upto: int) -> None:
        with open(partial, "wb") as out:
            for start in range(0, upto, 50_000):
                out.write(whole[start:min(start + 50_000, upto)])
                out.flush()
                time.sleep(0.002)

    writer = threading.Thread(target=write, args=(len(whole),))
    stop = threading.Event()
    writer.start()
    with Growing(partial, len(whole), stop) as growing, \
            open_decompressed(target, growing) as raw:  # type: ignore[arg-type]
        got = b"".join(iter(lambda: raw.read(1 << 16), b""))
    writer.join()
    assert got == expected
    partial.unlink()

    writer = threading.Thread(target=write, args=(len(whole) // 2,))
    writer.start()
    writer.join()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped), Growing(partial, len(whole), stop) as growing, \
            open_decompressed(target, growing) as raw:  # type: ignore[arg-type]
        while raw.read(1 << 16):
            pass
    assert time.monotonic() - started < 10
