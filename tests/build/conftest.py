"""Fixtures shared by the build tool's tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kernel import Bootable


@pytest.fixture(scope="session")
def bootable() -> Iterator[Bootable]:
    """The bootable test platforms and their media, each made once per session on first use
    (the boot, media, netboot and crash tests share them)."""
    root = Path(tempfile.mkdtemp(prefix="liveforge-tests."))
    try:
        yield Bootable(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
