"""``liveforge live`` on small real workspaces: the tarballs it writes, outputs that do not
depend on where the workspace is, a full disk, and a ``platform-latest`` that is not a link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from liveforge.archive import read_cpio, read_tar
from wsutil import MAKEFILE, make_workspace

STAMP = "20240102T030405Z"
OVERLAY_MANIFEST = """\
d boot 0755 root root
f boot/vmlinuz 0644 root root
d etc 0755 root root
f etc/passwd 0644 root root
f etc/group 0644 root root
d etc/version 0755 root root
f etc/version/platform 0444 root root
"""


def live_workspace(root: Path, upstream: Path) -> Path:
    """A configured workspace that ``live`` can build: a git component cloned from
    ``upstream``, a component that is a plain directory (not a git checkout), and an overlay
    with the accounts and a stand-in kernel."""
    make_workspace(root, {"comp": []}, upstream=upstream)
    plain = root / "plain"
    (plain / "src").mkdir(parents=True)
    (plain / "src" / "a.txt").write_text("plain source\n")
    (plain / "Makefile").write_text(MAKEFILE.format(name="plain"))
    overlay = root / "overlay"
    (overlay / "boot").mkdir(parents=True)
    (overlay / "boot" / "vmlinuz").write_bytes(b"not really a kernel\n" * 100)
    (overlay / "etc").mkdir()
    (overlay / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (overlay / "etc" / "group").write_text("root:x:0:\n")
    (overlay / "manifest").write_text(OVERLAY_MANIFEST)
    toml = (root / "platform.toml").read_text()
    toml = toml.replace('name = "test"', 'name = "test"\noverlays = ["overlay"]\n'
                        'kernel = "boot/vmlinuz"')
    (root / "platform.toml").write_text(toml + '\n[components.plain]\nkind = "make"\n'
                                        'path = "plain"\n')
    assert lf(root, "configure").returncode == 0
    return root


def lf(root: Path, *args: str, stamp: str = STAMP) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BUILDSTAMP=stamp, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "liveforge.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_live_writes_the_platform_tarball_and_the_root_tarball_on_request(
        tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", tmp_path / "upstream")
    built = lf(ws, "live")
    assert built.returncode == 0, built.stderr
    out = ws / "output"
    name = f"platform-{STAMP}"
    assert [m.path for m in read_tar(out / f"{name}.tgz").values()][:2] == [name, f"{name}/etc"]
    assert not os.path.lexists(out / f"{name}-root.tgz")
    built = lf(ws, "live", "--root-tarball")
    assert built.returncode == 0, built.stderr
    assert f"root:     {out / name}-root.tgz" in built.stdout
    image_root = read_tar(out / f"{name}-root.tgz")
    assert {"boot/vmlinuz", "usr/share/comp/comp.txt", "usr/share/plain/plain.txt",
            "etc/version/platform"} <= set(image_root)
    in_boot_archive = read_cpio(out / name / "x86_64/boot_archive")
    assert {path: m for path, m in image_root.items() if path != "boot/vmlinuz"} == \
        in_boot_archive
