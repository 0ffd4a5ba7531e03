"""Fixtures for every test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_build_cache(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> Path:
    """The build cache is off unless a test turns it on (``CACHE_MODE=on``): a test that
    rebuilds a step means a build. Then it is the test's own: no step restored from another
    test's builds (or the user's), no shared store unless the test names one."""
    store = tmp_path_factory.mktemp("step-cache")
    monkeypatch.setenv("LIVEFORGE_CACHE_DIR", str(store))
    monkeypatch.setenv("CACHE_MODE", "off")
    for name in ("CACHE_URL", "CACHE_DIR", "CACHE_MAX_SIZE", "CACHE_TIMEOUT", "CACHE_PUSH_DIRTY",
                 "LIVEFORGE_CACHE_AUTH"):
        monkeypatch.delenv(name, raising=False)
    return store
