"""Fixtures shared by the build tool's tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.demo import build_demo, copy_demo
from tests.support.extras import app_tarball, http_server, libdemo_tarball
from tests.support.kernel import Bootable
from tests.support.nginx import Nginx


@pytest.fixture(scope="session")
def bootable() -> Iterator[Bootable]:
    """The bootable test platforms and their media, each made once per session on first use
    (the boot, media, netboot and crash tests share them)."""
    root = Path(tempfile.mkdtemp(prefix="liveforge-tests."))
    try:
        yield Bootable(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace, copied and built (``live``) once per session."""
    return build_demo(copy_demo(tmp_path_factory.mktemp("demo") / "ws"))


@pytest.fixture
def www(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """The libdemo and app source tarballs served over loopback HTTP: (their directory, its
    URL); the download cache is private to the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "www"
    root.mkdir()
    libdemo_tarball(root / "libdemo-1.0.tar.gz")
    app_tarball(root / "app-2.0.tar.gz")
    with http_server(root) as url:
        yield root, url


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    """A real nginx on loopback storing what is PUT (basic auth on writes), started; the test
    may restart it with faults (:meth:`Nginx.start` with ``extra``) or kill it."""
    server = Nginx(tmp_path / "nginx", tmp_path / "nginx-store")
    try:
        yield server.start()
    finally:
        server.stop()
