"""Images for the img and vm tests: a busybox root tree, a child tree that adds, changes and
deletes files, image files and manifests made from them, imgadm in a subprocess, and a tree
described as content (what the tests assert on)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liveforge.img.layer import LayerFile, write_diff, write_tree

BUSYBOX = Path("/bin/busybox")
PUBLISHED = "2026-11-01T10:00:00.000Z"
# the applets the base tree links (all of busybox's would be several hundred links)
APPLETS = ("sh", "ls", "cat", "echo", "vi", "mkdir", "rm", "sleep", "true", "false", "id",
           "hostname", "ps", "mount", "env", "grep", "sed", "uname", "head", "wc")


def busybox_tree(root: Path) -> Path:
    """A tiny root file system: busybox-static with applet links, /etc files, modes and
    owners worth checking (a 1777 /tmp, a 0700 /root, a file of uid 1000, a setuid file, a
    hard link, an absolute and a relative symlink)."""
    for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700),
                       ("home", 0o755), ("home/user", 0o750), ("var", 0o755),
                       ("var/log", 0o755), ("usr", 0o755), ("usr/bin", 0o755)):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.chmod(root / name, mode)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    os.symlink("/bin/busybox", root / "usr" / "bin" / "env")
    (root / "etc" / "hostname").write_text("base\n")
    (root / "etc" / "issue").write_text("Busybox base image\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "user:x:1000:1000:user:/home/user:/bin/sh\n")
    (root / "etc" / "profile").write_text("export PATH=/bin:/usr/bin\n")
    os.chmod(root / "etc" / "profile", 0o644)
    (root / "root" / ".profile").write_text("PS1='# '\n")
    (root / "home" / "user" / "notes.txt").write_text("user's notes\n")
    os.chown(root / "home" / "user", 1000, 1000)
    os.chown(root / "home" / "user" / "notes.txt", 1000, 1000)
    (root / "usr" / "bin" / "su-helper").write_bytes(b"#!/bin/sh\nexit 0\n")
    os.chmod(root / "usr" / "bin" / "su-helper", 0o4755)
    os.link(root / "etc" / "issue", root / "etc" / "issue.net")
    (root / "var" / "log" / "old").mkdir()
    (root / "var" / "log" / "old" / "boot.log").write_text("old boot\n")
    return root


def child_tree(base: Path, root: Path) -> Path:
    """A copy of ``base`` with changes: adds /etc/motd and /opt/app/run.sh, changes
    /etc/hostname and /etc/profile's mode, deletes /etc/issue.net, /bin/vi and the directory
    /var/log/old, replaces the symlink /usr/bin/env with a file."""
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)  # owners kept
    (root / "etc" / "motd").write_text("welcome to the child\n")
    (root / "etc" / "hostname").write_text("child\n")
    os.chmod(root / "etc" / "profile", 0o600)
    (root / "etc" / "issue.net").unlink()
    (root / "bin" / "vi").unlink()
    shutil.rmtree(root / "var" / "log" / "old")
    (root / "usr" / "bin" / "env").unlink()
    (root / "usr" / "bin" / "env").write_text("#!/bin/sh\nexec /bin/busybox env \"$@\"\n")
    os.chmod(root / "usr" / "bin" / "env", 0o755)
    (root / "opt" / "app").mkdir(parents=True)
    (root / "opt" / "app" / "run.sh").write_text("#!/bin/sh\necho app\n")
    os.chmod(root / "opt" / "app" / "run.sh", 0o700)
    return root


def tree_content(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` as (kind, mode, uid, gid, content or link target): what two
    trees must agree on. Directories' own mtimes are left out."""
    found: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("s", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("d", oct(mode), st.st_uid, st.st_gid)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = ("f", oct(mode), st.st_uid, st.st_gid, Path(full).read_bytes())
            else:
                found[rel] = ("other", oct(st.st_mode), st.st_rdev)
    return found


def manifest_for(file: LayerFile, name: str, version: str = "1.0.0", *,
                 origin: str | None = None, uuid: str | None = None,
                 type_: str = "zone-dataset", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 2, "uuid": uuid or str(uuidlib.uuid4()), "name": name, "version": version,
        "type": type_, "os": "linux", "state": "active", "public": True,
        "published_at": PUBLISHED, "files": [file.manifest_file()],
    }
    if origin is not None:
        data["origin"] = origin
    data.update(extra)
    return data


def write_image(out_dir: Path, tree: Path, name: str, *, origin_tree: Path | None = None,
                origin: str | None = None, compression: str = "gzip",
                **extra: Any) -> tuple[Path, Path, dict[str, Any]]:
    """An image of ``tree`` (against ``origin_tree`` when given): (manifest file, image file,
    manifest)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}.get(compression, "")
    file = out_dir / f"{name}.tar{suffix}"
    if origin_tree is None:
        layer = write_tree(tree, file, compression)
    else:
        layer = write_diff(origin_tree, tree, file, compression)
    manifest = manifest_for(layer, name, origin=origin, **extra)
    manifest_path = out_dir / f"{name}.json"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest_path, file, manifest


def imgadm(root: Path, *args: str, input: str | None = None, timeout: float = 120,
           env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``imgadm ARGS`` in a subprocess with ``IMGADM_ROOT=root``; output captured as text."""
    environ = dict(os.environ, IMGADM_ROOT=str(root), **(env or {}))
    return subprocess.run([sys.executable, "-m", "liveforge.img.cli", *args],
                          capture_output=True, text=True, env=environ, timeout=timeout,
                          input=input)
