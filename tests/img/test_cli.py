"""imgadm's command line: global options, error lines and records, sources, the list table."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from liveforge import __version__
from liveforge.img.layer import write_tree
from liveforge.img.store import ImageStore
from tests.support.extras import http_server
from tests.support.images import imgadm, manifest_for

Images = dict[str, tuple[Path, Path, dict]]


# -- global options and errors ----------------------------------------------------------------

def test_version_help_and_no_command(imgadm_root: Path) -> None:
    assert imgadm(imgadm_root, "--version").stdout == f"imgadm {__version__}\n"
    helped = imgadm(imgadm_root, "-h")
    assert helped.returncode == 0
    for verb in ("sources", "list", "get", "install", "delete", "ancestry", "vacuum"):
        assert f"    {verb} " in helped.stdout
    none = imgadm(imgadm_root)
    assert none.returncode == 1
    assert none.stderr.startswith("imgadm: error (NoCommand): ")


@pytest.mark.parametrize("args,line,code", [
    (["frob"], 'imgadm: error (UnknownCommand): unknown command: "frob"', 1),
    (["list", "--bogus"], "imgadm list: error (UnknownOption): ", 1),
    (["install", "-m", "x"], "imgadm install: error (Usage): ", 1),
    (["list", "name"], 'imgadm list: error (Usage): invalid filter "name"', 1),
    (["get", "01234567-89ab-4def-8123-456789abcdef"],
     'imgadm get: error (ImageNotInstalled): image "01234567-89ab-4def-8123-456789abcdef" '
     'was not found on zpool "zones"', 3),
    (["delete", "not-a-uuid"], 'imgadm delete: error (Usage): invalid image uuid "not-a-uuid"',
     1),
    (["get", "01234567-89ab-4def-8123-456789abcdef", "-P", "tank"],
     'imgadm get: error (ConfigError): unknown zpool "tank"', 1),
])
def test_error_lines_codes_and_records(imgadm_root: Path, args: list[str], line: str,
                                       code: int) -> None:
    proc = imgadm(imgadm_root, *args)
    assert proc.returncode == code
    assert proc.stderr.startswith(line) and len(proc.stderr.splitlines()) == 1
    recorded = imgadm(imgadm_root, "-E", *args)
    last = json.loads(recorded.stderr.strip().splitlines()[-1])
    assert last["err"]["code"] == line.split("(", 1)[1].split(")", 1)[0]
    assert recorded.stderr.splitlines()[0].endswith(last["err"]["message"])


def test_bad_config_is_one_line(imgadm_root: Path) -> None:
    conf = imgadm_root / "var/imgadm/imgadm.conf"
    conf.write_text("{oops")
    proc = imgadm(imgadm_root, "sources")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"imgadm sources: error (ConfigError): {conf}: not JSON")
    conf.write_text(json.dumps({"sources": [{"url": 5}]}))
    proc = imgadm(imgadm_root, "list")
    assert "sources[0] must be an object with a \"url\" string" in proc.stderr


def test_verbose_prints_debug_json_lines(imgadm_root: Path) -> None:
    proc = imgadm(imgadm_root, "-v", "list")
    assert proc.returncode == 0
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    assert records and all(r["level"] == "debug" and r["name"] == "imgadm" for r in records)
    assert records[0]["argv"] == ["-v", "list"]


# -- sources ----------------------------------------------------------------------------------

@pytest.fixture
def imgapi_like(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A loopback server answering GET /ping as an IMGAPI server does, and one that does not
    (served from the folders good/ and bad/)."""
    (tmp_path / "www/good").mkdir(parents=True)
    (tmp_path / "www/good/ping").write_text('{"ping": "pong", "imgapi": true}')
    (tmp_path / "www/bad").mkdir()
    (tmp_path / "www/bad/ping").write_text('<html>hello</html>')
    with http_server(tmp_path / "www") as url:
        yield url


def free_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_sources_add_delete_messages_and_ping(imgadm_root: Path, imgapi_like: str) -> None:
    good, bad, dead = f"{imgapi_like}/good", f"{imgapi_like}/bad", free_port_url()
    assert imgadm(imgadm_root, "sources").stdout == ""
    added = imgadm(imgadm_root, "sources", "-a", good)
    assert added.stdout == f'Added "imgapi" image source "{good}"\n', added.stderr
    again = imgadm(imgadm_root, "sources", "-a", good + "/")
    assert again.stdout == f'Already have "imgapi" image source "{good}", no change\n'
    for url, why in ((bad, "not JSON"), (dead, "is not reachable"),
                     (f"{imgapi_like}/nowhere", "HTTP 404")):
        refused = imgadm(imgadm_root, "sources", "-a", url)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f'imgadm sources: error (SourcePing): image source '
                                         f'"{url}"') and why in refused.stderr
    forced = imgadm(imgadm_root, "sources", "-a", dead, "-f")
    assert forced.stdout == f'Added "imgapi" image source "{dead}"\n'
    assert imgadm(imgadm_root, "sources").stdout == f"{good}\n{dead}\n"
    listed = json.loads(imgadm(imgadm_root, "sources", "-j").stdout)
    assert listed == [{"url": good, "type": "imgapi", "insecure": False},
                      {"url": dead, "type": "imgapi", "insecure": False}]
    deleted = imgadm(imgadm_root, "sources", "-d", good)
    assert deleted.stdout == f'Deleted "imgapi" image source "{good}"\n'
    assert imgadm(imgadm_root, "sources").stdout == f"{dead}\n"
    conf = json.loads((imgadm_root / "var/imgadm/imgadm.conf").read_text())
    assert conf == {"sources": [{"url": dead, "type": "imgapi", "insecure": False}]}
    usage = imgadm(imgadm_root, "sources", "-a", "ftp://x")
    assert usage.returncode == 1 and "(Usage): invalid source URL" in usage.stderr


def test_sources_default_and_edit(imgadm_root: Path, tmp_path: Path) -> None:
    (imgadm_root / "var/imgadm/imgadm.conf").unlink()
    assert imgadm(imgadm_root, "sources").stdout == "https://images.smartos.org\n"
    editor = tmp_path / "editor"
    editor.write_text("#!/bin/sh\nprintf 'http://127.0.0.1:9/a\\n# gone\\n' > \"$1\"\n")
    os.chmod(editor, 0o755)
    edited = imgadm(imgadm_root, "sources", "-e", env={"EDITOR": str(editor)})
    assert edited.stdout == ('Deleted "imgapi" image source "https://images.smartos.org"\n'
                             'Added "imgapi" image source "http://127.0.0.1:9/a"\n')
    assert imgadm(imgadm_root, "sources").stdout == "http://127.0.0.1:9/a\n"


# -- the list table ---------------------------------------------------------------------------

@pytest.fixture
def three(imgadm_root: Path, tmp_path: Path) -> list[dict]:
    """Three installed images with different names, dates, tags and sizes."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_text("x")
    made = []
    for name, version, published, tags in (
            ("zeta", "1.0", "2026-03-01T00:00:00.123Z", {"role": "db", "big": True}),
            ("alpha-longer-name", "2.10", "2026-01-15T08:30:00Z", {"role": "web"}),
            ("mid", "3", "2026-02-01T00:00:00Z", {})):
        layer = write_tree(tree, tmp_path / f"{name}.tgz")
        data = manifest_for(layer, name, version, published_at=published, tags=tags)
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
        proc = imgadm(imgadm_root, "install", "-m", str(tmp_path / f"{name}.json"), "-f",
                      str(layer.path))
        assert proc.returncode == 0, proc.stderr
        made.append(data)
    return made


def test_list_default_columns_sort_and_widths(imgadm_root: Path, three: list[dict]) -> None:
    zeta, alpha, mid = three
    out = imgadm(imgadm_root, "list").stdout
    assert out == (
        "UUID                                  NAME               VERSION  OS     TYPE"
        "          PUB\n"
        f"{alpha['uuid']}  alpha-longer-name  2.10     linux  zone-dataset  2026-01-15\n"
        f"{mid['uuid']}  mid                3        linux  zone-dataset  2026-02-01\n"
        f"{zeta['uuid']}  zeta               1.0      linux  zone-dataset  2026-03-01\n")


def test_list_options_and_filters(imgadm_root: Path, three: list[dict]) -> None:
    zeta, alpha, mid = three

    def run(*args: str) -> str:
        proc = imgadm(imgadm_root, "list", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert run("-H", "-o", "name,published,tags.role", "-s", "-name") == (
        "zeta               2026-03-01T00:00:00Z  db\n"
        "mid                2026-02-01T00:00:00Z  -\n"
        "alpha-longer-name  2026-01-15T08:30:00Z  web\n")
    assert run("-H", "-o", "name", "tags.role=db") == "zeta\n"
    assert run("-H", "-o", "name", "name=~a") == "alpha-longer-name\nzeta\n"
    assert run("-H", "-o", "name", "tags.big=true") == "zeta\n"
    assert run("-H", "-o", "name", "tags.big=false") == ""
    assert run("-H", "-o", "name,size,zpool,clones,source", "name=mid") == (
        f"mid  {mid['files'][0]['size']}  zones  0  -\n")
    assert run("-H", "-o", "name", "-s", "version") == "zeta\nalpha-longer-name\nmid\n"
    ImageStore(imgadm_root).hold(mid["uuid"], "zones", "vm-a")
    assert run("-H", "-o", "clones", "name=mid") == "1\n"
    rows = json.loads(run("-j", "name=~e"))
    assert [r["manifest"]["name"] for r in rows] == ["alpha-longer-name", "zeta"]
    assert set(rows[0]) == {"manifest", "zpool", "source", "clones"}
    assert run("name=nothing") == "UUID  NAME  VERSION  OS  TYPE  PUB\n"


def test_ancestry_table(imgadm_root: Path, images: Images) -> None:
    for name in ("base", "child"):
        manifest, file, _ = images[name]
        assert imgadm(imgadm_root, "install", "-m", str(manifest), "-f", str(file)
                      ).returncode == 0
    child, base = images["child"][2], images["base"][2]
    out = imgadm(imgadm_root, "ancestry", child["uuid"], "-H", "-o", "uuid,name").stdout
    assert out == f"{child['uuid']}  child\n{base['uuid']}  base\n"
    layer = imgadm_root / "zones" / child["uuid"]
    assert stat.S_ISCHR(os.lstat(layer / "bin/vi").st_mode)
