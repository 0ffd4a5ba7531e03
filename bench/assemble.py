"""Benchmark: assembling tar + cpio from a manifest against GNU tar and cpio, same run.

    .venv/bin/python bench/assemble.py [--scale 1.0] [--dir /tmp/lf-bench] [--keep] [--parse-only]

At scale 1: a proto of 100,000 manifest entries (mostly small files, 100 files of 6 MiB),
about 1 GB. Timed, each over the same file list, page cache warm:
  GNU `tar -cf`, `cpio -o -H newc`, and liveforge writing tar and cpio (uncompressed, one pass);
  GNU `tar -czf` against liveforge writing tgz + gzip boot archive (one pass, two threads).
Then parsing + combining 1,000,000 manifest lines (goal <= 2 s; alone with
--parse-only), and the same lines as real manifests write them (every 'd' path ending in '/').
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from liveforge.build.image.archive import write_archives  # noqa: E402
from liveforge.build.image.assemble import resolve  # noqa: E402
from liveforge.build.image.manifest import combine  # noqa: E402
from tests.support.manifests import generate, write_proto  # noqa: E402

EPOCH = 1_700_000_000


def timed(label: str, func, results: dict[str, float]) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    func()
    elapsed = time.perf_counter() - start
    results[label] = elapsed
    print(f"  {label:<44} {elapsed:8.2f} s", flush=True)
    return elapsed


def sh(args: list[str], cwd: Path, stdin: bytes | None = None, out: Path | None = None) -> None:
    with open(out or "/dev/null", "wb") as handle:
        subprocess.run(args, cwd=cwd, input=stdin, stdout=handle, check=True)


def materialise(lines: list[str], proto: Path) -> None:
    """Give the GNU tools the same tree on disk: directories, symlinks, hard links."""
    for line in sorted(lines, key=lambda text: text[:1] != "d"):
        kind, _, rest = line.partition(" ")
        if kind == "d":
            (proto / rest.split()[0]).mkdir(parents=True, exist_ok=True)
        elif kind in ("s", "h"):
            name, _, target = rest.partition("=")
            (proto / name).parent.mkdir(parents=True, exist_ok=True)
            if kind == "s":
                os.symlink(target, proto / name)
            else:
                os.link(proto / target, proto / name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/lf-bench"))
    parser.add_argument("--keep", action="store_true", help="reuse an existing proto")
    parser.add_argument("--parse-only", action="store_true",
                        help="only time parsing + combining 1,000,000 manifest lines")
    args = parser.parse_args()
    if args.parse_only:
        bench_parse(args.dir)
        return
    entries = int(100_000 * args.scale)
    work = args.dir
    proto = work / "proto"
    generated = generate(entries, seed=11, big_every=700, big_size=6 << 20, small_max=12000)
    if not (args.keep and proto.is_dir()):
        shutil.rmtree(work, ignore_errors=True)
        proto.mkdir(parents=True)
        print(f"generating {len(generated.lines)} entries ...", flush=True)
        total = write_proto(generated, proto)
        materialise(generated.lines, proto)
        print(f"  {len(generated.files)} files, {total / 1e9:.2f} GB", flush=True)
    (work / "manifest").write_text("\n".join(generated.lines) + "\n")
    manifest = combine([work / "manifest"], {}, False, lambda _: None)
    results: dict[str, float] = {}
    image = None

    def do_resolve() -> None:
        nonlocal image
        image = resolve(manifest, [proto])

    timed("liveforge resolve (manifest -> image)", do_resolve, results)
    assert image is not None
    listing = "\n".join(e.path for e in image.entries) + "\n"
    (work / "list").write_text(listing)
    out = work / "out"
    out.mkdir(exist_ok=True)
    subprocess.run(["tar", "-cf", "/dev/null", "-C", str(proto), "."], check=True)  # warm cache
    print("uncompressed:")
    timed("GNU tar -cf", lambda: sh(["tar", "-cf", str(out / "gnu.tar"), "--no-recursion",
                                     "-T", str(work / "list")], proto), results)
    timed("GNU cpio -o -H newc", lambda: sh(["cpio", "-o", "-H", "newc", "--quiet"], proto,
                                            listing.encode(), out / "gnu.cpio"), results)
    timed("liveforge tar only", lambda: write_archives(
        image, EPOCH, tar=out / "lf.tar", tar_compression="none"), results)
    timed("liveforge cpio only", lambda: write_archives(
        image, EPOCH, cpio=out / "lf.cpio", cpio_compression="none"), results)
    timed("liveforge tar + cpio (one pass)", lambda: write_archives(
        image, EPOCH, tar=out / "lf.tar", cpio=out / "lf.cpio", tar_compression="none",
        cpio_compression="none"), results)
    print("compressed (gzip -6):")
    timed("GNU tar -czf", lambda: sh(["tar", "-czf", str(out / "gnu.tgz"), "--no-recursion",
                                      "-T", str(work / "list")], proto), results)
    timed("liveforge tgz + cpio.gz + md5s (one pass)", lambda: write_archives(
        image, EPOCH, tar=out / "lf.tgz", cpio=out / "lf.cpio.gz", digests=True), results)
    for path in sorted(out.iterdir()):
        print(f"  {path.name:<14} {path.stat().st_size / 1e6:10.1f} MB")
    print("ratios (liveforge / GNU):")
    r = results
    print(f"  tar:               {r['liveforge tar only'] / r['GNU tar -cf']:.2f}")
    print(f"  cpio:              {r['liveforge cpio only'] / r['GNU cpio -o -H newc']:.2f}")
    both = r["GNU tar -cf"] + r["GNU cpio -o -H newc"]
    print(f"  tar+cpio:          {r['liveforge tar + cpio (one pass)'] / both:.2f}"
          f"  (vs GNU tar alone {r['liveforge tar + cpio (one pass)'] / r['GNU tar -cf']:.2f})")
    print(f"  tgz+cpio.gz:       "
          f"{r['liveforge tgz + cpio.gz + md5s (one pass)'] / r['GNU tar -czf']:.2f}"
          f"  (vs GNU tar -czf alone)")
    shutil.rmtree(out)
    bench_parse(work)


def bench_parse(work: Path) -> None:
    lines = generate(1_000_000, seed=5).lines
    half = len(lines) // 2
    work.mkdir(parents=True, exist_ok=True)
    a, b = work / "m1", work / "m2"
    a.write_text("\n".join(lines[:half]) + "\n")
    b.write_text("\n".join(lines[half:]) + "\n")
    del lines
    times = []
    for _ in range(5):
        start = time.perf_counter()
        manifest = combine([a, b], {}, False, lambda _: None)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"parse + combine {len(manifest)} entries (2 files): best {times[0]:.2f} s, median "
          f"{times[2]:.2f} s of 5 (goal <= 2 s)")
    # What `liveforge live` does next with them: manifest.gen, then the entries to resolve.
    start = time.perf_counter()
    gen = manifest.lines()
    after = time.perf_counter()
    manifest.entries()
    print(f"then sorted lines for manifest.gen: {after - start:.2f} s; "
          f"sorted Entry objects: {time.perf_counter() - after:.2f} s")
    # Real-world form: each 'd' path written with a trailing '/' (the exact parser takes them).
    for path in (a, b):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line[0] == "d":
                kind, name, rest = line.split(" ", 2)
                lines[number] = f"{kind} {name}/ {rest}"
        path.write_text("\n".join(lines) + "\n")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        slashed = combine([a, b], {}, False, lambda _: None)
        times.append(time.perf_counter() - start)
    assert slashed.lines() == gen
    dirs = sum(line[0] == "d" for line in gen)
    print(f"the same with each of the {dirs} 'd' paths ending in '/': median "
          f"{sorted(times)[1]:.2f} s of 3")


if __name__ == "__main__":
    main()
