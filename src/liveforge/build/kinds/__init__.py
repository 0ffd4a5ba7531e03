"""Component kinds: plug-ins behind the :class:`~liveforge.build.kinds.base.Kind` protocol.

The registry is this package's folder: every module or subpackage here that is not ``base`` is a
kind of that name and holds a ``KIND`` object. A new kind is a new module; nothing else names
it, and the core never branches on a kind's name. A kind's module is imported when the kind is
first used, so a platform of ``make`` components never loads the ``extra`` and ``deb`` machinery
(downloads, archives) just to check its stamps. This package imports no kind and nothing of the
engine at load time, so the workspace can look kinds up without an import circle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from importlib import import_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from liveforge.build.kinds.base import Kind

NOT_KINDS = {"base", "__init__", "__pycache__"}


def _names() -> list[str]:
    """The kinds present: this folder's modules and subpackages but ``base``."""
    names = []
    for entry in os.listdir(__path__[0]):
        name, ext = os.path.splitext(entry)
        if name in NOT_KINDS or name.startswith("."):
            continue
        if ext == ".py" or (not ext and os.path.isfile(os.path.join(__path__[0], entry,
                                                                    "__init__.py"))):
            names.append(name)
    return sorted(names)


class _Kinds(Mapping[str, "Kind"]):
    """The known kinds, each imported on first access."""

    def __init__(self) -> None:
        self._names = _names()
        self._loaded: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        kind = self._loaded.get(name)
        if kind is None:
            if name not in self._names:
                raise KeyError(name)
            kind = self._loaded[name] = import_module(f"{__name__}.{name}").KIND
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
