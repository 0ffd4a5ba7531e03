"""Generates realistic manifests and the proto trees they describe (tests and bench).

The shape follows real platforms: a directory skeleton, many files (mostly small, a few large),
symlinks with relative, ``..`` and absolute targets, a few hard links, a passwd/group pair.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

PASSWD = "root:x:0:0:root:/root:/bin/sh\nbin:x:2:2:bin:/bin:/bin/false\n" \
         "daemon:x:1:1::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n"
GROUP = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nnogroup:x:65534:\n"
TOP = ["bin", "etc", "lib", "sbin", "usr", "var", "opt", "boot"]
WORDS = ["share", "lib", "bin", "doc", "locale", "man", "include", "kernel", "drivers", "net",
         "fs", "misc", "perl5", "python3", "svc", "method", "manifest", "system", "zones"]
OWNERS = [("root", "root"), ("root", "bin"), ("root", "sys"), ("bin", "bin"), ("daemon", "sys")]
MODES = [0o755, 0o644, 0o555, 0o444, 0o600]


@dataclass(slots=True)
class Generated:
    lines: list[str] = field(default_factory=list)
    files: dict[str, bytes | int] = field(default_factory=dict)   # content, or a size to fill


def generate(entries: int, seed: int = 1, big_every: int = 0, big_size: int = 0,
             small_max: int = 2048, prefix: str = "") -> Generated:
    """About ``entries`` manifest lines; ``prefix`` (e.g. ``"a"``) keeps two manifests apart."""
    rng = random.Random(seed)
    out = Generated()
    dirs: list[str] = []

    def add_dir(path: str) -> None:
        owner, group = rng.choice(OWNERS[:3])
        out.lines.append(f"d {path} 0755 {owner} {group}")
        dirs.append(path)

    for top in TOP:
        add_dir(f"{prefix}{top}")
    if not prefix:
        out.lines.append("f etc/passwd 0644 root sys")
        out.lines.append("f etc/group 0644 root sys")
        out.files["etc/passwd"] = PASSWD.encode()
        out.files["etc/group"] = GROUP.encode()
        out.lines.append("f boot/vmlinuz 0644 root root")
        out.files["boot/vmlinuz"] = b"\x7fKERNEL" * 100
    files: list[str] = []
    count = 0
    while len(out.lines) < entries:
        count += 1
        roll = rng.random()
        parent = rng.choice(dirs)
        if roll < 0.08 and parent.count("/") < 6:
            add_dir(f"{parent}/{rng.choice(WORDS)}{count}")
        elif roll < 0.86:
            path = f"{parent}/file{count}.{rng.choice(['so', 'txt', 'py', 'conf', ''])}".rstrip(".")
            mode = rng.choice(MODES)
            if rng.random() < 0.01:
                mode |= 0o4000
            owner, group = rng.choice(OWNERS)
            out.lines.append(f"f {path} {mode:04o} {owner} {group}")
            if big_every and count % big_every == 0:
                out.files[path] = big_size
            else:
                out.files[path] = rng.randbytes(rng.randint(0, small_max)) if rng.random() < 0.3 \
                    else (f"{path}\n" * rng.randint(0, small_max // 40)).encode()
            files.append(path)
        elif roll < 0.97 or not files:
            name = f"{parent}/link{count}"
            kind = rng.random()
            if kind < 0.4 and files:
                target = os.path.relpath(rng.choice(files), parent)
            elif kind < 0.7:
                target = f"../{rng.choice(WORDS)}/thing{count}"
            else:
                target = f"/usr/{rng.choice(WORDS)}/abs{count}"
            out.lines.append(f"s {name}={target}")
        else:
            out.lines.append(f"h {parent}/hard{count}={rng.choice(files)}")
    rng.shuffle(out.lines)
    out.lines.insert(0, "# generated manifest")
    return out


def write_proto(generated: Generated, proto: Path) -> int:
    """Create the files of ``generated`` under ``proto``; return the total bytes written."""
    total = 0
    block = random.Random(0).randbytes(1 << 20)
    for path, content in generated.files.items():
        target = proto / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, int):
            with open(target, "wb") as handle:
                left = content
                while left > 0:
                    piece = block[: min(left, len(block))]
                    handle.write(piece)
                    left -= len(piece)
            total += content
        else:
            target.write_bytes(content)
            total += len(content)
    return total
