"""The build cache on the demo: a clean build against builds restored from a shared and a local
store.

Runs ``liveforge live`` on copies of the demo workspace at different paths, each with the same
BUILDSTAMP, against a real nginx on loopback (the reference shared store):

1. clean: the first workspace, ``--no-cache`` (the baseline; the strap is built from source);
2. fill: the same workspace again from scratch with the cache on and both stores empty (what a
   first build pays to fill them: packing and uploading every step);
3. warm shared: a second workspace with a cold local store and the warm nginx store;
4. warm local: a third workspace with the warm local store (nginx stopped).

Downloads (the Debian packages, the zlib source) come from a download cache copied from the
demo's, so no run waits on the network. Prints each time,
the ratios to the clean build (goals: warm shared <= 0.15, warm local <= 0.10), and checks that
the restored platforms equal the clean one byte for byte.

    python bench/cache.py [--runs 1]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from noop import liveforge_command  # noqa: E402

from tests.support.demo import copy_demo  # noqa: E402
from tests.support.kernel import cache_dir  # noqa: E402
from tests.support.nginx import PASSWORD, USER, Nginx  # noqa: E402

STAMP = "20261129T101500Z"


def downloads_copy(dest: Path) -> Path:
    """The demo's download cache (Debian packages, sources), without its strap cache."""
    source = cache_dir() / "demo"
    dest.mkdir(parents=True)
    for sub in ("debs", "sources", "apt"):
        if (source / sub).is_dir():
            shutil.copytree(source / sub, dest / sub, symlinks=True)
    return dest


def run(lf: list[str], ws: Path, env: dict[str, str], *args: str) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    proc = subprocess.run(lf + ["-C", str(ws), "--json", *args, "live"], capture_output=True,
                          text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"live in {ws} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, [json.loads(line) for line in proc.stdout.splitlines()
                     if line.startswith("{")]


def platform(ws: Path) -> dict[str, bytes]:
    root = (ws / "output" / "platform-latest").resolve()
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    files["<tgz>"] = (ws / "output" / "platform-latest.tgz").resolve().read_bytes()
    return files


def count(events: list[dict], event: str) -> int:
    """Events of whole steps (not of the parts of one)."""
    return sum(1 for e in events if e["event"] == event and "part" not in e)


def one_round(lf: list[str], tmp: Path) -> dict[str, float]:
    downloads = downloads_copy(tmp / "downloads")
    server = Nginx(tmp / "nginx", tmp / "nginx-store").start()
    try:
        base = {**os.environ, "BUILDSTAMP": STAMP, "CACHE_URL": server.url,
                "LIVEFORGE_CACHE_AUTH": f"{USER}:{PASSWORD}"}
        base.pop("SOURCE_DATE_EPOCH", None)
        first = copy_demo(tmp / "a" / "ws", downloads)
        second = copy_demo(tmp / "builder-b" / "x" / "ws", downloads)
        third = copy_demo(tmp / "c" / "ws", downloads)
        for ws in (first, second, third):
            subprocess.run(lf + ["-C", str(ws), "-q", "configure", "--offline"], check=True,
                           env=base)
        env1 = {**base, "LIVEFORGE_CACHE_DIR": str(tmp / "store-a")}
        clean, events = run(lf, first, env1, "--no-cache")
        assert count(events, "restored") == 0
        steps = count(events, "finish")
        reference = platform(first)
        subprocess.run(lf + ["-C", str(first), "-q", "clobber"], check=True, env=env1)
        subprocess.run(lf + ["-C", str(first), "-q", "configure", "--offline"], check=True,
                       env=env1)
        fill, events = run(lf, first, env1)
        assert count(events, "restored") == 0
        assert sum(1 for e in events if e["event"] == "stored" and "part" not in e
                   and e["store"] == "shared") == steps
        env2 = {**base, "LIVEFORGE_CACHE_DIR": str(tmp / "store-b")}
        shared, events = run(lf, second, env2)
        assert count(events, "restored") == steps and count(events, "start") == 0, events
        assert platform(second) == reference
        server.stop()
        local, events = run(lf, third, env2)
        assert count(events, "restored") == steps and count(events, "start") == 0
        assert platform(third) == reference
    finally:
        server.stop()
    return {"clean": clean, "fill": fill, "shared": shared, "local": local, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="rounds (medians are printed)")
    args = ap.parse_args()
    lf = liveforge_command()
    rounds = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(lf, Path(tmp)))
    t = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"demo: {int(t['steps'])} steps, median of {args.runs} round(s); every restored "
          "platform equals the clean one byte for byte")
    print(f"clean live, no cache:                 {t['clean']:6.2f} s")
    print(f"clean live filling both stores:       {t['fill']:6.2f} s "
          f"({t['fill'] / t['clean']:.2f} of clean)")
    print(f"cold local store, warm nginx store:   {t['shared']:6.2f} s")
    print(f"warm local store:                     {t['local']:6.2f} s")
    print(f"ratio warm shared / clean: {t['shared'] / t['clean']:.3f} (goal <= 0.15)")
    print(f"ratio warm local / clean:  {t['local'] / t['clean']:.3f} (goal <= 0.10)")


if __name__ == "__main__":
    main()
