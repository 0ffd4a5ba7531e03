"""Small record classes without ``dataclasses`` (which imports ``inspect``: ~15 ms of a no-op
run's start). A subclass names its fields in ``__slots__`` and writes its ``__init__``; the
base gives it a dataclass-like ``repr`` and ``==`` (over ``_compare``, default: every field).
:class:`Frozen` records also hash and refuse assignment after ``__init__``, whose assignments go
through ``object.__setattr__``.
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()
    _compare: tuple[str, ...] | None = None   # fields in == (and hash); None: all

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def _key(self) -> tuple[object, ...]:
        names = self.__slots__ if self._compare is None else self._compare
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as a dataclass


class FrozenError(AttributeError):
    """Assignment to a field of a frozen record (as ``dataclasses.FrozenInstanceError``)."""


class Frozen(Record):
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._key())
