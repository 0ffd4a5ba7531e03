"""Fixtures for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

CACHE_SETTINGS = ("CACHE_URL", "CACHE_DIR", "CACHE_MAX_SIZE", "CACHE_TIMEOUT",
                  "CACHE_PUSH_DIRTY", "LIVEFORGE_CACHE_AUTH")


@pytest.fixture(scope="session", autouse=True)
def private_build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The build cache is off unless a test turns it on (``CACHE_MODE=on``): a test that
    rebuilds a step means a build. Then it is the session's own, never the user's, and no
    shared store unless the test names one. Session-wide, so that session fixtures (the
    demo's build) see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIVEFORGE_CACHE_DIR", str(tmp_path_factory.mktemp("step-cache")))
        patch.setenv("CACHE_MODE", "off")
        for name in CACHE_SETTINGS:
            patch.delenv(name, raising=False)
        yield
