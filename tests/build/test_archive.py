"""Archive writers: round trip through GNU tar and cpio, determinism, reproducibility."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from liveforge.build.image.archive import read_cpio, read_tar, write_archives
from liveforge.build.image.assemble import Image, resolve
from liveforge.build.image.manifest import combine
from liveforge.util.errors import BuildError
from tests.support import file_sha256, sha256
from tests.support.manifests import generate, write_proto

EPOCH = 1_700_000_000


def build(root: Path, entries: int = 1100) -> tuple[Image, Path]:
    generated = generate(entries, seed=7, big_every=300, big_size=3 << 20)
    proto = root / "proto"
    write_proto(generated, proto)
    (root / "manifest").write_text("\n".join(generated.lines) + "\n")
    manifest = combine([root / "manifest"], {}, False, lambda _: None)
    return resolve(manifest, [proto]), proto


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Image, Path, Path]:
    root = tmp_path_factory.mktemp("arch")
    image, _ = build(root)
    tar, cpio = root / "image.tgz", root / "boot_archive"
    write_archives(image, EPOCH, tar=tar, cpio=cpio)
    return image, tar, cpio


def expected(image: Image) -> dict[str, tuple[str, int, int, int, str]]:
    """path -> (type, mode, uid, gid, link target or content digest)."""
    out = {}
    for e in image.entries:
        if e.kind == "f":
            assert e.source is not None
            out[e.path] = ("f", e.mode, e.uid, e.gid, file_sha256(e.source))
        elif e.kind != "h":
            out[e.path] = (e.kind, e.mode, e.uid, e.gid, e.target)
    for e in image.entries:
        if e.kind == "h":
            out[e.path] = ("f", e.mode, e.uid, e.gid, out[e.target][4])
    return out


def tree_of(root: Path) -> dict[str, tuple[str, int, int, int, str]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(dirpath, name)
            st = full.lstat()
            rel = str(full.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("s", 0o777, st.st_uid, st.st_gid, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, "")
            else:
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                            file_sha256(full))
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="extracting with owners needs root")
def test_gnu_tar_extracts_exactly_the_manifest(built: tuple[Image, Path, Path],
                                                tmp_path: Path) -> None:
    image, tar, _ = built
    subprocess.run(["tar", "-xzf", str(tar), "-C", str(tmp_path), "--same-owner",
                    "--numeric-owner", "-p"], check=True)
    assert tree_of(tmp_path) == expected(image)
    hard = [e for e in image.entries if e.kind == "h"]
    assert hard and all((tmp_path / e.path).samefile(tmp_path / e.target) for e in hard)


@pytest.mark.skipif(shutil.which("cpio") is None or os.geteuid() != 0, reason="needs cpio, root")
def test_gnu_cpio_extracts_exactly_the_manifest(built: tuple[Image, Path, Path],
                                                 tmp_path: Path) -> None:
    image, _, cpio = built
    data = subprocess.run(["gzip", "-dc", str(cpio)], check=True, capture_output=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=data,
                   cwd=tmp_path, check=True)
    got = tree_of(tmp_path)
    want = expected(image)
    # cpio does not restore a directory's mode when the directory is not writable for it;
    # compare directories by existence, everything else exactly.
    assert got.keys() == want.keys()
    assert {p: v for p, v in got.items() if v[0] != "d"} == \
        {p: v for p, v in want.items() if v[0] != "d"}
    listing = subprocess.run(["cpio", "-itv", "--numeric-uid-gid", "--quiet"], input=data,
                             capture_output=True, check=True).stdout.decode()
    dirs = {line.split()[-1]: line.split()[0] for line in listing.splitlines()
            if line.startswith("d")}
    assert {p: stat.filemode(stat.S_IFDIR | v[1]) for p, v in want.items() if v[0] == "d"} == dirs


def test_python_readers_agree_with_the_manifest(built: tuple[Image, Path, Path]) -> None:
    image, tar, cpio = built
    want = expected(image)
    for members in (read_tar(tar), read_cpio(cpio)):
        got = {p: ("f" if m.kind == "h" else m.kind, m.mode, m.uid, m.gid,
                   m.sha256 if m.kind in "fh" else m.target) for p, m in members.items()}
        assert got == want
        assert {m.mtime for m in members.values()} == {EPOCH}


def test_no_names_devices_or_gzip_metadata(built: tuple[Image, Path, Path]) -> None:
    _, tar, cpio = built
    for path in (tar, cpio):
        head = path.read_bytes()[:10]
        assert head[3] == 0 and head[4:8] == b"\0\0\0\0"     # no FNAME, mtime 0
    listing = subprocess.run(["tar", "-tvzf", str(tar)], capture_output=True, check=True,
                             text=True).stdout
    assert all(line.split()[1].startswith("0/") or line.split()[1][0].isdigit()
               for line in listing.splitlines())


def test_reproducible_from_two_directories(tmp_path: Path) -> None:
    outputs = []
    for name in ("one", "two-elsewhere"):
        root = tmp_path / name
        image, proto = build(root, 1000)
        for path in proto.rglob("*"):                     # different on-disk metadata
            os.utime(path, (1000 + len(name), 2000 + len(name)), follow_symlinks=False)
        os.chmod(proto / "etc/passwd", 0o600 if name == "one" else 0o640)
        old = os.umask(0o077 if name == "one" else 0o022)
        try:
            write_archives(image, EPOCH, tar=root / "t.tgz", cpio=root / "c")
        finally:
            os.umask(old)
        outputs.append(((root / "t.tgz").read_bytes(), (root / "c").read_bytes()))
    assert outputs[0] == outputs[1]


def test_zstd_and_uncompressed(built: tuple[Image, Path, Path], tmp_path: Path) -> None:
    image, tar, cpio = built
    if shutil.which("zstd") is None:
        pytest.skip("no zstd")
    write_archives(image, EPOCH, cpio=tmp_path / "z", cpio_compression="zstd",
                   tar=tmp_path / "t", tar_compression="none")
    assert (tmp_path / "z").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert read_cpio(tmp_path / "z") == read_cpio(cpio)
    assert read_tar(tmp_path / "t") == read_tar(tar)
    assert (tmp_path / "t").stat().st_size % 10240 == 0


def test_long_names_and_targets(tmp_path: Path) -> None:
    from liveforge.build.image.assemble import ImageEntry
    long = "/".join(["d" * 60] * 3)
    (tmp_path / "f").write_text("x")
    image = Image((ImageEntry("d", "a", 0o755, 0, 0),
                   ImageEntry("f", "a/" + "n" * 150, 0o644, 5, 6, source=tmp_path / "f"),
                   ImageEntry("s", "a/l", 0o777, 0, 0, target=long)))
    write_archives(image, EPOCH, tar=tmp_path / "t", cpio=tmp_path / "c")
    members = read_tar(tmp_path / "t")
    assert members["a/l"].target == long and members["a/" + "n" * 150].uid == 5
    listing = subprocess.run(["tar", "-tvf", str(tmp_path / "t")], capture_output=True,
                             check=True, text=True).stdout
    assert "n" * 150 in listing and long in listing


def test_a_full_disk_is_an_oserror_and_stops_every_writer_thread(tmp_path: Path) -> None:
    import errno
    import threading

    image, _ = build(tmp_path, 300)
    before = threading.active_count()
    for tar, cpio in ((tmp_path / "t.tgz", Path("/dev/full")),
                      (Path("/dev/full"), tmp_path / "c.gz")):
        with pytest.raises(OSError) as failed:
            write_archives(image, EPOCH, tar=tar, cpio=cpio)
        assert failed.value.errno == errno.ENOSPC
        # no compressor is left running: it would write into whatever file reuses its fd
        assert threading.active_count() == before


def test_gzip_file_is_the_deterministic_gzip(tmp_path: Path) -> None:
    """The one gzip writer: the bytes of gzip with mtime 0 and no name, whatever the chunks."""
    import gzip
    import io

    from liveforge.util.archive import gzip_file

    data = b"".join(b"%d " % i * (i % 7) for i in range(300_000)) + os.urandom(1 << 16)
    (tmp_path / "raw").write_bytes(data)
    gzip_file(tmp_path / "raw", tmp_path / "raw.gz")
    packed = (tmp_path / "raw.gz").read_bytes()
    reference = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=reference, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    assert packed == reference.getvalue()
    assert packed[3:8] == b"\0" * 5  # no name, mtime 0
    assert gzip.decompress(packed) == data
    with pytest.raises(OSError):
        gzip_file(tmp_path / "raw", Path("/dev/full"))


def test_merged_image_keeps_modes_links_and_later_trees_win(tmp_path: Path) -> None:
    from liveforge.build.image.archive import merged_image

    one, two = tmp_path / "one", tmp_path / "two"
    (one / "usr/lib").mkdir(parents=True)
    (one / "usr/lib/libx.so.1").write_text("x1")
    (one / "usr/lib/libx.so").symlink_to("libx.so.1")
    (one / "usr/bin").mkdir()
    (one / "usr/bin/tool").write_text("tool")
    (one / "usr/bin/tool").chmod(0o4755)
    os.link(one / "usr/bin/tool", one / "usr/bin/alias")
    (one / "usr/bin/old").write_text("old")
    (two / "usr/bin").mkdir(parents=True)
    (two / "usr/bin/old").write_text("new")
    image = merged_image([one, two])
    by_path = image.by_path()
    assert [e.path for e in image.entries] == sorted(by_path)
    assert by_path["usr/lib/libx.so"].kind == "s" and by_path["usr/lib/libx.so"].target == \
        "libx.so.1"
    assert (by_path["usr/bin/alias"].kind, by_path["usr/bin/tool"].kind) == ("f", "h")
    assert by_path["usr/bin/tool"].target == "usr/bin/alias"
    assert by_path["usr/bin/tool"].mode == 0o4755
    assert by_path["usr/bin/old"].source == two / "usr/bin/old"
    assert {e.uid for e in image.entries} == {0}
    write_archives(image, EPOCH, tar=tmp_path / "t.tgz")
    members = read_tar(tmp_path / "t.tgz")
    assert members["usr/bin/tool"].kind == "h" and members["usr/bin/tool"].mode == 0o4755
    assert members["usr/bin/old"].sha256 == sha256(b"new")
    os.mkfifo(two / "fifo")
    with pytest.raises(BuildError, match="fifo: not a directory"):
        merged_image([one, two])
