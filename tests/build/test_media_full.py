"""``iso`` and ``usb`` on a full disk: the error says why (the tool's own words, or the file
that could not be written), nothing is left half-written, and with room the medium is made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.disks import small_disk
from tests.support.workspaces import LIVE_STAMP, live_workspace


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("media-full")
    root = live_workspace(tmp / "ws", tmp / "upstream")
    cli(root, "live", stamp=LIVE_STAMP, check=True)
    return root


# a disk too small for what the tool writes, and for the compressed USB image (USB, 3 MiB: the
# FAT image is made, its compressed copy meets the full disk)
CASES = [("iso", "1m"), ("usb", "1m"), ("usb", "3m")]


@pytest.mark.parametrize(("verb", "size"), CASES)
def test_a_medium_on_a_full_disk_says_why(platform: Path, verb: str, size: str) -> None:
    out = platform / f"output-{verb}"
    with small_disk(out, size):
        full = cli(platform, verb)
        assert full.returncode == 1
        assert "Traceback" not in full.stderr, full.stderr
        assert "No space left on device" in full.stderr, full.stderr
        assert full.stderr.splitlines()[-1].startswith("liveforge: error: ")
        assert "liveforge: error: No space left on device" not in full.stderr  # names nothing
        assert os.listdir(out) == []
    cli(platform, verb, check=True)
    assert len(os.listdir(out)) == (1 if verb == "iso" else 2)
