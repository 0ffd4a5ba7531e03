"""The IMGAPI client against the real server: ping, paging, manifests, and downloads that check
size and SHA-1, resume with Range, retry 5xx and dropped connections, and time out clearly."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liveforge.img.client import Client
from liveforge.img.errors import ImgadmError
from liveforge.img.manifest import Manifest, validate
from tests.support.imgapi import imgapi, put_image

U = "7b2e4f10-0c1d-4e5f-8a9b-0123456789ab"
DATA = os.urandom(3 << 20) + b"tail"


def image(directory: Path, data: bytes = DATA, **fields: Any) -> Manifest:
    return validate(put_image(directory, {"uuid": U, "name": "blob", "version": "1",
                                          "type": "zvol", "os": "linux", "image_size": 1,
                                          **fields}, data))


def leftovers(d: Path) -> list[str]:
    return sorted(os.listdir(d))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    (tmp_path / "dl").mkdir()
    return tmp_path / "dl" / f"{U}.file"


def test_ping_and_manifests(tmp_path: Path) -> None:
    for n in range(7):
        put_image(tmp_path / "d", {"uuid": f"00000000-0000-4000-8000-{n:012d}", "name": f"i{n}",
                                   "version": "1", "type": "other", "os": "other",
                                   "published_at": f"2026-02-0{n + 1}T00:00:00Z"}, b"x")
    with imgapi(tmp_path / "d") as server, Client(server.url, page=3) as client:
        assert client.ping()["imgapi"] is True
        got = client.list_images()
        assert [m["name"] for m in got] == [f"i{n}" for n in range(7)]
        pages = [r for r in server.requests() if r.startswith("GET /images?")]
        assert len(pages) == 3  # 3 + 3 + 1: a short page ends it
        assert "limit=3" in pages[0] and "marker=" not in pages[0]
        assert "marker=00000000-0000-4000-8000-000000000005" in pages[2]
        assert [m["name"] for m in client.list_images({"name": "~i1"})] == ["i1"]
        assert client.get_manifest("00000000-0000-4000-8000-000000000003")["name"] == "i3"
        assert client.get_manifest(U) is None


def test_an_unreachable_source_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    client = Client(f"http://127.0.0.1:{port}", attempts=2, backoff=0.01)
    with pytest.raises(ImgadmError) as caught:
        client.ping()
    assert caught.value.code == "SourcePing"
    assert caught.value.message.startswith(f'image source "http://127.0.0.1:{port}" is not '
                                           "reachable (GET /ping: ")


@pytest.fixture
def not_imgapi(tmp_path: Path) -> Iterator[str]:
    """A plain web server: HTML for everything."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "images").write_text("<html>hello</html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

        def guess_type(self, path: Any) -> str:
            return "text/html"

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_source_that_is_not_imgapi(not_imgapi: str) -> None:
    client = Client(not_imgapi)
    with pytest.raises(ImgadmError) as caught:
        client.ping()
    assert caught.value.code == "SourcePing"
    assert caught.value.message == f'image source "{not_imgapi}" answered GET /ping with HTTP 404'
    with pytest.raises(ImgadmError) as caught:
        client.list_images()
    assert caught.value.code == "SourcePing"
    assert caught.value.message.startswith(
        f'image source "{not_imgapi}" answered GET /images with HTTP 200 and something that is '
        "not JSON (text/html, 18 bytes)")


def test_a_download_verifies_and_lands(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    seen: list[int] = []
    with imgapi(tmp_path / "d") as server, Client(server.url) as client:
        assert client.download(m, dest, seen.append) is True
        assert dest.read_bytes() == DATA and sum(seen) == len(DATA)
        assert leftovers(dest.parent) == [dest.name]
        # a file already there with the right size and SHA-1 is used without a request
        assert client.download(m, dest) is False
        assert len(server.file_requests(U)) == 1
        # one of the right size but other bytes is downloaded again
        dest.write_bytes(b"\0" * len(DATA))
        assert client.download(m, dest) is True
        assert dest.read_bytes() == DATA and len(server.file_requests(U)) == 2


@pytest.mark.parametrize("faults, message", [
    ({"wrong_sha1": True}, "has SHA-1 "),
    ({"wrong_size": True}, f"Content-Length is {len(DATA) + 1} bytes, files[0].size says "
                           f"{len(DATA)}"),
    ({"no_content_length": True}, "the answer has no Content-Length"),
])
def test_a_mismatch_is_a_download_error_and_leaves_nothing(tmp_path: Path, dest: Path,
                                                           faults: dict[str, Any],
                                                           message: str) -> None:
    m = image(tmp_path / "d")
    with imgapi(tmp_path / "d", {"faults": faults}) as server, Client(server.url) as client:
        with pytest.raises(ImgadmError) as caught:
            client.download(m, dest)
        assert len(server.file_requests(U, 1)) == 1  # a mismatch is not retried
    assert caught.value.code == "DownloadError"
    assert caught.value.message.startswith(f'image {U} from "{server.url}": ')
    assert message in caught.value.message
    assert caught.value.message.endswith("(the download was deleted)")
    assert leftovers(dest.parent) == []


def test_a_wrong_sha1_names_both(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    bad = bytearray(DATA)
    bad[len(DATA) // 2] ^= 0xFF
    with imgapi(tmp_path / "d", {"faults": {"wrong_sha1": True}}) as server, \
            Client(server.url) as client:
        with pytest.raises(ImgadmError) as caught:
            client.download(m, dest)
    assert f"the file has SHA-1 {hashlib.sha1(bad).hexdigest()}, the manifest says " \
           f"{hashlib.sha1(DATA).hexdigest()}" in caught.value.message


def test_a_dropped_connection_resumes_with_a_range(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    faults = {"close_first": 2, "close_after": 1 << 20}
    with imgapi(tmp_path / "d", {"faults": faults}) as server, \
            Client(server.url, backoff=0.05) as client:
        assert client.download(m, dest) is True
        requests = server.file_requests(U)
    assert dest.read_bytes() == DATA
    assert requests == [f"GET /images/{U}/file -> 200 1048576 (fault: connection dropped)",
                        f"GET /images/{U}/file range=bytes=1048576- -> 206 1048576 "
                        "(fault: connection dropped)",
                        f"GET /images/{U}/file range=bytes=2097152- -> 206 {len(DATA) - (2 << 20)}"]
    assert leftovers(dest.parent) == [dest.name]


def test_500s_then_success(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    with imgapi(tmp_path / "d", {"faults": {"error_first": 3}}) as server, \
            Client(server.url, backoff=0.05) as client:
        assert client.ping()["imgapi"] is True  # three 500s, then the answer
        assert client.download(m, dest) is True
        statuses = [r.rsplit(" -> ", 1)[1].split()[0] for r in server.requests()]
    assert statuses == ["500", "500", "500", "200", "200"]
    assert dest.read_bytes() == DATA


def test_500s_until_the_client_gives_up(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    with imgapi(tmp_path / "d", {"faults": {"error_first": 100}}) as server, \
            Client(server.url, backoff=0.01, attempts=3) as client:
        with pytest.raises(ImgadmError) as caught:
            client.download(m, dest)
    assert caught.value.code == "DownloadError"
    assert "gave up after 3 attempts (HTTP 500)" in caught.value.message


def test_a_stalled_server_times_out_clearly(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    faults = {"stall_first": 1, "stall_after": 1 << 20, "stall_seconds": 60}
    with imgapi(tmp_path / "d", {"faults": faults}) as server, \
            Client(server.url, read_timeout=1) as client:
        start = time.monotonic()
        with pytest.raises(ImgadmError) as caught:
            client.download(m, dest)
        took = time.monotonic() - start
        assert took < 10
        assert caught.value.code == "DownloadError"
        assert caught.value.message == (
            f'image {U} from "{server.url}": no data for 1 s (read timeout) after '
            f"1048576 of {len(DATA)} bytes; they are kept for the next try")
        # the next try resumes from what the stalled one kept
        assert client.download(m, dest) is True
        assert server.file_requests(U)[-1].startswith(
            f"GET /images/{U}/file range=bytes=1048576- -> 206")
    assert dest.read_bytes() == DATA


def test_a_partial_file_of_an_earlier_run_is_resumed(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    dest.with_name(dest.name + ".partial").write_bytes(DATA[:12345])
    with imgapi(tmp_path / "d") as server, Client(server.url) as client:
        assert client.download(m, dest) is True
        assert server.file_requests(U) == [
            f"GET /images/{U}/file range=bytes=12345- -> 206 {len(DATA) - 12345}"]
    assert dest.read_bytes() == DATA


def test_a_partial_file_of_other_bytes_is_downloaded_again(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    dest.with_name(dest.name + ".partial").write_bytes(b"\xff" * 1000)
    with imgapi(tmp_path / "d") as server, Client(server.url) as client:
        assert client.download(m, dest) is True
        assert [r.split(" -> ")[0] for r in server.file_requests(U)] == [
            f"GET /images/{U}/file range=bytes=1000-", f"GET /images/{U}/file"]
    assert dest.read_bytes() == DATA
    assert leftovers(dest.parent) == [dest.name]


def test_a_file_the_source_lacks_is_its_error(tmp_path: Path, dest: Path) -> None:
    m = image(tmp_path / "d")
    (tmp_path / "d" / U / "file").unlink()
    with imgapi(tmp_path / "d") as server, Client(server.url) as client:
        with pytest.raises(ImgadmError) as caught:
            client.download(m, dest)
    assert caught.value.code == "ResourceNotFound"
    assert caught.value.message == (f'image source "{server.url}": GET /images/{U}/file: the '
                                    f'file of image "{U}" was not found')


def test_a_complete_partial_file_is_checked_without_a_request(tmp_path: Path,
                                                              dest: Path) -> None:
    m = image(tmp_path / "d")
    dest.with_name(dest.name + ".partial").write_bytes(DATA)
    with imgapi(tmp_path / "d") as server, Client(server.url) as client:
        assert client.download(m, dest) is True
        assert server.file_requests(U) == []
    assert dest.read_bytes() == DATA and leftovers(dest.parent) == [dest.name]
