"""Image import throughput: ``imgadm import`` against ``curl -o`` + ``sha1sum`` of the same file.

Builds an image of incompressible bytes (compression none; a zvol by default, whose file is the
disk itself, or ``--type zone-dataset``: a tar of one file), serves it from ``imgapi`` on
loopback, and times, turn about, a fresh ``imgadm import -q`` (download with the SHA-1 computed
while streaming, then the install into the pool) and ``curl -s -o FILE URL && sha1sum FILE``
(the least a client that verifies can do). Prints both medians and the ratio of the import's
throughput to curl's (goal: >= 0.9). Both read the same file from the same server, which has it
in the page cache after the warm-up run.

With ``--compression gzip|bzip2|xz|zstd`` the image is a compressible tree instead: the first
``--size-mib`` of the regular files under ``--tree`` (/usr/lib by default, a sorted walk),
written as a zone-dataset image with that compression by liveforge's own writer. Each run then
also times ``imgadm install -m -f`` of the same file (its unpacking alone), so that the import
is compared with download + unpack one after the other, what an import that unpacks only after
the download costs.

    python bench/import.py [--size-mib 1024] [--runs 3] [--type zvol|zone-dataset]
                           [--compression none|gzip|bzip2|xz|zstd] [--tree DIR]
                           [--rate-mib R]

``--rate-mib`` has the server send no faster than that (its fault mode's ``rate``), for both
curl and the import: a source behind a real network rather than loopback, where the download
leaves the processor free for the unpacking.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

UUID = "b3c5e0f2-6d1a-4c3e-9f7b-2a8d0e4c6b1a"


def make_image(directory: Path, size_mib: int, kind: str) -> tuple[Path, dict[str, object]]:
    """The image file (random bytes, or a tar of them) and its manifest."""
    raw = directory / "disk.raw"
    with open(raw, "wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(1 << 20))
    if kind == "zvol":
        file = raw
    else:
        file = directory / "image.tar"
        with tarfile.open(file, "w", format=tarfile.PAX_FORMAT) as tar:
            info = tar.gettarinfo(str(raw), "data.bin")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with open(raw, "rb") as handle:
                tar.addfile(info, handle)
        raw.unlink()
    digest = hashlib.sha1()
    with open(file, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    manifest: dict[str, object] = {
        "v": 2, "uuid": UUID, "name": "bench", "version": "1", "type": kind, "os": "linux",
        "state": "active", "published_at": "2026-12-01T00:00:00.000Z",
        "files": [{"sha1": digest.hexdigest(), "size": file.stat().st_size,
                   "compression": "none"}]}
    if kind == "zvol":
        manifest["image_size"] = size_mib
    return file, manifest


def make_tree_image(directory: Path, size_mib: int, tree: Path,
                    compression: str) -> tuple[Path, dict[str, object], str]:
    """A tree image of the first ``size_mib`` of regular files under ``tree`` (copied, modes
    kept), with ``compression``; its file, manifest and a line saying what it holds."""
    from liveforge.img.layer import write_tree

    root = directory / "tree"
    want, total, count = size_mib << 20, 0, 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or st.st_size > 32 << 20 or total >= want:
                continue
            target = root / os.path.relpath(full, tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(full, target)
            except OSError:
                continue
            os.chmod(target, stat.S_IMODE(st.st_mode))
            total, count = total + st.st_size, count + 1
    if total < want:
        sys.exit(f"{tree} holds only {total >> 20} MiB of regular files")
    layer = write_tree(root, directory / "image.tar", compression, mtime=0)
    shutil.rmtree(root)
    manifest: dict[str, object] = {
        "v": 2, "uuid": UUID, "name": "bench", "version": "1", "type": "zone-dataset",
        "os": "linux", "state": "active", "published_at": "2026-12-01T00:00:00.000Z",
        "files": [layer.manifest_file()]}
    what = (f"image: zone-dataset, {total / (1 << 20):.0f} MiB in {count} files from {tree}, "
            f"{compression}: {layer.size / (1 << 20):.1f} MiB")
    return layer.path, manifest, what


def serve(directory: Path, file: Path, manifest: dict[str, object],
          log: Path, rate_mib: float = 0) -> tuple[subprocess.Popen[bytes], str]:
    """imgapi on a free loopback port, serving the one image (at ``rate_mib`` MiB/s when not
    0); (process, URL)."""
    folder = directory / UUID
    folder.mkdir(parents=True)
    os.link(file, folder / "file")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    config = []
    if rate_mib:
        conf = directory.parent / "imgapi.json"
        conf.write_text(json.dumps({"faults": {"rate": int(rate_mib * (1 << 20))}}))
        config = ["-c", str(conf)]
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.server.cli", "--port", "0",
                                 *config, str(directory)], stdout=handle, stderr=handle)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"on (http://\S+)", log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"imgapi did not start:\n{log.read_text()}")


def imgadm_command() -> list[str]:
    """The installed ``imgadm``, its modules byte-compiled first (as an install does)."""
    import liveforge

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(liveforge.__file__).parent)],
                   check=True)
    return [str(Path(sys.executable).parent / "imgadm")]


def time_curl(url: str, out: Path, sha1: str) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", str(out), url], check=True)
    got = subprocess.run(["sha1sum", str(out)], check=True, capture_output=True,
                         text=True).stdout.split()[0]
    took = time.perf_counter() - start
    if got != sha1:
        sys.exit(f"curl's download has sha1 {got}, not {sha1}")
    out.unlink()
    return took


def time_import(imgadm: list[str], url: str, root: Path) -> float:
    (root / "var" / "imgadm").mkdir(parents=True)
    (root / "var" / "imgadm" / "imgadm.conf").write_text(
        json.dumps({"sources": [{"url": url, "type": "imgapi"}]}))
    env = dict(os.environ, IMGADM_ROOT=str(root))
    start = time.perf_counter()
    proc = subprocess.run(imgadm + ["import", "-q", UUID], env=env, capture_output=True,
                          text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"imgadm import failed: {proc.stderr}")
    shutil.rmtree(root)
    return took


def time_install(imgadm: list[str], manifest: dict[str, object], file: Path,
                 root: Path) -> float:
    """``imgadm install -m -f`` of the image file: its unpacking alone."""
    (root / "var" / "imgadm").mkdir(parents=True)
    (root / "var" / "imgadm" / "imgadm.conf").write_text(json.dumps({"sources": []}))
    (root / "manifest.json").write_text(json.dumps(manifest))
    env = dict(os.environ, IMGADM_ROOT=str(root))
    start = time.perf_counter()
    proc = subprocess.run(imgadm + ["install", "-q", "-m", str(root / "manifest.json"), "-f",
                                    str(file)], env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"imgadm install failed: {proc.stderr}")
    shutil.rmtree(root)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--type", choices=("zvol", "zone-dataset"), default="zvol")
    ap.add_argument("--compression", choices=("none", "gzip", "bzip2", "xz", "zstd"),
                    default="none", help="a compressible tree image with this compression")
    ap.add_argument("--tree", type=Path, default=Path("/usr/lib"),
                    help="where the compressible tree's files come from (/usr/lib)")
    ap.add_argument("--rate-mib", type=float, default=0,
                    help="the server sends at no more than this many MiB/s (a network slower "
                         "than loopback; default: as fast as it goes)")
    args = ap.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed (apt-get install curl)")
    tree = args.compression != "none"
    imgadm = imgadm_command()
    import liveforge

    print(f"liveforge: {Path(liveforge.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="bench-import.") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        if tree:
            file, manifest, what = make_tree_image(work, args.size_mib, args.tree,
                                                   args.compression)
        else:
            file, manifest = make_image(work, args.size_mib, args.type)
            what = f"image: {args.type}, {args.size_mib} MiB incompressible, compression none"
        made = time.perf_counter() - start
        size = manifest["files"][0]["size"]  # type: ignore[index]
        sha1 = manifest["files"][0]["sha1"]  # type: ignore[index]
        proc, url = serve(work / "served", file, manifest, work / "imgapi.log", args.rate_mib)
        file_url = f"{url}/images/{UUID}/file"
        try:
            time_curl(file_url, work / "curl.out", sha1)  # warm-up: the file in the page cache
            curl_times, install_times, import_times = [], [], []
            for run in range(args.runs):
                curl_times.append(time_curl(file_url, work / "curl.out", sha1))
                if tree:
                    install_times.append(time_install(imgadm, manifest, file,
                                                      work / f"installed{run}"))
                import_times.append(time_import(imgadm, url, work / f"root{run}"))
        finally:
            proc.terminate()
            proc.wait()
    curl, ours = statistics.median(curl_times), statistics.median(import_times)
    mib = size / (1 << 20)
    print(f"{what} (made in {made:.1f} s)")
    if args.rate_mib:
        print(f"source: imgapi on loopback, sending at {args.rate_mib:g} MiB/s")
    print(f"curl -o + sha1sum: {curl:.2f} s, {mib / curl:.0f} MiB/s (median of {args.runs})")
    if install_times:
        unpack = statistics.median(install_times)
        print(f"imgadm install -m -f (the unpacking alone): {unpack:.2f} s "
              f"(median of {args.runs})")
    print(f"imgadm import:     {ours:.2f} s, {mib / ours:.0f} MiB/s of the file "
          f"(median of {args.runs})")
    print(f"ratio import/curl throughput: {curl / ours:.2f} "
          + ("(curl does not unpack)" if install_times else "(goal >= 0.9)"))
    if install_times:
        print(f"ratio import/(curl + install) time: {ours / (curl + unpack):.2f} (download "
              "then unpack: about 1; unpacked while downloading: below)")


if __name__ == "__main__":
    main()
