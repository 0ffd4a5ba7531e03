"""Safe extraction: tar slip, escaping links, devices; temp-then-rename; .deb members."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from liveforge.util.unpack import (
    UnsafeArchiveError,
    collisions,
    install_deb,
    merge_tree,
    unpack_source,
    unpack_tarball,
)
from tests.support.debs import build_deb
from tests.support.extras import add_file


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, str]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            if isinstance(m, tuple):
                add_file(tar, m[0], m[1])
            else:
                tar.addfile(m, io.BytesIO(b"") if m.isfile() else None)
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("members,fragment", [
    ([("pkg/ok", "x"), ("../x", "evil")], "'../x' has a '..' component"),
    ([("pkg/../../x", "evil")], "has a '..' component"),
    ([("/etc/x", "evil")], "'/etc/x' has an absolute path"),
    ([link("pkg/esc", "../../etc")], "symlink 'pkg/esc' -> '../../etc' points outside"),
    ([link("pkg/abs", "/etc/passwd")], "symlink 'pkg/abs' -> '/etc/passwd' points outside"),
    ([link("pkg/hl", "/etc/passwd", tarfile.LNKTYPE)], "absolute path"),
    ([("pkg/a", "x"), link("pkg/hl", "pkg/missing", tarfile.LNKTYPE)], "points outside"),
    ([link("pkg/dev", "", tarfile.CHRTYPE)], "'pkg/dev' is a device"),
    ([link("pkg/fifo", "", tarfile.FIFOTYPE)], "'pkg/fifo' is a device"),
])
def test_unsafe_members_are_refused(tmp_path: Path, members: list, fragment: str) -> None:
    archive = make_tar(tmp_path / "bad.tar.gz", members)
    dest = tmp_path / "out" / "pkg-1.0-64"
    with pytest.raises(UnsafeArchiveError, match=fragment.replace("(", r"\(")):
        unpack_source(archive, dest)
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []  # the temporary folder is gone too
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_link_chain_cannot_redirect_a_later_member(tmp_path: Path) -> None:
    # each link stays inside lexically, but on disk t/a/b/c/d is out/d -> .. (outside)
    archive = make_tar(tmp_path / "chain.tar.gz", [
        link("t/a/b", ".."), link("t/a/b/c", ".."), link("t/a/b/c/d", ".."),
        ("t/a/b/c/d/escaped", "evil")])
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeArchiveError, match="'t/a/b/c/d'"):
        unpack_tarball(archive, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_good_tarball_keeps_modes_links_and_renames(tmp_path: Path) -> None:
    exe = tarfile.TarInfo("pkg-1/bin/tool")
    exe.mode = 0o755
    data = b"#!/bin/sh\n"
    exe.size = len(data)
    ro = tarfile.TarInfo("pkg-1/ro")
    ro.type = tarfile.DIRTYPE
    ro.mode = 0o555
    with tarfile.open(tmp_path / "good.tar.gz", "w:gz") as tar:
        tar.addfile(exe, io.BytesIO(data))
        tar.addfile(ro)
        tar.addfile(link("pkg-1/bin/alias", "tool"))
        tar.addfile(link("pkg-1/bin/hard", "pkg-1/bin/tool", tarfile.LNKTYPE))
    seen: list[Path] = []
    dest = unpack_source(tmp_path / "good.tar.gz", tmp_path / "src" / "pkg-1.0-64", seen.append)
    assert seen and seen[0].name == "pkg-1"  # prepare() ran on the temporary tree
    assert (dest / "bin/tool").stat().st_mode & 0o777 == 0o755
    assert os.readlink(dest / "bin/alias") == "tool"
    assert (dest / "bin/hard").stat().st_ino == (dest / "bin/tool").stat().st_ino
    assert (dest / "ro").stat().st_mode & 0o777 == 0o555
    # a failing prepare() (a patch) leaves nothing behind, not even the old tree
    def fail(_tree: Path) -> None:
        raise RuntimeError("patch failed")
    with pytest.raises(RuntimeError):
        unpack_source(tmp_path / "good.tar.gz", tmp_path / "src" / "other", fail)
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["pkg-1.0-64"]


def test_merge_tree_never_writes_through_an_escaping_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    proto = tmp_path / "proto"
    proto.mkdir()
    (proto / "etc").symlink_to(outside)
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "passwd").write_text("evil\n")
    with pytest.raises(UnsafeArchiveError):
        merge_tree(src, proto)
    assert not (outside / "passwd").exists()


def test_collisions_compare_bytes_modes_links_and_kinds_of_owned_entries(tmp_path: Path
                                                                          ) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for root in (src, dst):
        (root / "d").mkdir(parents=True)
    def both(name: str, a: bytes, b: bytes, mode_a: int = 0o644, mode_b: int = 0o644) -> None:
        for root, data, mode in ((src, a, mode_a), (dst, b, mode_b)):
            (root / name).write_bytes(data)
            os.chmod(root / name, mode)
    both("same", b"x" * 100000, b"x" * 100000)
    both("bytes", b"x" * 100000, b"x" * 99999 + b"y")
    both("mode", b"x", b"x", 0o755, 0o644)
    both("unowned", b"mine", b"stale, from no one")
    os.link(dst / "same", src / "d" / "hard")
    os.link(dst / "same", dst / "d" / "hard")
    for root in (src, dst):
        (root / "ln").symlink_to("same")
    (src / "ln2").symlink_to("same")
    (dst / "ln2").symlink_to("bytes")
    os.mkfifo(src / "fifo")
    (dst / "fifo").write_bytes(b"")
    (src / "dir").mkdir()
    (src / "dir" / "f").write_bytes(b"f")
    (dst / "dir").write_bytes(b"a file where src has a directory")
    (dst / "real").mkdir()
    (dst / "via").symlink_to("real")
    (src / "via").mkdir()
    (src / "via" / "f").write_bytes(b"merged through the link")
    (src / os.fsdecode(b"caf\xe9")).write_bytes(b"1")
    (dst / os.fsdecode(b"caf\xe9")).write_bytes(b"2")
    owners = {p: "X" for p in ("same", "bytes", "mode", "d/hard", "ln", "ln2", "fifo", "dir",
                               "via", os.fsdecode(b"caf\xe9"))}
    assert collisions(src, dst, owners) == [
        f"{p} (also delivered by X)" for p in ("bytes", "'caf\\udce9'", "dir", "fifo", "ln2",
                                               "mode")]
    assert collisions(src, dst, {}) == []


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_install_deb_keeps_modes_and_absolute_links(tmp_path: Path) -> None:
    deb = build_deb(tmp_path / "t.deb", "t", "1", files={"usr/bin/x": "x", "etc/y": "y"},
                    links={"usr/bin/z": "/usr/bin/x"}, modes={"usr/bin/x": 0o4755})
    proto = tmp_path / "proto"
    (proto / "usr").mkdir(parents=True)
    entries = install_deb(deb, proto, tmp_path / "work")
    assert (proto / "usr/bin/x").stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(proto / "usr/bin/z") == "/usr/bin/x"
    assert {e.path for e in entries} >= {"usr/bin/x", "etc/y", "usr/bin/z", "usr"}
    assert list((tmp_path / "work").iterdir()) == []
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"not a deb")
    with pytest.raises(Exception, match="bad.deb"):
        install_deb(bad, proto, tmp_path / "work")


def test_layer_whiteouts_and_owners(tmp_path: Path) -> None:
    """With ``whiteouts``, ``.wh.`` members become overlayfs whiteouts and opaque marks;
    without, they are plain files. ``keep_owners`` keeps numeric owners."""
    import stat as st

    from liveforge.util.unpack import extract_tar

    archive = tmp_path / "layer.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, kind in (("d", tarfile.DIRTYPE), ("d/.wh.gone", tarfile.REGTYPE),
                           ("o", tarfile.DIRTYPE), ("o/.wh..wh..opq", tarfile.REGTYPE),
                           ("f", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.uid, info.gid = kind, 1234, 99
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    for whiteouts in (False, True):
        dest = tmp_path / f"out{whiteouts}"
        dest.mkdir()
        with tarfile.open(archive) as tar:
            entries = extract_tar(tar, dest, "layer", whiteouts=whiteouts, keep_owners=True)
        if not whiteouts:
            assert (dest / "d/.wh.gone").is_file() and (dest / "o/.wh..wh..opq").is_file()
            continue
        assert [(e.path, e.kind) for e in entries if e.kind in "wo"] == [("d/gone", "w"),
                                                                          ("o", "o")]
        gone = os.lstat(dest / "d/gone")
        assert st.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
        assert os.getxattr(dest / "o", "trusted.overlay.opaque") == b"y"
        assert not os.path.lexists(dest / "o/.wh..wh..opq")
        assert (os.lstat(dest / "f").st_uid, os.lstat(dest / "d").st_gid) == (1234, 99)
