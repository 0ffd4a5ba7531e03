"""A step's unit: packed and unpacked the same on any host, refused when an archive escapes,
delivered into proto refusing collisions, searched for the workspace's path."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from liveforge.build.units import leaks, pack, unpack
from liveforge.util.blobstore import HttpStore, LocalStore, Record, StoreError
from liveforge.util.errors import LiveforgeError
from liveforge.util.hashing import file_digest
from tests.support.workspaces import built, make_workspace, run


def sample_unit(root: Path) -> Path:
    tree = root / "tree"
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "tool").write_bytes(b"\x7fELF tool\n")
    os.chmod(tree / "usr" / "bin" / "tool", 0o4755)
    os.link(tree / "usr" / "bin" / "tool", tree / "usr" / "bin" / "tool2")
    os.symlink("tool", tree / "usr" / "bin" / "t")
    os.symlink("/usr/bin/tool", tree / "usr" / "bin" / "abs")
    (tree / os.fsdecode(b"caf\xe9")).write_text("latin-1 name\n")
    (root / "manifest.d").mkdir()
    (root / "manifest.d" / "c.manifest").write_text("f usr/bin/tool 4755 root root\n")
    return root


def listing(root: Path) -> dict[str, tuple[str, int, bytes]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            st = full.lstat()
            if full.is_symlink():
                found[rel] = ("s", 0, os.readlink(full).encode())
            elif full.is_dir():
                found[rel] = ("d", st.st_mode & 0o7777, b"")
            else:
                found[rel] = ("f", st.st_mode & 0o7777, full.read_bytes())
    return found


def test_pack_is_deterministic_and_unpacks_to_the_same_tree(tmp_path: Path) -> None:
    unit = sample_unit(tmp_path / "unit")
    pack(unit, tmp_path / "a.tar.zst")
    os.utime(unit / "tree" / "usr" / "bin" / "tool", (1, 1))  # times do not matter
    pack(unit, tmp_path / "b.tar.zst")
    assert (tmp_path / "a.tar.zst").read_bytes() == (tmp_path / "b.tar.zst").read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    unpack(tmp_path / "a.tar.zst", out)
    assert listing(out) == listing(unit)
    tool = out / "tree" / "usr" / "bin"
    assert os.stat(tool / "tool").st_ino == os.stat(tool / "tool2").st_ino  # still linked
    assert abs(os.stat(tool / "tool").st_mtime - os.stat(out).st_mtime) < 3600  # now, not 0


def evil_archive(path: Path, member: str, kind: str = "f", target: str = "") -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(member)
        if kind == "s":
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        elif kind == "c":
            info.type = tarfile.CHRTYPE
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    path.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(),
                                    capture_output=True, check=True).stdout)


@pytest.mark.parametrize("member,kind,target", [
    ("../escaped", "f", ""), ("/abs/escaped", "f", ""), ("tree/../../escaped", "f", ""),
    ("tree/dev", "c", ""), ("tree/up", "s", "../../../.."),
])
def test_an_escaping_archive_is_refused(tmp_path: Path, member: str, kind: str,
                                        target: str) -> None:
    archive = tmp_path / "evil.tar.zst"
    evil_archive(archive, member, kind, target)
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    with pytest.raises(LiveforgeError):
        unpack(archive, out)
    assert not (tmp_path / "deep" / "escaped").exists()
    assert not (tmp_path / "escaped").exists()


def test_garbage_and_truncated_archives_are_errors(tmp_path: Path) -> None:
    unit = sample_unit(tmp_path / "unit")
    pack(unit, tmp_path / "a.tar.zst")
    data = (tmp_path / "a.tar.zst").read_bytes()
    for name, content in (("trunc", data[: len(data) // 2]), ("junk", b"not zstd" * 100)):
        (tmp_path / name).write_bytes(content)
        out = tmp_path / f"out-{name}"
        out.mkdir()
        with pytest.raises(LiveforgeError):
            unpack(tmp_path / name, out)


def test_leaks_find_the_path_across_chunks_and_in_links(tmp_path: Path) -> None:
    unit = tmp_path / "unit"
    (unit / "tree").mkdir(parents=True)
    needle = b"/home/builder/ws"
    big = bytearray(b"x" * ((1 << 20) + 100))
    big[(1 << 20) - 5:(1 << 20) - 5 + len(needle)] = needle  # across the read boundary
    (unit / "tree" / "big").write_bytes(bytes(big))
    (unit / "tree" / "clean").write_bytes(b"/home/builder/w" + b"s" * 0 + b"x")
    os.symlink("/home/builder/ws/lib", unit / "tree" / "link")
    assert leaks(unit, [needle]) == ["tree/big", "tree/link"]


def test_local_store_checks_digests_and_records(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    key = "a" * 64
    partial = store.temp("x")
    partial.write_bytes(b"archive bytes")
    record = store.add(key, partial)
    assert record == Record(file_digest(store.archive(record)), 13)
    assert store.record(key) == record
    store.archive(record).write_bytes(b"archive bytez")  # damaged in place
    with pytest.raises(StoreError, match="damaged"):
        store.archive(record)
    assert store.record(key) is None  # the record leads nowhere now
    (tmp_path / "store" / "ac" / key).write_text("{not json")
    assert store.record(key) is None
    with pytest.raises(StoreError):
        store.record("../../etc/passwd")
    with pytest.raises(StoreError):
        Record.parse(b'{"format": 1, "archive": "../x", "size": 1}', "r")


def test_http_store_refuses_bad_keys_and_reports_no_server(tmp_path: Path) -> None:
    from tests.support.nginx import free_port

    store = HttpStore(f"http://127.0.0.1:{free_port()}", None, 1.0)
    with pytest.raises(StoreError, match="Connection refused"):
        store.record("b" * 64)
    with pytest.raises(StoreError, match="not a key"):
        store.record("../../secret")
    assert not store.writable


COLLIDE = """\
world:
\t@true
install:
\tmkdir -p "$(DESTDIR)/etc"
\techo "{text}" > "$(DESTDIR)/etc/shared.conf"
manifest:
\techo 'f etc/shared.conf 0644 root root' > "$(DESTDIR)/$(DESTNAME)"
"""


def test_two_steps_delivering_one_file_differently_collide(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ws = make_workspace(tmp_path / "ws", {"a": [], "b": ["a"], "c": ["a"]})
    from tests.support.cli import cli
    assert cli(ws, "configure").returncode == 0
    for name, text in (("a", "same"), ("b", "same"), ("c", "different")):
        (ws / "projects" / name / "Makefile").write_text(COLLIDE.format(text=text))
    code, events = run(ws, "world", capsys=capsys)
    assert code != 0
    assert built(events) == {"a", "b"}  # identical content is no collision
    failed = [e for e in events if e["event"] == "fail"]
    assert [e["component"] for e in failed] == ["c"]
    assert "etc/shared.conf (also delivered by" in failed[0]["error"]
    assert (ws / "proto" / "etc" / "shared.conf").read_text() == "same\n"
    assert not (ws / "0-c-stamp").exists()
    assert not (ws / "manifest.d" / "c.manifest").exists()


COLLIDE_DIR = """\
world:
\t@true
install:
\tmkdir -p "$(DESTDIR)/etc/shared.conf"
\techo inside > "$(DESTDIR)/etc/shared.conf/part"
manifest:
\techo 'd etc/shared.conf 0755 root root' > "$(DESTDIR)/$(DESTNAME)"
"""


@pytest.mark.parametrize("later", ["directory", "file"])
def test_a_file_and_a_directory_of_two_steps_collide(tmp_path: Path, later: str,
                                                     capsys) -> None:  # type: ignore[no-untyped-def]
    """A directory over another step's file was merged silently (the file replaced); a file
    over a directory failed half-way through the merge."""
    ws = make_workspace(tmp_path / "ws", {"a": [], "b": ["a"]})
    from tests.support.cli import cli
    assert cli(ws, "configure").returncode == 0
    file_, dir_ = COLLIDE.format(text="plain"), COLLIDE_DIR
    first, second = (file_, dir_) if later == "directory" else (dir_, file_)
    (ws / "projects" / "a" / "Makefile").write_text(first)
    (ws / "projects" / "b" / "Makefile").write_text(second)
    code, events = run(ws, "world", capsys=capsys)
    assert code != 0 and built(events) == {"a"}
    failed = [e for e in events if e["event"] == "fail"]
    assert "b delivers into proto/ with different content: etc/shared.conf (also delivered " \
           "by a)" in failed[0]["error"]
    shared = ws / "proto" / "etc" / "shared.conf"
    if later == "directory":
        assert shared.is_file() and shared.read_text() == "plain\n"
    else:
        assert (shared / "part").read_text() == "inside\n"
    assert not (ws / "0-b-stamp").exists()


def test_credentials_from_the_environment_or_netrc(tmp_path: Path) -> None:
    from liveforge.util.blobstore import credentials

    url = "https://cache.example.org:8443/steps"
    assert credentials(url, {"LIVEFORGE_CACHE_AUTH": "ci:pa:ss"}) == ("ci", "pa:ss")
    with pytest.raises(StoreError, match="user:password"):
        credentials(url, {"LIVEFORGE_CACHE_AUTH": "no-colon"})
    netrc = tmp_path / "netrc"
    netrc.write_text("machine other.example.org login x password y\n"
                     "machine cache.example.org login builder password s3cret\n")
    os.chmod(netrc, 0o600)
    assert credentials(url, {"NETRC": str(netrc)}) == ("builder", "s3cret")
    assert credentials("http://elsewhere.example.org/", {"NETRC": str(netrc)}) is None
    assert credentials(url, {"NETRC": str(tmp_path / "none")}) is None


def test_prune_removes_a_killed_writers_temporaries_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "tmp").mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / "store" / "tmp" / f".{'c' * 64}.lf-tmp-{dead.pid}"
    gone.write_bytes(b"half an archive")
    alive = subprocess.Popen(["sleep", "30"])
    try:
        kept = tmp_path / "store" / "tmp" / f".{'d' * 64}.lf-tmp-{alive.pid}"
        kept.write_bytes(b"being written")
        assert store.prune(1 << 30, leftovers=True) == (0, 0)
        assert not gone.exists() and kept.exists()
    finally:
        alive.kill()
        alive.wait()
