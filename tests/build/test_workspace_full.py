"""A workspace whose disk is full: ``status`` still answers (its caches are not kept), a build
fails with one line naming the file it could not write, and with room again the next run
builds and nothing says "up to date" that was not built."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.disks import small_disk
from tests.support.workspaces import LIVE_STAMP, live_workspace


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", "4M") as disk:
        yield disk


def fill(disk: Path) -> Path:
    """Fill the file system of ``disk`` up with one file; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def states(root: Path) -> list[list[str]]:
    proc = cli(root, "status")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
    return [line.split()[:4] for line in proc.stdout.splitlines()[1:]]


@pytest.mark.parametrize("verb", ["world", "live"])
def test_a_full_workspace_disk_is_one_line_and_the_next_run_builds(
        tmp_path: Path, disk: Path, verb: str) -> None:
    root = live_workspace(disk / "ws", tmp_path / "upstream")
    (root / "plain" / ".liveforgeignore").write_text("build/\n")   # its make's output
    cli(root, verb, stamp=LIVE_STAMP, check=True)
    (root / "plain" / "src" / "a.txt").write_text("plain source, changed\n")
    filler = fill(disk)
    assert states(root) == [["comp", "make", "up", "to"], ["plain", "make", "stale", "source"]]
    full = cli(root, verb, stamp="20250101T000000Z")
    assert full.returncode == 1
    assert "Traceback" not in full.stderr, full.stderr
    last = full.stderr.splitlines()[-1]
    assert last.startswith(f"liveforge: error: {root}/") and \
        last.endswith(": No space left on device"), full.stderr
    assert states(root)[1][:3] in (["plain", "make", "stale"], ["plain", "make", "never"])
    filler.unlink()
    cli(root, verb, stamp="20250101T000000Z", check=True)
    assert states(root) == [["comp", "make", "up", "to"], ["plain", "make", "up", "to"]]
    assert (root / "proto/usr/share/plain/plain.txt").read_text().startswith(
        "plain source, changed\n")


# installs and writes its manifest, then fills the disk up (its own file, in its source tree):
# what liveforge then writes for the step (its delivery, its stamp) meets a full disk
FILLS_AFTER_INSTALL = """\
world:
\t@rm -f fill
install:
\tmkdir -p $(DESTDIR)/usr/share/a
\techo a > $(DESTDIR)/usr/share/a/a.txt
manifest:
\tprintf 'd usr 0755 root root\\nd usr/share 0755 root root\\n' > $(DESTDIR)/$(DESTNAME)
\tprintf 'd usr/share/a 0755 root root\\nf usr/share/a/a.txt 0644 root root\\n' >> \\
\t  $(DESTDIR)/$(DESTNAME)
\t-yes the disk fills up > fill 2>/dev/null
"""


def test_a_step_that_meets_a_full_disk_fails_naming_the_file(disk: Path) -> None:
    root = disk / "ws"
    (root / "a").mkdir(parents=True)
    (root / "a" / "Makefile").write_text(FILLS_AFTER_INSTALL)
    (root / "a" / ".liveforgeignore").write_text("fill\n")
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.a]\nkind = "make"\npath = "a"\n')
    full = cli(root, "world")
    assert full.returncode == 1
    assert "Traceback" not in full.stderr and "internal error" not in full.stderr, full.stderr
    failed = [line for line in full.stderr.splitlines() if "a FAILED:" in line]
    assert len(failed) == 1 and failed[0].endswith(": No space left on device"), full.stderr
    assert f" {root}/" in failed[0]
    assert not (root / "0-a-stamp").exists()
    (root / "a" / "fill").unlink()
    (root / "a" / "Makefile").write_text(FILLS_AFTER_INSTALL.replace("\t-yes", "\t#yes"))
    cli(root, "world", check=True)
    assert (root / "proto/usr/share/a/a.txt").read_text() == "a\n"
    assert states(root) == [["a", "make", "up", "to"]]
