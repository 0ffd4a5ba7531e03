"""A step's log under hostile conditions: a workspace whose path is not UTF-8, and a disk that
is full when the step's failure is written to its log. Neither may crash the run or hang it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cli import cli
from tests.support.disks import small_disk

MAKEFILE = """\
world:
\t@echo building in $(CURDIR)
install:
\tmkdir -p $(DESTDIR)/usr/share/a
\techo a > $(DESTDIR)/usr/share/a/a.txt
manifest:
\tprintf 'd usr 0755 root root\\nd usr/share 0755 root root\\n' > $(DESTDIR)/$(DESTNAME)
\tprintf 'd usr/share/a 0755 root root\\nf usr/share/a/a.txt 0644 root root\\n' >> \\
\t  $(DESTDIR)/$(DESTNAME)
"""

# fails after filling the file system the workspace is on with its own output (its log's last
# page full), so that the engine's own note of the failure in the log meets a full disk
FILLS_THE_DISK = """\
world:
\t-yes the disk fills up
\t@exit 1
install:
\t@true
manifest:
\t@true
"""


def workspace(root: Path, makefile: str) -> Path:
    (root / "projects" / "a").mkdir(parents=True)
    (root / "projects" / "a" / "Makefile").write_text(makefile)
    (root / "platform.toml").write_text(
        '[platform]\nname = "t"\n\n[components.a]\nkind = "make"\npath = "projects/a"\n')
    return root


def test_a_workspace_whose_path_is_not_utf8_builds(tmp_path: Path) -> None:
    root = workspace(tmp_path / os.fsdecode(b"ws-\xff"), MAKEFILE)
    proc = cli(root, "world", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (root / "proto/usr/share/a/a.txt").read_text() == "a\n"
    logs = list((root / "log").glob("a.*.log"))
    assert len(logs) == 1
    # the log names the workspace by its bytes, as the file system does
    assert b"building in " + os.fsencode(root) + b"/projects/a" in logs[0].read_bytes()
    status = cli(root, "status", check=True)
    assert "up to date" in status.stdout


def test_a_full_disk_when_a_failure_is_logged_fails_the_run_without_hanging(
        tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2M") as disk:
        root = workspace(disk / "ws", FILLS_THE_DISK)
        proc = cli(root, "world", timeout=60)  # a hang is a TimeoutExpired: the test fails
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        assert "build failed: a" in proc.stderr
        assert not (root / "0-a-stamp").exists()


def test_an_error_names_a_path_that_is_not_utf8_by_its_bytes(tmp_path: Path) -> None:
    root = tmp_path / os.fsdecode(b"ws-\xff")
    root.mkdir()
    proc = cli(root, "status")  # no platform.toml: an error naming the workspace
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    # the output holds the byte 0xff itself (read back as its surrogate), not "\udcff" text
    assert os.fsdecode(b"ws-\xff") in proc.stderr and "\\udcff" not in proc.stderr
