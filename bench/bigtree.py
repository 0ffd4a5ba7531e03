"""No-op build time on one big source tree: liveforge against ``git status`` on the same tree.

Generates a workspace with one make component whose tree is a git repository of
DIRS x FILES tracked files (600 x 100 = 60,000 by default), builds it once, then times a no-op
``liveforge status`` and ``liveforge world`` (the real CLI, in a subprocess) and
``git status --porcelain`` in the component's tree. Prints the medians and the ratios
(goal: <= 1.5). The runs alternate, so all see the same machine load. Then it checks that the
no-op still sees content: a file changed behind an unchanged size and mtime makes the component
stale, and committing that change, once built, does not.

    python bench/bigtree.py [--dirs 600] [--files 100] [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from noop import liveforge_command, timed

MAKEFILE = (
    "world:\n\t@true\n"
    "install:\n\t@mkdir -p $(DESTDIR)/usr/share/big\n"
    "\t@cp d000/f000.c $(DESTDIR)/usr/share/big/f000.c\n"
    "manifest:\n\t@echo 'f usr/share/big/f000.c 0644 root root' > $(DESTDIR)/$(DESTNAME)\n"
)
GIT = ["-c", "user.name=b", "-c", "user.email=b@invalid"]


def generate(root: Path, dirs: int, files: int) -> Path:
    """A workspace of one component: a git repository of ``dirs`` x ``files`` files."""
    tree = root / "projects" / "big"
    for d in range(dirs):
        sub = tree / f"d{d:03d}"
        sub.mkdir(parents=True)
        for f in range(files):
            (sub / f"f{f:03d}.c").write_text(f"/* d{d:03d} f{f:03d} */\nint x{d}_{f};\n")
    (tree / "Makefile").write_text(MAKEFILE)
    (root / "platform.toml").write_text(
        '[platform]\nname = "bench"\n\n[components.big]\nkind = "make"\n'
        'path = "projects/big"\n')
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "add", "."], check=True)
    subprocess.run(["git", "-C", str(tree), *GIT, "commit", "-qm", "bench"], check=True)
    return tree


def state(lf: list[str], root: Path) -> str:
    out = subprocess.run(lf + ["-C", str(root), "--json", "status"], check=True,
                         capture_output=True, text=True).stdout
    row = json.loads(out)[0]
    return f"{row['state']} {'; '.join(row['why'])}".strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", type=int, default=600)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    lf = liveforge_command()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        tree = generate(root, args.dirs, args.files)
        start = time.perf_counter()
        subprocess.run(lf + ["-C", str(root), "-q", "world"], check=True, capture_output=True)
        first = time.perf_counter() - start
        subprocess.run(["git", "-C", str(tree), "status", "--porcelain"], check=True,
                       capture_output=True)
        git_status, status, world = timed(
            [["git", "-C", str(tree), "status", "--porcelain"],
             lf + ["-C", str(root), "-q", "status"], lf + ["-C", str(root), "-q", "world"]],
            root, args.runs)
        # content, not stat: the same size and mtime with other bytes is a change
        victim = tree / "d300" / "f050.c"
        before = victim.stat()
        victim.write_text(victim.read_text().replace("int", "INT"))
        os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
        changed = state(lf, root)
        subprocess.run(lf + ["-C", str(root), "-q", "world"], check=True, capture_output=True)
        subprocess.run(["git", "-C", str(tree), *GIT, "commit", "-qam", "change"], check=True)
        committed = state(lf, root)
    print(f"tree: {args.dirs * args.files} tracked files in {args.dirs} directories; "
          f"first build {first:.2f} s")
    print(f"git status --porcelain:   {git_status * 1000:.1f} ms (median of {args.runs})")
    print(f"no-op liveforge status:   {status * 1000:.1f} ms (median of {args.runs})")
    print(f"no-op liveforge world:    {world * 1000:.1f} ms (median of {args.runs})")
    print(f"ratio status/git status:  {status / git_status:.2f} (goal <= 1.5)")
    print(f"ratio world/git status:   {world / git_status:.2f} (goal <= 1.5)")
    print(f"a file changed behind its size and mtime: {changed}")
    print(f"that change committed, once built: {committed}")


if __name__ == "__main__":
    main()
