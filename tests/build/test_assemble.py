"""The builder: search path, symlink escapes, owners through the image's own passwd/group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from liveforge.build.image.assemble import ResolveErrors, resolve
from liveforge.build.image.manifest import Entry, Manifest, parse_text

PASSWD = "root:x:0:0::/:/bin/sh\nbin:x:2:2::/:/bin/false\n"
GROUP = "root:x:0:\nbin:x:2:\nsys:x:3:\n"
HEAD = "d etc 0755 root sys\nf etc/passwd 0644 root sys\nf etc/group 0644 root sys\n"


def manifest(text: str) -> Manifest:
    entries, errors = parse_text(HEAD + text, "m")
    assert errors == []
    return Manifest.from_entries(entries)


def tree(root: Path, files: dict[str, str]) -> Path:
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    return root


@pytest.fixture
def proto(tmp_path: Path) -> Path:
    return tree(tmp_path / "proto", {"etc/passwd": PASSWD, "etc/group": GROUP,
                                     "usr/bin/grep": "proto grep", "usr/bin/ls": "ls"})


def test_overlay_wins_over_proto_and_source_is_recorded(tmp_path: Path, proto: Path) -> None:
    overlay = tree(tmp_path / "overlay", {"usr/bin/grep": "overlay grep"})
    image = resolve(manifest("d usr 0755 root sys\nd usr/bin 0755 root bin\n"
                             "f usr/bin/grep 0555 root bin\nf usr/bin/ls 0555 bin bin\n"),
                    [overlay, proto])
    found = image.by_path()
    assert found["usr/bin/grep"].search_dir == overlay
    assert found["usr/bin/grep"].source == (overlay / "usr/bin/grep").resolve()
    assert found["usr/bin/ls"].search_dir == proto
    assert (found["usr/bin/ls"].uid, found["usr/bin/ls"].gid) == (2, 2)
    assert (found["usr"].uid, found["usr"].gid, found["usr"].mode) == (0, 3, 0o755)
    assert [e.path for e in image.entries] == sorted(e.path for e in image.entries)


def test_every_missing_file_is_listed(proto: Path) -> None:
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest("f a 0644 root bin\nf usr/bin/grep 0555 root bin\nf b/c 0644 root bin\n"),
                [proto])
    assert info.value.missing == ["a", "b/c"]
    assert str(info.value).splitlines() == [
        f"m:4: missing file 'a' (not in {proto})", f"m:6: missing file 'b/c' (not in {proto})"]


def test_unknown_owner_and_group_name_the_entry(proto: Path) -> None:
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest("d usr 0755 nobody sys\nf usr/bin/ls 0555 root wheel\n"), [proto])
    assert str(info.value).splitlines() == [
        f"m:4: usr: unknown owner 'nobody' (not in {proto / 'etc/passwd'})",
        f"m:5: usr/bin/ls: unknown group 'wheel' (not in {proto / 'etc/group'})"]


def test_numeric_ids_and_no_passwd(tmp_path: Path) -> None:
    entries, _ = parse_text("d a 0755 0 5\nd b 0755 root root\n", "m")
    with pytest.raises(ResolveErrors) as info:
        resolve(Manifest.from_entries(entries), [tmp_path])
    assert "m:2: b: unknown owner 'root': no etc/passwd in the search path" in str(info.value)


def test_symlink_inside_search_dir_is_followed(proto: Path) -> None:
    os.symlink("grep", proto / "usr/bin/grep2")
    image = resolve(manifest("f usr/bin/grep2 0555 root bin\n"), [proto])
    assert image.by_path()["usr/bin/grep2"].source == (proto / "usr/bin/grep").resolve()


@pytest.mark.parametrize("how", ["file", "parent", "dangling"])
def test_symlink_escaping_search_dir_is_refused(tmp_path: Path, proto: Path, how: str) -> None:
    outside = tree(tmp_path / "host", {"lib/libc.so": "host libc"})
    if how == "file":
        (proto / "lib").mkdir()
        os.symlink(outside / "lib/libc.so", proto / "lib/libc.so")
    elif how == "parent":
        os.symlink(outside / "lib", proto / "lib")
    else:
        (proto / "lib").mkdir()
        os.symlink("nowhere", proto / "lib/libc.so")
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest("d lib 0755 root bin\nf lib/libc.so 0755 root bin\n"), [proto])
    message = str(info.value)
    assert message.startswith("m:5: 'lib/libc.so' in ")
    assert {"file": "symlink leading outside it", "parent": "through a symlink leading outside",
            "dangling": "dangling symlink"}[how] in message


def test_hard_links(proto: Path) -> None:
    image = resolve(manifest("f usr/bin/grep 0555 root bin\nh usr/bin/egrep=usr/bin/grep\n"
                             "h usr/bin/fgrep=usr/bin/egrep\n"), [proto])
    links = image.by_path()
    assert links["usr/bin/fgrep"].target == "usr/bin/grep"
    assert (links["usr/bin/egrep"].mode, links["usr/bin/egrep"].gid) == (0o555, 2)
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest("h x=usr/bin/grep\nd d 0755 root root\nh y=d\n"), [proto])
    assert str(info.value).splitlines() == [
        "m:4: hard link 'x': target 'usr/bin/grep' is not delivered by the manifest",
        "m:6: hard link 'y': target 'd' is not a file"]


def test_parents_are_implicit_or_must_be_directories(proto: Path) -> None:
    image = resolve(manifest("f usr/bin/ls 0555 root bin\n"), [proto])
    found = image.by_path()
    assert found["usr"].implicit and found["usr/bin"].mode == 0o755
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest("s usr=x\nf usr/bin/ls 0555 root bin\n"), [proto])
    assert "parent 'usr' is not a directory (it is a symlink, m:4)" in str(info.value)


@pytest.mark.parametrize("how", ["self", "pair", "parent"])
def test_symlink_loop_is_named_a_loop(proto: Path, how: str) -> None:
    (proto / "lib").mkdir()
    if how == "self":
        os.symlink("libc.so", proto / "lib/libc.so")
    elif how == "pair":
        os.symlink("libc.so.6", proto / "lib/libc.so")
        os.symlink("libc.so", proto / "lib/libc.so.6")
    else:
        (proto / "lib").rmdir()
        os.symlink("lib", proto / "lib")
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest("d lib 0755 root bin\nf lib/libc.so 0755 root bin\n"), [proto])
    assert str(info.value) == {
        "self": f"m:5: 'lib/libc.so' in {proto} is a symlink loop",
        "pair": f"m:5: 'lib/libc.so' in {proto} is a symlink loop",
        "parent": f"m:5: 'lib/libc.so' in {proto} is reached through a symlink loop"}[how]


def test_names_too_long_for_the_file_system_are_errors(tmp_path: Path, proto: Path) -> None:
    """Whatever reaches the file system with a name too long is an error naming the entry."""
    name = "n" * 256                                    # the manifest parser refuses this one
    deep = "/".join(["d" * 203] * 20)                   # 4079 bytes: fine, but not under proto
    made = [Entry("f", name, 0o644, "root", "bin", "", "m", 7),
            Entry("f", deep, 0o644, "root", "bin", "", "m", 8)]
    entries, _ = parse_text(HEAD, "m")
    with pytest.raises(ResolveErrors) as info:
        resolve(Manifest.from_entries([*entries, *made]), [proto])
    assert str(info.value).splitlines() == [
        f"m:7: {name[:32]!r}...{name[-16:]!r} in {proto}: file name too long",
        f"m:8: {deep[:32]!r}...{deep[-16:]!r} in {proto}: file name too long"]


def test_undeclared_parents_warn_or_fail_when_strict(proto: Path) -> None:
    text = "d usr 0755 root sys\nf usr/bin/grep 0555 root bin\nf usr/bin/ls 0555 root bin\n" \
           "f var/lib/x/y 0644 root bin\n"
    tree(proto, {"var/lib/x/y": "y"})
    warnings: list[str] = []
    image = resolve(manifest(text), [proto], warn=warnings.append)
    assert warnings == [
        "m:5: parent directory 'usr/bin' of 'usr/bin/grep' is not declared in any manifest "
        "(made 0755 root root)",
        "m:7: parent directory 'var/lib/x' of 'var/lib/x/y' is not declared in any manifest "
        "(made 0755 root root)",
        "m:7: parent directory 'var/lib' of 'var/lib/x/y' is not declared in any manifest "
        "(made 0755 root root)",
        "m:7: parent directory 'var' of 'var/lib/x/y' is not declared in any manifest "
        "(made 0755 root root)"]
    found = image.by_path()
    assert [(p, found[p].mode, found[p].uid, found[p].gid, found[p].implicit)
            for p in ("usr", "usr/bin", "var", "var/lib", "var/lib/x")] == [
        ("usr", 0o755, 0, 3, False), ("usr/bin", 0o755, 0, 0, True), ("var", 0o755, 0, 0, True),
        ("var/lib", 0o755, 0, 0, True), ("var/lib/x", 0o755, 0, 0, True)]
    with pytest.raises(ResolveErrors) as info:
        resolve(manifest(text), [proto], strict=True, warn=warnings.append)
    assert str(info.value).splitlines() == [
        "m:5: parent directory 'usr/bin' of 'usr/bin/grep' is not declared in any manifest",
        "m:7: parent directory 'var/lib/x' of 'var/lib/x/y' is not declared in any manifest",
        "m:7: parent directory 'var/lib' of 'var/lib/x/y' is not declared in any manifest",
        "m:7: parent directory 'var' of 'var/lib/x/y' is not declared in any manifest"]
    assert len(warnings) == 4
