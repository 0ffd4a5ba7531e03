"""imgadm import/avail/show/publish against the real imgapi on loopback, with the busybox base
image and its child: the whole ancestry lands and the child's view is exactly its tree; every
fault ends in one clear error line with nothing installed and no ``-partial`` left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from liveforge.img.store import ImageStore
from liveforge.img.view import mount_view, unmount_view
from tests.support.disks import small_disk
from tests.support.images import imgadm, tree_content
from tests.support.imgapi import TOKEN, Server, imgapi, put_image

Images = dict[str, tuple[Path, Path, dict[str, Any]]]


def mib(size: int) -> str:
    tenths = size * 10 // (1 << 20)
    return f"{tenths // 10}.{tenths % 10} MiB"


def use_sources(root: Path, *urls: str) -> None:
    conf = root / "var" / "imgadm" / "imgadm.conf"
    conf.write_text(json.dumps({"sources": [{"url": u, "type": "imgapi"} for u in urls]}))


@contextmanager
def source(tmp_path: Path, images: Images, faults: dict[str, Any] | None = None,
           which: tuple[str, ...] = ("base", "child")) -> Iterator[Server]:
    """An imgapi serving the base and child images (or those named in ``which``)."""
    directory = tmp_path / f"served-{len(list(tmp_path.glob('served-*')))}"
    for name in which:
        _, file, manifest = images[name]
        put_image(directory, manifest, file, manifest["files"][0]["compression"])
    with imgapi(directory, {"faults": faults} if faults else None) as server:
        yield server


def assert_nothing_installed(root: Path) -> None:
    store = ImageStore(root)
    assert store.list() == []
    pool = root / "zones"
    assert not pool.exists() or os.listdir(pool) == []
    downloads = root / "var" / "imgadm" / "downloads"
    assert not downloads.exists() or not any(n.endswith("-partial")
                                             for n in os.listdir(downloads))


def error_line(proc: subprocess.CompletedProcess[str], code: str) -> str:
    """The one stderr line of a failed import, checked for its form; returns its message."""
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "warning" not in line]
    assert len(lines) == 1, proc.stderr
    prefix = f"imgadm import: error ({code}): "
    assert lines[0].startswith(prefix), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0][len(prefix):]


def test_import_of_the_child_installs_its_ancestry_and_its_tree(
        tmp_path: Path, imgadm_root: Path, images: Images, trees: tuple[Path, Path]) -> None:
    base, child = images["base"][2], images["child"][2]
    with source(tmp_path, images) as server:
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", child["uuid"])
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""  # no TTY: no progress bars
        sizes = {m["uuid"]: m["files"][0]["size"] for m in (base, child)}
        lines = proc.stdout.splitlines()
        assert lines[:3] == [
            f'Importing {child["uuid"]} (child@1.0.0) from "{server.url}"',
            f"Gather image {child['uuid']} ancestry",
            f"Must download and install 2 image(s) ({mib(sum(sizes.values()))})"]
        assert sorted(lines[3:5]) == sorted(f"Downloaded image {u} ({mib(s)})"
                                            for u, s in sizes.items())
        assert lines[5:] == [f"Imported image {base['uuid']} (base@1.0.0)",
                             f"Imported image {child['uuid']} (child@1.0.0)"]
        # a second import finds it installed
        again = imgadm(imgadm_root, "import", child["uuid"])
        assert again.returncode == 0
        assert again.stdout == (f"Image {child['uuid']} (child 1.0.0) is already installed, "
                                "skipping\n")
    store = ImageStore(imgadm_root)
    assert [i.uuid for i in store.ancestry(child["uuid"])] == [child["uuid"], base["uuid"]]
    assert store.get(child["uuid"]).source == server.url
    assert sorted(os.listdir(imgadm_root / "zones")) == sorted([base["uuid"], child["uuid"]])
    assert os.listdir(imgadm_root / "var" / "imgadm" / "downloads") == []
    view = tmp_path / "view"
    for name in ("upper", "work", "view"):
        (tmp_path / name).mkdir()
    mount_view(store.lower_dirs(child["uuid"]), tmp_path / "upper", tmp_path / "work", view)
    try:
        got = tree_content(view)
    finally:
        unmount_view(view)
    assert got == tree_content(trees[1])
    assert got["etc/hostname"][4] == b"child\n" and got["etc/profile"][1] == "0o600"
    assert got["opt/app/run.sh"][1] == "0o700" and got["usr/bin/su-helper"][1] == "0o4755"
    for deleted in ("etc/issue.net", "bin/vi", "var/log/old", "var/log/old/boot.log"):
        assert deleted not in got


def test_an_installed_ancestor_is_skipped(tmp_path: Path, imgadm_root: Path,
                                          images: Images) -> None:
    base, child = images["base"][2], images["child"][2]
    with source(tmp_path, images) as server:
        use_sources(imgadm_root, server.url)
        assert imgadm(imgadm_root, "import", base["uuid"]).returncode == 0
        proc = imgadm(imgadm_root, "import", "-q", child["uuid"])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            f'Importing {child["uuid"]} (child@1.0.0) from "{server.url}"',
            f"Gather image {child['uuid']} ancestry",
            f"Image {base['uuid']} already installed",
            f"Must download and install 1 image(s) ({mib(child['files'][0]['size'])})",
            f"Downloaded image {child['uuid']} ({mib(child['files'][0]['size'])})",
            f"Imported image {child['uuid']} (child@1.0.0)"]
        assert len(server.file_requests(base["uuid"])) == 1


def test_the_first_source_with_an_active_manifest_wins(tmp_path: Path, imgadm_root: Path,
                                                       images: Images) -> None:
    base = dict(images["base"][2], state="disabled")
    with source(tmp_path, {"base": (images["base"][0], images["base"][1], base)},
                which=("base",)) as first, source(tmp_path, images, which=("base",)) as second:
        use_sources(imgadm_root, first.url, second.url)
        proc = imgadm(imgadm_root, "import", base["uuid"])
        assert proc.returncode == 0, proc.stderr
        assert f'from "{second.url}"' in proc.stdout.splitlines()[0]
        assert first.file_requests(base["uuid"]) == []


def test_a_sha1_mismatch(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    child = images["child"][2]
    with source(tmp_path, images, {"wrong_sha1": True}) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", child["uuid"]), "DownloadError")
    assert "the file has SHA-1 " in message and "(the download was deleted)" in message
    assert_nothing_installed(imgadm_root)


def test_a_size_mismatch(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    child = images["child"][2]
    with source(tmp_path, images, {"wrong_size": True}) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", child["uuid"]), "DownloadError")
    assert "Content-Length is " in message and "files[0].size says" in message
    assert_nothing_installed(imgadm_root)


def test_a_missing_content_length(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    child = images["child"][2]
    with source(tmp_path, images, {"no_content_length": True}) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", child["uuid"]), "DownloadError")
    assert "the answer has no Content-Length" in message
    assert_nothing_installed(imgadm_root)


def test_a_connection_closed_mid_stream_is_resumed(tmp_path: Path, imgadm_root: Path,
                                                   images: Images) -> None:
    base, child = images["base"][2], images["child"][2]
    faults = {"close_first": 2, "close_after": 100}
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", child["uuid"])
        assert proc.returncode == 0, proc.stderr
        dropped = [r for r in server.requests() if "connection dropped" in r]
        resumed = [r for r in server.requests() if "range=bytes=100- -> 206" in r]
    assert len(dropped) == 2 and len(resumed) == 2
    assert [i.uuid for i in ImageStore(imgadm_root).ancestry(child["uuid"])] == [
        child["uuid"], base["uuid"]]


def test_500s_then_success(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    child = images["child"][2]
    with source(tmp_path, images, {"error_first": 3}) as server:
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", child["uuid"])
        assert proc.returncode == 0, proc.stderr
        assert [r.split(" -> ")[1][:3] for r in server.requests()][:3] == ["500"] * 3
    assert ImageStore(imgadm_root).get(child["uuid"]) is not None


def test_a_stalled_server_times_out_with_a_clear_error(tmp_path: Path, imgadm_root: Path,
                                                       images: Images) -> None:
    child = images["child"][2]
    faults = {"stall_first": 2, "stall_after": 100, "stall_seconds": 60}
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        start = time.monotonic()
        proc = imgadm(imgadm_root, "import", child["uuid"], env={"IMGADM_READ_TIMEOUT": "1"})
        assert time.monotonic() - start < 20
        message = error_line(proc, "DownloadError")
    assert "no data for 1 s (read timeout) after 100 of " in message
    assert_nothing_installed(imgadm_root)


def test_an_invalid_manifest(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    child = images["child"][2]
    with source(tmp_path, images) as server:
        broken = server.directory / child["uuid"] / "manifest.json"
        data = json.loads(broken.read_text())
        del data["files"]  # the server serves it (a file may come later); imgadm needs one
        broken.write_text(json.dumps(data))
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", child["uuid"])
    assert proc.returncode == 1
    assert proc.stderr == (f"imgadm import: error (ManifestValidation): {server.url}/images/"
                           f"{child['uuid']}: invalid manifest: files (is required)\n")
    assert_nothing_installed(imgadm_root)


def test_an_origin_in_no_source(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    base, child = images["base"][2], images["child"][2]
    with source(tmp_path, images, which=("child",)) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", child["uuid"]),
                             "OriginNotFoundInSource")
    assert message == (f'origin image "{base["uuid"]}" of image "{child["uuid"]}" was not '
                       "found in any image source")
    assert_nothing_installed(imgadm_root)


def test_no_sources_configured(imgadm_root: Path, images: Images) -> None:
    proc = imgadm(imgadm_root, "import", images["child"][2]["uuid"])
    assert proc.stderr == "imgadm import: error (NoSources): imgadm has no configured sources\n"
    assert proc.returncode == 1
    assert_nothing_installed(imgadm_root)


def test_an_image_in_no_source_and_an_unreachable_one(tmp_path: Path, imgadm_root: Path,
                                                      images: Images) -> None:
    missing = "11111111-2222-4333-8444-555555555555"
    with source(tmp_path, images) as server:
        use_sources(imgadm_root, server.url)
        message = error_line(imgadm(imgadm_root, "import", missing), "ActiveImageNotFound")
        assert message == f'an active image "{missing}" was not found in image sources'
    # the server is gone now: its source is unreachable, which is what the error says
    proc = imgadm(imgadm_root, "import", missing)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith(
        f'imgadm import: error (SourcePing): image source "{server.url}" is not '
        "reachable")
    assert_nothing_installed(imgadm_root)


def wait_for(what: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_during_import_then_import_again(tmp_path: Path, imgadm_root: Path,
                                                images: Images) -> None:
    base, child = images["base"][2], images["child"][2]
    faults = {"stall_first": 2, "stall_after": 100, "stall_seconds": 60}
    downloads = imgadm_root / "var" / "imgadm" / "downloads"
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "import",
                                 child["uuid"]], env=dict(os.environ, IMGADM_ROOT=str(imgadm_root)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # both downloads have their first 100 bytes and wait for more
        wait_for(lambda: downloads.is_dir() and sorted(
            (p.name, p.stat().st_size) for p in downloads.iterdir()) == sorted(
            (f"{m['uuid']}.file.partial", 100) for m in (base, child)))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.splitlines()[-1] == "imgadm import: error (Interrupted): interrupted by SIGINT"
        assert "Traceback" not in err
        assert_nothing_installed(imgadm_root)
        # the next import resumes both downloads from their 100 bytes
        again = imgadm(imgadm_root, "import", child["uuid"])
        assert again.returncode == 0, again.stderr
        for m in (base, child):
            assert server.file_requests(m["uuid"])[-1].startswith(
                f"GET /images/{m['uuid']}/file range=bytes=100- -> 206")
    assert [i.uuid for i in ImageStore(imgadm_root).ancestry(child["uuid"])] == [
        child["uuid"], base["uuid"]]
    assert os.listdir(downloads) == []


def test_a_second_import_waits_for_the_lock_then_finds_it_installed(
        tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    base = images["base"][2]
    faults = {"stall_first": 1, "stall_after": 100, "stall_seconds": 2}
    env = dict(os.environ, IMGADM_ROOT=str(imgadm_root))
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        first = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "import",
                                  base["uuid"]], env=env, stdout=subprocess.PIPE, text=True)
        # the first holds the lock once it downloads
        wait_for(lambda: (imgadm_root / "var/imgadm/downloads").is_dir())
        second = imgadm(imgadm_root, "import", base["uuid"])
        first_out, _ = first.communicate(timeout=30)
    assert first.returncode == 0 and f"Imported image {base['uuid']}" in first_out
    assert second.returncode == 0, second.stderr
    assert second.stdout == (f"Waiting for image {base['uuid']} import lock\n"
                             f"Image {base['uuid']} (base 1.0.0) is already installed, "
                             "skipping\n")


def test_avail_and_show(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    base, child = images["base"][2], images["child"][2]
    with source(tmp_path, images) as server:
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "avail")
        assert proc.returncode == 0, proc.stderr
        rows = sorted(proc.stdout.splitlines()[1:])
        assert proc.stdout.splitlines()[0].split() == ["UUID", "NAME", "VERSION", "OS", "TYPE",
                                                       "PUB"]
        assert rows == sorted(f"{m['uuid']}  {m['name']}  1.0.0    linux  zone-dataset  "
                              "2026-11-01".replace(f"{m['name']}  ", f"{m['name']:<5}  ")
                              for m in (base, child))
        proc = imgadm(imgadm_root, "avail", "name=~chi", "-H", "-o", "uuid,size,source")
        assert proc.stdout == (f"{child['uuid']}  {child['files'][0]['size']}  "
                               f"{server.url}\n")
        proc = imgadm(imgadm_root, "avail", "-j", "name=base")
        assert json.loads(proc.stdout) == [{"manifest": dict(base, v=2), "source": server.url}]
        proc = imgadm(imgadm_root, "show", child["uuid"])
        assert proc.returncode == 0
        assert proc.stdout == json.dumps(json.loads(
            (server.directory / child["uuid"] / "manifest.json").read_text()), indent=2) + "\n"
        proc = imgadm(imgadm_root, "show", "11111111-2222-4333-8444-555555555555")
        assert proc.returncode == 1 and proc.stderr == (
            "imgadm show: error (ImageNotFound): image \"11111111-2222-4333-8444-555555555555\" "
            "was not found in image sources\n")


def test_publish_then_import(tmp_path: Path, imgadm_root: Path, images: Images) -> None:
    manifest_file, file, base = images["base"]
    with imgapi(tmp_path / "empty") as server:
        proc = imgadm(imgadm_root, "publish", "-m", str(manifest_file), "-f", str(file),
                      server.url)
        assert proc.returncode == 1
        assert "publishing needs the server's token in $IMGAPI_TOKEN" in proc.stderr
        proc = imgadm(imgadm_root, "publish", "-m", str(manifest_file), "-f", str(file),
                      server.url, env={"IMGAPI_TOKEN": "wrong"})
        assert proc.returncode == 1 and "error (UnauthorizedError)" in proc.stderr
        proc = imgadm(imgadm_root, "publish", "-m", str(manifest_file), "-f", str(file),
                      server.url, env={"IMGAPI_TOKEN": TOKEN})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == f"Published image {base['uuid']} (base@1.0.0)"
        served = json.loads((server.directory / base["uuid"] / "manifest.json").read_text())
        assert served == base  # state active, files and published_at as given
        use_sources(imgadm_root, server.url)
        assert imgadm(imgadm_root, "import", base["uuid"]).returncode == 0
    assert ImageStore(imgadm_root).get(base["uuid"]) is not None


def test_publish_refuses_a_file_that_is_not_the_manifests(tmp_path: Path, imgadm_root: Path,
                                                          images: Images) -> None:
    manifest_file, _, base = images["base"]
    other = tmp_path / "other"
    other.write_bytes(b"x" * base["files"][0]["size"])
    with imgapi(tmp_path / "empty") as server:
        proc = imgadm(imgadm_root, "publish", "-m", str(manifest_file), "-f", str(other),
                      server.url, env={"IMGAPI_TOKEN": TOKEN})
        assert proc.returncode == 1
        assert proc.stderr.startswith(f"imgadm publish: error (InvalidImageFile): {other}: "
                                      "sha1 is ")
        assert server.requests() == []


def test_a_full_disk_during_the_download(tmp_path: Path, imgadm_root: Path,
                                         images: Images) -> None:
    child = images["child"][2]
    with small_disk(imgadm_root / "var" / "imgadm" / "downloads", "64k"):
        with source(tmp_path, images) as server:
            use_sources(imgadm_root, server.url)
            message = error_line(imgadm(imgadm_root, "import", child["uuid"]), "DownloadError")
        assert "cannot write " in message and message.endswith("No space left on device")
        assert_nothing_installed(imgadm_root)


def test_import_of_a_zvol_renames_its_verified_download_into_the_pool(
        tmp_path: Path, imgadm_root: Path) -> None:
    disk = os.urandom(3 << 20)
    uuid = "5d3f7a2e-8c41-4b9e-a0d2-6e1f3c5b7a90"
    with imgapi(tmp_path / "served") as server:
        put_image(server.directory, {"uuid": uuid, "name": "disk", "version": "2",
                                     "type": "zvol", "os": "linux", "image_size": 3}, disk)
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", uuid)
        assert proc.returncode == 0, proc.stderr
    installed = imgadm_root / "zones" / f"{uuid}.img"
    assert installed.read_bytes() == disk
    assert oct(installed.stat().st_mode & 0o777) == "0o444"
    assert installed.stat().st_nlink == 1  # moved, not linked: nothing else can change it
    assert os.listdir(imgadm_root / "var" / "imgadm" / "downloads") == []
    assert proc.stdout.splitlines()[-1] == f"Imported image {uuid} (disk@2)"


def run_on_a_terminal(root: Path, *args: str) -> tuple[int, str, str]:
    """imgadm with stderr on a pseudo-terminal, stdout a pipe: (status, stdout, terminal)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", *args],
                            env=dict(os.environ, IMGADM_ROOT=str(root), COLUMNS="120"),
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(), out, seen.decode(errors="replace")


def test_progress_bars_on_a_terminal_only_and_not_with_q(tmp_path: Path, imgadm_root: Path,
                                                         images: Images) -> None:
    base, child = images["base"][2], images["child"][2]
    faults = {"stall_first": 4, "stall_after": 100, "stall_seconds": 1}
    with source(tmp_path, images, faults) as server:
        use_sources(imgadm_root, server.url)
        status, out, terminal = run_on_a_terminal(imgadm_root, "import", base["uuid"])
        assert status == 0, terminal
        assert "\x1b" not in out  # stdout stays plain lines
        assert out.splitlines()[-1] == f"Imported image {base['uuid']} (base@1.0.0)"
        assert f"{base['uuid'][:8]} base@1.0.0" in terminal and "\x1b[" in terminal
        status, out, terminal = run_on_a_terminal(imgadm_root, "import", "-q", child["uuid"])
        assert status == 0 and terminal == ""
        assert out.splitlines()[-1] == f"Imported image {child['uuid']} (child@1.0.0)"


def test_import_from_the_source_given_with_S(tmp_path: Path, imgadm_root: Path,
                                             images: Images) -> None:
    base = images["base"][2]
    with source(tmp_path, images, which=("base",)) as server:
        proc = imgadm(imgadm_root, "import", "-S", server.url + "/", base["uuid"])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[0] == (f'Importing {base["uuid"]} (base@1.0.0) from '
                                               f'"{server.url}"')
    assert ImageStore(imgadm_root).get(base["uuid"]).source == server.url
    proc = imgadm(imgadm_root, "import", "-S", "ftp://nowhere", base["uuid"])
    assert proc.returncode == 0  # installed already: no source is asked
    proc = imgadm(imgadm_root, "import", "-S", "ftp://nowhere", images["child"][2]["uuid"])
    assert proc.returncode == 1 and proc.stderr.startswith(
        'imgadm import: error (Usage): invalid source URL "ftp://nowhere"')


def test_ctrl_c_once_the_download_verified_then_it_is_reused(tmp_path: Path,
                                                             imgadm_root: Path) -> None:
    """Ctrl-C after the file is downloaded and verified, while its unpacking (thousands of
    small files: slower than the download) still runs: nothing installed, the verified
    download kept and used as it is by the next import."""
    import io
    import tarfile

    image = tmp_path / "many.tar.gz"
    contents = {f"d{n // 500:02d}/f{n:05d}": os.urandom(16) * 32 for n in range(8000)}
    with tarfile.open(image, "w:gz", compresslevel=1) as tar:
        for name, data in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    uuid = "0f5e3d2c-1b0a-4978-8695-a4b3c2d1e0f9"
    pool = imgadm_root / "zones"
    download = imgadm_root / "var" / "imgadm" / "downloads" / f"{uuid}.file"
    with imgapi(tmp_path / "served") as server:
        put_image(server.directory, {"uuid": uuid, "name": "many", "version": "1",
                                     "type": "zone-dataset", "os": "linux"}, image, "gzip")
        use_sources(imgadm_root, server.url)
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "import", uuid],
                                env=dict(os.environ, IMGADM_ROOT=str(imgadm_root)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: download.exists() or proc.poll() is not None, timeout=60)
        assert (pool / f"{uuid}-partial").is_dir()  # still unpacking
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        assert "Imported image" not in out and "Traceback" not in err
        assert_nothing_installed(imgadm_root)
        assert download.stat().st_size == image.stat().st_size  # verified, kept
        again = imgadm(imgadm_root, "import", uuid)
        assert again.returncode == 0, again.stderr
        assert len(server.file_requests(uuid)) == 1  # the kept download was used
    for name in ("d00/f00000", "d07/f03999", "d15/f07999"):
        assert (pool / uuid / name).read_bytes() == contents[name]
    assert sum(len(files) for _, _, files in os.walk(pool / uuid)) == len(contents)
    assert not download.exists()


@pytest.mark.parametrize("member", ["../escape", "/etc/owned", "dev/sda"])
def test_a_hostile_child_is_refused_and_its_installed_origin_undone(
        tmp_path: Path, imgadm_root: Path, images: Images, member: str) -> None:
    import io
    import tarfile

    base = images["base"][2]
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(hostile, "w") as tar:
        info = tarfile.TarInfo(member)
        if member.startswith("dev/"):
            info.type, info.devmajor, info.devminor = tarfile.BLKTYPE, 8, 0
            tar.addfile(info)
        else:
            info.size = 5
            tar.addfile(info, io.BytesIO(b"owned"))
    uuid = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    with source(tmp_path, images, which=("base",)) as server:
        put_image(server.directory, {"uuid": uuid, "name": "hostile", "version": "1",
                                     "type": "zone-dataset", "os": "linux",
                                     "origin": base["uuid"]}, hostile)
        use_sources(imgadm_root, server.url)
        proc = imgadm(imgadm_root, "import", uuid)
    assert proc.returncode == 1
    assert proc.stderr.startswith("imgadm import: error (InvalidImageFile): "), proc.stderr
    assert member.lstrip("/").split("/")[-1] in proc.stderr
    assert f"Imported image {base['uuid']} (base@1.0.0)" in proc.stdout  # then undone:
    assert_nothing_installed(imgadm_root)
    assert not (tmp_path / "escape").exists() and not (imgadm_root / "escape").exists()


def test_two_imports_of_siblings_share_their_origin(tmp_path: Path, imgadm_root: Path,
                                                    images: Images,
                                                    trees: tuple[Path, Path]) -> None:
    from tests.support.images import write_image

    base, child = images["base"][2], images["child"][2]
    sibling_tree = tmp_path / "sibling"
    subprocess.run(["cp", "-a", str(trees[0]), str(sibling_tree)], check=True)
    (sibling_tree / "etc" / "hostname").write_text("sibling\n")
    _, sibling_file, sibling = write_image(tmp_path / "out", sibling_tree, "sibling",
                                           origin_tree=trees[0], origin=base["uuid"])
    # the first import's two downloads (base and child, at once) stall for 2 s
    faults = {"stall_first": 2, "stall_after": 100, "stall_seconds": 2}
    env = dict(os.environ, IMGADM_ROOT=str(imgadm_root))
    partial = imgadm_root / "var/imgadm/downloads" / f"{base['uuid']}.file.partial"
    with source(tmp_path, images, faults) as server:
        put_image(server.directory, sibling, sibling_file, "gzip")
        use_sources(imgadm_root, server.url)
        first = subprocess.Popen([sys.executable, "-m", "liveforge.img.cli", "import",
                                  child["uuid"]], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        # the first holds the base's lock while its download stalls
        wait_for(lambda: partial.exists() and partial.stat().st_size == 100)
        second = imgadm(imgadm_root, "import", sibling["uuid"])
        out, err = first.communicate(timeout=60)
        base_downloads = server.file_requests(base["uuid"])
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert f"Waiting for image {base['uuid']} import lock" in second.stdout
    assert len(base_downloads) == 1  # the second used the first's verified download
    store = ImageStore(imgadm_root)
    for top in (child, sibling):
        assert [i.uuid for i in store.ancestry(top["uuid"])] == [top["uuid"], base["uuid"]]
