"""Component kinds: plug-ins behind the :class:`~liveforge.kinds.base.Kind` interface.

The core never branches on a kind's name; it looks the kind up here.
"""

from __future__ import annotations

from importlib import import_module

from .base import Kind

# kind name -> module under liveforge.kinds holding a ``KIND`` object
_MODULES = {"make": "make", "extra": "extra", "deb": "deb"}
_loaded: dict[str, Kind] = {}


def known_kinds() -> dict[str, Kind]:
    if not _loaded:
        for name, module in _MODULES.items():
            try:
                mod = import_module(f".{module}", __name__)
            except ModuleNotFoundError as exc:
                if exc.name == f"{__name__}.{module}":
                    continue
                raise
            _loaded[name] = mod.KIND
    return _loaded


def get_kind(name: str) -> Kind:
    return known_kinds()[name]
