"""imgapi, the real server on loopback: filters, paging, sort, the file with Content-Length,
Content-MD5 and ranges, publishing with its token, error bodies, a directory with bad entries."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.imgapi import TOKEN, Server, imgapi, put_image

DATA = bytes(range(256)) * 40  # 10240 bytes


def uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


OWNER = "930896af-bf8c-48d4-885c-6573a94b1853"


def manifest(n: int, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid(n), "name": f"img{n}", "version": "1.0", "type": "zone-dataset",
            "os": "linux", "published_at": f"2026-01-{n:02d}T10:00:00Z", **fields}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    d = tmp_path / "images"
    d.mkdir()
    put_image(d, manifest(1, name="base", version="1.0", public=True, tags={"role": "db"}), DATA)
    put_image(d, manifest(2, name="base", version="2.0", os="smartos", owner=OWNER), DATA)
    put_image(d, manifest(3, name="webbase", version="2.1", type="zvol", image_size=10,
                          tags={"role": "web", "n": 3}), DATA)
    put_image(d, manifest(4, name="old", state="disabled"), DATA)
    put_image(d, manifest(5, name="lx", type="lx-dataset", public=False,
                          published_at="2026-01-05T10:00:00.500Z"), DATA)
    with imgapi(d) as server:
        yield server


def names(url: str, **params: str) -> list[str]:
    r = httpx.get(f"{url}/images", params=params)
    assert r.status_code == 200, r.text
    return [m["name"] + "@" + m["version"] for m in r.json()]


def test_ping_answers_imgapi(served: Server) -> None:
    r = httpx.get(f"{served.url}/ping")
    assert r.status_code == 200
    assert r.json()["ping"] == "pong" and r.json()["imgapi"] is True


def test_filters(served: Server) -> None:
    url = served.url
    # default: active only, sorted by published_at
    assert names(url) == ["base@1.0", "base@2.0", "webbase@2.1", "lx@1.0"]
    assert names(url, state="all") == ["base@1.0", "base@2.0", "webbase@2.1", "old@1.0",
                                       "lx@1.0"]
    assert names(url, state="disabled") == ["old@1.0"]
    assert names(url, name="base") == ["base@1.0", "base@2.0"]
    assert names(url, name="~base") == ["base@1.0", "base@2.0", "webbase@2.1"]
    assert names(url, version="~2") == ["base@2.0", "webbase@2.1"]
    assert names(url, os="smartos") == ["base@2.0"]
    assert names(url, type="zvol") == ["webbase@2.1"]
    assert names(url, type="!zone-dataset") == ["webbase@2.1", "lx@1.0"]
    assert names(url, public="true") == ["base@1.0"]
    assert names(url, public="false") == ["base@2.0", "webbase@2.1", "lx@1.0"]
    assert names(url, owner=OWNER) == ["base@2.0"]
    assert names(url, **{"tag.role": "db"}) == ["base@1.0"]
    assert names(url, **{"tag.n": "3"}) == ["webbase@2.1"]
    assert names(url, name="~base", os="linux") == ["base@1.0", "webbase@2.1"]
    assert names(url, name="nothing") == []


def test_sort_limit_and_marker_page_through_everything(served: Server) -> None:
    url = served.url
    assert names(url, sort="published_at.desc") == ["lx@1.0", "webbase@2.1", "base@2.0",
                                                    "base@1.0"]
    assert names(url, sort="name") == ["base@1.0", "base@2.0", "lx@1.0", "webbase@2.1"]
    assert names(url, limit="2") == ["base@1.0", "base@2.0"]
    assert names(url, limit="2", marker=uuid(2)) == ["webbase@2.1", "lx@1.0"]
    assert names(url, limit="2", marker=uuid(5)) == []
    # a date marker: published at or after it (milliseconds count)
    assert names(url, marker="2026-01-03T10:00:00Z") == ["webbase@2.1", "lx@1.0"]
    assert names(url, marker="2026-01-05T10:00:00.200Z") == ["lx@1.0"]
    assert names(url, marker="2026-01-03T10:00:00Z", sort="published_at.desc") == [
        "webbase@2.1", "base@2.0", "base@1.0"]


@pytest.mark.parametrize("params, field", [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "x"}, "limit"),
    ({"marker": "yesterday"}, "marker"), ({"marker": uuid(99)}, "marker"),
    ({"sort": "size"}, "sort"), ({"public": "maybe"}, "public"), ({"colour": "red"}, "colour"),
])
def test_a_bad_query_parameter_is_named(served: Server, params: dict[str, str],
                                        field: str) -> None:
    r = httpx.get(f"{served.url}/images", params=params)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "InvalidParameter" and body["message"].startswith(f"{field}: ")
    assert body["errors"][0]["field"] == field


def test_one_manifest_and_not_found(served: Server) -> None:
    r = httpx.get(f"{served.url}/images/{uuid(4)}")
    assert r.status_code == 200 and r.json()["state"] == "disabled"
    r = httpx.get(f"{served.url}/images/{uuid(42)}")
    assert r.status_code == 404
    assert r.json() == {"code": "ResourceNotFound",
                        "message": f'image "{uuid(42)}" was not found'}
    assert httpx.get(f"{served.url}/images/not-a-uuid").json()["code"] == "InvalidParameter"
    assert httpx.get(f"{served.url}/nothing").status_code == 404
    for path in ("/images/..%2F..%2Fetc%2Fpasswd", "/images/%2E%2E/file",
                 f"/images/{uuid(1)}/..%2F{uuid(2)}/file"):
        r = httpx.get(served.url + path)
        assert r.status_code in (404, 422) and r.json()["code"] in ("ResourceNotFound",
                                                                     "InvalidParameter"), path
    assert httpx.delete(f"{served.url}/images").json()["code"] == "BadMethod"


def test_the_file_with_length_md5_and_ranges(served: Server) -> None:
    url = f"{served.url}/images/{uuid(1)}/file"
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["content-length"] == str(len(DATA))
    assert r.headers["content-md5"] == base64.b64encode(hashlib.md5(DATA).digest()).decode()
    assert r.headers["accept-ranges"] == "bytes"
    for header, first, last in [("bytes=10-19", 10, 19), ("bytes=10000-", 10000, 10239),
                                ("bytes=-5", 10235, 10239), ("bytes=10230-99999", 10230, 10239)]:
        r = httpx.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == DATA[first:last + 1]
        assert r.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
        assert r.headers["content-length"] == str(last - first + 1)
        assert "content-md5" not in r.headers
    r = httpx.get(url, headers={"Range": "bytes=10240-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */10240"
    assert r.json()["code"] == "RequestedRangeNotSatisfiable"
    # several ranges or another unit: the whole file
    assert httpx.get(url, headers={"Range": "bytes=1-2,5-6"}).content == DATA
    r = httpx.head(url)
    assert r.status_code == 200 and r.headers["content-length"] == "10240" and not r.content
    # the MD5 was written down for the next request
    md5 = json.loads((served.directory / uuid(1) / "file.md5").read_text())
    assert md5["size"] == len(DATA)
    assert f"GET /images/{uuid(1)}/file range=bytes=10-19 -> 206 10" in served.requests()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_publishing_needs_the_token(served: Server) -> None:
    new = manifest(7, name="new")
    for headers in ({}, auth("wrong"), {"Authorization": TOKEN}):
        r = httpx.post(f"{served.url}/images", json=new, headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "UnauthorizedError"
        assert r.headers["www-authenticate"] == "Bearer"
    assert not (served.directory / uuid(7)).exists()
    r = httpx.put(f"{served.url}/images/{uuid(1)}/file", content=b"x", headers=auth("no"))
    assert r.status_code == 401
    r = httpx.post(f"{served.url}/images/{uuid(1)}", params={"action": "activate"})
    assert r.status_code == 401


def test_publish_create_upload_activate(served: Server) -> None:
    url = served.url
    data = os.urandom(300_000)
    sha1 = hashlib.sha1(data).hexdigest()
    new = {"uuid": uuid(8), "name": "fresh", "version": "3", "type": "zone-dataset",
           "os": "linux"}
    r = httpx.post(f"{url}/images", json=new, headers=auth())
    assert r.status_code == 200 and r.json()["state"] == "unactivated"
    assert "fresh@3" not in names(url) and "fresh@3" in names(url, state="all")
    # no file yet: nothing to download, nothing to activate
    assert httpx.get(f"{url}/images/{uuid(8)}/file").status_code == 404
    r = httpx.post(f"{url}/images/{uuid(8)}", params={"action": "activate"}, headers=auth())
    assert r.status_code == 422 and r.json()["code"] == "NoActivationNoFile"
    # a wrong sha1 or size is refused and leaves nothing behind
    for params in ({"sha1": "0" * 40}, {"size": str(len(data) + 1)}):
        r = httpx.put(f"{url}/images/{uuid(8)}/file", content=data, headers=auth(),
                      params={"compression": "none", **params})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "ValidationFailed"
        assert r.json()["errors"][0]["field"] == next(iter(params))
        assert sorted(os.listdir(served.directory / uuid(8))) == ["manifest.json"]
    r = httpx.put(f"{url}/images/{uuid(8)}/file", content=data, headers=auth(),
                  params={"compression": "lz4"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "compression"
    r = httpx.put(f"{url}/images/{uuid(8)}/file", content=data, headers=auth(),
                  params={"compression": "none", "sha1": sha1, "size": str(len(data))})
    assert r.status_code == 200, r.text
    assert r.json()["files"] == [{"sha1": sha1, "size": len(data), "compression": "none"}]
    r = httpx.post(f"{url}/images/{uuid(8)}", params={"action": "activate"}, headers=auth())
    assert r.status_code == 200 and r.json()["state"] == "active"
    assert r.json()["published_at"].endswith("Z")
    assert "fresh@3" in names(url)
    assert httpx.get(f"{url}/images/{uuid(8)}/file").content == data
    r = httpx.post(f"{url}/images/{uuid(8)}", params={"action": "activate"}, headers=auth())
    assert r.status_code == 422 and r.json()["code"] == "ImageAlreadyActivated"
    r = httpx.put(f"{url}/images/{uuid(8)}/file", content=b"new", headers=auth(),
                  params={"compression": "none"})
    assert r.status_code == 422 and r.json()["code"] == "ImageFilesImmutable"
    r = httpx.post(f"{url}/images", json=new, headers=auth())
    assert r.status_code == 409 and r.json()["code"] == "ImageUuidAlreadyExists"
    on_disk = json.loads((served.directory / uuid(8) / "manifest.json").read_text())
    assert on_disk["state"] == "active" and on_disk["files"][0]["sha1"] == sha1
    leftovers = [n for n in os.listdir(served.directory / uuid(8)) if n.startswith(".")]
    assert leftovers == []


def test_an_invalid_manifest_is_refused_with_every_bad_field(served: Server) -> None:
    bad = {"uuid": uuid(9), "name": "", "type": "floppy", "os": "linux", "version": "1",
           "files": [{"sha1": "a" * 40, "size": 1, "compression": "none"}]}
    r = httpx.post(f"{served.url}/images", json=bad, headers=auth())
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "ValidationFailed"
    assert [e["field"] for e in body["errors"]] == ["name", "type", "files"]
    assert not (served.directory / uuid(9)).exists()
    r = httpx.post(f"{served.url}/images", content=b"{not json", headers=auth())
    assert r.status_code == 422 and r.json()["code"] == "InvalidParameter"
    r = httpx.post(f"{served.url}/images", content=b"x" * (2 << 20), headers=auth())
    assert r.status_code == 413


def test_without_a_token_the_server_is_read_only(tmp_path: Path) -> None:
    with imgapi(tmp_path / "ro", token=None) as server:
        r = httpx.post(f"{server.url}/images", json=manifest(1), headers=auth())
        assert r.status_code == 401 and "no token" in r.json()["message"]
        assert httpx.get(f"{server.url}/images").json() == []


def test_bad_entries_of_the_directory_are_not_served(tmp_path: Path) -> None:
    d = tmp_path / "images"
    put_image(d, manifest(1), DATA)
    put_image(d, manifest(2), DATA)
    (d / uuid(2) / "manifest.json").write_text("{torn")
    put_image(d, manifest(3, type="floppy"), DATA)
    put_image(d, manifest(4), DATA)
    os.rename(d / uuid(4), d / uuid(6))  # a folder whose name is not its manifest's uuid
    (d / "notes.txt").write_text("not an image")
    (d / uuid(1) / ".file.lf-tmp-999999999").write_text("a dead server's upload")
    with imgapi(d) as server:
        assert names(server.url) == ["img1@1.0"]
        assert httpx.get(f"{server.url}/images/{uuid(2)}").status_code == 404
        log = server.log.read_text()
    assert f"{uuid(2)}/manifest.json: missing or not JSON" in log
    assert "invalid manifest: type (must be one of" in log
    assert f"uuid (must be the folder's name {uuid(6)})" in log
    assert not (d / uuid(1) / ".file.lf-tmp-999999999").exists()


@pytest.mark.parametrize("config, message", [
    ({"faults": {"close_first": -1}}, "faults.close_first must be a whole number >= 0"),
    ({"faults": {"explode": True}}, "faults.explode is not a fault"),
    ({"token": ""}, "token must be a non-empty string"),
    ({"port": 1}, "unknown key 'port'"),
])
def test_a_bad_configuration_is_one_line(tmp_path: Path, config: dict[str, Any],
                                         message: str) -> None:
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, "-m", "liveforge.img.server.cli", "-c", str(conf),
                           str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"imgapi: error: {conf}: {message}")
    assert proc.stderr.count("\n") == 1


def test_the_rate_fault_paces_every_download(tmp_path: Path) -> None:
    import time

    data = os.urandom(300_000)
    with imgapi(tmp_path / "images", {"faults": {"rate": 200_000}}) as server:
        put_image(server.directory, manifest(1), data)
        url = f"{server.url}/images/{uuid(1)}/file"
        for headers, want in (({}, data), ({"Range": "bytes=100000-"}, data[100000:])):
            start = time.monotonic()
            r = httpx.get(url, headers=headers, timeout=30)
            took = time.monotonic() - start
            assert r.content == want
            assert len(want) / 200_000 - 0.2 <= took < len(want) / 200_000 + 3
