"""Fetch, verify and cache: loopback HTTP, checksum mismatch, offline, the private apt list."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from liveforge.util.errors import FetchError
from liveforge.util.fetch import (
    DebianSource,
    DebPin,
    Fetcher,
    UrlSource,
    host_debian_entries,
    private_sources,
)
from tests.support import sha256
from tests.support.extras import debian_reachable, http_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fetch_verify_and_cache(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "a-1.0.tar.gz").write_bytes(b"upstream bytes")
    notes: list[str] = []
    fetcher = Fetcher(tmp_path / "cache", note=notes.append)
    with http_server(www) as url:
        src = UrlSource(f"{url}/a-1.0.tar.gz", sha256(b"upstream bytes"))
        got = fetcher.fetch(src)
    assert got.read_bytes() == b"upstream bytes"
    assert got == tmp_path / "cache" / "sources" / src.sha256 / "a-1.0.tar.gz"
    assert not list(got.parent.glob("*.partial"))
    # warm cache: no server, even offline
    assert Fetcher(tmp_path / "cache", offline=True).fetch(src) == got
    # a corrupted cached copy is fetched again
    got.write_bytes(b"bit rot")
    with http_server(www) as url:
        fetched = Fetcher(tmp_path / "cache").fetch(UrlSource(f"{url}/a-1.0.tar.gz",
                                                              src.sha256))
    assert fetched.read_bytes() == b"upstream bytes"


def test_checksum_mismatch_names_file_and_hashes_and_deletes(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "b.tar.gz").write_bytes(b"tampered")
    wrong = sha256(b"what we pinned")
    with http_server(www) as url, pytest.raises(FetchError) as info:
        Fetcher(tmp_path / "cache").fetch(UrlSource(f"{url}/b.tar.gz", wrong))
    message = str(info.value)
    assert "b.tar.gz" in message and wrong in message and sha256(b"tampered") in message
    assert not list((tmp_path / "cache").rglob("b.tar.gz*"))


def test_unfetchable_without_and_with_cache(tmp_path: Path) -> None:
    src = UrlSource(f"http://127.0.0.1:{free_port()}/gone.tar.gz", sha256(b"gone"))
    with pytest.raises(FetchError, match="cannot fetch http://127.0.0.1"):
        Fetcher(tmp_path / "cache").fetch(src)
    with pytest.raises(FetchError, match="offline"):
        Fetcher(tmp_path / "cache", offline=True).fetch(src)
    cached = tmp_path / "cache" / "sources" / src.sha256 / "gone.tar.gz"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"gone")
    assert Fetcher(tmp_path / "cache").fetch(src) == cached
    www = tmp_path / "www"
    www.mkdir()
    with http_server(www) as url, pytest.raises(FetchError, match="404"):
        Fetcher(tmp_path / "cache").fetch(UrlSource(f"{url}/missing", sha256(b"x")))


def test_bad_sha256_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="64 hex digits"):
        Fetcher(tmp_path).fetch(UrlSource("http://127.0.0.1/x", "abc"))


@pytest.mark.parametrize("source", [
    UrlSource(url="http://127.0.0.1:9/a/..", sha256="0" * 64),
    UrlSource(url="http://127.0.0.1:9/x.tar.gz", sha256="0" * 64, filename="../../../x.tar.gz"),
    DebianSource(package="zlib", version="1", sha256="0" * 64, filename="../../../x.tar.gz"),
])
def test_a_file_name_that_is_no_plain_name_is_refused(tmp_path: Path, source: UrlSource
                                                      ) -> None:
    cache = tmp_path / "a" / "b" / "c"
    with pytest.raises(FetchError, match="is not a plain file name"):
        Fetcher(cache).fetch(source)
    pin = DebPin(name="x", version="1", arch="amd64", filename="pool/main/..", size=1,
                 sha256="0" * 64)
    with pytest.raises(FetchError, match=r"x=1: '\.\.' is not a plain file name"):
        Fetcher(cache).fetch_deb(pin)
    assert list(tmp_path.rglob("*")) == []


def test_private_sources_from_host_and_mirror(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
        "Components: main\nSigned-By: /usr/share/keyrings/nodesource.gpg\n")
    (etc / "sources.list").write_text(
        "# comment\ndeb http://security.debian.org/debian-security bookworm-security main\n"
        "deb [signed-by=/etc/other.gpg] https://example.com/apt stable main\n")
    (etc / "sources.list.d" / "old.list.disabled").write_text(
        "deb http://deb.debian.org/debian sid main\n")
    entries = host_debian_entries(etc)
    assert [e["URIs"] for e in entries] == ["http://security.debian.org/debian-security",
                                           "http://deb.debian.org/debian"]
    text = private_sources({}, etc)
    assert text.count("Types: deb deb-src") == 2 and "nodesource" not in text
    mirror = private_sources({"DEBIAN_MIRROR": "http://mirror.example/debian",
                              "DEBIAN_SUITES": "bookworm"}, etc)
    assert "URIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main" in mirror
    flat = private_sources({"DEBIAN_MIRROR": "file:///r", "DEBIAN_SUITES": "./",
                            "DEBIAN_TRUSTED": "yes"}, etc)
    assert "Components" not in flat and "Trusted: yes" in flat
    with pytest.raises(FetchError, match="DEBIAN_MIRROR"):
        private_sources({}, tmp_path / "empty")


@pytest.mark.network
def test_debian_source_package_orig_tarball(tmp_path: Path) -> None:
    reason = debian_reachable()
    if reason:
        pytest.skip(reason)
    src = DebianSource("zlib", "1:1.2.13.dfsg-1",
                       "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
                       "zlib_1.2.13.dfsg.orig.tar.bz2")
    got = Fetcher(tmp_path / "cache").fetch(src)
    assert got.name == "zlib_1.2.13.dfsg.orig.tar.bz2"
    assert list(got.parent.iterdir()) == [got]  # the .dsc and debian tarball are not kept
    wrong = DebianSource("zlib", "1:1.2.13.dfsg-1", "0" * 64, "zlib_1.2.13.dfsg.orig.tar.bz2")
    with pytest.raises(FetchError, match="checksum mismatch"):
        Fetcher(tmp_path / "cache").fetch(wrong)
