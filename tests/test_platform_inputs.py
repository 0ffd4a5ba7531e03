"""Hostile platform inputs (issue 9): templates, [platform] keys, buildstamps, non-UTF-8 text
and workspace paths with spaces. Each is refused with file:line (or works), never a traceback,
and nothing outside the workspace is read, written or deleted."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liveforge.archive import read_cpio, read_tar
from wsutil import make_repo

STAMP = "20240102T030405Z"
DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"

OVERLAY = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\n",
    "etc/release": "NAME=@NAME@ STAMP=@STAMP@\n",
    "boot/vmlinuz": "not really a kernel\n",
}
OVERLAY_MANIFEST = """\
d etc 0755 root root
f etc/passwd 0644 root root
f etc/group 0644 root root
f etc/release 0644 root root
d boot 0755 root root
f boot/vmlinuz 0644 root root
"""
PLATFORM = """\
[platform]
name = "t"
overlays = ["overlay/generic"]
{extra}
[components.a]
kind = "make"
path = "projects/a"
"""


def lf(root: Path, *args: str, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("BUILDSTAMP", "SOURCE_DATE_EPOCH")}
    return subprocess.run([sys.executable, "-m", "liveforge.cli", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**environ, "BUILDSTAMP": STAMP, **(env or {})})


def errors(proc: subprocess.CompletedProcess[str], code: int = 2) -> list[str]:
    """The error lines of a run that failed with ``code`` (and no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stdout + proc.stderr
    return [line for line in proc.stderr.splitlines() if line.strip()]


def live_ws(root: Path, extra: str = "") -> Path:
    """A small workspace ``live`` can build: one make component and an overlay with the
    accounts, a kernel and an ``etc/release`` template."""
    make_repo(root / "projects" / "a", "a")
    overlay = root / "overlay" / "generic"
    for path, text in OVERLAY.items():
        (overlay / path).parent.mkdir(parents=True, exist_ok=True)
        (overlay / path).write_text(text)
    (overlay / "manifest").write_text(OVERLAY_MANIFEST)
    (root / "platform.toml").write_text(PLATFORM.format(extra=extra))
    return root


def shipped(root: Path, path: str) -> str:
    """The sha256 of ``path`` in the boot archive (the whole image root)."""
    members = read_cpio(root / "output" / f"platform-{STAMP}" / "x86_64" / "boot_archive")
    return members[path].sha256


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- D4: buildstamps and epochs fit the archives ----------------------------------------------

@pytest.mark.parametrize(("variable", "value", "message"), [
    ("BUILDSTAMP", "19000101T000000Z", "BUILDSTAMP '19000101T000000Z' is outside what cpio and "
                                       "tar archives hold (19700101T000000Z to "
                                       "21060207T062815Z)"),
    ("BUILDSTAMP", "99991231T235959Z", "BUILDSTAMP '99991231T235959Z' is outside what cpio and "
                                       "tar archives hold (19700101T000000Z to "
                                       "21060207T062815Z)"),
    ("BUILDSTAMP", "21060207T062816Z", "BUILDSTAMP '21060207T062816Z' is outside what cpio and "
                                       "tar archives hold (19700101T000000Z to "
                                       "21060207T062815Z)"),
    ("BUILDSTAMP", "20261399T999999Z", "BUILDSTAMP '20261399T999999Z' is not a real date and "
                                       "time"),
    ("BUILDSTAMP", "20260229T000000Z", "BUILDSTAMP '20260229T000000Z' is not a real date and "
                                       "time"),
    ("BUILDSTAMP", "2026-01-01", "BUILDSTAMP '2026-01-01' is not of the form "
                                 "YYYYMMDDTHHMMSSZ"),
    ("SOURCE_DATE_EPOCH", "-1", "SOURCE_DATE_EPOCH '-1' is not a number of seconds"),
    ("SOURCE_DATE_EPOCH", "1e9", "SOURCE_DATE_EPOCH '1e9' is not a number of seconds"),
    ("SOURCE_DATE_EPOCH", " 5", "SOURCE_DATE_EPOCH ' 5' is not a number of seconds"),
    ("SOURCE_DATE_EPOCH", "4294967296", "SOURCE_DATE_EPOCH '4294967296' is outside what cpio "
                                        "and tar archives hold (0 to 4294967295)"),
    ("SOURCE_DATE_EPOCH", "99999999999999999999", "SOURCE_DATE_EPOCH '99999999999999999999' is "
                                                  "outside what cpio and tar archives hold (0 "
                                                  "to 4294967295)"),
])
def test_buildstamp_out_of_range_is_refused(tmp_path: Path, variable: str, value: str,
                                            message: str) -> None:
    root = live_ws(tmp_path / "ws")
    env = {"BUILDSTAMP": value} if variable == "BUILDSTAMP" else \
        {"BUILDSTAMP": "", variable: value}
    assert errors(lf(root, "live", env=env)) == [f"liveforge: error: {message}"]
    assert not (root / "output").exists()
    assert not (root / "proto").exists()


@pytest.mark.parametrize(("environ", "stamp"), [
    ({"BUILDSTAMP": "19700101T000000Z"}, "19700101T000000Z"),
    ({"BUILDSTAMP": "21060207T062815Z"}, "21060207T062815Z"),
    ({"SOURCE_DATE_EPOCH": "0"}, "19700101T000000Z"),
    ({"SOURCE_DATE_EPOCH": "4294967295"}, "21060207T062815Z"),
    ({"SOURCE_DATE_EPOCH": "1700000000"}, "20231114T221320Z"),
])
def test_buildstamps_at_the_limits(environ: dict[str, str], stamp: str) -> None:
    from liveforge.workspace import buildstamp_now, stamp_epoch

    assert buildstamp_now(environ) == stamp
    assert 0 <= stamp_epoch(stamp) <= 2**32 - 1


def test_last_limit_builds_readable_archives(tmp_path: Path) -> None:
    root = live_ws(tmp_path / "ws")
    proc = lf(root, "live", env={"BUILDSTAMP": "21060207T062815Z"})
    assert proc.returncode == 0, proc.stderr
    stamp = "21060207T062815Z"
    platform = root / "output" / f"platform-{stamp}"
    cpio = read_cpio(platform / "x86_64" / "boot_archive")
    assert {m.mtime for m in cpio.values()} == {2**32 - 1}
    assert {m.mtime for m in read_tar(root / "output" / f"platform-{stamp}.tgz").values()} \
        == {2**32 - 1}
