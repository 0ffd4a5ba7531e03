"""No-op build time: liveforge against GNU make over an equivalent Makefile of stamp targets.

Generates a workspace of N make components in layers (each depends on two components of the
layer below), builds it once, then times a no-op ``liveforge world`` and a no-op ``make`` whose
stamp targets depend on the same source files and on the stamps of the same dependencies.
Prints both medians and the ratio, against ``make -s`` (what the goal was set against) and
against ``make -r -s`` (built-in implicit rules off, which is most of make's time on this
Makefile). The runs alternate, so both see the same machine load; the goal (<= 1.5) is read on
the paired ratio, the median of the ratios of runs made one after the other, which a machine
whose speed drifts during the benchmark (a shared host) moves least.

liveforge's modules are byte-compiled first, as an install does; without that, a run under
PYTHONDONTWRITEBYTECODE (set in some CI shells) compiles every module it imports, every time.

    python bench/noop.py [--components 200] [--layers 10] [--runs 31]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKEFILE = (
    "world:\n\t@true\n"
    "install:\n\t@mkdir -p $(DESTDIR)/usr/share/c\n\t@cp src/main.c $(DESTDIR)/usr/share/c/$(N).c\n"
    "manifest:\n\t@echo 'f usr/share/c/$(N).c 0644 root root' > $(DESTDIR)/$(DESTNAME)\n"
)


def generate(root: Path, count: int, layers: int) -> tuple[dict[str, list[str]], list[Path]]:
    per_layer = max(1, count // layers)
    names = [f"c{i:03d}" for i in range(count)]
    deps: dict[str, list[str]] = {}
    toml = ['[platform]', 'name = "bench"', ""]
    for i, name in enumerate(names):
        layer = i // per_layer
        below = names[(layer - 1) * per_layer: layer * per_layer] if layer else []
        deps[name] = sorted({below[i % len(below)], below[(i * 7 + 3) % len(below)]}) \
            if below else []
        comp = root / "projects" / name
        (comp / "src").mkdir(parents=True)
        (comp / "Makefile").write_text(f"N := {name}\n" + MAKEFILE)
        for f in ("main.c", "util.c", "util.h"):
            (comp / "src" / f).write_text(f"/* {name} {f} */\n")
        toml += [f"[components.{name}]", 'kind = "make"', f'path = "projects/{name}"',
                 f"depends = {deps[name]!r}".replace("'", '"'), ""]
    (root / "platform.toml").write_text("\n".join(toml))
    subprocess.run(["git", "init", "-q", str(root / "projects")], check=True)
    subprocess.run(["git", "-C", str(root / "projects"), "add", "."], check=True)
    subprocess.run(["git", "-C", str(root / "projects"), "-c", "user.name=b", "-c",
                    "user.email=b@invalid", "commit", "-qm", "bench"], check=True)
    return deps, [root / "projects" / n for n in names]


def make_baseline(root: Path, deps: dict[str, list[str]]) -> Path:
    """The same graph as GNU make stamp targets over the same source files."""
    mk = root / "baseline" / "Makefile"
    mk.parent.mkdir()
    lines = ["all: " + " ".join(f"0-{n}-stamp" for n in deps), ""]
    for name, needs in deps.items():
        srcs = " ".join(f"../projects/{name}/{f}" for f in
                        ("Makefile", "src/main.c", "src/util.c", "src/util.h"))
        lines += [f"0-{name}-stamp: {srcs} " + " ".join(f"0-{d}-stamp" for d in needs),
                  "\t@touch $@", ""]
    mk.write_text("\n".join(lines))
    return mk


def liveforge_command() -> list[str]:
    """The installed ``liveforge`` command, its modules byte-compiled first (as an install does;
    without that, a run under PYTHONDONTWRITEBYTECODE compiles every module, every time)."""
    import liveforge

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(liveforge.__file__).parent)],
                   check=True)
    return [str(Path(sys.executable).parent / "liveforge")]


def timed(commands: list[list[str]], cwd: Path, runs: int) -> list[list[float]]:
    """The times of each command, the commands taking turns run after run."""
    samples: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for argv, times in zip(commands, samples, strict=True):
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                sys.exit(f"{argv} failed: {proc.stderr}")
    return samples


def paired(ours: list[float], theirs: list[float]) -> float:
    """The median of the ratios of runs made one after the other: the machine's speed may
    drift during the benchmark (a shared host), and a pair sees the same speed."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--components", type=int, default=200)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--runs", type=int, default=31)
    args = ap.parse_args()
    lf = liveforge_command()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        deps, _ = generate(root, args.components, args.layers)
        start = time.perf_counter()
        subprocess.run(lf + ["-C", str(root), "-q", "world"], check=True, capture_output=True)
        first = time.perf_counter() - start
        mk = make_baseline(root, deps)
        subprocess.run(["make", "-s", "-C", str(mk.parent)], check=True)
        samples = timed(
            [lf + ["-C", str(root), "-q", "world"], ["make", "-s", "-C", str(mk.parent)],
             ["make", "-r", "-s", "-C", str(mk.parent)], [sys.executable, "-c", "pass"]],
            root, args.runs)
        # content-correctness: a touched source makes exactly that component and dependents stale
        (root / "projects" / "c000" / "src" / "util.c").write_text("/* changed */\n")
        out = subprocess.run(lf + ["-C", str(root), "--json", "status"], check=True,
                             capture_output=True, text=True).stdout
        stale = out.count('"stale"')
    ours, make, make_r, python = (statistics.median(times) for times in samples)
    print(f"components: {args.components} in {args.layers} layers; first build {first:.2f} s")
    print(f"no-op liveforge world: {ours * 1000:.1f} ms (median of {args.runs})")
    print(f"no-op GNU make -s:     {make * 1000:.1f} ms (median of {args.runs})")
    print(f"no-op GNU make -r -s:  {make_r * 1000:.1f} ms (median of {args.runs}; no built-in "
          "rules)")
    print(f"python -c pass:        {python * 1000:.1f} ms (the interpreter's start alone)")
    print(f"ratio liveforge/make -s:    {ours / make:.2f} (of the medians)")
    print(f"paired liveforge/make -s:   {paired(samples[0], samples[1]):.2f} (goal <= 1.5; the "
          "median of the ratios of runs made one after the other)")
    print(f"ratio liveforge/make -r -s: {ours / make_r:.2f}")
    print(f"after touching c000/src/util.c: {stale} components stale")


if __name__ == "__main__":
    main()
