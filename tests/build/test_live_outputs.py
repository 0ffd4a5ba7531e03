"""``liveforge live`` on small real workspaces: the tarballs it writes, outputs that do not
depend on where the workspace is, a full disk, and a ``platform-latest`` that is not a link."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from liveforge.build.image.archive import read_cpio, read_tar
from tests.support.cli import cli
from tests.support.disks import small_disk
from tests.support.workspaces import LIVE_STAMP, live_workspace

STAMP = LIVE_STAMP
# Every run: this file's stamp, PYTHONPATH as ours, up to five minutes.
lf = functools.partial(cli, stamp=STAMP, pythonpath=True, timeout=300)


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


def tree(top: Path) -> dict[str, str]:
    """Everything under ``top``, hidden names included, without following links: path -> link
    text, content digest or 'd'."""
    import hashlib

    state: dict[str, str] = {}
    for directory, dirs, files in os.walk(top):
        for entry in dirs + files:
            path = Path(directory) / entry
            rel = str(path.relative_to(top))
            if path.is_symlink():
                state[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                state[rel] = "d"
            else:
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def test_outputs_do_not_depend_on_the_workspace_path(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    first = live_workspace(tmp_path / "a" / "ws", upstream)
    second = live_workspace(tmp_path / "elsewhere" / "other", upstream)
    for ws in (first, second):
        built = lf(ws, "live")
        assert built.returncode == 0, built.stderr
    name = f"platform-{STAMP}"
    gitstatus = (first / "output" / name / "x86_64/boot_archive.gitstatus").read_text()
    assert '"repo": "comp"' in gitstatus and '"repo": "plain"' in gitstatus
    for ws in (first, second):
        assert str(ws) not in gitstatus and str(tmp_path) not in gitstatus.replace(
            str(upstream), "")
    for rel in (f"{name}.tgz", f"{name}/x86_64/boot_archive",
                f"{name}/x86_64/boot_archive.gitstatus", f"{name}/x86_64/boot_archive.manifest"):
        assert (first / "output" / rel).read_bytes() == (second / "output" / rel).read_bytes(), rel


def test_platform_latest_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    ws = live_workspace(tmp_path / "ws", tmp_path / "upstream")
    latest = ws / "output" / "platform-latest"
    latest.mkdir(parents=True)
    (latest / "mine").write_text("a user's file\n")
    built = lf(ws, "live")
    assert built.returncode != 0
    assert built.stderr.splitlines() == [
        f"liveforge: error: {latest} is a directory, not the link liveforge makes there: "
        "move it away or remove it, then run 'liveforge live' again"]
    assert (latest / "mine").read_text() == "a user's file\n"
    assert sorted(tree(ws / "output")) == ["platform-latest", "platform-latest/mine"]


def test_a_full_disk_is_one_clear_error_and_leaves_the_previous_platform(
        tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2M") as disk:
        ws = live_workspace(tmp_path / "ws", tmp_path / "upstream")
        (ws / "output").symlink_to(disk)
        built = lf(ws, "live")
        assert built.returncode == 0, built.stderr
        before = tree(disk)
        assert f"platform-{STAMP}.tgz" in before
        (ws / "overlay" / "boot" / "big").write_bytes(os.urandom(3 << 20))
        with open(ws / "overlay" / "manifest", "a") as manifest:
            manifest.write("f boot/big 0644 root root\n")
        for stamp in ("20250101T000000Z", STAMP):          # a new platform, then a rebuild
            full = lf(ws, "live", stamp=stamp)
            assert full.returncode != 0
            assert full.stderr.splitlines() == [
                f"liveforge: error: no space left on {ws / 'output'}: writing "
                f"platform-{stamp} needs more room; the previous outputs are as they were"]
            assert tree(disk) == before


def test_the_platform_layout_follows_the_workspaces_arch(tmp_path: Path) -> None:
    """arch = "aarch64": the platform directory, the media's tree, their GRUB menu, the netboot
    script and a direct boot all name aarch64 paths (nothing is booted)."""
    from liveforge.build.media.boot import direct_args
    from liveforge.build.media.console import get_console
    from liveforge.build.media.grubcfg import grub_cfg
    from liveforge.build.media.layout import platform_files

    ws = live_workspace(tmp_path / "ws", tmp_path / "upstream")
    toml = (ws / "platform.toml").read_text()
    (ws / "platform.toml").write_text(toml.replace('name = "test"',
                                                   'name = "test"\narch = "aarch64"'))
    for verb in ("live", "netboot"):
        built = lf(ws, verb)
        assert built.returncode == 0, built.stderr
    name = f"platform-{STAMP}"
    platform = ws / "output" / name
    assert sorted(p.relative_to(platform).as_posix() for p in platform.rglob("*")
                  if p.is_file()) == [
        "aarch64/boot_archive", "aarch64/boot_archive.gitstatus", "aarch64/boot_archive.hash",
        "aarch64/boot_archive.manifest", "aarch64/vmlinuz", "etc/version/platform",
        "sbom.spdx.json"]
    assert read_cpio(platform / "aarch64/boot_archive")["etc/version/platform"]
    # the ISO's and the USB stick's tree, and their menu
    assert [f.dest for f in platform_files(platform, STAMP, "aarch64")] == [
        f"platform/{rel}" for rel in ("aarch64/boot_archive", "aarch64/boot_archive.gitstatus",
                                      "aarch64/boot_archive.hash",
                                      "aarch64/boot_archive.manifest", "aarch64/vmlinuz",
                                      "etc/version/platform", "sbom.spdx.json")]
    menu = grub_cfg(STAMP, get_console("ttya"), "aarch64")
    loads = [line.split()[:2] for line in menu.splitlines()
             if line.split()[:1] in (["linux"], ["linux16"], ["initrd"], ["initrd16"])]
    assert loads == [["linux16", "/platform/aarch64/vmlinuz"],
                     ["initrd16", "/platform/aarch64/boot_archive"],
                     ["linux", "/platform/aarch64/vmlinuz"],
                     ["initrd", "/platform/aarch64/boot_archive"]] * 2
    assert "x86_64" not in menu
    script = (ws / "output" / f"{name}.ipxe").read_text()
    assert f"kernel {name}/aarch64/vmlinuz " in script and "x86_64" not in script
    argv = direct_args(platform, STAMP, "aarch64", get_console("ttya"), False, tmp_path)
    assert argv[:4] == ["-kernel", str(platform / "aarch64/vmlinuz"),
                        "-initrd", str(platform / "aarch64/boot_archive")]
