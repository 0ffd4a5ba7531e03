"""Component kinds: plug-ins behind the :class:`~liveforge.kinds.base.Kind` interface.

The core never branches on a kind's name; it looks the kind up here. A kind's module is imported
when the kind is first used, so a platform of ``make`` components never loads the ``extra`` and
``deb`` machinery (downloads, archives) just to check its stamps.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from importlib import import_module

from .base import Kind

# kind name -> module under liveforge.kinds holding a ``KIND`` object
_MODULES = {"make": "make", "extra": "extra", "deb": "deb"}


def _present(module: str) -> bool:
    """Whether ``liveforge.kinds.<module>`` can be imported: importlib.util.find_spec's search
    (the import system's finders over this package's path), without importing importlib.util
    and contextlib for it."""
    fullname = f"{__name__}.{module}"
    if fullname in sys.modules:
        return True
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None and find(fullname, __path__) is not None:
            return True
    return False


class _Kinds(Mapping[str, Kind]):
    """The known kinds (those whose module is present), each imported on first access."""

    def __init__(self) -> None:
        self._names = [name for name, module in _MODULES.items() if _present(module)]
        self._loaded: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        kind = self._loaded.get(name)
        if kind is None:
            if name not in self._names:
                raise KeyError(name)
            kind = self._loaded[name] = import_module(f".{_MODULES[name]}", __name__).KIND
        return kind

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_kinds: _Kinds | None = None


def known_kinds() -> Mapping[str, Kind]:
    global _kinds
    if _kinds is None:
        _kinds = _Kinds()
    return _kinds


def get_kind(name: str) -> Kind:
    return known_kinds()[name]
