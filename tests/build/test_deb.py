"""The deb kind: platform.lock at configure time, builds from the lock, from a local repo."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from liveforge.build.cli import main
from liveforge.build.kinds import known_kinds
from liveforge.build.kinds.deb import generated_manifest, lock_packages
from liveforge.build.workspace import Workspace
from liveforge.util.unpack import Entry
from tests.support import DEMO
from tests.support.debs import sample_repo

pytestmark = pytest.mark.skipif(shutil.which("dpkg-scanpackages") is None
                                or shutil.which("apt-get") is None,
                                reason="needs dpkg-dev and apt")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def make_ws(root: Path, repo: Path, settings: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.tools]\nkind = "deb"\n'
        f'packages = ["lf-meta"]\n{settings}')
    (root / "configure-build").write_text(
        f"DEBIAN_MIRROR=file://{repo}\nDEBIAN_SUITES=./\nDEBIAN_TRUSTED=yes\n")
    return root


def lf(root: Path, *args: str) -> int:
    return main(["-C", str(root), *args])


def test_lock_build_and_generated_manifest(tmp_path: Path) -> None:
    repo = sample_repo(tmp_path / "repo")
    root = make_ws(tmp_path / "ws", repo)
    assert lf(root, "configure") == 0
    lock = tomllib.loads((root / "platform.lock").read_text())
    [entry] = lock["deb"]
    assert (entry["component"], entry["request"], entry["name"], entry["version"]) == \
        ("tools", "lf-meta", "lf-tool", "1.0")
    assert len(entry["sha256"]) == 64
    assert lf(root, "world") == 0
    proto = root / "proto"
    assert (proto / "usr/bin/lftool").stat().st_mode & 0o777 == 0o755
    assert os.readlink(proto / "usr/bin/lft") == "lftool"
    assert os.readlink(proto / "usr/bin/abs") == "/usr/bin/lftool"
    manifest = (root / "manifest.d/tools.manifest").read_text()
    assert "f usr/bin/lftool 0755 root root" in manifest
    assert "s usr/bin/lft=lftool" in manifest
    assert "d usr/share/doc 0755 root root" in manifest
    # a second configure keeps the lock byte for byte; a second world builds nothing
    before = (root / "platform.lock").read_text()
    assert lf(root, "configure") == 0
    assert (root / "platform.lock").read_text() == before


def test_include_links_and_given_manifest(tmp_path: Path) -> None:
    repo = sample_repo(tmp_path / "repo")
    root = make_ws(tmp_path / "ws", repo, 'include = ["boot/vmlinuz-*"]\n'
                   'links = { "boot/vmlinuz" = "boot/vmlinuz-*" }\n')
    assert lf(root, "configure") == 0
    assert lf(root, "world") == 0
    assert os.readlink(root / "proto/boot/vmlinuz") == "vmlinuz-9.9-test"
    # with include, only what it selects is delivered (and the copyright file, for the SBOM):
    # not the package's other files
    delivered = sorted(str(p.relative_to(root / "proto")) for p in (root / "proto").rglob("*")
                       if p.is_file() or p.is_symlink())
    assert [p for p in delivered if not p.endswith("/copyright")] == \
        [".liveforge-proto", "boot/vmlinuz", "boot/vmlinuz-9.9-test"]
    assert not (root / "proto/usr/bin").exists()
    lines = (root / "manifest.d/tools.manifest").read_text().splitlines()[1:]
    assert lines == ["d boot 0755 root root", "f boot/vmlinuz-9.9-test 0644 root root",
                     "s boot/vmlinuz=vmlinuz-9.9-test"]
    given = make_ws(tmp_path / "ws2", repo, 'manifest = "tools.manifest"\n')
    (given / "tools.manifest").write_text("f usr/bin/lftool 0555 root bin  # $LF_META_PACKAGE"
                                          " $LF_META_VERSION\n")
    assert lf(given, "configure") == 0
    assert lf(given, "world") == 0
    assert (given / "manifest.d/tools.manifest").read_text() == \
        "f usr/bin/lftool 0555 root bin  # lf-tool 1.0\n"


def test_builds_use_the_lock_and_refresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    repo = sample_repo(tmp_path / "repo")
    root = make_ws(tmp_path / "ws", repo)
    assert lf(root, "configure") == 0
    # the archive moves on: 1.0 is gone, 2.0 is there
    shutil.rmtree(repo)
    sample_repo(repo, "2.0")
    assert lf(root, "world") != 0
    err = capsys.readouterr().err
    assert "lf-tool=1.0 is no longer available" in err or "refresh-lock" in \
        "".join(p.read_text() for p in (root / "log").glob("*.log"))
    logs = "".join(p.read_text() for p in (root / "log").glob("*.log"))
    assert "liveforge configure --refresh-lock" in logs + err
    assert lf(root, "configure", "--refresh-lock") == 0
    assert tomllib.loads((root / "platform.lock").read_text())["deb"][0]["version"] == "2.0"
    assert lf(root, "world") == 0


def test_warm_cache_offline_and_checksum_mismatch(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    repo = sample_repo(tmp_path / "repo")
    root = make_ws(tmp_path / "ws", repo)
    assert lf(root, "configure") == 0
    assert lf(root, "world") == 0
    shutil.rmtree(repo)
    environ = dict(os.environ)
    second = make_ws(tmp_path / "ws2", repo)
    shutil.copy(root / "platform.lock", second / "platform.lock")
    assert lf(second, "--offline", "world") == 0
    assert (second / "proto/usr/bin/lftool").is_file()
    # a lock whose sha256 does not match the archive's file
    text = (second / "platform.lock").read_text()
    sha = tomllib.loads(text)["deb"][0]["sha256"]
    (second / "platform.lock").write_text(text.replace(sha, "0" * 64))
    capsys.readouterr()
    assert lf(second, "--offline", "world") != 0
    logs = "".join(p.read_text() for p in (second / "log").glob("*.log"))
    assert "checksum mismatch" in logs and "0" * 64 in logs and sha in logs
    assert not list((tmp_path / "xdg/liveforge/debs").glob("*.deb"))  # deleted
    # offline with nothing cached: an error, no network
    assert lf(second, "--offline", "world") != 0
    logs = "".join(p.read_text() for p in (second / "log").glob("*.log"))
    assert "offline" in logs
    assert dict(os.environ) == environ  # --offline reaches the kind as an argument


def test_unlocked_package_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    repo = sample_repo(tmp_path / "repo")
    root = make_ws(tmp_path / "ws", repo)
    assert lf(root, "world") != 0
    out = capsys.readouterr()
    logs = "".join(p.read_text() for p in (root / "log").glob("*.log"))
    assert "not locked: run `liveforge configure`" in out.err + logs


def test_lock_packages_api_and_unknown_name(tmp_path: Path) -> None:
    repo = sample_repo(tmp_path / "repo")
    root = make_ws(tmp_path / "ws", repo)
    lf(root, "configure")
    ws = Workspace(root, known_kinds())
    locked = lock_packages(ws, refresh=True)
    assert [e.pin.name for e in locked.values()] == ["lf-tool"]
    with pytest.raises(Exception, match="offline"):
        (root / "platform.lock").unlink()
        shutil.rmtree(tmp_path / "xdg")
        lock_packages(Workspace(root, known_kinds(), offline=True))


def test_generated_manifest_hard_links() -> None:
    entries = [Entry("usr", "d", 0o755), Entry("usr/bin", "d", 0o755),
               Entry("usr/bin/a", "f", 0o4755, owner="root", group="bin"),
               Entry("usr/bin/b", "h", 0o755, "usr/bin/a")]
    text = generated_manifest(entries, [], {})
    assert "f usr/bin/a 4755 root bin" in text and "h usr/bin/b=usr/bin/a" in text


@pytest.mark.network
@pytest.mark.slow
def test_real_busybox_static(tmp_path: Path) -> None:
    import urllib.request
    try:
        urllib.request.urlopen("http://deb.debian.org/debian/", timeout=5).close()
    except OSError as exc:
        pytest.skip(f"the Debian archive is not reachable: {exc}")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.bb]\nkind = "deb"\n'
        'packages = ["busybox-static"]\ninclude = ["bin/busybox", "usr/bin/busybox"]\n')
    assert lf(root, "configure") == 0
    assert lf(root, "world") == 0
    assert any((root / "proto" / p).is_file() for p in ("bin/busybox", "usr/bin/busybox"))


def test_lock_round_trip(tmp_path: Path) -> None:
    """platform.lock is written by tomli-w and read back the same, data that is not ours kept;
    the demo's committed lock is rewritten byte for byte."""
    from types import SimpleNamespace

    from liveforge.build.kinds.deb import Locked, format_lock, read_lock
    from liveforge.util.fetch import DebPin

    ws = SimpleNamespace(root=tmp_path)
    locked = {(c, r): Locked(c, r, DebPin(f"{r}-bin", '1:2.0-1+"q"', "amd64",
                                          f"pool/main/{r}_2.0_amd64.deb", 1234, "ab" * 32))
              for c, r in (("kernel", "linux-image-amd64"), ("busybox", "busybox-static"))}
    other = {"note": "kept", "sizes": [1, 2], "extra": [{"a": "b"}], "table": {"k": "v"}}
    text = format_lock(locked, other)
    assert text.startswith("# platform.lock: exact versions")
    (tmp_path / "platform.lock").write_text(text)
    assert read_lock(ws) == (locked, other)  # type: ignore[arg-type]
    assert tomllib.loads(text)["deb"][0]["component"] == "busybox"  # in (component, request) order

    assert format_lock(*read_lock(SimpleNamespace(root=DEMO))) == \
        (DEMO / "platform.lock").read_text()  # type: ignore[arg-type]


def test_unreadable_lock_names_the_line(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from liveforge.build.kinds.deb import read_lock
    from liveforge.util.errors import InputError

    (tmp_path / "platform.lock").write_text("format = 1\n\n[[deb]]\ncomponent = \n")
    with pytest.raises(InputError) as info:
        read_lock(SimpleNamespace(root=tmp_path))  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{tmp_path / 'platform.lock'}:4: unreadable lock file: ")
    assert str(info.value).endswith("; run `liveforge configure --refresh-lock`")


def test_keep_only_keeps_the_parents_of_deep_paths(tmp_path: Path) -> None:
    from liveforge.build.kinds.deb import keep_only

    for path in ("a/b/c/file", "a/x", "d/e", "top"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(path)
    os.symlink("b", tmp_path / "a" / "link")
    keep_only(tmp_path, {"a/b/c/file", "top"})
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        ["a", "a/b", "a/b/c", "a/b/c/file", "top"]
