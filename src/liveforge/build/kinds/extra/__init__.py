"""The ``extra`` kind: third-party packages from upstream sources and patches."""

from liveforge.build.kinds.extra.kind import KIND

__all__ = ["KIND"]
