"""Image files and installs: liveforge.img against GNU tar on the same tree, in the same run.

Makes a tree of small files and a few large ones, then times (median of the runs, the two
sides alternating so both see the same machine load):

- writing a gzip image file: ``layer.write_tree`` against ``tar -czf`` (GNU tar + gzip -6);
- installing it: ``ImageStore.install`` (size and SHA-1 check, checked unpack into
  ``-partial``, rename, record) against ``sha1sum`` + ``tar -xzf``.

Prints both times and the ratios (liveforge / tar; lower is better).

    python bench/layers.py [--files 5000] [--big-mib 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from liveforge.img.layer import write_tree  # noqa: E402
from liveforge.img.manifest import validate  # noqa: E402
from liveforge.img.store import ImageStore  # noqa: E402
from tests.support.images import manifest_for  # noqa: E402


def make_tree(root: Path, files: int, big_mib: int) -> None:
    for i in range(files):
        directory = root / f"d{i // 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:05d}.txt").write_text(f"file {i}\n" * (1 + i % 50))
    chunk = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as out:
        for i in range(big_mib):
            out.write(chunk if i % 2 else bytes(1 << 20))


def timed(argv: list[str] | None = None, call=None) -> float:  # type: ignore[no-untyped-def]
    """Seconds a command (``argv``) or a call takes."""
    start = time.perf_counter()
    if argv is not None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    else:
        call()
    return time.perf_counter() - start


def one_run(top: Path, tree: Path, run: int) -> tuple[float, float, float, float]:
    """(write, tar -czf, install, sha1sum + tar -xzf) seconds of one run."""
    image = top / f"img{run}.tgz"
    start = time.perf_counter()
    layer = write_tree(tree, image, "gzip")
    ours_write = time.perf_counter() - start
    tar_write = timed(["tar", "-C", str(tree), "-czf", str(top / f"tar{run}.tgz"), "."])
    data = manifest_for(layer, f"bench{run}")
    root = top / f"root{run}"
    (root / "var/imgadm").mkdir(parents=True)
    (root / "var/imgadm/imgadm.conf").write_text(json.dumps({"sources": []}))
    store = ImageStore(root)
    start = time.perf_counter()
    store.install(validate(data), layer.path)
    ours_install = time.perf_counter() - start
    dest = top / f"x{run}"
    dest.mkdir()
    tar_install = timed(["sha1sum", str(layer.path)]) + timed(
        ["tar", "-C", str(dest), "-xzf", str(layer.path)])
    for path in (root, dest):
        shutil.rmtree(path)
    for path in (image, top / f"tar{run}.tgz"):
        path.unlink()
    return ours_write, tar_write, ours_install, tar_install


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="bench-layers."))
    try:
        tree = top / "tree"
        make_tree(tree, args.files, args.big_mib)
        runs = [one_run(top, tree, run) for run in range(args.runs)]
        ours_w, tar_w, ours_i, tar_i = ([r[i] for r in runs] for i in range(4))
        image_mib = write_tree(tree, top / "size.tgz", "gzip").size / (1 << 20)
        size = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file()) / (1 << 20)
        print(f"tree: {args.files} small files + {args.big_mib} MiB file ({size:.1f} MiB); "
              f"image file {image_mib:.1f} MiB; median of {args.runs} runs")
        for what, ours, theirs, their_name in (
                ("write gzip image", ours_w, tar_w, "tar -czf"),
                ("install", ours_i, tar_i, "sha1sum + tar -xzf")):
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{what:17s} liveforge {a:6.2f} s   {their_name} {b:6.2f} s   "
                  f"ratio {a / b:.2f}")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
