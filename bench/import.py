"""Image import throughput: ``imgadm import`` against ``curl -o`` + ``sha1sum`` of the same file.

Builds an image of incompressible bytes (compression none; a zvol by default, whose file is the
disk itself, or ``--type zone-dataset``: a tar of one file), serves it from ``imgapi`` on
loopback, and times, turn about, a fresh ``imgadm import -q`` (download with the SHA-1 computed
while streaming, then the install into the pool) and ``curl -s -o FILE URL && sha1sum FILE``
(the least a client that verifies can do). Prints both medians and the ratio of the import's
throughput to curl's (goal: >= 0.9). Both read the same file from the same server, which has it
in the page cache after the warm-up run.

    python bench/import.py [--size-mib 1024] [--runs 3] [--type zvol|zone-dataset]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
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


def serve(directory: Path, file: Path, manifest: dict[str, object],
          log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """imgapi on a free loopback port, serving the one image; (process, URL)."""
    folder = directory / UUID
    folder.mkdir(parents=True)
    os.link(file, folder / "file")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "liveforge.img.server.cli", "--port", "0",
                                 str(directory)], stdout=handle, stderr=handle)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--type", choices=("zvol", "zone-dataset"), default="zvol")
    args = ap.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed (apt-get install curl)")
    imgadm = imgadm_command()
    with tempfile.TemporaryDirectory(prefix="bench-import.") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        file, manifest = make_image(work, args.size_mib, args.type)
        made = time.perf_counter() - start
        size = manifest["files"][0]["size"]  # type: ignore[index]
        sha1 = manifest["files"][0]["sha1"]  # type: ignore[index]
        proc, url = serve(work / "served", file, manifest, work / "imgapi.log")
        file_url = f"{url}/images/{UUID}/file"
        try:
            time_curl(file_url, work / "curl.out", sha1)  # warm-up: the file in the page cache
            curl_times, import_times = [], []
            for run in range(args.runs):
                curl_times.append(time_curl(file_url, work / "curl.out", sha1))
                import_times.append(time_import(imgadm, url, work / f"root{run}"))
        finally:
            proc.terminate()
            proc.wait()
    curl, ours = statistics.median(curl_times), statistics.median(import_times)
    mib = size / (1 << 20)
    print(f"image: {args.type}, {mib:.0f} MiB incompressible, compression none "
          f"(made in {made:.1f} s)")
    print(f"curl -o + sha1sum: {curl:.2f} s, {mib / curl:.0f} MiB/s (median of {args.runs})")
    print(f"imgadm import:     {ours:.2f} s, {mib / ours:.0f} MiB/s (median of {args.runs})")
    print(f"ratio import/curl throughput: {curl / ours:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
