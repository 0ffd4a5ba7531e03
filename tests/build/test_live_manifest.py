"""``liveforge live`` on manifests from the real world and on hostile ones: a workspace with no
components, only manifest.d and proto, so that each run takes a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveforge.build.cli import main
from liveforge.build.image.lint import read_platform

BASE = ("d etc 0755 root root\nf etc/passwd 0644 root root\nf etc/group 0644 root bin\n"
        "d boot 0755 root root\nf boot/vmlinuz 0644 root root\n")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    files = {"platform.toml": '[platform]\nname = "t"\n', "configure-projects": "# none\n",
             "proto/etc/passwd": "root:x:0:0::/:/bin/sh\nbin:x:2:2::/:/bin/false\n",
             "proto/etc/group": "root:x:0:\nbin:x:2:\n", "proto/boot/vmlinuz": "kernel\n",
             "proto/usr/lib/node_modules/foo/index.js": "js\n"}
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "manifest.d").mkdir()
    return root


def live(ws: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["-C", str(ws), "live", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_real_world_manifest_ships(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "manifest.d/base").write_text(BASE)
    (ws / "manifest.d/node").write_text(
        "# node modules\n\nd\tusr  0755 root bin\nd usr/lib/ 0755 root bin\t# trailing /\n"
        "d usr/lib/node_modules/ 0755 root bin\nd usr/lib/node_modules/foo/ 0755 root bin\n"
        "f\tusr/lib/node_modules/foo/index.js\t0644\troot\tbin\n")
    code, err = live(ws, capsys)
    assert (code, err) == (0, "")
    assert (ws / "manifest.gen").read_text().splitlines()[-5:] == [
        "d usr 0755 root bin", "d usr/lib 0755 root bin", "d usr/lib/node_modules 0755 root bin",
        "d usr/lib/node_modules/foo 0755 root bin",
        "f usr/lib/node_modules/foo/index.js 0644 root bin"]
    shipped = read_platform(ws / "output/platform-latest")
    assert [(m.path, m.kind, m.mode & 0o7777, m.gid) for m in shipped.values()
            if m.path.startswith("usr")] == [
        ("usr", "d", 0o755, 2), ("usr/lib", "d", 0o755, 2), ("usr/lib/node_modules", "d", 0o755, 2),
        ("usr/lib/node_modules/foo", "d", 0o755, 2), ("usr/lib/node_modules/foo/index.js", "f",
                                                      0o644, 2)]


def test_undeclared_parent_warns_and_fails_when_strict(ws: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    manifest = ws / "manifest.d/base"
    manifest.write_text(BASE + "d usr 0755 root root\n"
                        "f usr/lib/node_modules/foo/index.js 0644 root bin\n")
    code, err = live(ws, capsys)
    assert (code, err.splitlines()) == (0, [
        f"warning: {manifest}:7: parent directory {p!r} of 'usr/lib/node_modules/foo/index.js' "
        "is not declared in any manifest (made 0755 root root)"
        for p in ("usr/lib/node_modules/foo", "usr/lib/node_modules", "usr/lib")])
    shipped = read_platform(ws / "output/platform-latest")
    assert (shipped["usr/lib"].kind, shipped["usr/lib"].mode & 0o7777, shipped["usr/lib"].uid,
            shipped["usr/lib"].gid) == ("d", 0o755, 0, 0)
    (ws / "output/platform-latest").unlink()
    code, err = live(ws, capsys, "--strict")
    assert (code, err.splitlines()) == (2, [
        f"liveforge: {manifest}:7: parent directory {p!r} of 'usr/lib/node_modules/foo/index.js' "
        "is not declared in any manifest"
        for p in ("usr/lib/node_modules/foo", "usr/lib/node_modules", "usr/lib")])
    assert not (ws / "output/platform-latest").exists()


def test_names_too_long_are_file_line_errors(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = ws / "manifest.d/base"
    name, deep = "n" * 256, "/".join(["d" * 203] * 20)     # deep is 4079 bytes: too long in proto
    manifest.write_text(BASE + f"f {name} 0644 root root\nd {deep.rpartition('/')[0]}/ 0755 root "
                        f"root\nf {deep} 0644 root root\n")
    code, err = live(ws, capsys)
    assert (code, err.splitlines()) == (2, [
        f"liveforge: {manifest}:6: path component of 256 bytes (at most 255): "
        f"{name[:32]!r}...{name[-16:]!r}"])
    manifest.write_text(BASE + f"f {deep} 0644 root root\n")
    code, err = live(ws, capsys)
    assert (code, err.splitlines()) == (2, [
        f"liveforge: {manifest}:6: {deep[:32]!r}...{deep[-16:]!r} in "
        f"{ws / '.liveforge/generated'}: file name too long"])     # the first search directory


def test_non_utf8_manifest_is_a_file_line_error(ws: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    manifest = ws / "manifest.d/base"
    manifest.write_bytes(BASE.encode() + b"f etc/\xff 0644 root root\nf etc/motd\n")
    code, err = live(ws, capsys)
    assert (code, err.splitlines()) == (2, [
        f"liveforge: {manifest}:6: not UTF-8 text (byte 0xff in column 7)",
        f"liveforge: {manifest}:7: 'f' entry needs exactly 5 fields (type path mode owner group), "
        "got 2"])


@pytest.mark.parametrize("owner", ["99999999999999999999", "4294967295", "²", "１"])
def test_an_owner_that_is_no_id_is_refused(ws: Path, capsys: pytest.CaptureFixture[str],
                                           owner: str) -> None:
    """A numeric owner is a 32-bit id in ASCII digits ((uid_t)-1 is none): a bigger one made a
    boot archive cpio cannot read, and a digit int() cannot read crashed."""
    manifest = ws / "manifest.d/base"
    manifest.write_text(BASE + f"d usr 0755 {owner} {owner}\n")
    code, err = live(ws, capsys)
    assert (code, err.splitlines()) == (2, [
        f"liveforge: {manifest}:6: usr: unknown owner {owner!r} (not in {ws}/proto/etc/passwd)",
        f"liveforge: {manifest}:6: usr: unknown group {owner!r} (not in {ws}/proto/etc/group)"])
    assert not (ws / "output").exists()


def test_the_largest_ids_and_an_account_beyond_them(ws: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (ws / "proto/etc/passwd").write_text("root:x:0:0::/:/bin/sh\nbig:x:4294967296:0::/:/bin/sh\n")
    manifest = ws / "manifest.d/base"
    manifest.write_text(BASE.replace("root bin", "root root") +
                        "d usr 0755 4294967294 4294967294\nd var 0755 big root\n")
    code, err = live(ws, capsys)
    assert (code, err.splitlines()) == (2, [
        f"liveforge: {manifest}:7: var: unknown owner 'big' (not in {ws}/proto/etc/passwd)"])
    manifest.write_text(BASE.replace("root bin", "root root") +
                        "d usr 0755 4294967294 4294967294\n")
    assert live(ws, capsys, "--root-tarball") == (0, "")
    for shipped in (read_platform(ws / "output/platform-latest"),
                    read_platform(next((ws / "output").glob("platform-*-root.tgz")))):
        assert (shipped["usr"].uid, shipped["usr"].gid) == (4294967294, 4294967294)
