"""Image files: hostile members refused, whiteouts, compressions, determinism, the overlay view."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from liveforge.img.errors import ImgadmError
from liveforge.img.layer import (
    read_disk,
    read_layer,
    write_diff,
    write_disk,
    write_tree,
    write_upper,
)
from liveforge.img.view import mount_view, unmount_view
from liveforge.util.archive import COMPRESSIONS
from tests.support.images import tree_content


def hostile_tar(path: Path, *members: tarfile.TarInfo, compressed: bool = True) -> Path:
    """A gzip tar (or with ``compressed=False`` a plain one, read in random-access mode) with a
    harmless file first, then ``members``."""
    with tarfile.open(path, "w:gz" if compressed else "w") as tar:
        ok = tarfile.TarInfo("etc/ok")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"ok\n"))
        for member in members:
            data = io.BytesIO(b"x" * member.size) if member.isfile() else None
            tar.addfile(member, data)
    return path


def info(name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", size: int = 0,
         devmajor: int = 0, devminor: int = 0) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    member.size = size
    member.devmajor, member.devminor = devmajor, devminor
    member.mode = 0o644
    return member


HOSTILE = {
    "dotdot": (info("../escaped", size=4), "'..' component"),
    "dotdot-deep": (info("etc/../../escaped", size=4), "'..' component"),
    "absolute": (info("/tmp/escaped", size=4), "absolute path"),
    "symlink-out": (info("etc/out", tarfile.SYMTYPE, link="../../../../tmp"),
                    "points outside the tree"),
    "device": (info("dev-null", tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
    "block-device": (info("sda", tarfile.BLKTYPE, devmajor=8, devminor=0), "device"),
    "fifo": (info("pipe", tarfile.FIFOTYPE), "device or special"),
    "hardlink-out": (info("etc/passwd-link", tarfile.LNKTYPE, link="../../../etc/passwd"),
                     "'..' component"),
    "hardlink-abs": (info("etc/passwd-link", tarfile.LNKTYPE, link="/etc/passwd"),
                     "absolute path"),
    "whiteout-dir": (info("etc/.wh.ok", tarfile.DIRTYPE), "whiteout"),
}


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "none"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused_and_names_it(case: str, compressed: bool,
                                                tmp_path: Path) -> None:
    member, reason = HOSTILE[case]
    file = hostile_tar(tmp_path / "bad.tgz", member, compressed=compressed)
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(ImgadmError) as caught:
        read_layer(file, dest)
    assert caught.value.code == "InvalidImageFile"
    assert reason in caught.value.message
    assert repr(member.name) in caught.value.message or member.name in caught.value.message
    assert not (tmp_path / "escaped").exists()
    assert not Path("/tmp/escaped").exists()


def test_write_through_an_absolute_symlink_is_refused(tmp_path: Path) -> None:
    """A symlink to /etc is fine in a root tree (it resolves inside the VM), but a member
    written through it would land in the host's /etc."""
    file = hostile_tar(tmp_path / "bad.tgz", info("hostetc", tarfile.SYMTYPE, link="/etc"),
                       info("hostetc/liveforge-escaped", size=4))
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(ImgadmError, match="through a link outside the tree"):
        read_layer(file, dest)
    assert not Path("/etc/liveforge-escaped").exists()


def test_symlink_chain_escape_is_refused(tmp_path: Path) -> None:
    file = hostile_tar(tmp_path / "bad.tgz", info("a", tarfile.SYMTYPE, link="."),
                       info("a/b", tarfile.SYMTYPE, link="../../.."))
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(ImgadmError, match="outside the tree"):
        read_layer(file, dest)


def test_corrupt_stream_is_an_uncompression_error(tmp_path: Path, trees: tuple[Path, Path]
                                                  ) -> None:
    layer = write_tree(trees[0], tmp_path / "good.tar.xz", "xz")
    data = layer.path.read_bytes()
    bad = tmp_path / "bad.tar.xz"
    bad.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(ImgadmError) as caught:
        read_layer(bad, dest)
    assert caught.value.code in ("UncompressionError", "InvalidImageFile")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x1f\x8b" + os.urandom(4000))
    with pytest.raises(ImgadmError) as caught:
        read_layer(garbage, dest)
    assert caught.value.code in ("UncompressionError", "InvalidImageFile")


def test_truncated_uncompressed_tar_is_an_invalid_image_file(tmp_path: Path) -> None:
    """An uncompressed layer's file data is copied in the kernel: data cut short is a clear
    error, not a short file in the layer."""
    big = info("data.bin", size=300_000)
    file = hostile_tar(tmp_path / "good.tar", big, compressed=False)
    data = file.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: 2048 + 100_000])  # the two headers and a third of the data
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(ImgadmError) as caught:
        read_layer(cut, dest)
    assert caught.value.code == "InvalidImageFile"
    assert "unexpected end of data" in caught.value.message
    whole = tmp_path / "whole"
    whole.mkdir()
    read_layer(file, whole)
    assert (whole / "data.bin").read_bytes() == b"x" * 300_000
    assert (whole / "etc/ok").read_bytes() == b"ok\n"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_tree_round_trip_each_compression(compression: str, tmp_path: Path,
                                          trees: tuple[Path, Path]) -> None:
    base = trees[0]
    layer = write_tree(base, tmp_path / "img", compression)
    assert layer.size == layer.path.stat().st_size and len(layer.sha1) == 40
    dest = tmp_path / "layer"
    dest.mkdir()
    read_layer(layer.path, dest)
    assert tree_content(dest) == tree_content(base)
    assert stat.S_IMODE(os.lstat(dest / "usr/bin/su-helper").st_mode) == 0o4755
    assert os.lstat(dest / "home/user/notes.txt").st_uid == 1000
    assert os.lstat(dest / "etc/issue").st_ino == os.lstat(dest / "etc/issue.net").st_ino


def test_written_files_are_deterministic(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    base, child = trees
    one = write_diff(base, child, tmp_path / "one", "gzip", mtime=1_700_000_000)
    two = write_diff(base, child, tmp_path / "two", "gzip", mtime=1_700_000_000)
    assert one.path.read_bytes() == two.path.read_bytes() and one.sha1 == two.sha1
    with tarfile.open(one.path) as tar:
        names = [name.replace(".wh.", "") for name in tar.getnames()]  # the deleted name's
        assert names == sorted(names)
        assert all(m.mtime <= 1_700_000_000 and not m.uname and not m.gname
                   for m in tar.getmembers())


def test_diff_holds_changes_and_whiteouts_only(tmp_path: Path, trees: tuple[Path, Path]
                                               ) -> None:
    base, child = trees
    layer = write_diff(base, child, tmp_path / "diff.tar", "none")
    with tarfile.open(layer.path) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    assert set(members) == {
        "bin", "bin/.wh.vi", "etc", "etc/.wh.issue.net", "etc/hostname", "etc/motd",
        "etc/profile", "opt", "opt/app", "opt/app/run.sh", "usr", "usr/bin", "usr/bin/env",
        "var", "var/log", "var/log/.wh.old"}
    assert members["etc/profile"].mode == 0o600
    assert members["opt/app/run.sh"].mode == 0o700


def test_child_layer_unpacks_whiteouts_as_overlayfs_does(tmp_path: Path,
                                                         trees: tuple[Path, Path]) -> None:
    base, child = trees
    layer = write_diff(base, child, tmp_path / "diff.tar.zst", "zstd")
    dest = tmp_path / "layer"
    dest.mkdir()
    entries = read_layer(layer.path, dest)
    assert {e.path for e in entries if e.kind == "w"} == {"bin/vi", "etc/issue.net",
                                                           "var/log/old"}
    for deleted in ("bin/vi", "etc/issue.net", "var/log/old"):
        st = os.lstat(dest / deleted)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (dest / "etc/motd").read_text() == "welcome to the child\n"
    assert not (dest / "etc/passwd").exists()  # only the diff is in a child's layer


def test_overlay_view_of_base_and_child_is_the_child_tree(tmp_path: Path,
                                                          trees: tuple[Path, Path]) -> None:
    base, child = trees
    lowers = []
    for name, layer in (("base", write_tree(base, tmp_path / "base.tgz")),
                        ("child", write_diff(base, child, tmp_path / "child.tgz"))):
        (tmp_path / name).mkdir()
        read_layer(layer.path, tmp_path / name)
        lowers.insert(0, tmp_path / name)
    for name in ("upper", "work", "view"):
        (tmp_path / name).mkdir()
    mount_view(lowers, tmp_path / "upper", tmp_path / "work", tmp_path / "view")
    try:
        assert tree_content(tmp_path / "view") == tree_content(child)
        assert not (tmp_path / "view/var/log/old").exists()
        # the writable view leaves the layers alone
        (tmp_path / "view/etc/hostname").write_text("vm\n")
        assert (tmp_path / "child/etc/hostname").read_text() == "child\n"
    finally:
        unmount_view(tmp_path / "view")


def test_upper_dir_writes_the_same_changes_as_a_diff(tmp_path: Path,
                                                     trees: tuple[Path, Path]) -> None:
    """Make the child's changes in an overlayfs view of the base: the upper directory's image
    (its whiteouts are character devices, an opaque directory replaced one) unpacks onto the
    base to the same tree as the child's own diff."""
    base, child = trees
    for name in ("upper", "work", "view"):
        (tmp_path / name).mkdir()
    mount_view([base], tmp_path / "upper", tmp_path / "work", tmp_path / "view")
    try:
        _mirror(child, tmp_path / "view")
        # a directory removed and made again is opaque in the upper dir
        subprocess.run(["rm", "-rf", str(tmp_path / "view/home/user")], check=True)
        (tmp_path / "view/home/user").mkdir(mode=0o750)
        os.chown(tmp_path / "view/home/user", 1000, 1000)
    finally:
        unmount_view(tmp_path / "view")
    layer = write_upper(tmp_path / "upper", tmp_path / "upper.tgz")
    with tarfile.open(layer.path) as tar:
        names = set(tar.getnames())
    assert {"bin/.wh.vi", "etc/.wh.issue.net", "home/user/.wh..wh..opq"} <= names
    (tmp_path / "lower").mkdir()
    read_layer(layer.path, tmp_path / "lower")
    for name in ("work", "view"):
        subprocess.run(["rm", "-rf", str(tmp_path / name)], check=True)
        (tmp_path / name).mkdir()
    mount_view([tmp_path / "lower", base], None, None, tmp_path / "view")
    try:
        expected = tree_content(child)
        del expected["home/user/notes.txt"]
        assert tree_content(tmp_path / "view") == expected
    finally:
        unmount_view(tmp_path / "view")


def _mirror(source: Path, view: Path) -> None:
    """Make the tree ``view`` equal ``source`` (a small rsync --delete, with cp -a)."""
    want = tree_content(source)
    have = tree_content(view)
    for rel in sorted(set(have) - set(want), reverse=True):
        if os.path.lexists(view / rel):
            subprocess.run(["rm", "-rf", str(view / rel)], check=True)
    for rel in sorted(want):
        if have.get(rel) != want[rel]:
            if want[rel][0] == "d":
                (view / rel).mkdir(exist_ok=True)
                os.chmod(view / rel, int(want[rel][1], 8))
            else:
                subprocess.run(["rm", "-rf", str(view / rel)], check=True)
                subprocess.run(["cp", "-a", str(source / rel), str(view / rel)], check=True)


def test_non_utf8_names_round_trip(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    name = os.fsdecode(b"caf\xe9-\xff.txt")
    (tree / name).write_text("latin-1 name\n")
    layer = write_tree(tree, tmp_path / "img.tgz")
    dest = tmp_path / "layer"
    dest.mkdir()
    read_layer(layer.path, dest)
    assert os.listdir(os.fsencode(dest)) == [b"caf\xe9-\xff.txt"]


def test_device_in_a_tree_is_refused_when_writing(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mknod(tree / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(ImgadmError, match="null: a device node"):
        write_tree(tree, tmp_path / "img.tgz")
    assert not (tmp_path / "img.tgz").exists()


def test_disk_image_round_trip(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(100_000) + b"\0" * 1_000_000)
    for compression in ("none", "xz"):
        layer = write_disk(disk, tmp_path / f"disk.{compression}", compression)
        out = tmp_path / f"out.{compression}"
        read_disk(layer.path, out)
        assert out.read_bytes() == disk.read_bytes()


def test_upper_entry_that_is_not_whole_is_refused(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/big").write_bytes(b"")
    os.setxattr(upper / "etc/big", "trusted.overlay.metacopy", b"")
    with pytest.raises(ImgadmError, match="big: an overlayfs trusted.overlay.metacopy entry"):
        write_upper(upper, tmp_path / "img.tgz")
    assert not (tmp_path / "img.tgz").exists()


def test_read_only_view_of_one_layer(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    (tmp_path / "view").mkdir()
    mount_view([trees[0]], None, None, tmp_path / "view")
    try:
        assert tree_content(tmp_path / "view") == tree_content(trees[0])
        with pytest.raises(OSError, match="Read-only file system"):
            (tmp_path / "view/etc/new").write_text("x")
    finally:
        unmount_view(tmp_path / "view")
    assert not (trees[0] / "etc/new").exists()
