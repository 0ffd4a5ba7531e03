"""manifest lint and show."""

from __future__ import annotations

import os
from pathlib import Path

from liveforge.build.image.lint import format_lint, format_show, lint, show
from liveforge.build.image.manifest import combine


def test_lint_reports_each_kind_of_problem(tmp_path: Path) -> None:
    proto, overlay = tmp_path / "proto", tmp_path / "overlay"
    for path in ("usr/bin/su", "usr/bin/extra", "opt/junk/a", "usr/lib/x.so"):
        (proto / path).parent.mkdir(parents=True, exist_ok=True)
        (proto / path).write_text(path)
    (overlay / "etc").mkdir(parents=True)
    (overlay / "etc/motd").write_text("hi")
    os.symlink("/etc/shadow", proto / "usr/lib/escape")
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("d usr 0755 root sys\nd usr/bin 0755 root bin\nf usr/bin/su 4555 root bin\n"
                 "f usr/bin/gone 0555 root bin\ns usr/bin/ok=su\ns usr/bin/dangle=nothere\n"
                 "s usr/libx=/usr/lib\nf usr/lib/x.so 0644 root bin\n"
                 "f usr/lib/escape 0644 root bin\n")
    b.write_text("f etc/motd 0644 root sys\nf usr/bin/su 0555 root bin\n")
    manifest = combine([a, b], {}, False, lambda _: None)
    report = lint(manifest, [overlay, proto], proto)
    assert [e.path for e in report.missing] == ["usr/bin/gone"]
    assert [e.path for e, _ in report.unresolvable] == ["usr/lib/escape"]
    assert report.unshipped == ("opt/", "usr/bin/extra")
    assert [(e.path, p) for e, p in report.undeclared_parents] == [
        ("etc/motd", "etc"), ("usr/lib/escape", "usr/lib"), ("usr/lib/x.so", "usr/lib")]
    assert [e.path for e in report.dangling_symlinks] == ["usr/bin/dangle"]
    assert report.setid == ()          # the later, non-setuid delivery won
    assert [o.loser.mode for o in report.duplicates] == [0o4555]
    assert not report.ok
    text = format_lint(report)
    assert f"{a}:4: error: missing file 'usr/bin/gone'" in text
    assert "warning: dangling symlink usr/bin/dangle -> nothere" in text
    rows = show(manifest, [overlay, proto])
    by_path = {r.entry.path: r for r in rows}
    assert by_path["etc/motd"].search_dir == str(overlay)
    assert by_path["usr/bin/su"].manifest == str(b)
    assert f"f usr/bin/gone 0555 root bin  [{a}:4 <- MISSING]" in format_show(rows)


def test_lint_names_symlink_loops(tmp_path: Path) -> None:
    proto = tmp_path / "proto"
    (proto / "lib").mkdir(parents=True)
    os.symlink("libc.so", proto / "lib/libc.so")
    os.symlink("loop", proto / "loop")
    a = tmp_path / "a"
    a.write_text("d lib 0755 root bin\nf lib/libc.so 0644 root bin\nf loop/x 0644 root bin\n"
                 "s lib/one=two\ns lib/two=one\ns lib/gone=nothere\n")
    report = lint(combine([a], {}, False, lambda _: None), [proto], proto)
    assert format_lint(report).splitlines() == [
        f"{a}:2: error: 'lib/libc.so' in {proto} is a symlink loop",
        f"{a}:3: error: 'loop/x' in {proto} is reached through a symlink loop",
        f"{a}:3: error: parent directory 'loop' of 'loop/x' is not declared",
        f"{a}:6: warning: dangling symlink lib/gone -> nothere",
        f"{a}:4: warning: symlink loop lib/one -> two",
        f"{a}:5: warning: symlink loop lib/two -> one",
        "unshipped (1 paths in proto no manifest ships):",
        "  loop"]
